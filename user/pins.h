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

/*
 * Is another agent running on dir (it holds the directory lock)?  1 yes,
 * 0 no (or no such directory), -errno if it cannot be told.
 */
int pins_in_use(const char *dir);
/*
 * Open the maps a running agent pinned in dir, read-only (BPF_F_RDONLY:
 * the reader can never change or delete its counts): fds[i] for names[i].
 * 0, or -errno with a one-line reason in err (no fd left open).
 */
int pins_open_readonly(const char *dir, const char *const *names, int *fds,
		       int nr, char *err, size_t errlen);

#endif /* __PINS_H */
