/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Where the live view and the record get their counts (live.h): a running
 * agent's pinned maps, read-only, or probes of this process's own.
 */
#ifndef __LIVE_SRC_H
#define __LIVE_SRC_H

#include <pthread.h>
#include <stdbool.h>
#include "agent_info.h"
#include "collect.h"
#include "probes.h"
#include "scrape.h"

#define LIVE_NR_MAPS	4	/* vm_stats, hists, self_stats, vm_names */

struct live_src {
	bool beside;			/* reading a running agent's pins */
	/* beside */
	int fds[LIVE_NR_MAPS];
	struct collect_src src;
	struct agent_info info;		/* kernel only: its hooks are the agent's */
	/* our own probes */
	struct probes p;
	struct scrape_ctx sctx;		/* src and info, as probes_start() sets them */
	pthread_mutex_t lock;
};

/*
 * Beside the agent holding pin_dir, or attach (or wait for KVM) as the
 * daemon does.  0, or -1 after one line on stderr.
 */
int live_src_open(struct live_src *s, const struct probes_config *pcfg);

/*
 * Wait up to ~100 ms for something to do: our own probes (KVM loaded
 * late), or a key on key_fd (-1: none).  0, or -1 (said why).
 */
int live_src_wait(struct live_src *s, int key_fd);

/* The maps now, summed over CPUs; before KVM is there, nothing.  0 or -errno. */
int live_src_read(struct live_src *s, struct snapshot *snap);

const struct agent_info *live_src_info(const struct live_src *s);
/* The VMs' names (vm_names), read-only beside an agent: for the VM table. */
const struct map_reader *live_src_names(const struct live_src *s);
void live_src_close(struct live_src *s);

#endif /* __LIVE_SRC_H */
