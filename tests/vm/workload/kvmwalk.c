// SPDX-License-Identifier: GPL-2.0
/*
 * kvmwalk: a tiny VMM that makes KVM's shadow MMU walk unsync page tables
 * in shapes chosen on the command line (tests/vm/SHAPES.md is the
 * contract).  It runs one vCPU through the script in guest.c and exits.
 */
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmwalk.h"

static const char usage_text[] =
"usage: kvmwalk [--paging 4level|pae] [--tables N] [--dirs D] [--rounds R]\n"
"               [--sync cr3|fault] [--flood-zap] [--exit-unsync] [--nested]\n"
"               [--stats] [--hold] [--time] [-name guest=NAME]\n"
"Makes KVM's shadow MMU sync N unsync guest page tables, spread over D\n"
"page directories, R times (see tests/vm/SHAPES.md).  Needs /dev/kvm with\n"
"shadow paging (kvm_amd npt=0 or kvm_intel ept=0); --nested also runs\n"
"with nested paging (kvm_amd npt=1 nested=1).\n"
"  --paging      guest paging mode (default 4level)\n"
"  --tables N    test page tables, 1..511*D (default 8)\n"
"  --dirs D      test page directories, 1..8 (4level) or 1..3 (pae) (default 1)\n"
"  --rounds R    rounds of dirty-then-sync (default 1)\n"
"  --sync        how a round syncs: mov cr3 or a page fault (4level) (default cr3)\n"
"  --flood-zap   after the rounds, zap PD_t[0] by write flooding\n"
"  --exit-unsync leave every table unsync when the VM is destroyed\n"
"  --nested[=npt|shadow]\n"
"                the guest is a hypervisor; npt (default): the tables are\n"
"                the nested page tables of its own guest, synced by VMRUN;\n"
"                shadow: its guest runs without NPT on the guest's own\n"
"                tables (4level, --dirs 1..3, --sync cr3; kvm_amd nested=1)\n"
"  --stats       print KVM's VM stats before the VM is destroyed\n"
"  --hold        then stop itself (SIGSTOP) with the VM still there, so\n"
"                its stats can be read from outside; SIGCONT goes on\n"
"  --time        print the VMM's time in KVM_RUN, before the rounds and\n"
"                round by round (ns, CLOCK_MONOTONIC)\n"
"  -name ...     ignored (lets a VM be named as QEMU names it)\n"
"examples:\n"
"  kvmwalk --tables 40 --rounds 10\n"
"  kvmwalk --paging pae --tables 20 --dirs 3\n"
"  kvmwalk --nested --tables 13 --rounds 10\n";

void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("kvmwalk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

__attribute__((noreturn, format(printf, 1, 2)))
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("kvmwalk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (kvmwalk --help for usage)\n", stderr);
	exit(2);
}

static unsigned int parse_uint(const char *flag, const char *s)
{
	unsigned long v;
	char *end;

	/* strtoul takes "-1" and " 7"; a count must be plain digits. */
	if (*s < '0' || *s > '9')
		usage_error("%s wants a number, got '%s'", flag, s);
	v = strtoul(s, &end, 10);
	if (*end || v > 1000000)
		usage_error("%s wants a number up to 1000000, got '%s'", flag, s);
	return v;
}

/*
 * "--flag value" and "--flag=value" both work, as does QEMU's
 * "-name value".  Returns the value, advancing *i past it.
 */
static const char *flag_value(int argc, char **argv, int *i, const char *flag)
{
	const char *arg = argv[*i];
	size_t n = strlen(flag);

	if (arg[n] == '=')
		return arg + n + 1;
	if (*i + 1 >= argc)
		usage_error("%s needs a value", flag);
	return argv[++*i];
}

/* Does argv[i] name `flag`, alone or as "flag=value"? */
static int is_flag(const char *arg, const char *flag)
{
	size_t n = strlen(flag);

	return !strncmp(arg, flag, n) && (arg[n] == '\0' || arg[n] == '=');
}

static void parse_args(int argc, char **argv, struct walk_config *cfg)
{
	int dirs_max;
	int i;

	*cfg = (struct walk_config) {
		.paging = WALK_4LEVEL,
		.tables = 8,
		.dirs = 1,
		.rounds = 1,
		.sync = WALK_SYNC_CR3,
	};

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *v;

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			fputs(usage_text, stdout);
			exit(0);
		} else if (is_flag(arg, "--paging")) {
			v = flag_value(argc, argv, &i, "--paging");
			if (!strcmp(v, "4level"))
				cfg->paging = WALK_4LEVEL;
			else if (!strcmp(v, "pae"))
				cfg->paging = WALK_PAE;
			else
				usage_error("--paging wants 4level or pae, got '%s'", v);
		} else if (is_flag(arg, "--tables")) {
			cfg->tables = parse_uint("--tables",
				flag_value(argc, argv, &i, "--tables"));
		} else if (is_flag(arg, "--dirs")) {
			cfg->dirs = parse_uint("--dirs",
				flag_value(argc, argv, &i, "--dirs"));
		} else if (is_flag(arg, "--rounds")) {
			cfg->rounds = parse_uint("--rounds",
				flag_value(argc, argv, &i, "--rounds"));
		} else if (is_flag(arg, "--sync")) {
			v = flag_value(argc, argv, &i, "--sync");
			if (!strcmp(v, "cr3"))
				cfg->sync = WALK_SYNC_CR3;
			else if (!strcmp(v, "fault"))
				cfg->sync = WALK_SYNC_FAULT;
			else
				usage_error("--sync wants cr3 or fault, got '%s'", v);
		} else if (!strcmp(arg, "--flood-zap")) {
			cfg->flood_zap = 1;
		} else if (!strcmp(arg, "--exit-unsync")) {
			cfg->exit_unsync = 1;
		} else if (!strcmp(arg, "--nested") || !strcmp(arg, "--nested=npt")) {
			cfg->nested = WALK_NESTED_NPT;
		} else if (!strcmp(arg, "--nested=shadow")) {
			cfg->nested = WALK_NESTED_SHADOW;
		} else if (!strncmp(arg, "--nested=", 9)) {
			usage_error("--nested wants npt or shadow, got '%s'", arg + 9);
		} else if (!strcmp(arg, "--stats")) {
			cfg->stats = 1;
		} else if (!strcmp(arg, "--hold")) {
			cfg->hold = 1;
		} else if (!strcmp(arg, "--time")) {
			cfg->time = 1;
		} else if (is_flag(arg, "-name")) {
			flag_value(argc, argv, &i, "-name");
		} else {
			usage_error("unknown argument '%s'", arg);
		}
	}

	if (cfg->nested) {
		if (cfg->paging != WALK_4LEVEL)
			usage_error("--nested needs --paging 4level (L1 runs in long mode)");
		if (cfg->sync != WALK_SYNC_CR3)
			usage_error("--nested syncs by VMRUN: --sync fault does not apply");
		if (cfg->flood_zap)
			usage_error("--nested does not take --flood-zap");
		if (cfg->dirs < 1 || cfg->dirs > WALK_MAX_DIRS_NESTED)
			usage_error("--dirs must be 1..%d with --nested (L2's addresses stop at 4 GiB), got %u",
				    WALK_MAX_DIRS_NESTED, cfg->dirs);
	}
	dirs_max = cfg->paging == WALK_PAE ? WALK_MAX_DIRS_PAE :
					     WALK_MAX_DIRS_4LEVEL;
	if (cfg->dirs < 1 || cfg->dirs > (unsigned int)dirs_max)
		usage_error("--dirs must be 1..%d with --paging %s, got %u",
			    dirs_max, cfg->paging == WALK_PAE ? "pae" : "4level",
			    cfg->dirs);
	if (cfg->tables < 1 || cfg->tables > WALK_TABLES_PER_DIR * cfg->dirs)
		usage_error("--tables must be 1..%u with --dirs %u, got %u",
			    WALK_TABLES_PER_DIR * cfg->dirs, cfg->dirs,
			    cfg->tables);
	if (cfg->sync == WALK_SYNC_FAULT) {
		if (cfg->paging != WALK_4LEVEL)
			usage_error("--sync fault needs --paging 4level");
		/* Round r links PD_t[0] at PDPT0[1 + D + r]: 512 entries. */
		if (1 + cfg->dirs + cfg->rounds > 512)
			usage_error("--sync fault allows at most %u rounds with --dirs %u, got %u",
				    511 - cfg->dirs, cfg->dirs, cfg->rounds);
	}
}

int main(int argc, char **argv)
{
	struct walk_config cfg;
	struct vm_times times = { 0 };
	struct vm vm;
	uint32_t status;

	parse_args(argc, argv, &cfg);

	vm_create(&vm, layout_mem_size(&cfg), cfg.nested);
	if (cfg.time) {
		times.rounds = cfg.rounds;
		times.round_ns = calloc(cfg.rounds ? cfg.rounds : 1,
					sizeof(*times.round_ns));
		if (!times.round_ns)
			die("out of memory");
		vm.times = &times;
	}
	layout_build(vm.mem, &cfg);
	vm_enter_paged(&vm, cfg.paging,
		       cfg.nested == WALK_NESTED_NPT ? WALK_L1_ROOT : WALK_ROOT);

	status = vm_run(&vm);
	if (status == WALK_ERR_MAGIC)
		die("guest found no parameter block");
	if (status == WALK_ERR_MODE)
		die("guest cannot run this knob combination");
	if (status == WALK_ERR_L2_EXIT) {
		struct walk_params p;

		memcpy(&p, vm.mem + WALK_PARAMS, sizeof(p));
		die("L2 left with exit code 0x%llx, not VMMCALL (stage %s, round %llu): KVM refused the nested VMRUN or L2 faulted",
		    p.l2_exit, p.stage == WALK_STAGE_PRIME ? "prime" : "rounds",
		    p.round);
	}
	if (status)
		die("guest failed with status %u", status);

	if (cfg.stats)
		vm_print_stats(&vm);
	if (cfg.hold) {
		/*
		 * The guest is done and the VM not yet destroyed: a reader
		 * outside (debugfs, the agent's scrape) sees what --stats
		 * printed.  The line says the VMM got here; the stopped state
		 * (T in /proc/PID/stat) that it is there now.
		 */
		printf("kvmwalk: holding pid=%d\n", (int)getpid());
		fflush(stdout);
		raise(SIGSTOP);
	}
	vm_destroy(&vm);

	printf("kvmwalk: ok pid=%d paging=%s tables=%u dirs=%u rounds=%u sync=%s flood-zap=%d exit-unsync=%d nested=%s\n",
	       (int)getpid(), cfg.paging == WALK_PAE ? "pae" : "4level",
	       cfg.tables, cfg.dirs, cfg.rounds,
	       cfg.sync == WALK_SYNC_FAULT ? "fault" : "cr3",
	       cfg.flood_zap, cfg.exit_unsync,
	       cfg.nested == WALK_NESTED_NPT ? "npt" :
	       cfg.nested == WALK_NESTED_SHADOW ? "shadow" : "off");
	if (cfg.time)
		vm_print_times(&vm);
	return 0;
}
