// SPDX-License-Identifier: MIT
/*
 * vCPUs: one thread each, one run loop with a switch over exit reasons.
 * Every vCPU starts in 64-bit mode at CPL3 (CS/SS DPL 3, IOPL 3): on PVM
 * hosts CPL0 guest code is emulated one instruction at a time, while CPL3
 * code runs natively; on hardware virtualization the same state just works.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm.h"

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_FSGSBASE (1ull << 16)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define RFLAGS_FIXED (1ull << 1)
#define RFLAGS_IOPL3 (3ull << 12)

static __thread struct kvm_run *this_run;

/*
 * SIGUSR1 kicks a vCPU out of KVM_RUN (or makes the next one return). The
 * VMM's own kicks are pthread_kill (SI_TKILL); one sent from outside
 * (kill, SI_USER) also asks for a snapshot (--snapshot-on signal).
 */
static void kick_handler(int sig, siginfo_t *info, void *uctx)
{
	(void)sig;
	(void)uctx;
	if (info->si_code == SI_USER)
		snapshot_note_signal();
	if (this_run)
		this_run->immediate_exit = 1;
}

static void install_kick_handler(void)
{
	static bool done;
	struct sigaction sa;

	if (done)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = kick_handler;
	sa.sa_flags = SA_SIGINFO; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	done = true;
}

int cpu_init(struct vm *vm, unsigned int index)
{
	struct vcpu *vcpu = &vm->vcpus[index];
	int ret;

	install_kick_handler();
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0 || fcntl(vcpu->fd, F_SETFD, FD_CLOEXEC)) {
		ret = -errno;
		fprintf(stderr, "gmem-vm: KVM_CREATE_VCPU %u: %s\n", index,
			strerror(errno));
		return ret;
	}
	vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		ret = -errno;
		vcpu->run = NULL;
		return ret;
	}
	/*
	 * With KVM_CAP_SYNC_REGS, KVM copies the general registers into
	 * kvm_run on each exit: a request's arguments cost no KVM_GET_REGS.
	 */
	ret = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
	if (ret > 0 && (ret & KVM_SYNC_X86_REGS) &&
	    !getenv("GMVM_NO_SYNC_REGS")) {
		vcpu->sync_regs = true;
		vcpu->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	}
	/* the APIC ID in CPUID.1:EBX[31:24] is the vCPU index */
	for (unsigned int i = 0; i < vm->cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &vm->cpuid->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffffu) | (index << 24);
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, vm->cpuid)) {
		ret = -errno;
		fprintf(stderr, "gmem-vm: KVM_SET_CPUID2: %s\n",
			strerror(errno));
		return ret;
	}
	if (index == 0) {
		ret = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
		vm->tsc_khz = ret > 0 ? (uint64_t)ret : 0;
	}
	return 0;
}

void cpu_boot_state(const struct vm *vm, unsigned int index,
		    struct launch_vcpu *st)
{
	const struct kvm_segment code = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = 0x28 | 3,
		.type = 11, /* execute/read, accessed */
		.present = 1,
		.dpl = 3,
		.s = 1,
		.l = 1,
		.g = 1,
	};
	const struct kvm_segment data = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = 0x20 | 3,
		.type = 3, /* read/write, accessed */
		.present = 1,
		.dpl = 3,
		.db = 1,
		.s = 1,
		.g = 1,
	};
	const struct kvm_segment tr = {
		.base = TSS_GPA,
		.limit = TSS_LIMIT,
		.selector = 0x30,
		.type = 11, /* 64-bit TSS, busy */
		.present = 1,
	};

	memset(st, 0, sizeof(*st));
	st->cs = code;
	st->ds = st->es = st->fs = st->gs = st->ss = data;
	st->tr = tr;
	st->gdt.base = GDT_GPA;
	st->gdt.limit = 8 * 8 - 1;
	st->idt.base = 0;
	st->idt.limit = 0; /* any exception is a triple fault: a crash */
	st->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	st->cr3 = vm->pt_start;
	st->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	st->efer = EFER_LME | EFER_LMA;
	st->regs.rip = vm->entry;
	st->regs.rsp =
		vm->stacks_start + (uint64_t)(index + 1) * GMVM_STACK_SIZE;
	st->regs.rdi = index;
	st->regs.rsi = GMVM_BOOT_INFO_GPA;
	st->regs.rflags = RFLAGS_FIXED | RFLAGS_IOPL3;
	if (vm->exec_sp) {
		/* gmem-vm exec: the shim starts on the program's stack */
		st->regs.rsp = vm->exec_sp;
		st->regs.rdx = vm->exec_info;
		st->efer |= EFER_SCE;
		st->cr4 |= CR4_FSGSBASE;
	}
}

/* Apply cpu_boot_state(): the registers the launch digest covers. */
static int cpu_set_state(struct vcpu *vcpu)
{
	struct launch_vcpu st;
	struct kvm_sregs sregs;

	cpu_boot_state(vcpu->vm, vcpu->index, &st);
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs))
		return -errno;
	sregs.cs = st.cs;
	sregs.ds = st.ds;
	sregs.es = st.es;
	sregs.fs = st.fs;
	sregs.gs = st.gs;
	sregs.ss = st.ss;
	sregs.tr = st.tr;
	sregs.gdt = st.gdt;
	sregs.idt = st.idt;
	sregs.cr0 = st.cr0;
	sregs.cr3 = st.cr3;
	sregs.cr4 = st.cr4;
	sregs.efer = st.efer;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs))
		return -errno;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &st.regs))
		return -errno;
	return vcpu->vm->exec_sp ? exec_cpu_setup(vcpu) : 0;
}

void cpu_dump(struct vcpu *vcpu, const char *why, FILE *out)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	fprintf(out, "gmem-vm: vCPU %u crashed: %s\n", vcpu->index, why);
	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) == 0) {
		fprintf(out,
			"  rip %016llx  rsp %016llx  rflags %08llx\n"
			"  rax %016llx  rbx %016llx  rcx %016llx\n"
			"  rdx %016llx  rsi %016llx  rdi %016llx\n"
			"  rbp %016llx  r8  %016llx  r9  %016llx\n"
			"  r10 %016llx  r11 %016llx  r12 %016llx\n"
			"  r13 %016llx  r14 %016llx  r15 %016llx\n",
			r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx,
			r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12,
			r.r13, r.r14, r.r15);
	}
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &s) == 0) {
		fprintf(out,
			"  cs %04x (dpl %u, l %u)  ss %04x  cr0 %08llx  cr2 "
			"%016llx\n  cr3 %016llx  cr4 %08llx  efer %llx\n",
			s.cs.selector, s.cs.dpl, s.cs.l, s.ss.selector, s.cr0,
			s.cr2, s.cr3, s.cr4, s.efer);
	}
	fprintf(out, "  exits on this vCPU: %llu\n",
		(unsigned long long)vcpu->exits);
}

static void crash(struct vcpu *vcpu, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void crash(struct vcpu *vcpu, const char *fmt, ...)
{
	struct vm *vm = vcpu->vm;
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&vm->report_lock);
	cpu_dump(vcpu, why, stderr);
	pthread_mutex_unlock(&vm->report_lock);
	atomic_store(&vm->crashed, true);
	vm_stop(vm, GMVM_EXIT_CRASH);
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	vcpu->io_exits++;
	for (uint32_t i = 0; i < run->io.count; i++) {
		uint8_t *p = data + (size_t)i * run->io.size;
		uint32_t val = 0;
		struct io_req req = {
			.vcpu = vcpu,
			.port = run->io.port,
			.in = run->io.direction == KVM_EXIT_IO_IN,
			.size = run->io.size,
			.val = &val,
		};

		if (!req.in)
			memcpy(&val, p, run->io.size);
		bus_io(vcpu->vm, &req);
		if (req.in)
			memcpy(p, &val, run->io.size);
	}
}

static void *cpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	struct kvm_run *run = vcpu->run;
	sigset_t usr1;

	this_run = run;
	vcpu->self = pthread_self();
	/* the starting thread blocks SIGUSR1: a kill() reaches a vCPU */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	snapshot_thread_enter(vcpu);
	/* after this, a kick reaches us; before it, we see `stopping` */
	atomic_store(&vcpu->started, true);
	while (!atomic_load(&vm->stopping) && !atomic_load(&vcpu->done)) {
		snapshot_point(vcpu);
		if (atomic_load(&vm->stopping))
			break;
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				run->immediate_exit = 0;
				continue;
			}
			crash(vcpu, "KVM_RUN: %s", strerror(errno));
			break;
		}
		vcpu->exits++;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(vcpu);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_HLT:
			crash(vcpu, "hlt (the guest runtime never halts)");
			break;
		case KVM_EXIT_SHUTDOWN:
			crash(vcpu, "triple fault (shutdown): an exception "
				    "with no IDT");
			break;
		case KVM_EXIT_FAIL_ENTRY:
			crash(vcpu, "entry failed, hardware reason 0x%llx",
			      (unsigned long long)run->fail_entry
				      .hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			crash(vcpu, "KVM internal error, suberror %u",
			      run->internal.suberror);
			break;
		case KVM_EXIT_MMIO:
			crash(vcpu,
			      "%s of %u bytes at gpa 0x%llx: no memory or MMIO "
			      "device there",
			      run->mmio.is_write ? "write" : "read",
			      run->mmio.len,
			      (unsigned long long)run->mmio.phys_addr);
			break;
		case 39: { /* KVM_EXIT_MEMORY_FAULT: flags, gpa, size */
			uint64_t mf[3];

			memcpy(mf, run->padding, sizeof(mf));
			crash(vcpu,
			      "memory fault at gpa 0x%llx size 0x%llx "
			      "flags 0x%llx",
			      (unsigned long long)mf[1],
			      (unsigned long long)mf[2],
			      (unsigned long long)mf[0]);
			break;
		}
		default:
			crash(vcpu, "unexpected exit reason %u",
			      run->exit_reason);
			break;
		}
	}
	snapshot_thread_leave(vcpu);
	atomic_fetch_add(&vm->exits, vcpu->exits);
	return NULL;
}

int cpu_start(struct vcpu *vcpu)
{
	/* a restored vCPU's state was set by snapshot_restore */
	int ret = vcpu->vm->restored ? 0 : cpu_set_state(vcpu);
	sigset_t usr1;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	if (ret) {
		fprintf(stderr, "gmem-vm: setting vCPU %u state: %s\n",
			vcpu->index, strerror(-ret));
		return ret;
	}
	ret = pthread_create(&vcpu->thread, NULL, cpu_thread, vcpu);
	if (ret)
		return -ret;
	vcpu->joinable = true;
	return 0;
}

void cpu_kick_all(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->opts.nr_vcpus; i++) {
		struct vcpu *vcpu = &vm->vcpus[i];

		if (atomic_load(&vcpu->started) &&
		    !pthread_equal(vcpu->self, pthread_self()))
			pthread_kill(vcpu->self, SIGUSR1);
	}
}
