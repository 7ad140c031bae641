// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --top, --batch, --record (live.h): a loop that reads the maps once per
 * interval, renders the interval's differences (top.c), and at the end
 * writes what was counted (record.c).
 *
 * Every block covers one whole interval, the first one included (its
 * "before" is the read at start), as kvm_stat does: a figure on the
 * screen is always a rate of the last interval, never since boot.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include "live.h"
#include "live_seen.h"
#include "live_src.h"
#include "record.h"
#include "vm_table.h"

#define KVM_MAX_PROCS	4096

/* Alternate screen and hidden cursor in, then home and clear: as top does. */
#define SCREEN_ENTER	"\033[?1049h\033[?25l"
#define SCREEN_LEAVE	"\033[?25h\033[?1049l"
#define SCREEN_HOME	"\033[H\033[J"

static volatile sig_atomic_t exiting;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

bool live_wanted(const struct live_config *cfg)
{
	return cfg->top || cfg->batch || cfg->record;
}

struct live {
	const struct live_config *cfg;
	struct live_src src;
	struct vm_table vms;
	bool vms_ready;
	struct snapshot snap;
	/* the view: rows of the last read and of the one before */
	struct top_vm *rows[2];
	size_t cap_rows[2];
	struct top_snap view[2];
	int cur;
	enum top_sort sort;		/* --sort, then the keys */
	double shown_s;			/* the interval on the screen */
	char *text;
	size_t text_len;
	/* KVM's stats, read with each read of the maps */
	struct kvm_stats_src ksrc;
	struct kvm_vm_kstats *kvm;
	int nr_kvm, kvm_err;
	/* the record */
	struct record_target out;	/* opened at start: checked then */
	struct seen_vms seen;
	struct hists base_h;
	struct self_stats base_self;
	bool have_base;
	/* the terminal, for --top */
	bool term_set;
	struct termios term_saved;
	const char *pin_dir;
};

static double mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Field-wise a - b of two structs made only of __u64 counters. */
static void u64_sub(void *out, const void *a, const void *b, size_t size)
{
	const __u64 *x = a, *y = b;
	__u64 *o = out;
	size_t i;

	for (i = 0; i < size / sizeof(__u64); i++)
		o[i] = x[i] - y[i];
}

static int ensure_rows(struct live *l, int k, size_t n)
{
	struct top_vm *r;

	if (n <= l->cap_rows[k])
		return 0;
	r = realloc(l->rows[k], n * sizeof(*r));
	if (!r)
		return -ENOMEM;
	l->rows[k] = r;
	l->cap_rows[k] = n;
	return 0;
}

/*
 * Read the maps and KVM's stats into the next view, and bring the VMs
 * seen up to date.  The first read is the base the record subtracts:
 * beside a running agent, what it had counted before this run.
 */
static int read_once(struct live *l)
{
	const struct vm_series *series;
	struct top_snap *v;
	struct top_vm *row;
	struct seen_vm *sv;
	size_t nr, i;
	int e, k = !l->cur;

	vm_table_check(&l->vms);
	e = live_src_read(&l->src, &l->snap);
	if (!e)
		e = vm_table_series(&l->vms, &l->snap, &series, &nr);
	if (!e)
		e = ensure_rows(l, k, nr ? nr : 1);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot read the maps: %s\n",
			strerror(-e));
		return -1;
	}
	l->nr_kvm = kvm_stats_read(&l->ksrc, l->kvm, KVM_MAX_PROCS);
	l->kvm_err = l->nr_kvm < 0 && l->nr_kvm != -E2BIG ? l->nr_kvm : 0;
	if (l->nr_kvm == -E2BIG)
		l->nr_kvm = KVM_MAX_PROCS;
	if (l->nr_kvm < 0)
		l->nr_kvm = 0;

	v = &l->view[k];
	v->vms = l->rows[k];
	v->nr_vms = nr;
	v->hists = l->snap.hists;
	for (i = 0; i < nr; i++) {
		const struct kvm_vm_kstats *ks;

		row = &l->rows[k][i];
		memset(row, 0, sizeof(*row));
		snprintf(row->name, sizeof(row->name), "%s",
			 series[i].name ? series[i].name : "unknown");
		row->pid = series[i].pid;
		/* summed over guest levels: the view has no guest column */
		vm_guests_total(&row->st, series[i].stats);
		ks = row->pid ? kvm_stats_find(l->kvm, l->nr_kvm, row->pid) :
			NULL;
		if (ks) {
			row->has_kvm = true;
			row->kvm = *ks;
		}
		sv = seen_find(&l->seen, row->pid);
		if (!sv)
			return -1;
		seen_update(sv, row, !l->have_base);
	}
	if (!l->have_base) {
		l->base_h = l->snap.hists;
		l->base_self = l->snap.self;
		l->have_base = true;
	}
	l->cur = k;
	return 0;
}

static int render(struct live *l, int max_rows)
{
	size_t need;
	char *t;

	for (;;) {
		need = top_render(&l->view[!l->cur], &l->view[l->cur],
				  l->shown_s, l->sort, max_rows, l->text,
				  l->text_len);
		if (need < l->text_len)
			return 0;
		t = realloc(l->text, need + 256);
		if (!t)
			return -ENOMEM;
		l->text = t;
		l->text_len = need + 256;
	}
}

static int screen_rows(void)
{
	struct winsize w;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) || w.ws_row == 0)
		return 0;
	/* header 2, "(N more VMs)" 1, footer 2, KVM line 1 */
	return w.ws_row > 7 ? w.ws_row - 6 : 1;
}

static void show(struct live *l)
{
	char why[320];

	if (render(l, l->cfg->top ? screen_rows() : 0)) {
		fprintf(stderr, "kvm-unsync-exporter: out of memory\n");
		exiting = 1;
		return;
	}
	if (l->cfg->top)
		fputs(SCREEN_HOME, stdout);
	fputs(l->text, stdout);
	if (l->kvm_err)
		printf("%s\n", kvm_stats_strerror(
			&l->ksrc, l->kvm_err, why, sizeof(why)));
	if (l->cfg->batch)
		putchar('\n');
	fflush(stdout);
}

static int term_enter(struct live *l)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "kvm-unsync-exporter: --top needs a terminal: use --batch for a pipe or a file\n");
		return -1;
	}
	if (tcgetattr(STDIN_FILENO, &l->term_saved) == 0) {
		t = l->term_saved;
		t.c_lflag &= ~(ICANON | ECHO);	/* keys one by one; ^C stays a signal */
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
			l->term_set = true;
	}
	fputs(SCREEN_ENTER, stdout);
	fflush(stdout);
	return 0;
}

static void term_leave(struct live *l)
{
	if (!l->cfg->top)
		return;
	fputs(SCREEN_LEAVE, stdout);
	fflush(stdout);
	if (l->term_set)
		tcsetattr(STDIN_FILENO, TCSANOW, &l->term_saved);
}

/* What the keys typed since the last look ask for. */
enum key_action { KEY_NONE, KEY_REDRAW, KEY_READ_NOW };

static enum key_action keys(struct live *l, bool *quit)
{
	enum key_action a = KEY_NONE;
	enum top_sort s;
	char c;

	while (read(STDIN_FILENO, &c, 1) == 1) {
		if (c == 'q' || c == 'Q') {
			*quit = true;
		} else if (top_sort_key(c, &s) == 0) {
			l->sort = s;
			if (a == KEY_NONE)
				a = KEY_REDRAW;
		} else if (c == ' ') {
			a = KEY_READ_NOW;	/* as in top: update now */
		}
	}
	return a;
}

static int write_record(struct live *l, const struct timespec *start,
			double duration)
{
	struct record r = {
		.info = live_src_info(&l->src),
		.start = *start,
		.duration_s = duration,
		.kvm_stats_root = l->ksrc.root,
		.kvm_stats_err = l->kvm_err,
		.maps = l->src.beside ? "pinned" : "attached",
		.pin_dir = l->pin_dir,
	};
	struct record_vm *vms;
	char err[512];
	int i, e;

	vms = calloc(l->seen.nr ? l->seen.nr : 1, sizeof(*vms));
	if (!vms) {
		fprintf(stderr, "kvm-unsync-exporter: --record: out of memory\n");
		return -1;
	}
	for (i = 0; i < l->seen.nr; i++) {
		vms[i] = l->seen.v[i].rv;
		u64_sub(&vms[i].stats, &l->seen.v[i].last, &l->seen.v[i].base,
			sizeof(vms[i].stats));
	}
	r.vms = vms;
	r.nr_vms = l->seen.nr;
	u64_sub(&r.hists, &l->snap.hists, &l->base_h, sizeof(r.hists));
	u64_sub(&r.self, &l->snap.self, &l->base_self, sizeof(r.self));
	clock_gettime(CLOCK_REALTIME, &r.end);
	/* a reader gone from a pipe is an error to report, not a death */
	signal(SIGPIPE, SIG_IGN);
	e = record_target_write(&l->out, &r, err, sizeof(err));
	free(vms);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	fprintf(stderr, "kvm-unsync-exporter: record of %.1f s, %d VMs, written to %s\n",
		duration, l->seen.nr, l->cfg->record);
	return 0;
}

/*
 * Wait for the end of this interval, a key, or the end of the run:
 * whether to read the maps now (else: redraw what is there, or stop).
 */
static int wait_interval(struct live *l, double until, double end,
			 bool *quit, bool *read_now)
{
	enum key_action a;

	*read_now = false;
	while (!exiting && !*quit) {
		double now = mono_now();

		if (now >= until || (end > 0 && now >= end)) {
			*read_now = true;
			return 0;
		}
		if (live_src_wait(&l->src, l->cfg->top ? STDIN_FILENO : -1))
			return -1;
		a = l->cfg->top ? keys(l, quit) : KEY_NONE;
		if (a != KEY_NONE) {
			*read_now = a == KEY_READ_NOW;
			return 0;
		}
	}
	return 0;
}

static int run(struct live *l)
{
	const struct live_config *cfg = l->cfg;
	double start, last, next, end, now;
	struct timespec wall;
	unsigned long blocks = 0;
	bool quit = false, read_now, view = cfg->top || cfg->batch;

	clock_gettime(CLOCK_REALTIME, &wall);
	start = last = mono_now();
	end = cfg->duration_s > 0 ? start + cfg->duration_s : 0;
	if (read_once(l))
		return -1;
	if (cfg->top) {
		if (term_enter(l))
			return -1;
		/* at once, as top does: the VMs, no interval yet */
		l->view[!l->cur] = l->view[l->cur];
		show(l);
	}
	next = start + cfg->interval_s;
	while (!exiting && !quit) {
		if (wait_interval(l, next, end, &quit, &read_now))
			goto fail;
		if (exiting || quit)
			break;
		if (!read_now) {
			/* a sort key: the same interval again, in the new order */
			show(l);
			continue;
		}
		now = mono_now();
		if (read_once(l))
			goto fail;
		l->shown_s = now - last;
		if (view)
			show(l);
		last = now;
		blocks++;
		if (cfg->iterations && blocks >= cfg->iterations)
			break;
		if (end > 0 && now >= end)
			break;
		/* an interval from now on: a key may have cut this one short */
		next = now + cfg->interval_s;
	}
	term_leave(l);
	if (!cfg->record)
		return 0;
	/* up to this moment: what the last partial interval counted too */
	if (read_once(l))
		return -1;
	return write_record(l, &wall, mono_now() - start);
fail:
	term_leave(l);
	return -1;
}

int live_run(const struct live_config *cfg, const struct probes_config *pcfg)
{
	struct live l = {
		.cfg = cfg,
		.sort = cfg->sort,
		.ksrc = { .root = KVM_STATS_ROOT, .proc = KVM_STATS_PROC },
		.out = { .fd = -1 },
	};
	char err[512];
	int ret = 1, i;

	snapshot_init(&l.snap);
	l.kvm = calloc(KVM_MAX_PROCS, sizeof(*l.kvm));
	if (!l.kvm || vm_table_init(&l.vms, "/proc")) {
		fprintf(stderr, "kvm-unsync-exporter: out of memory\n");
		goto out;
	}
	l.vms_ready = true;
	vm_table_set_max(&l.vms, cfg->max_vms);
	if (signal(SIGINT, on_signal) == SIG_ERR ||
	    signal(SIGTERM, on_signal) == SIG_ERR) {
		fprintf(stderr, "kvm-unsync-exporter: cannot set signal handlers: %s\n",
			strerror(errno));
		goto out;
	}
	l.pin_dir = pcfg->pin_dir;
	/* before the probes load and the run starts: not after --duration */
	if (cfg->record &&
	    record_target_open(&l.out, cfg->record, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		ret = 2;
		goto out;
	}
	if (live_src_open(&l.src, pcfg))
		goto out_src;
	vm_table_set_names(&l.vms, live_src_names(&l.src));
	if (l.src.beside && !cfg->top)
		fprintf(stderr, "kvm-unsync-exporter: reading the maps of the agent running on %s (read-only)\n",
			pcfg->pin_dir);
	if (cfg->record && !cfg->top)
		fprintf(stderr, "kvm-unsync-exporter: recording to %s%s: %s writes it\n",
			cfg->record, record_target_through(&l.out) ?
			" (not a regular file: written through, not replaced)" :
			"", cfg->duration_s > 0 ?
			"the end of --duration, SIGINT or SIGTERM" :
			"SIGINT or SIGTERM");
	if (!run(&l))
		ret = 0;
out_src:
	live_src_close(&l.src);
out:
	record_target_close(&l.out);
	if (l.vms_ready)
		vm_table_free(&l.vms);
	snapshot_free(&l.snap);
	for (i = 0; i < 2; i++)
		free(l.rows[i]);
	free(l.text);
	seen_free(&l.seen);
	free(l.kvm);
	return ret;
}
