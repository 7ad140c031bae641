// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The whole scrape of the page a KVM host serves, on a machine where the
 * walk hooks cannot attach (no kprobes, no fentry).  There the agent
 * leaves out every family whose probe is not attached, so its page has
 * no walk families and is a tenth of a KVM host's; bench/daemon.py
 * measures that page from the agent itself, and this one beside it.
 *
 * It is the agent's own serving path, linked from user/: the HTTP server
 * (http.c, keep-alive, gzip), one scrape as scrape.c runs it (the VM
 * check, the batch read of the running agent's pinned maps, read-only
 * as --top reads them, the VM table's names from /proc, the render), with
 * an agent_info that says every probe attached in fentry mode, as on
 * Debian's 6.1 with shadow paging.  Only the probes and the main loop are left out.
 *
 *   serve_bench PIN_DIR PORT      serve http://127.0.0.1:PORT/metrics
 *                                 until SIGTERM or SIGINT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>
#include "http.h"
#include "pins.h"
#include "scrape.h"

static const char *const attached[] = {
	PROBE_SYNC_CHILDREN, PROBE_UNSYNC_WALK, PROBE_CLEAR_PARENTS,
	PROBE_TP_SYNC_PAGE, PROBE_TP_UNSYNC_PAGE,
};

static void fill_info(struct agent_info *info)
{
	struct utsname u;
	size_t i;

	memset(info, 0, sizeof(*info));
	info->version = "bench";
	info->variant = "stock";
	if (!uname(&u))
		snprintf(info->kernel_release, sizeof(info->kernel_release),
			 "%s", u.release);
	for (i = 0; i < sizeof(attached) / sizeof(attached[0]); i++) {
		info->probes[i].probe = attached[i];
		info->probes[i].mode = i < 3 ? "fentry" : "tracepoint";
		info->probes[i].attached = true;
	}
	info->nr_probes = (int)i;
	info->clears_source[SITE_WALK] = "hook";
	info->clears_source[SITE_CLEAR_PARENTS] = "hook";
}

int main(int argc, char **argv)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct scrape_kvm kvm = {
		.src = { .root = KVM_STATS_ROOT, .proc = KVM_STATS_PROC },
	};
	static unsigned long long ringbuf_events;
	struct scrape_ctx sctx = {
		.lock = &lock, .kvm = &kvm, .ringbuf_events = &ringbuf_events,
	};
	struct agent_info info;
	struct http_server *srv;
	struct vm_table vms;
	static const char *const maps[] = { "vm_stats", "hists", "self_stats" };
	char addr[64], err[640];
	sigset_t set;
	int sig, fd[3];

	if (argc != 3) {
		fprintf(stderr, "usage: serve_bench PIN_DIR PORT\n");
		return 2;
	}
	/* read-only, as --top beside an agent: the agent owns its maps */
	if (pins_open_readonly(argv[1], maps, fd, 3, err, sizeof(err))) {
		fprintf(stderr, "serve_bench: %s\n", err);
		return 1;
	}
	if (collect_src_bpf(&sctx.src, fd[0], fd[1], fd[2]) ||
	    vm_table_init(&vms, "/proc")) {
		fprintf(stderr, "serve_bench: cannot set up the scrape\n");
		return 1;
	}
	fill_info(&info);
	sctx.info = &info;
	sctx.vms = &vms;
	snapshot_init(&sctx.snap);

	/* the server's threads inherit the mask: the signals come here */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[2]);
	srv = http_start(addr, HTTP_DEFAULT_TELEMETRY_PATH, metrics_scrape,
			 &sctx);
	if (!srv)
		return 1;	/* it said why */
	printf("serving http://%s/metrics\n", addr);
	fflush(stdout);
	sigwait(&set, &sig);
	http_stop(srv);
	vm_table_free(&vms);
	scrape_ctx_free(&sctx);
	return 0;
}
