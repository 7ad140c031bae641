// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kvm-unsync-exporter: count what KVM's shadow-MMU unsync walk does, per VM,
 * and serve it to Prometheus.
 *
 * Lifecycle: open -> configure -> choose flavours -> load -> attach -> pin
 * -> serve; one cleanup path undoes whatever was done.
 */
#include <argp.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "agent_info.h"
#include "capless.h"
#include "caps.h"
#include "collect.h"
#include "compare.h"
#include "discover.h"
#include "events.h"
#include "families.h"
#include "hooks.h"
#include "http.h"
#include "scrape.h"
#include "pins.h"
#include "service.h"
#include "trace.h"
#include "vm_table.h"
#include "unsync.skel.h"

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
} env = {
	.attach = ATTACH_AUTO,
	.pin_dir = DEFAULT_PIN_DIR,
	.listen_address = HTTP_DEFAULT_LISTEN_ADDRESS,
	.telemetry_path = HTTP_DEFAULT_TELEMETRY_PATH,
	.ringbuf_kib = DEFAULT_RINGBUF_KIB,
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
"    kvm-unsync-exporter --web.config.file=web.yml  # TLS, basic auth (SIGHUP re-reads)\n";

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
};

static const struct argp_option opts[] = {
	{ "attach", OPT_ATTACH, "MODE", 0,
	  "Function hook flavour: auto (fentry where it attaches, else kprobe), fentry, kprobe", 0 },
	{ "clear-parents", OPT_CLEAR_PARENTS, "HOW", 0,
	  "How the clear_parents bitmap clears are counted: auto (hook mmu_pages_clear_parents where it can be, else derive them from the page vector), hook, derive", 0 },
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
	{ "verbose", 'v', NULL, 0, "libbpf debug output and verifier logs", 0 },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Show the full help", 0 },
	{},
};

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	char *end, msg[160];
	unsigned long n;

	switch (key) {
	case OPT_ATTACH:
		if (parse_attach_mode(arg, &env.attach))
			argp_error(state, "--attach: unknown mode '%s' (auto, fentry or kprobe)", arg);
		break;
	case OPT_CLEAR_PARENTS:
		if (parse_clear_parents_mode(arg, &env.clear_parents))
			argp_error(state, "--clear-parents: unknown way '%s' (auto, hook or derive)", arg);
		break;
	case OPT_PIN_DIR:
		if (arg[0] != '/')
			argp_error(state, "--pin-dir: '%s' is not an absolute path", arg);
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
		if (arg[0] != '/' || !strcmp(arg, "/"))
			argp_error(state, "--web.telemetry-path: '%s' must start with '/' and not be '/'", arg);
		env.telemetry_path = arg;
		break;
	case OPT_WEB_CONFIG:
		env.web_config_file = arg;
		break;
	case OPT_TRACE:
		if (parse_trace_mode(arg, &env.trace))
			argp_error(state, "--trace: unknown value '%s' (syncs or frames)", arg);
		break;
	case OPT_JSON:
		env.json = true;
		break;
	case OPT_CHECK:
		env.check = true;
		break;
	case OPT_RINGBUF:
		errno = 0;
		env.ringbuf_kib = strtoul(arg, &end, 10);
		if (errno || *end || env.ringbuf_kib < 4 ||
		    env.ringbuf_kib > (1UL << 20) ||
		    (env.ringbuf_kib & (env.ringbuf_kib - 1)))
			argp_error(state, "--ringbuf-kib: '%s' is not a power of two between 4 and 1048576", arg);
		break;
	case OPT_CAPS_KEEP:
		if (caps_parse_list(arg, &env.caps_keep, msg, sizeof(msg)))
			argp_error(state, "%s", msg);
		break;
	case OPT_MAX_VMS:
		errno = 0;
		n = strtoul(arg, &end, 10);
		if (errno || *end || arg[0] < '0' || arg[0] > '9' || n < 1 ||
		    n > MAX_VMS_LIMIT)
			argp_error(state, "--max-vms: '%s' is not a number from 1 to %d", arg, MAX_VMS_LIMIT);
		env.max_vms = n;
		break;
	case 'v':
		env.verbose = true;
		break;
	case 'h':
		argp_state_help(state, stderr, ARGP_HELP_STD_HELP);
		break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s'", arg);
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

/*
 * How each site of the bitmap clears is counted: a derived count is not a
 * measured one, and a missing one is not a zero.
 */
static void print_clears_sources(FILE *out, const struct agent_info *info)
{
	int i;

	for (i = 0; i < SITE_MAX; i++) {
		const char *src = info->clears_source[i];

		if (!src || (out == stderr && !strcmp(src, "hook")))
			continue;
		fprintf(out, "%sbitmap clears, site %s: %s%s%s\n",
			out == stderr && !strcmp(src, "missing") ? "warning: " :
			out == stderr ? "kvm-unsync-exporter: " : "",
			family_site_names[i], src, info->clears_why[i][0] ? ": " : "",
			info->clears_why[i]);
	}
}

static void print_check(const struct agent_info *info, const char *why)
{
	int i;

	printf("kernel %s, variant %s (%s)\n", info->kernel_release,
	       info->variant, why);
	printf("%-26s %-11s %-9s %s\n", "PROBE", "MODE", "ATTACHED", "REASON");
	for (i = 0; i < info->nr_probes; i++) {
		const struct probe_status *p = &info->probes[i];

		printf("%-26s %-11s %-9s %s\n", p->probe, p->mode,
		       p->attached ? "yes" : "no", p->reason);
	}
	print_clears_sources(stdout, info);
}

static void warn_missing(const struct agent_info *info)
{
	int i;

	for (i = 0; i < info->nr_probes; i++) {
		const struct probe_status *p = &info->probes[i];

		if (!p->attached)
			fprintf(stderr, "warning: %s not attached: %s\n",
				p->probe, p->reason);
	}
	print_clears_sources(stderr, info);
}

/*
 * Everything attaching builds.  At start-up when KVM is loaded; else
 * later, from the main loop, once it is (attach_late()).
 */
struct probes {
	struct kernel_view kv;
	struct hook_set hs;
	struct unsync_bpf *skel;
	struct ring_buffer *rb;
	struct pins pins;	/* locked at start-up, maps pinned at attach */
	bool pinned;
	char why[160];		/* how the variant was detected */
};

/* discover, choose flavours, open, configure, load, attach: 0 or -1 */
static int load_and_attach(struct probes *p, struct agent_info *info)
{
	int e;

	snprintf(info->kernel_release, sizeof(info->kernel_release), "%s",
		 p->kv.release);
	info->variant = detect_variant(&p->kv, p->why, sizeof(p->why));
	if (env.verbose)
		fprintf(stderr, "kernel %s: variant %s (%s)\n", p->kv.release,
			info->variant, p->why);

	/* choose flavours: a real attach test per function and flavour */
	hooks_choose(&p->hs, &p->kv, env.attach, env.clear_parents,
		     info->variant, env.verbose);

	/* open and configure */
	p->skel = unsync_bpf__open();
	if (!p->skel) {
		fprintf(stderr, "kvm-unsync-exporter: cannot open BPF object: %s\n",
			strerror(errno));
		return -1;
	}
	p->skel->rodata->trace_frames = env.trace == TRACE_FRAMES;
	p->skel->rodata->trace_syncs = env.trace != TRACE_OFF;
	p->skel->rodata->ringbuf_wake_bytes = env.ringbuf_kib * 1024 / 4;
	e = bpf_map__set_max_entries(p->skel->maps.events,
				     env.ringbuf_kib * 1024);
	if (!e)
		e = hooks_configure(&p->hs, p->skel);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot configure BPF object: %s\n",
			strerror(-e));
		return -1;
	}

	/* load */
	e = unsync_bpf__load(p->skel);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot load BPF programs: %s%s\n",
			strerror(-e), env.verbose ? "" : " (run with -v for the verifier log)");
		return -1;
	}

	/* attach */
	hooks_attach(&p->hs, p->skel);
	hooks_report(&p->hs, info);
	return 0;
}

/* pin the maps, open the ring buffer, point the scrapes at the maps */
static int pin_and_connect(struct probes *p, struct events_ctx *ev,
			   struct collect_src *src)
{
	char err[256];
	int e;

	if (pins_add(&p->pins, p->skel->maps.vm_stats, err, sizeof(err)) ||
	    pins_add(&p->pins, p->skel->maps.hists, err, sizeof(err)) ||
	    pins_add(&p->pins, p->skel->maps.self_stats, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	p->pinned = true;
	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.events),
				 events_handle, ev, NULL);
	if (!p->rb) {
		fprintf(stderr, "kvm-unsync-exporter: cannot open ring buffer: %s\n",
			strerror(errno));
		return -1;
	}
	e = collect_src_bpf(src, bpf_map__fd(p->skel->maps.vm_stats),
			    bpf_map__fd(p->skel->maps.hists),
			    bpf_map__fd(p->skel->maps.self_stats));
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot count CPUs: %s\n",
			strerror(-e));
		return -1;
	}
	return 0;
}

/* What /metrics says before KVM is loaded: nothing attached yet. */
static void waiting_info(struct agent_info *info, const char *release)
{
	snprintf(info->kernel_release, sizeof(info->kernel_release), "%s",
		 release);
	info->variant = "unknown";
	hooks_report_waiting(info);
}

/*
 * KVM as a module: its BTF shows up in /sys/kernel/btf when it loads;
 * attach only once the module is live (fentry refuses a module still
 * running its init).
 */
static bool kvm_module_live(void)
{
	char state[16] = "";
	FILE *f;

	if (access("/sys/kernel/btf/kvm", R_OK))
		return false;
	f = fopen("/sys/module/kvm/initstate", "r");
	if (!f)
		return false;
	if (!fgets(state, sizeof(state), f))
		state[0] = '\0';
	fclose(f);
	return !strncmp(state, "live", 4);
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

/*
 * A port below ip_unprivileged_port_start needs CAP_NET_BIND_SERVICE,
 * which the HTTP thread never has: bind it here, on the main thread, and
 * hand the server the socket as socket activation would.  Returns the fd,
 * -1 when the HTTP thread can bind it itself (or the address is bad:
 * http_start says why), -2 after one line on stderr.
 */
static int bind_privileged_port(const char *addr)
{
	struct listen_addr a;
	const char *what;
	char err[512];
	int port, start = 1024, fd, e;
	FILE *f;

	if (http_parse_listen_address(addr, &a, err, sizeof(err)))
		return -1;
	port = ntohs(a.ss.ss_family == AF_INET6 ?
		     ((struct sockaddr_in6 *)&a.ss)->sin6_port :
		     ((struct sockaddr_in *)&a.ss)->sin_port);
	f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r");
	if (f) {
		if (fscanf(f, "%d", &start) != 1)
			start = 1024;
		fclose(f);
	}
	if (port == 0 || port >= start)
		return -1;
	fd = listen_socket_open(&a, &what);
	if (fd >= 0)
		return fd;
	e = -fd;
	fprintf(stderr, "cannot listen on --web.listen-address \"%s\": %s: %s\n",
		addr, what, strerror(e));
	return -2;
}

/* The main thread: keep only --capabilities.keep, for good. */
static int drop_main_caps(void)
{
	char err[256], keep[256];

	if (caps_drop_thread(env.caps_keep, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	if (env.verbose) {
		caps_format(env.caps_keep, keep, sizeof(keep));
		fprintf(stderr, "capabilities dropped; kept: %s\n", keep);
	}
	return 0;
}

/*
 * KVM was loaded after start-up: discover, load, attach and pin now, then
 * switch the scrapes over under their lock.  0; 1 if KVM is not there
 * after all (keep waiting); -1 on failure (said why).
 */
static int attach_late(struct probes *p, struct agent_info *info,
		       struct events_ctx *ev, struct scrape_ctx *sctx)
{
	struct agent_info fresh = { .version = info->version };
	struct collect_src src;
	char err[256];
	int e;

	kernel_view_close(&p->kv);
	if (kernel_view_open(&p->kv, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	if (!p->kv.kvm_present)
		return 1;	/* not yet after all: keep waiting */
	fprintf(stderr, "kvm-unsync-exporter: KVM loaded: attaching\n");
	if (load_and_attach(p, &fresh))
		return -1;
	warn_missing(&fresh);
	if (!hooks_walk_attached(&p->hs))
		fprintf(stderr, "warning: the walk hooks did not attach: serving tracepoint counts only\n");
	if (pin_and_connect(p, ev, &src))
		return -1;
	/* no scrape sees the maps before the main thread dropped it all */
	pthread_mutex_lock(sctx->lock);
	*info = fresh;
	sctx->src = src;
	sctx->waiting = false;
	e = drop_main_caps();
	pthread_mutex_unlock(sctx->lock);
	if (e)
		return -1;
	fprintf(stderr, "kvm-unsync-exporter: probes attached, maps pinned in %s\n",
		env.pin_dir);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct argp argp = {
		.options = opts,
		.parser = parse_arg,
		.doc = doc,
	};
	static pthread_mutex_t scrape_lock = PTHREAD_MUTEX_INITIALIZER;
	struct probes p = { .pins = { .lock_fd = -1 } };
	struct agent_info info = { .version = KUE_VERSION };
	struct trace_ctx tctx = { .out = stdout };
	struct events_ctx ev = { .trace = &tctx };
	struct scrape_ctx sctx = { .lock = &scrape_lock };
	struct vm_table vms = {};

	/* A subcommand, not a flag: it reads records and attaches nothing. */
	if (argc > 1 && strcmp(argv[1], "compare") == 0)
		return compare_main(argc - 1, argv + 1);
	struct http_server *srv = NULL;
	struct http_options hopts = HTTP_OPTIONS_INIT;
	struct http_start_call hcall = { .opts = &hopts, .sctx = &sctx };
	char err[256], status[256], missing[128];
	bool vms_ready = false, waiting = false, activated = false;
	int ret = 1, e, listen_fd = -1, ticks = 0;

	e = argp_parse(&argp, argc, argv, 0, NULL, NULL);
	if (e)
		return 2;
	if (env.json && env.trace == TRACE_OFF)
		env.trace = TRACE_SYNCS;
	tctx.mode = env.trace;
	tctx.json = env.json;
	libbpf_set_print(libbpf_print_fn);

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
	if (!env.check) {
		listen_fd = service_listen_fd(err, sizeof(err));
		if (listen_fd < -1) {
			fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
			return 1;
		}
		if (listen_fd >= 0 && env.listen_address_set) {
			fprintf(stderr, "kvm-unsync-exporter: --web.listen-address cannot be used with socket activation (systemd passed a listening socket)\n");
			close(listen_fd);
			return 2;
		}
		activated = listen_fd >= 0;
		if (!activated)
			listen_fd = bind_privileged_port(env.listen_address);
		if (listen_fd == -2)
			return 1;
	}
	if (kernel_view_open(&p.kv, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		goto cleanup;
	}
	if (!p.kv.kvm_present) {
		if (env.check) {
			fprintf(stderr, "kvm-unsync-exporter: KVM is not loaded (no struct kvm_mmu_page in kernel BTF): load it first, e.g. modprobe kvm_intel or modprobe kvm_amd\n");
			goto cleanup;
		}
		waiting = true;
	}
	/* one agent per pin directory: refuse a second one now */
	if (!env.check && pins_open(&p.pins, env.pin_dir, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		goto cleanup;
	}
	if (vm_table_init(&vms, "/proc")) {
		fprintf(stderr, "kvm-unsync-exporter: out of memory\n");
		goto cleanup;
	}
	vm_table_set_max(&vms, env.max_vms);
	vms_ready = true;
	ev.vms = &vms;
	sctx.vms = &vms;
	sctx.info = &info;
	sctx.ringbuf_events = &ev.events;
	snapshot_init(&sctx.snap);

	if (!waiting) {
		if (load_and_attach(&p, &info))
			goto cleanup;
		if (env.check) {
			print_check(&info, p.why);
			ret = hooks_walk_attached(&p.hs) ? 0 : 1;
			goto cleanup;
		}
		warn_missing(&info);
		if (!hooks_walk_attached(&p.hs))
			fprintf(stderr, "warning: the walk hooks did not attach: serving tracepoint counts only\n");
		if (pin_and_connect(&p, &ev, &sctx.src))
			goto cleanup;
	} else {
		waiting_info(&info, p.kv.release);
		sctx.waiting = true;
	}

	if (signal(SIGINT, sig_handler) == SIG_ERR ||
	    signal(SIGTERM, sig_handler) == SIG_ERR ||
	    signal(SIGHUP, hup_handler) == SIG_ERR) {
		fprintf(stderr, "kvm-unsync-exporter: cannot set signal handlers: %s\n",
			strerror(errno));
		goto cleanup;
	}
	/* serve: from a thread without capabilities (see caps.h) */
	hopts.listen_address = env.listen_address;
	hopts.listen_fd = listen_fd;
	hopts.telemetry_path = env.telemetry_path;
	hopts.web_config_file = env.web_config_file;
	/*
	 * Attached: the main thread drops its capabilities as soon as the
	 * server runs (the server's thread must be created first, while this
	 * one still has CAP_SETPCAP to give it an empty bounding set).  No
	 * scrape is answered before: it waits for the scrape lock.
	 */
	if (capless_start())
		goto cleanup;
	if (!waiting)
		pthread_mutex_lock(&scrape_lock);
	e = run_capless(http_start_capless, &hcall);	/* said why */
	if (!e) {
		srv = hcall.srv;
		listen_fd = -1;		/* the server's now */
		if (!waiting)
			e = drop_main_caps();
	}
	if (!waiting)
		pthread_mutex_unlock(&scrape_lock);
	if (e)
		goto cleanup;
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

	while (!exiting) {
		if (reload_web_config) {
			reload_web_config = 0;
			/* a new TLS daemon gets a new thread: capless too */
			run_capless(http_reload_capless, srv);	/* logs one line */
		}
		if (waiting) {
			/* every second: has KVM been loaded? */
			if (ticks++ % 10 == 0 && kvm_module_live()) {
				e = attach_late(&p, &info, &ev, &sctx);
				if (e < 0)
					goto cleanup;
				if (e == 0) {
					waiting = false;
					service_status("serving, probes attached");
					continue;
				}
			}
			usleep(100 * 1000);	/* a signal cuts it short */
			continue;
		}
		/*
		 * The BPF side wakes us only when the ring fills up (see
		 * ringbuf_wake_bytes): a poll that times out still reads
		 * what is there.
		 */
		e = ring_buffer__poll(p.rb, 100 /* ms */);
		if (e == 0)
			e = ring_buffer__consume(p.rb);
		if (e < 0 && e != -EINTR) {
			fprintf(stderr, "kvm-unsync-exporter: ring buffer poll: %s\n",
				strerror(-e));
			goto cleanup;
		}
	}
	ret = 0;
	/* what the last poll did not see: no wake-up told us of it */
	if (p.rb)
		ring_buffer__consume(p.rb);

cleanup:
	service_stopping();
	http_stop(srv);
	capless_stop();
	if (listen_fd >= 0)
		close(listen_fd);
	ring_buffer__free(p.rb);
	hooks_detach(&p.hs);
	if (p.pinned || p.pins.lock_fd >= 0)
		pins_close(&p.pins, env.keep_pins);
	unsync_bpf__destroy(p.skel);
	if (vms_ready)
		vm_table_free(&vms);
	scrape_ctx_free(&sctx);
	kernel_view_close(&p.kv);
	return ret;
}
