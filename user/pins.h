/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Pinning the aggregate maps under one directory of bpffs, owned by one
 * agent at a time. */
#ifndef __PINS_H
#define __PINS_H

#include <stdbool.h>
#include <stddef.h>

struct bpf_map;

struct pins {
	char dir[256];
	int lock_fd;		/* flock()ed while this agent owns dir */
	struct bpf_map *maps[4];
	int nr;
};

int pins_open(struct pins *p, const char *dir, char *err, size_t errlen);
int pins_add(struct pins *p, struct bpf_map *map, char *err, size_t errlen);
/* Unpin (unless keep) and release the directory. */
void pins_close(struct pins *p, bool keep);

#endif /* __PINS_H */
