// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kvm-unsync-exporter: count what KVM's shadow-MMU unsync walk does, per VM,
 * and serve it to Prometheus.
 *
 * main(), in steps: flags -> privileges and the listening socket -> the
 * probes (attach now, or wait for KVM: probes.c) -> serve -> the event
 * loop; one cleanup path undoes whatever was done.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* fopencookie */
#endif
#include <argp.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <bpf/libbpf.h>
#include "capless.h"
#include "caps.h"
#include "compare.h"
#include "events.h"
#include "hooks.h"
#include "http.h"
#include "live.h"
#include "probes.h"
#include "scrape.h"
#include "service.h"
#include "trace.h"
#include "vm_table.h"

#define DEFAULT_PIN_DIR		"/sys/fs/bpf/kvm_unsync"
#define DEFAULT_RINGBUF_KIB	256
#define MAX_VMS_LIMIT		65536	/* COLLECT_MAX_VMS */
#define MAX_VMS_LIMIT_S		"65536"

static struct env {
	enum attach_mode attach;
	enum clear_parents_mode clear_parents;	/* --clear-parents */
	const char *pin_dir;
	bool keep_pins;
	const char *listen_address;
	const char *telemetry_path;
	const char *web_config_file;
	enum trace_mode trace;
	bool json;
	bool check;
	bool verbose;
	unsigned long ringbuf_kib;
	bool listen_address_set;	/* given: socket activation refused */
	caps_mask caps_keep;		/* --capabilities.keep */
	size_t max_vms;			/* --max-vms, 0: no limit */
	struct live_config live;	/* --top, --batch, --record, ... */
	bool telemetry_set, interval_set, sort_set;
} env = {
	.attach = ATTACH_AUTO,
	.pin_dir = DEFAULT_PIN_DIR,
	.listen_address = HTTP_DEFAULT_LISTEN_ADDRESS,
	.telemetry_path = HTTP_DEFAULT_TELEMETRY_PATH,
	.ringbuf_kib = DEFAULT_RINGBUF_KIB,
	.live = { .interval_s = 1.0 },
};

const char *argp_program_version = "kvm-unsync-exporter " KUE_VERSION;
const char *argp_program_bug_address = NULL;
error_t argp_err_exit_status = 2;
static const char doc[] =
"Count what KVM's shadow-MMU unsync walk does, per VM, for Prometheus.\n"
"\n"
"USAGE: kvm-unsync-exporter [OPTION...]\n"
"\n"
"EXAMPLES:\n"
"    kvm-unsync-exporter                      # serve http://:10190/metrics\n"
"    kvm-unsync-exporter --check              # show which hooks attach, exit\n"
"    kvm-unsync-exporter --trace              # also print one line per sync\n"
"    kvm-unsync-exporter --trace=frames --json  # every walk frame, JSON lines\n"
"    kvm-unsync-exporter --attach=kprobe      # never use fentry/fexit\n"
"    kvm-unsync-exporter --web.config.file=web.yml  # TLS, basic auth (SIGHUP re-reads)\n"
"    kvm-unsync-exporter --top                # live view, one row per VM (no HTTP)\n"
"    kvm-unsync-exporter --batch --iterations=5  # the same, 5 plain blocks\n"
"    kvm-unsync-exporter --record=a.json --duration=60  # a record of 60 s\n"
"    kvm-unsync-exporter compare a.json b.json  # two records side by side\n";

enum {
	OPT_ATTACH = 0x100,
	OPT_PIN_DIR,
	OPT_KEEP_PINS,
	OPT_LISTEN,
	OPT_TELEMETRY,
	OPT_WEB_CONFIG,
	OPT_TRACE,
	OPT_JSON,
	OPT_CHECK,
	OPT_RINGBUF,
	OPT_CAPS_KEEP,
	OPT_MAX_VMS,
	OPT_CLEAR_PARENTS,
	OPT_TOP,
	OPT_BATCH,
	OPT_INTERVAL,
	OPT_ITERATIONS,
	OPT_SORT,
	OPT_RECORD,
	OPT_DURATION,
};

static const struct argp_option opts[] = {
	{ "attach", OPT_ATTACH, "MODE", 0,
	  "Function hook flavour: auto (fentry where it attaches, else kprobe), fentry, kprobe", 0 },
	{ "clear-parents", OPT_CLEAR_PARENTS, "HOW", 0,
	  "How the clear_parents bitmap clears are counted: auto (derive them from the page vector on a stock kernel, else hook mmu_pages_clear_parents), hook, derive", 0 },
	{ "pin-dir", OPT_PIN_DIR, "DIR", 0,
	  "Pin the aggregate maps here (default " DEFAULT_PIN_DIR ")", 0 },
	{ "keep-pins", OPT_KEEP_PINS, NULL, 0, "Leave the maps pinned on exit", 0 },
	{ "web.listen-address", OPT_LISTEN, "ADDR", 0,
	  "Address to serve metrics on (default " HTTP_DEFAULT_LISTEN_ADDRESS ")", 0 },
	{ "web.telemetry-path", OPT_TELEMETRY, "PATH", 0,
	  "Path under which to expose metrics (default " HTTP_DEFAULT_TELEMETRY_PATH ")", 0 },
	{ "web.config.file", OPT_WEB_CONFIG, "FILE", 0,
	  "TLS and basic auth settings, node_exporter's format; SIGHUP re-reads it", 0 },
	{ "trace", OPT_TRACE, "WHAT", OPTION_ARG_OPTIONAL,
	  "Print each sync as it happens (WHAT: syncs, the default, or frames)", 0 },
	{ "json", OPT_JSON, NULL, 0, "With --trace: JSON lines", 0 },
	{ "check", OPT_CHECK, NULL, 0,
	  "Load and attach, print what attached and how, exit 0 if the walk hooks attached", 0 },
	{ "ringbuf-kib", OPT_RINGBUF, "KIB", 0,
	  "Ring buffer size in KiB, a power of two >= 4 (default 256)", 0 },
	{ "capabilities.keep", OPT_CAPS_KEEP, "CAPS", 0,
	  "Capabilities to keep once attached, comma-separated (CAP_NET_RAW,...); default none", 0 },
	{ "max-vms", OPT_MAX_VMS, "N", 0,
	  "Label at most N VMs (1 to " MAX_VMS_LIMIT_S "); later VMs are counted in vm=\"other\"", 0 },
	{ "top", OPT_TOP, NULL, 0,
	  "Live view: a row per VM, refreshed every --interval; keys s r p n i sort, q quits. Does not serve HTTP; beside a running agent it reads its pinned maps", 0 },
	{ "batch", OPT_BATCH, NULL, 0,
	  "The live view as plain text, one block per interval (for scripts)", 0 },
	{ "interval", OPT_INTERVAL, "SEC", 0,
	  "Seconds between two blocks of --top or --batch (default 1, at least 0.1)", 0 },
	{ "iterations", OPT_ITERATIONS, "N", 0,
	  "With --top or --batch: stop after N blocks", 0 },
	{ "sort", OPT_SORT, "KEY", 0,
	  "With --top or --batch: sort the VMs by syncs (default), restarts, pages, name or pid", 0 },
	{ "record", OPT_RECORD, "FILE", 0,
	  "At exit (SIGINT, SIGTERM, --duration), write everything counted to FILE as JSON (docs/record.md); no HTTP", 0 },
	{ "duration", OPT_DURATION, "SEC", 0,
	  "With --top, --batch or --record: stop after SEC seconds", 0 },
	{ "verbose", 'v', NULL, 0, "libbpf debug output and verifier logs", 0 },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Show the full help", 0 },
	{},
};

/*
 * A bad flag: one line, exit 2.  argp_error() wraps its message and adds
 * a "Try --help" line; every other error of the agent is one line.
 * Control bytes in the operator's argument cannot split it.
 */
static void flag_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void flag_error(const char *fmt, ...)
{
	char msg[512], *c;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	fprintf(stderr, "kvm-unsync-exporter: %s (see --help)\n", msg);
	exit(2);
}

/*
 * argp prints "Try --help" to its error stream after getopt's own
 * one-line message (an unknown option, a missing value): send it nowhere.
 */
static FILE *null_stream(void)
{
	static const cookie_io_functions_t none = { 0 };

	return fopencookie(NULL, "w", none);
}

/* A file or directory name that will be printed in log lines. */
static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * A URL path as written in a link and matched as received: letters,
 * digits, '/' and the path characters that need no escaping in a URL or
 * in HTML.  '?' or '#' would start a query or fragment no scrape matches.
 */
static bool plain_url_path(const char *s)
{
	if (s[0] != '/' || !s[1])
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("/-._~!$'()*+,;=:@", *s))
			return false;
	return true;
}

/*
 * A whole number written in decimal digits from min to max: strtoul()
 * alone takes " 8", "+8" and "-18446744073709551612" (as 4).
 */
static int parse_decimal(const char *arg, unsigned long min,
			 unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	const char *c;

	if (!*arg)
		return -EINVAL;
	for (c = arg; *c; c++) {
		unsigned long d = (unsigned long)(*c - '0');

		if (*c < '0' || *c > '9' || d > max || v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v < min)
		return -EINVAL;
	*out = v;
	return 0;
}

/* SEC: a decimal number of seconds from min to a day. */
static int parse_seconds(const char *arg, double min, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v) || v < min ||
	    v > 86400)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The developer's modes (live.h) against the daemon's flags. */
static void check_live_flags(void)
{
	const struct live_config *l = &env.live;
	bool view = l->top || l->batch;

	if (l->top && l->batch)
		flag_error("--top and --batch: pick one (--top for a terminal, --batch for a script)");
	if (!view && (l->iterations || env.sort_set))
		flag_error("--%s needs --top or --batch",
			   l->iterations ? "iterations" : "sort");
	if (!live_wanted(l) && (l->duration_s > 0 || env.interval_set))
		flag_error("--%s needs --top, --batch or --record",
			   l->duration_s > 0 ? "duration" : "interval");
	if (!live_wanted(l))
		return;
	if (env.check)
		flag_error("--check cannot be used with --top, --batch or --record");
	if (env.trace != TRACE_OFF || env.json)
		flag_error("--trace cannot be used with --top, --batch or --record: run it on its own");
	if (env.listen_address_set || env.telemetry_set || env.web_config_file)
		flag_error("--top, --batch and --record do not serve HTTP: drop the --web.* flags");
}

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	char msg[160];
	unsigned long n;

	switch (key) {
	case ARGP_KEY_INIT:
		state->err_stream = null_stream();
		break;
	case ARGP_KEY_FINI:
		if (state->err_stream && state->err_stream != stderr)
			fclose(state->err_stream);
		state->err_stream = NULL;
		break;
	case OPT_ATTACH:
		if (parse_attach_mode(arg, &env.attach))
			flag_error("--attach: unknown mode '%s' (auto, fentry or kprobe)", arg);
		break;
	case OPT_CLEAR_PARENTS:
		if (parse_clear_parents_mode(arg, &env.clear_parents))
			flag_error("--clear-parents: unknown way '%s' (auto, hook or derive)", arg);
		break;
	case OPT_PIN_DIR:
		if (arg[0] != '/' || has_control(arg))
			flag_error("--pin-dir: '%s' is not an absolute path without control characters", arg);
		env.pin_dir = arg;
		break;
	case OPT_KEEP_PINS:
		env.keep_pins = true;
		break;
	case OPT_LISTEN:
		env.listen_address = arg;
		env.listen_address_set = true;
		break;
	case OPT_TELEMETRY:
		if (!plain_url_path(arg))
			flag_error("--web.telemetry-path: '%s' is not a plain URL path: '/' then letters, digits and /-._~!$'()*+,;=:@ only (no '?', '#', '%%' or space)", arg);
		env.telemetry_path = arg;
		env.telemetry_set = true;
		break;
	case OPT_WEB_CONFIG:
		if (has_control(arg))
			flag_error("--web.config.file: '%s' has a control character in it: pick a plain file name", arg);
		env.web_config_file = arg;
		break;
	case OPT_TRACE:
		if (parse_trace_mode(arg, &env.trace))
			flag_error("--trace: unknown value '%s' (syncs or frames)", arg);
		break;
	case OPT_JSON:
		env.json = true;
		break;
	case OPT_CHECK:
		env.check = true;
		break;
	case OPT_RINGBUF:
		if (parse_decimal(arg, 4, 1UL << 20, &env.ringbuf_kib) ||
		    (env.ringbuf_kib & (env.ringbuf_kib - 1)))
			flag_error("--ringbuf-kib: '%s' is not a power of two between 4 and 1048576", arg);
		break;
	case OPT_CAPS_KEEP:
		if (caps_parse_list(arg, &env.caps_keep, msg, sizeof(msg)))
			flag_error("%s", msg);
		break;
	case OPT_MAX_VMS:
		if (parse_decimal(arg, 1, MAX_VMS_LIMIT, &n))
			flag_error("--max-vms: '%s' is not a number from 1 to %d", arg, MAX_VMS_LIMIT);
		env.max_vms = n;
		break;
	case OPT_TOP:
		env.live.top = true;
		break;
	case OPT_BATCH:
		env.live.batch = true;
		break;
	case OPT_INTERVAL:
		if (parse_seconds(arg, 0.1, &env.live.interval_s))
			flag_error("--interval: '%s' is not a number of seconds from 0.1 to 86400", arg);
		env.interval_set = true;
		break;
	case OPT_ITERATIONS:
		if (parse_decimal(arg, 1, ULONG_MAX, &n))
			flag_error("--iterations: '%s' is not a whole number of at least 1", arg);
		env.live.iterations = n;
		break;
	case OPT_SORT:
		if (top_sort_parse(arg, &env.live.sort))
			flag_error("--sort: unknown key '%s' (syncs, restarts, pages, name or pid)", arg);
		env.sort_set = true;
		break;
	case OPT_RECORD:
		if (!arg[0])
			flag_error("--record: needs a file name");
		if (has_control(arg))
			flag_error("--record: '%s' has a control character in it: pick a plain file name", arg);
		env.live.record = arg;
		break;
	case OPT_DURATION:
		if (parse_seconds(arg, 0.001, &env.live.duration_s))
			flag_error("--duration: '%s' is not a number of seconds from 0.001 to 86400", arg);
		break;
	case ARGP_KEY_END:
		check_live_flags();
		break;
	case 'v':
		env.verbose = true;
		break;
	case 'h':
		argp_state_help(state, stderr, ARGP_HELP_STD_HELP);
		break;
	case ARGP_KEY_ARG:
		flag_error("unexpected argument '%s'", arg);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static int libbpf_print_fn(enum libbpf_print_level level __attribute__((unused)),
			   const char *format,
			   va_list args)
{
	/*
	 * The start-up attach tests fail on purpose on many kernels; libbpf's
	 * warnings about them would read like errors.  Our own one-line
	 * messages say what failed; -v shows libbpf's whole story.
	 */
	if (!env.verbose)
		return 0;
	return vfprintf(stderr, format, args);
}

static volatile sig_atomic_t exiting;

static void sig_handler(int sig)
{
	(void)sig;
	exiting = 1;
}

static volatile sig_atomic_t reload_web_config;

static void hup_handler(int sig)
{
	(void)sig;
	reload_web_config = 1;
}

struct http_start_call {
	const struct http_options *opts;
	struct scrape_ctx *sctx;
	struct http_server *srv;
};

static int http_start_capless(void *arg)
{
	struct http_start_call *c = arg;

	c->srv = http_start_opts(c->opts, metrics_scrape, c->sctx);
	return c->srv ? 0 : -1;
}

static int http_reload_capless(void *arg)
{
	return http_reload(arg);
}

/* What refuses to start before any work: 0, or the exit code (said why). */
/*
 * The soft open-file limit up to the hard one, as Go exporters do: a pidfd
 * per VM (vm_table.c) takes half of it at most, the rest is the HTTP
 * server's.  A failure only leaves more VMs checked in /proc.
 */
static void raise_open_files(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int preflight(void)
{
	char missing[128];

	if (geteuid() != 0) {
		fprintf(stderr, "kvm-unsync-exporter: must run as root (it loads BPF programs: CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)\n");
		return 1;
	}
	if (env.caps_keep & ~caps_effective()) {
		caps_format(env.caps_keep & ~caps_effective(), missing,
			    sizeof(missing));
		fprintf(stderr, "kvm-unsync-exporter: --capabilities.keep: cannot keep %s: the process does not hold it\n",
			missing);
		return 1;
	}
	/* a bad web config fails now, before any BPF work */
	if (http_check_web_config(env.web_config_file))
		return 1;	/* it said why */
	raise_open_files();
	return 0;
}

/*
 * The socket to serve on if not the HTTP thread's own: systemd's, or a
 * privileged port bound while this thread may.  0 with *fd (-1: none), or
 * the exit code after one line on stderr: 2 for systemd's socket(s) not as
 * configured, which no restart can fix (RestartPreventExitStatus=2).
 */
static int open_listener(int *fd, bool *activated)
{
	char err[256];

	*fd = service_listen_fd(err, sizeof(err));
	if (*fd < -1) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return 2;
	}
	if (*fd >= 0 && env.listen_address_set) {
		fprintf(stderr, "kvm-unsync-exporter: --web.listen-address cannot be used with socket activation: the socket unit owns the address; drop it from ARGS and set ListenStream= with systemctl edit kvm-unsync-exporter.socket\n");
		service_refuse_listen_fd(*fd);
		*fd = -1;
		return 2;
	}
	*activated = *fd >= 0;
	if (!*activated)
		*fd = listen_socket_open_privileged(env.listen_address);
	if (*fd == -2)
		return 1;
	return 0;
}

/*
 * Before anything slow starts: a SIGTERM while the probes load must end
 * the agent cleanly (exit 0, pins removed), not kill it half-started.
 */
static int set_signals(void)
{
	http_reload_stop_flag(&exiting);
	if (signal(SIGINT, sig_handler) == SIG_ERR ||
	    signal(SIGTERM, sig_handler) == SIG_ERR ||
	    signal(SIGHUP, hup_handler) == SIG_ERR) {
		fprintf(stderr, "kvm-unsync-exporter: cannot set signal handlers: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Serve, from a thread without capabilities (see caps.h).  Attached, the
 * main thread drops its capabilities as soon as the server runs (the
 * server's thread must be created first, while this one still has
 * CAP_SETPCAP to give it an empty bounding set); no scrape is answered
 * before: it waits for the scrape lock.  Waiting for KVM, it keeps them
 * to attach later.  *srv is set once it runs, even if the drop then
 * fails; the server owns *listen_fd from then on.
 */
static int serve(struct probes *p, struct scrape_ctx *sctx, int *listen_fd,
		 struct http_server **srv)
{
	struct http_options hopts = HTTP_OPTIONS_INIT;
	struct http_start_call hcall = { .opts = &hopts, .sctx = sctx };
	int e;

	hopts.listen_address = env.listen_address;
	hopts.listen_fd = *listen_fd;
	hopts.telemetry_path = env.telemetry_path;
	hopts.web_config_file = env.web_config_file;
	if (capless_start())
		return -1;
	pthread_mutex_lock(sctx->lock);
	e = run_capless(http_start_capless, &hcall);	/* said why */
	if (!e) {
		*srv = hcall.srv;
		*listen_fd = -1;
		e = probes_drop_caps(p);
	}
	pthread_mutex_unlock(sctx->lock);
	return e;
}

static void announce(const struct probes *p, struct http_server *srv,
		     bool activated)
{
	bool waiting = probes_waiting(p);
	char status[256];

	fprintf(stderr, "kvm-unsync-exporter %s: serving %s on %s (port %d), %s %s\n",
		KUE_VERSION, env.telemetry_path,
		activated ? "the socket systemd passed" : env.listen_address,
		http_port(srv), waiting ? "maps to be pinned in" : "maps pinned in",
		env.pin_dir);
	if (waiting) {
		fprintf(stderr, "kvm-unsync-exporter: KVM not loaded yet: waiting (for /sys/kernel/btf/kvm: modprobe kvm_intel or kvm_amd)\n");
		service_ready("serving; KVM not loaded yet: waiting");
	} else {
		snprintf(status, sizeof(status), "serving on port %d, probes attached",
			 http_port(srv));
		service_ready(status);
	}
}

int main(int argc, char **argv)
{
	static const struct argp argp = {
		.options = opts,
		.parser = parse_arg,
		.doc = doc,
	};
	static pthread_mutex_t scrape_lock = PTHREAD_MUTEX_INITIALIZER;
	struct probes p = PROBES_INIT;
	struct probes_config pcfg;
	struct trace_ctx tctx = { .out = stdout };
	struct events_ctx ev = { .trace = &tctx };
	static struct scrape_kvm kvm_stats = {
		.src = { .root = KVM_STATS_ROOT, .proc = KVM_STATS_PROC },
	};
	struct scrape_ctx sctx = { .lock = &scrape_lock, .kvm = &kvm_stats };
	struct vm_table vms = {};
	struct http_server *srv = NULL;
	bool vms_ready = false, activated = false;
	int ret = 1, e, listen_fd = -1;

	/* A subcommand, not a flag: it reads records and attaches nothing. */
	if (argc > 1 && strcmp(argv[1], "compare") == 0)
		return compare_main(argc - 1, argv + 1);

	/* flags */
	if (argp_parse(&argp, argc, argv, 0, NULL, NULL))
		return 2;
	if (env.json && env.trace == TRACE_OFF)
		env.trace = TRACE_SYNCS;
	tctx.mode = env.trace;
	tctx.json = env.json;
	pcfg = (struct probes_config){
		.attach = env.attach,
		.clear_parents = env.clear_parents,
		.pin_dir = env.pin_dir,
		.keep_pins = env.keep_pins,
		.check = env.check,
		.trace_syncs = env.trace != TRACE_OFF,
		.trace_frames = env.trace == TRACE_FRAMES,
		.ringbuf_kib = env.ringbuf_kib,
		.caps_keep = env.caps_keep,
		.verbose = env.verbose,
		.sample = events_handle,
		.sample_ctx = &ev,
	};
	libbpf_set_print(libbpf_print_fn);

	/* --top, --batch, --record: a developer's run, no HTTP (live.h) */
	if (live_wanted(&env.live)) {
		env.live.max_vms = env.max_vms;
		e = preflight();
		return e ? e : live_run(&env.live, &pcfg);
	}

	/* privileges, config, the socket systemd passed */
	if (set_signals())
		return 1;
	e = preflight();
	if (!e && !env.check)
		e = open_listener(&listen_fd, &activated);
	if (e)
		return e;

	/* the probes: discover, lock the pins; --check ends here */
	if (probes_open(&p, &pcfg))
		goto cleanup;
	if (exiting && !env.check) {
		ret = 0;	/* asked to stop while starting */
		goto cleanup;
	}
	if (env.check) {
		ret = probes_check(&p);
		goto cleanup;
	}

	/* the scrapes' state, then attach (or wait for KVM) */
	if (vm_table_init(&vms, "/proc")) {
		fprintf(stderr, "kvm-unsync-exporter: out of memory\n");
		goto cleanup;
	}
	vm_table_set_max(&vms, env.max_vms);
	vms_ready = true;
	/* filled (under the scrape lock) once the probes are attached */
	vm_table_set_names(&vms, &sctx.src.vm_names);
	sctx.vms = &vms;
	sctx.ringbuf_events = &ev.events;
	snapshot_init(&sctx.snap);
	if (probes_start(&p, &sctx))
		goto cleanup;
	if (exiting) {
		ret = 0;
		goto cleanup;
	}

	/* serve */
	if (serve(&p, &sctx, &listen_fd, &srv))
		goto cleanup;
	announce(&p, srv, activated);

	/* events: the ring buffer, or KVM's arrival */
	while (!exiting) {
		if (reload_web_config) {
			reload_web_config = 0;
			/* a new TLS daemon gets a new thread: capless too */
			run_capless(http_reload_capless, srv);	/* logs one line */
		}
		e = probes_poll(&p);
		if (e < 0)
			goto cleanup;
		if (e > 0)
			service_status("serving, probes attached");
	}
	ret = 0;
	probes_drain(&p);

cleanup:
	service_stopping();
	http_stop(srv);
	capless_stop();
	if (listen_fd >= 0)
		close(listen_fd);
	probes_close(&p);
	if (vms_ready)
		vm_table_free(&vms);
	scrape_ctx_free(&sctx);
	return ret;
}
