// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Where the live view's counts come from (live_src.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>
#include "discover.h"
#include "live_src.h"
#include "pins.h"

#define WAIT_MS		100	/* as probes_poll() */

static const char *const map_names[LIVE_NR_MAPS] = {
	"vm_stats", "hists", "self_stats", "vm_names",
};

/*
 * What the record says of a kernel whose probes another agent attached:
 * release and variant, as that agent detects them; the hooks are its own
 * (its /metrics or --check tell), so none here.
 */
static void kernel_info(struct agent_info *info)
{
	struct kernel_view kv = {};
	struct utsname u;
	char err[256], why[160];

	info->version = KUE_VERSION;
	info->variant = "unknown";
	if (!uname(&u))
		snprintf(info->kernel_release, sizeof(info->kernel_release),
			 "%s", u.release);
	if (!kernel_view_open(&kv, err, sizeof(err))) {
		if (kv.kvm_present)
			info->variant = detect_variant(&kv, why, sizeof(why));
		kernel_view_close(&kv);
	}
}

/*
 * vm_names, beside an agent: one that pinned none (a version before the
 * map) still serves its counts; VMs are then named from /proc.
 */
static void open_names_beside(struct live_src *s, const char *dir)
{
	char err[640];

	if (!pins_open_readonly(dir, &map_names[3], &s->fds[3], 1, err,
				sizeof(err))) {
		map_reader_bpf(&s->src.vm_names, s->fds[3]);
		return;
	}
	fprintf(stderr, "kvm-unsync-exporter: warning: %s: VMs are named from /proc, so one that exits before this run looks is unknown\n",
		err);
}

static int open_beside(struct live_src *s, const char *dir)
{
	char err[640];
	int e;

	/* vm_stats, hists, self_stats: without them there is nothing to show */
	e = pins_open_readonly(dir, map_names, s->fds, LIVE_NR_MAPS - 1, err,
			       sizeof(err));
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	e = collect_src_bpf(&s->src, s->fds[0], s->fds[1], s->fds[2]);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot count CPUs: %s\n",
			strerror(-e));
		return -1;
	}
	open_names_beside(s, dir);
	kernel_info(&s->info);
	return 0;
}

int live_src_open(struct live_src *s, const struct probes_config *pcfg)
{
	int i, busy;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < LIVE_NR_MAPS; i++)
		s->fds[i] = -1;
	s->p = (struct probes)PROBES_INIT;
	pthread_mutex_init(&s->lock, NULL);
	s->sctx.lock = &s->lock;
	snapshot_init(&s->sctx.snap);

	busy = pins_in_use(pcfg->pin_dir);
	if (busy < 0) {
		fprintf(stderr, "kvm-unsync-exporter: cannot look at pin directory %s: %s\n",
			pcfg->pin_dir, strerror(-busy));
		return -1;
	}
	if (busy) {
		s->beside = true;
		return open_beside(s, pcfg->pin_dir);
	}
	if (probes_open(&s->p, pcfg))
		return -1;	/* said why */
	return probes_start(&s->p, &s->sctx);
}

int live_src_wait(struct live_src *s, int key_fd)
{
	struct pollfd pfd = { .fd = key_fd, .events = POLLIN };

	if (!s->beside)
		return probes_poll(&s->p) < 0 ? -1 : 0;
	if (key_fd < 0) {
		usleep(WAIT_MS * 1000);	/* a signal cuts it short */
		return 0;
	}
	if (poll(&pfd, 1, WAIT_MS) < 0 && errno != EINTR) {
		fprintf(stderr, "kvm-unsync-exporter: poll: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

int live_src_read(struct live_src *s, struct snapshot *snap)
{
	int e;

	if (s->beside)
		return collect_from(snap, &s->src);
	pthread_mutex_lock(&s->lock);
	if (s->sctx.waiting) {
		snapshot_reset(snap);	/* no KVM yet: nothing counted */
		e = 0;
	} else {
		e = collect_from(snap, &s->sctx.src);
	}
	pthread_mutex_unlock(&s->lock);
	return e;
}

const struct agent_info *live_src_info(const struct live_src *s)
{
	return s->beside ? &s->info : &s->p.info;
}

const struct map_reader *live_src_names(const struct live_src *s)
{
	return s->beside ? &s->src.vm_names : &s->sctx.src.vm_names;
}

void live_src_close(struct live_src *s)
{
	int i;

	for (i = 0; i < LIVE_NR_MAPS; i++)
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	if (!s->beside) {
		probes_drain(&s->p);
		probes_close(&s->p);
	}
	snapshot_free(&s->sctx.snap);
}
