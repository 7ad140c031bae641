// SPDX-License-Identifier: GPL-2.0
/*
 * KVM plumbing for kvmwalk: one VM, one memory slot, one vCPU started
 * directly in paged protected mode (no firmware, no mode switches in the
 * guest).  Any failure ends the program with a one-line reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvmwalk.h"

/* Where VMX wants its real-mode TSS; SVM ignores it.  Outside memory. */
#define TSS_ADDR	0xfffbd000UL

static int kvm_ioctl(int fd, unsigned long req, void *arg, const char *what)
{
	int ret = ioctl(fd, req, arg);

	if (ret < 0)
		die("%s: %s", what, strerror(errno));
	return ret;
}

/* CPUID 0x80000001 ECX bit 2: SVM. */
static int cpuid_has_svm(const struct kvm_cpuid2 *cpuid)
{
	uint32_t i;

	for (i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == 0x80000001)
			return !!(cpuid->entries[i].ecx & (1U << 2));
	return 0;
}

/* KVM refuses EFER.LME unless the vCPU's CPUID has long mode: give the
 * vCPU everything KVM supports before touching its registers.  That
 * includes SVM when kvm_amd runs with nested=1, which --nested needs. */
static void set_cpuid(struct vm *vm, int need_svm)
{
	struct kvm_cpuid2 *cpuid;
	int nent = 64;

	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) +
				  nent * sizeof(cpuid->entries[0]));
		if (!cpuid)
			die("out of memory");
		cpuid->nent = nent;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		if (errno != E2BIG)
			die("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		free(cpuid);
		nent *= 2;
	}
	if (need_svm && !cpuid_has_svm(cpuid))
		die("KVM offers no SVM to its guests: --nested needs kvm_amd loaded with nested=1 on an AMD host");
	kvm_ioctl(vm->vcpu_fd, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
	free(cpuid);
}

void vm_create(struct vm *vm, size_t mem_size, int need_svm)
{
	struct kvm_userspace_memory_region region;
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		die("cannot open /dev/kvm: %s", strerror(errno));
	ret = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, NULL);
	if (ret != KVM_API_VERSION)
		die("KVM API version %d, expected %d", ret, KVM_API_VERSION);

	vm->vm_fd = kvm_ioctl(vm->kvm_fd, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	kvm_ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (void *)TSS_ADDR,
		  "KVM_SET_TSS_ADDR");

	vm->mem_size = mem_size;
	vm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED)
		die("cannot map %zu bytes of guest memory: %s", mem_size,
		    strerror(errno));
	region = (struct kvm_userspace_memory_region) {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = mem_size,
		.userspace_addr = (uintptr_t)vm->mem,
	};
	kvm_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region,
		  "KVM_SET_USER_MEMORY_REGION");

	vm->vcpu_fd = kvm_ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0,
				"KVM_CREATE_VCPU");
	ret = kvm_ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL,
			"KVM_GET_VCPU_MMAP_SIZE");
	vm->run_size = ret;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED)
		die("cannot map kvm_run: %s", strerror(errno));
	set_cpuid(vm, need_svm);
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type,
				       int code64)
{
	return (struct kvm_segment) {
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.s = 1,
		.l = code64,
		.db = !code64,	/* L and D/B are exclusive in a 64-bit CS */
		.g = 1,
	};
}

/*
 * Start the vCPU in the guest's final mode, paging on, CR3 at WALK_ROOT:
 * (or, --nested, at WALK_L1_ROOT): 4level is long mode (EFER.LME|LMA, a CS with L=1), pae is 32-bit
 * protected mode with CR4.PAE.  For pae, KVM loads the PDPTEs from guest
 * memory here, so the page tables must already be in place.  The IDT is
 * empty on purpose: an exception in the guest is a triple fault, which
 * vm_run reports, rather than a silent loop.
 */
void vm_enter_paged(struct vm *vm, enum walk_paging paging, uint64_t cr3)
{
	int code64 = paging == WALK_4LEVEL;
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	kvm_ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	sregs.cs = flat_segment(0x08, 0xb, code64);	/* code, read, accessed */
	sregs.ds = flat_segment(0x10, 0x3, 0);		/* data, write, accessed */
	sregs.es = sregs.ds;
	sregs.fs = sregs.ds;
	sregs.gs = sregs.ds;
	sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment) {
		.selector = 0x18, .limit = 0x67, .type = 0xb, .present = 1,
	};
	sregs.gdt.base = 0;
	sregs.gdt.limit = 0;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = 0x80010033;	/* PG WP NE ET MP PE */
	sregs.cr4 = 0x20;	/* PAE */
	sregs.cr3 = cr3;
	sregs.efer = code64 ? 0x500 : 0;	/* LMA LME */
	kvm_ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");

	memset(&regs, 0, sizeof(regs));
	regs.rip = WALK_CODE;
	regs.rsp = WALK_STACK_TOP - 8;	/* as if _start had been called */
	regs.rflags = 0x2;
	kvm_ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

static const char *const stage_names[] = {
	[WALK_STAGE_START] = "start",
	[WALK_STAGE_PRIME] = "prime",
	[WALK_STAGE_ROUNDS] = "rounds",
	[WALK_STAGE_FLOOD_ZAP] = "flood-zap",
	[WALK_STAGE_EXIT_UNSYNC] = "exit-unsync",
	[WALK_STAGE_DONE] = "done",
};

/* "stage rounds, round 3, rip 0x10042" for error messages. */
static const char *where(struct vm *vm)
{
	static char buf[128];
	struct walk_params p;
	struct kvm_regs regs;
	const char *stage = "?";

	memcpy(&p, vm->mem + WALK_PARAMS, sizeof(p));
	if (p.stage <= WALK_STAGE_DONE)
		stage = stage_names[p.stage];
	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) < 0)
		regs.rip = 0;
	if (p.stage == WALK_STAGE_ROUNDS && p.nested)
		snprintf(buf, sizeof(buf), "stage %s, round %llu, last L2 exit 0x%llx, rip 0x%llx",
			 stage, p.round, p.l2_exit, (unsigned long long)regs.rip);
	else if (p.stage == WALK_STAGE_ROUNDS)
		snprintf(buf, sizeof(buf), "stage %s, round %llu, rip 0x%llx",
			 stage, p.round, (unsigned long long)regs.rip);
	else
		snprintf(buf, sizeof(buf), "stage %s, rip 0x%llx", stage,
			 (unsigned long long)regs.rip);
	return buf;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One KVM_RUN, its time added to vm->times if there is one. */
static int run_once(struct vm *vm)
{
	uint64_t t0;
	int ret;

	if (!vm->times)
		return ioctl(vm->vcpu_fd, KVM_RUN, NULL);
	t0 = now_ns();
	ret = ioctl(vm->vcpu_fd, KVM_RUN, NULL);
	vm->times->run_ns += now_ns() - t0;
	return ret;
}

/* A WALK_MARK_PORT exit: the KVM_RUN time since the last mark is the
 * prime (first mark) or the round that just ended. */
static void mark(struct vm *vm)
{
	struct vm_times *t = vm->times;
	uint64_t ns = t->run_ns - t->mark_ns;

	if (t->marks == 0)
		t->prime_ns = ns;
	else if (t->marks <= t->rounds)
		t->round_ns[t->marks - 1] = ns;
	else
		die("more round marks than rounds (%s)", where(vm));
	t->mark_ns = t->run_ns;
	t->marks++;
}

/* Run until the guest's out to WALK_EXIT_PORT; returns the value out. */
uint32_t vm_run(struct vm *vm)
{
	struct kvm_run *run = vm->run;
	uint32_t status = 0;

	for (;;) {
		if (run_once(vm) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN: %s (%s)", strerror(errno), where(vm));
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (vm->times && run->io.port == WALK_MARK_PORT &&
			    run->io.direction == KVM_EXIT_IO_OUT) {
				mark(vm);
				continue;
			}
			if (run->io.direction != KVM_EXIT_IO_OUT ||
			    run->io.port != WALK_EXIT_PORT)
				die("unexpected I/O exit, port 0x%x (%s)",
				    run->io.port, where(vm));
			memcpy(&status, (uint8_t *)run + run->io.data_offset,
			       run->io.size < 4 ? run->io.size : 4);
			return status;
		case KVM_EXIT_SHUTDOWN:
			die("guest triple fault (%s)", where(vm));
		case KVM_EXIT_HLT:
			die("guest halted (%s)", where(vm));
		case KVM_EXIT_MMIO:
			die("guest touched unbacked memory at 0x%llx (%s)",
			    (unsigned long long)run->mmio.phys_addr, where(vm));
		case KVM_EXIT_FAIL_ENTRY:
			die("VM entry failed, reason 0x%llx",
			    (unsigned long long)
			    run->fail_entry.hardware_entry_failure_reason);
		case KVM_EXIT_INTERNAL_ERROR:
			die("KVM internal error, suberror %u (%s)",
			    run->internal.suberror, where(vm));
		default:
			die("unexpected exit reason %u (%s)", run->exit_reason,
			    where(vm));
		}
	}
}

/*
 * One line of KVM's own VM counters (mmu_unsync, mmu_flooded,
 * mmu_shadow_zapped, ...), read through the binary stats fd while the VM
 * still exists: debugfs only shows them for live VMs.
 */
void vm_print_stats(struct vm *vm)
{
	struct kvm_stats_header h;
	size_t desc_size;
	char *descs;
	uint32_t i;
	int fd;

	fd = kvm_ioctl(vm->vm_fd, KVM_GET_STATS_FD, NULL, "KVM_GET_STATS_FD");
	if (pread(fd, &h, sizeof(h), 0) != sizeof(h))
		die("cannot read the stats header");
	desc_size = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = calloc(h.num_desc, desc_size);
	if (!descs)
		die("out of memory");
	if (pread(fd, descs, h.num_desc * desc_size, h.desc_offset) !=
	    (ssize_t)(h.num_desc * desc_size))
		die("cannot read the stats descriptors");

	printf("kvmwalk: stats");
	for (i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (void *)(descs + i * desc_size);
		uint64_t v;

		/* Histograms have size > 1; the counters are what we want. */
		if (d->size != 1)
			continue;
		if (pread(fd, &v, sizeof(v), h.data_offset + d->offset) !=
		    sizeof(v))
			die("cannot read stat %s", d->name);
		printf(" %s=%llu", d->name, (unsigned long long)v);
	}
	printf("\n");
	free(descs);
	close(fd);
}

/*
 * --time's line: KVM_RUN time before the rounds and in each round, in ns.
 * The guest marks every round, so a count that differs is a broken run.
 */
void vm_print_times(struct vm *vm)
{
	struct vm_times *t = vm->times;
	uint64_t sum = 0;
	unsigned int i;

	if (t->marks != t->rounds + 1)
		die("%u round marks for %u rounds", t->marks, t->rounds);
	for (i = 0; i < t->rounds; i++)
		sum += t->round_ns[i];
	printf("kvmwalk: time rounds=%u prime_ns=%llu rounds_ns=%llu round_ns=",
	       t->rounds, (unsigned long long)t->prime_ns,
	       (unsigned long long)sum);
	for (i = 0; i < t->rounds; i++)
		printf("%s%llu", i ? "," : "",
		       (unsigned long long)t->round_ns[i]);
	printf("\n");
}

/* Close everything so the VM is destroyed (and its shadow pages zapped)
 * before the caller reports success. */
void vm_destroy(struct vm *vm)
{
	munmap(vm->run, vm->run_size);
	close(vm->vcpu_fd);
	close(vm->vm_fd);
	munmap(vm->mem, vm->mem_size);
	close(vm->kvm_fd);
}
