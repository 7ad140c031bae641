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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "agent_info.h"
#include "collect.h"
#include "discover.h"
#include "hooks.h"
#include "http.h"
#include "metrics.h"
#include "pins.h"
#include "trace.h"
#include "vm_table.h"
#include "unsync.skel.h"

#define DEFAULT_PIN_DIR		"/sys/fs/bpf/kvm_unsync"
#define DEFAULT_RINGBUF_KIB	256

static struct env {
	enum attach_mode attach;
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
};

static const struct argp_option opts[] = {
	{ "attach", OPT_ATTACH, "MODE", 0,
	  "Function hook flavour: auto (fentry where it attaches, else kprobe), fentry, kprobe", 0 },
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
	{ "verbose", 'v', NULL, 0, "libbpf debug output and verifier logs", 0 },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Show the full help", 0 },
	{},
};

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	char *end;

	switch (key) {
	case OPT_ATTACH:
		if (parse_attach_mode(arg, &env.attach))
			argp_error(state, "--attach: unknown mode '%s' (auto, fentry or kprobe)", arg);
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
}

int main(int argc, char **argv)
{
	static const struct argp argp = {
		.options = opts,
		.parser = parse_arg,
		.doc = doc,
	};
	struct kernel_view kv = {};
	struct agent_info info = { .version = KUE_VERSION };
	struct trace_ctx tctx = { .out = stdout };
	struct scrape_ctx sctx = {};
	struct vm_table vms = {};
	struct hook_set hs = {};
	struct unsync_bpf *skel = NULL;
	struct ring_buffer *rb = NULL;
	struct http_server *srv = NULL;
	struct http_options hopts = HTTP_OPTIONS_INIT;
	struct pins pins = { .lock_fd = -1 };
	char err[256], why[160];
	bool pinned = false, vms_ready = false;
	int ret = 1, e;

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
	/* a bad web config fails now, before any BPF work */
	if (http_check_web_config(env.web_config_file))
		return 1;	/* it said why */
	if (kernel_view_open(&kv, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return 1;
	}
	if (!kv.kvm_present) {
		fprintf(stderr, "kvm-unsync-exporter: KVM is not loaded (no struct kvm_mmu_page in kernel BTF): load it first, e.g. modprobe kvm_intel or modprobe kvm_amd\n");
		goto cleanup;
	}
	snprintf(info.kernel_release, sizeof(info.kernel_release), "%s",
		 kv.release);
	info.variant = detect_variant(&kv, why, sizeof(why));
	if (env.verbose)
		fprintf(stderr, "kernel %s: variant %s (%s)\n", kv.release,
			info.variant, why);

	/* choose flavours: a real attach test per function and flavour */
	hooks_choose(&hs, &kv, env.attach, env.verbose);

	/* open and configure */
	skel = unsync_bpf__open();
	if (!skel) {
		fprintf(stderr, "kvm-unsync-exporter: cannot open BPF object: %s\n",
			strerror(errno));
		goto cleanup;
	}
	skel->rodata->trace_frames = env.trace == TRACE_FRAMES;
	e = bpf_map__set_max_entries(skel->maps.events, env.ringbuf_kib * 1024);
	if (!e)
		e = hooks_configure(&hs, skel);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot configure BPF object: %s\n",
			strerror(-e));
		goto cleanup;
	}

	/* load */
	e = unsync_bpf__load(skel);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot load BPF programs: %s%s\n",
			strerror(-e), env.verbose ? "" : " (run with -v for the verifier log)");
		goto cleanup;
	}

	/* attach */
	hooks_attach(&hs, skel);
	hooks_report(&hs, &info);

	if (env.check) {
		print_check(&info, why);
		ret = hooks_walk_attached(&hs) ? 0 : 1;
		goto cleanup;
	}
	warn_missing(&info);
	if (!hooks_walk_attached(&hs))
		fprintf(stderr, "warning: the walk hooks did not attach: serving tracepoint counts only\n");

	/* pin */
	if (pins_open(&pins, env.pin_dir, err, sizeof(err)) ||
	    pins_add(&pins, skel->maps.vm_stats, err, sizeof(err)) ||
	    pins_add(&pins, skel->maps.hists, err, sizeof(err)) ||
	    pins_add(&pins, skel->maps.self_stats, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		goto cleanup;
	}
	pinned = true;

	/* serve */
	if (vm_table_init(&vms, "/proc")) {
		fprintf(stderr, "kvm-unsync-exporter: out of memory\n");
		goto cleanup;
	}
	vms_ready = true;
	tctx.vms = &vms;
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), trace_handle,
			      &tctx, NULL);
	if (!rb) {
		fprintf(stderr, "kvm-unsync-exporter: cannot open ring buffer: %s\n",
			strerror(errno));
		goto cleanup;
	}
	e = collect_src_bpf(&sctx.src, bpf_map__fd(skel->maps.vm_stats),
			    bpf_map__fd(skel->maps.hists),
			    bpf_map__fd(skel->maps.self_stats));
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot count CPUs: %s\n",
			strerror(-e));
		goto cleanup;
	}
	sctx.vms = &vms;
	sctx.info = &info;
	sctx.ringbuf_events = &tctx.events;
	snapshot_init(&sctx.snap);

	if (signal(SIGINT, sig_handler) == SIG_ERR ||
	    signal(SIGTERM, sig_handler) == SIG_ERR ||
	    signal(SIGHUP, hup_handler) == SIG_ERR) {
		fprintf(stderr, "kvm-unsync-exporter: cannot set signal handlers: %s\n",
			strerror(errno));
		goto cleanup;
	}
	hopts.listen_address = env.listen_address;
	hopts.telemetry_path = env.telemetry_path;
	hopts.web_config_file = env.web_config_file;
	srv = http_start_opts(&hopts, metrics_scrape, &sctx);
	if (!srv)
		goto cleanup;	/* http_start said why */
	fprintf(stderr, "kvm-unsync-exporter %s: serving %s on %s (port %d), maps pinned in %s\n",
		KUE_VERSION, env.telemetry_path, env.listen_address,
		http_port(srv), env.pin_dir);

	while (!exiting) {
		if (reload_web_config) {
			reload_web_config = 0;
			http_reload(srv);	/* logs one line either way */
		}
		e = ring_buffer__poll(rb, 100 /* ms */);
		if (e < 0 && e != -EINTR) {
			fprintf(stderr, "kvm-unsync-exporter: ring buffer poll: %s\n",
				strerror(-e));
			goto cleanup;
		}
	}
	ret = 0;

cleanup:
	http_stop(srv);
	ring_buffer__free(rb);
	hooks_detach(&hs);
	if (pinned || pins.lock_fd >= 0)
		pins_close(&pins, env.keep_pins);
	unsync_bpf__destroy(skel);
	if (vms_ready)
		vm_table_free(&vms);
	snapshot_free(&sctx.snap);
	kernel_view_close(&kv);
	return ret;
}
