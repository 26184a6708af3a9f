// SPDX-License-Identifier: MIT
/*
 * The VM: KVM VM fd, the gmem store that backs guest memory, the memslot,
 * the guest memory layout and the boot information page.
 *
 * Guest memory layout (gpa = store offset, one memslot at gpa 0):
 *   [0, 2 MiB)           system region, hypervisor-visible and shared:
 *                        boot info (0x1000), GDT (0x2000), TSS with an I/O
 *                        bitmap (0x3000), page tables (from 0x6000)
 *   [image]              the ELF image: read-only/executable segments are
 *                        hypervisor-visible and shared; writable segments
 *                        start in the --init state
 *   [stacks]             one 64 KiB stack per vCPU, hypervisor-visible
 *   [heap, mem_size)     the data area, in the --init state
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <gmem/kvm.h>

#include "kvm-uapi.h"
#include "vmm.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int vm_add_protected(struct vm *vm, uint64_t start, uint64_t end,
		     const char *what)
{
	int ret;

	if (vm->nr_protected == GMVM_MAX_RANGES)
		return -ENOSPC;
	/* make it shared (so the VMM can write it), then hypervisor-visible */
	ret = gm_convert(vm->store, start, end - start, GM_ATTR_SHARED, 0);
	if (ret)
		return ret;
	ret = gm_hv_visible_add(vm->store, start, end - start);
	if (ret)
		return ret;
	vm->protected[vm->nr_protected++] =
		(struct range){ .start = start, .end = end, .what = what };
	return 0;
}

const struct range *vm_protected_overlap(struct vm *vm, uint64_t start,
					 uint64_t end)
{
	for (unsigned int i = 0; i < vm->nr_protected; i++)
		if (start < vm->protected[i].end &&
		    vm->protected[i].start < end)
			return &vm->protected[i];
	return NULL;
}

void vm_stop(struct vm *vm, int code)
{
	bool expected = false;

	if (atomic_compare_exchange_strong(&vm->stopping, &expected, true)) {
		atomic_store(&vm->exit_code, code);
		cpu_kick_all(vm);
	}
}

/* The library's rule, on the VM the store will be created on. */
static int choose_backing(struct vm *vm)
{
	int ret;

	/* huge pages come with memfd only (gm_store_opts.pages) */
	if (vm->opts.pages != GM_PAGES_4K &&
	    vm->opts.backing == GM_BACKING_AUTO) {
		vm->backing = GM_BACKING_MEMFD;
		return 0;
	}
	ret = gm_backing_resolve(vm->opts.backing, vm->vm_fd, &vm->backing);

	if (ret == -EOPNOTSUPP) {
		fprintf(stderr, "gmem-vm: --backing guest_memfd: %s (skip)\n",
			gm_last_error());
		return ret;
	}
	if (ret) {
		fprintf(stderr, "gmem-vm: choosing the backing: %s\n",
			gm_last_error());
		return ret;
	}
	if (vm->opts.backing == GM_BACKING_AUTO &&
	    vm->backing == GM_BACKING_MEMFD && !vm->opts.quiet)
		fprintf(stderr, "gmem-vm: guest_memfd with MMAP|INIT_SHARED "
				"not offered by this kernel: using memfd\n");
	return 0;
}

static int kvm_open(struct vm *vm)
{
	int ret;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		ret = -errno;
		fprintf(stderr, "gmem-vm: /dev/kvm: %s\n", strerror(errno));
		return ret;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		fprintf(stderr, "gmem-vm: KVM API version %d, want %d\n", ret,
			KVM_API_VERSION);
		return -EINVAL;
	}
	/* KVM's fds are not close-on-exec; the VM's must not outlive an exec */
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0 || fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC)) {
		ret = -errno;
		fprintf(stderr, "gmem-vm: KVM_CREATE_VM: %s\n",
			strerror(errno));
		return ret;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0) {
		fprintf(stderr, "gmem-vm: KVM_GET_VCPU_MMAP_SIZE failed\n");
		return -EINVAL;
	}
	vm->run_size = (size_t)ret;
	/*
	 * Intel without unrestricted guest wants 3 pages for real mode; the
	 * guest never runs in real mode, so only where they do not collide
	 * with guest memory.
	 */
	if (vm->opts.mem_size <= 0xfffbd000ull)
		ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul);

	vm->cpuid = calloc(1, sizeof(*vm->cpuid) +
				      256 * sizeof(struct kvm_cpuid_entry2));
	if (!vm->cpuid)
		return -ENOMEM;
	vm->cpuid->nent = 256;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid)) {
		ret = -errno;
		fprintf(stderr, "gmem-vm: KVM_GET_SUPPORTED_CPUID: %s\n",
			strerror(errno));
		return ret;
	}
	return 0;
}

static int store_create(struct vm *vm)
{
	struct gm_store_opts so = {
		.sz = sizeof(so),
		.size = vm->opts.mem_size,
		.backing =
			vm->opts.measure_only ? GM_BACKING_MEMFD : vm->backing,
		.vm_fd = vm->vm_fd,
		/* guest conversions of ranges the host never touched need
		 * no mprotect */
		.flags = GM_STORE_VIEW_LAZY |
			 (vm->opts.init_private ? 0 : GM_STORE_INIT_SHARED),
		.pages = vm->opts.pages,
	};
	int ret = gm_store_create(&so, &vm->store);

	if (ret) {
		fprintf(stderr, "gmem-vm: gm_store_create(%s, %s pages): %s\n",
			gm_backing_name(vm->backing),
			gm_pages_name(vm->opts.pages), gm_last_error());
		return ret;
	}
	if (vm->vm_fd < 0)
		return 0;
	ret = gm_kvm_memslot_bind(vm->store, vm->vm_fd, 0, 0, 0,
				  vm->opts.mem_size);
	if (ret) {
		fprintf(stderr, "gmem-vm: gm_kvm_memslot_bind: %s\n",
			gm_last_error());
		return ret;
	}
	vm->slot_bound = true;
	return 0;
}

/* A flat 64-bit GDT and a TSS, for hardware that checks them at entry. */
static int gdt_build(struct vm *vm)
{
	uint64_t gdt[8] = {
		0,
		0x00af9b000000ffffull, /* 0x08: kernel code, L */
		0x00cf93000000ffffull, /* 0x10: kernel data */
		0,
		0x00cff3000000ffffull, /* 0x20: user data, DPL 3 */
		0x00affb000000ffffull, /* 0x28: user code, DPL 3, L */
	};
	uint64_t tss = TSS_GPA;

	/* 0x30: 64-bit TSS descriptor (two slots) at TSS_GPA */
	static uint8_t tss_page[TSS_LIMIT + 1];
	int ret;

	gdt[6] = (TSS_LIMIT & 0xffff) | ((tss & 0xffffff) << 16) |
		 (0x89ull << 40) | ((uint64_t)(TSS_LIMIT >> 16) << 48) |
		 (((tss >> 24) & 0xff) << 56);
	gdt[7] = tss >> 32;
	ret = loader_add(vm, GDT_GPA, gdt, sizeof(gdt), GM_ATTR_SHARED);
	if (ret)
		return ret;
	/*
	 * The TSS's I/O permission bitmap allows every port. RFLAGS.IOPL = 3
	 * already does at CPL3, but a host that runs CPL3 guest code natively
	 * (PVM) cannot leave IOPL = 3 in the hardware flags and falls back to
	 * the bitmap when it emulates the port access.
	 */
	memset(tss_page, 0, sizeof(tss_page));
	tss_page[0x66] = TSS_IOMAP_OFF & 0xff;
	tss_page[0x67] = TSS_IOMAP_OFF >> 8;
	tss_page[TSS_LIMIT] = 0xff;
	return loader_add(vm, TSS_GPA, tss_page, sizeof(tss_page),
			  GM_ATTR_SHARED);
}

static int boot_info_write(struct vm *vm)
{
	struct gmvm_boot_info bi = {
		.magic = GMVM_BOOT_MAGIC,
		.version = GMVM_ABI_VERSION,
		.mem_size = vm->opts.mem_size,
		.nr_vcpus = vm->opts.nr_vcpus,
		.flags = (vm->opts.init_private ? GMVM_BOOT_INIT_PRIVATE : 0) |
			 (vm->opts.conversion == CONV_DESTRUCTIVE ?
				  GMVM_BOOT_DESTRUCTIVE :
				  0) |
			 (vm->backing == GM_BACKING_GUEST_MEMFD ?
				  GMVM_BOOT_GUEST_MEMFD :
				  0),
		.page_size = GM_PAGE_SIZE,
		.heap_start = vm->heap_start,
		.heap_end = vm->heap_end,
		.image_start = vm->image_start,
		.image_end = vm->image_end,
		/*
		 * 0: the rate is the host's, not part of the measured image;
		 * the guest asks memctl INFO TSC_KHZ.
		 */
		.tsc_khz = 0,
	};

	return loader_add(vm, GMVM_BOOT_INFO_GPA, &bi, sizeof(bi),
			  GM_ATTR_SHARED);
}

/*
 * Populate the launch image and take the launch digest (measure.c): the
 * pages, then the attribute map and hypervisor-visible ranges as they stand
 * after population, then every vCPU's initial registers.
 */
static int launch(struct vm *vm)
{
	struct launch_range ranges[GMVM_MAX_RANGES];
	struct launch_vcpu vcpus[GMVM_MAX_VCPUS];
	struct launch_measure *m;
	int ret;

	ret = launch_measure_begin(&m);
	if (ret)
		return ret;
	ret = launch_populate(m, vm->store, vm->launch, vm->nr_launch);
	loader_free(vm);
	if (!ret)
		ret = launch_measure_attr_map(m, vm->store);
	for (unsigned int i = 0; i < vm->nr_protected; i++)
		ranges[i] = (struct launch_range){ vm->protected[i].start,
						   vm->protected[i].end };
	if (!ret)
		ret = launch_measure_ranges(m, ranges, vm->nr_protected);
	for (unsigned int i = 0; i < vm->opts.nr_vcpus; i++)
		cpu_boot_state(vm, i, &vcpus[i]);
	if (!ret)
		ret = launch_measure_vcpus(m, vcpus, vm->opts.nr_vcpus);
	if (ret) {
		launch_measure_abort(m);
		return ret;
	}
	return launch_measure_end(m, vm->launch_digest);
}

static int layout(struct vm *vm)
{
	uint64_t mem = vm->opts.mem_size;
	int ret;

	vm->pt_start = PT_GPA;
	vm->pt_end = PT_GPA + pagetable_size(mem);
	if (vm->pt_end > SYS_REGION_END) {
		fprintf(stderr,
			"gmem-vm: --mem too large for the page tables\n");
		return -EINVAL;
	}
	ret = vm_add_protected(vm, 0, SYS_REGION_END,
			       "system (boot info, GDT, page tables)");
	if (ret)
		return ret;
	ret = vm->opts.exec_argv ? exec_load_shim(vm) :
				   loader_load_elf(vm, vm->opts.guest);
	if (ret)
		return ret;
	if (vm->image_start < SYS_REGION_END) {
		fprintf(stderr,
			"gmem-vm: %s: image at 0x%llx overlaps the system "
			"region [0, 0x%llx)\n",
			vm->opts.guest, (unsigned long long)vm->image_start,
			(unsigned long long)SYS_REGION_END);
		return -EINVAL;
	}
	vm->stacks_start = align_up(vm->image_end, GM_PAGE_SIZE);
	vm->stacks_end = vm->stacks_start +
			 (uint64_t)vm->opts.nr_vcpus * GMVM_STACK_SIZE;
	vm->heap_start = align_up(vm->stacks_end, 2ull << 20);
	vm->heap_end = mem;
	if (vm->heap_start + (2ull << 20) > mem) {
		fprintf(stderr,
			"gmem-vm: --mem %llu MiB leaves no data area after the "
			"image (ends at 0x%llx)\n",
			(unsigned long long)(mem >> 20),
			(unsigned long long)vm->stacks_end);
		return -EINVAL;
	}
	ret = vm_add_protected(vm, vm->stacks_start, vm->stacks_end,
			       "vCPU stacks");
	if (ret)
		return ret;
	ret = pagetable_build(vm);
	if (ret)
		return ret;
	ret = gdt_build(vm);
	if (ret)
		return ret;
	ret = boot_info_write(vm);
	if (!ret && vm->opts.exec_argv)
		ret = exec_load(vm);
	if (ret)
		return ret;
	return launch(vm);
}

int vm_create(struct vm *vm, const struct vm_opts *opts)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->opts = *opts;
	vm->kvm_fd = -1;
	vm->vm_fd = -1;
	vm->console = opts->json ? stderr : stdout;
	pthread_mutex_init(&vm->report_lock, NULL);
	pthread_mutex_init(&vm->peek_lock, NULL);

	if (opts->measure_only) {
		/* the same layout in a memfd store that no VM maps */
		vm->backing = opts->backing;
	} else {
		ret = kvm_open(vm);
		if (!ret)
			ret = choose_backing(vm);
		if (ret)
			return ret;
	}
	ret = store_create(vm);
	if (ret)
		return ret;
	for (unsigned int i = 0; !opts->measure_only && i < opts->nr_vcpus;
	     i++) {
		ret = cpu_init(vm, i);
		if (ret)
			return ret;
	}
	if (opts->restoring)
		return 0; /* snapshot_restore brings memory and layout */
	ret = layout(vm);
	if (ret) {
		if (ret == -EINVAL || ret == -ENOEXEC)
			return ret;
		fprintf(stderr, "gmem-vm: setting up guest memory: %s (%s)\n",
			strerror(-ret), gm_last_error());
		return ret;
	}
	return 0;
}

void vm_destroy(struct vm *vm)
{
	chkdev_fini(vm);
	/* The store refuses to go while KVM may still reach its memory. */
	if (vm->slot_bound && gm_kvm_memslot_unbind(vm->store, vm->vm_fd, 0))
		fprintf(stderr, "gmem-vm: %s\n", gm_last_error());
	vm->slot_bound = false;
	/* refused: the store is left to the process exit */
	if (gm_store_destroy(vm->store))
		fprintf(stderr, "gmem-vm: %s\n", gm_last_error());
	vm->store = NULL;
	free(vm->cpuid);
	vm->cpuid = NULL;
	loader_free(vm);
	/* vCPU fds and mappings go with the process */
}
