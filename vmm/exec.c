// SPDX-License-Identifier: MIT
/*
 * gmem-vm exec: an unmodified static x86-64 Linux program (ET_EXEC or
 * static-PIE) in a guest, beside the system-call shim (guest/shim/,
 * docs/exec.md). The shim is the guest image at 2 MiB; the program's
 * segments, its initial stack and the shim's start information are added
 * to the launch image in the --init state (private by default), so they
 * are populated and measured like any guest memory. The program's
 * `syscall` lands at the shim (LSTAR), which the vCPU starts in.
 *
 *   [heap_start (4 MiB)...]   the program's image (ET_EXEC at its own
 *                             addresses, static-PIE at heap_start)
 *   [image end, ...)          brk upwards, anonymous mmap downwards
 *   [mem - 2 MiB, mem)        the program's stack, argv/envp/auxv on top
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec_abi.h"
#include "vmm.h"

extern char **environ;
extern const uint8_t gmvm_shim_elf[], gmvm_shim_elf_end[];

#define EXEC_STACK_SIZE (2ull << 20)
#define EXEC_ARGS_MAX (256u << 10) /* argv + envp + auxv, like ARG_MAX/8 */
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_SFMASK 0xc0000084u
/* TF, DF, NT, AC cleared on entry to the shim, as Linux does (not IOPL) */
#define SHIM_SFMASK 0x44500ull

struct program {
	uint64_t lo, hi; /* the image's pages */
	uint64_t entry, phdr;
	unsigned int phnum;
};

int exec_load_shim(struct vm *vm)
{
	return loader_load_elf_image(
		vm, "(shim)", gmvm_shim_elf,
		(uint64_t)(gmvm_shim_elf_end - gmvm_shim_elf));
}

static int bad(const char *path, const char *why)
{
	fprintf(stderr, "gmem-vm exec: %s: %s\n", path, why);
	return -ENOEXEC;
}

static enum gm_attr init_state(const struct vm *vm)
{
	return vm->opts.init_private ? GM_ATTR_PRIVATE : GM_ATTR_SHARED;
}

/* The program's PT_LOAD segments at base, as one region of the image. */
static int load_segments(struct vm *vm, const char *path, const uint8_t *img,
			 uint64_t size, uint64_t base, struct program *p)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff);
	uint64_t limit = vm->opts.mem_size - EXEC_STACK_SIZE - (4ull << 20);
	uint8_t *buf;
	int ret;

	p->lo = UINT64_MAX;
	p->hi = 0;
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		uint64_t va = ph[i].p_vaddr + base;

		if (ph[i].p_type == PT_INTERP)
			return bad(path, "dynamically linked (wants an "
					 "interpreter): only static programs "
					 "run");
		if (ph[i].p_type == PT_PHDR)
			p->phdr = va;
		if (ph[i].p_type != PT_LOAD || !ph[i].p_memsz)
			continue;
		if (ph[i].p_filesz > ph[i].p_memsz || ph[i].p_offset > size ||
		    ph[i].p_filesz > size - ph[i].p_offset ||
		    va < vm->heap_start || va + ph[i].p_memsz < va ||
		    va + ph[i].p_memsz > limit)
			return bad(path, "a segment lies outside the program "
					 "area (try a larger --mem)");
		if (!p->phdr && eh->e_phoff >= ph[i].p_offset &&
		    eh->e_phoff < ph[i].p_offset + ph[i].p_filesz)
			p->phdr = va + eh->e_phoff - ph[i].p_offset;
		if (PAGE_DOWN(va) < p->lo)
			p->lo = PAGE_DOWN(va);
		if (PAGE_UP(va + ph[i].p_memsz) > p->hi)
			p->hi = PAGE_UP(va + ph[i].p_memsz);
	}
	if (!p->hi)
		return bad(path, "no PT_LOAD segment");
	p->entry = eh->e_entry + base;
	p->phnum = eh->e_phnum;
	if (p->entry < p->lo || p->entry >= p->hi)
		return bad(path, "entry point outside the image");
	buf = calloc(1, p->hi - p->lo);
	if (!buf)
		return -ENOMEM;
	for (unsigned int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_memsz)
			memcpy(buf + (ph[i].p_vaddr + base - p->lo),
			       img + ph[i].p_offset, ph[i].p_filesz);
	ret = loader_add(vm, p->lo, buf, p->hi - p->lo, init_state(vm));
	free(buf);
	return ret;
}

static int load_program(struct vm *vm, const char *path, struct program *p)
{
	const Elf64_Ehdr *eh;
	const uint8_t *img = NULL;
	size_t size = 0;
	int ret = loader_map_file(path, &img, &size);

	if (ret)
		return ret;
	eh = (const Elf64_Ehdr *)img;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64)
		ret = bad(path, "not an x86-64 ELF64 program");
	else if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
		ret = bad(path, "not an executable (ET_EXEC or static-PIE)");
	else if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
		 eh->e_phoff > (uint64_t)size ||
		 (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) >
			 (uint64_t)size - eh->e_phoff)
		ret = bad(path, "bad program headers");
	else
		ret = load_segments(vm, path, img, (uint64_t)size,
				    eh->e_type == ET_DYN ? vm->heap_start : 0,
				    p);
	munmap((void *)img, size);
	return ret;
}

/* The System V initial stack, built top down in a copy of its pages. */
struct stack_builder {
	uint8_t *buf;
	uint64_t top, bottom; /* gpas of buf's end and start */
	uint64_t sp;
	bool overflow;
};

static uint64_t push_bytes(struct stack_builder *sb, const void *p, size_t len,
			   uint64_t align)
{
	if (sb->sp - sb->bottom < len + align) {
		sb->overflow = true;
		return sb->sp;
	}
	sb->sp = (sb->sp - len) & ~(align - 1);
	memcpy(sb->buf + (sb->sp - sb->bottom), p, len);
	return sb->sp;
}

static uint64_t host_hwcap(void)
{
	unsigned int a, b, c, d;

	return __get_cpuid(1, &a, &b, &c, &d) ? d : 0;
}

static int build_stack(struct vm *vm, const struct program *p,
		       char *const *argv)
{
	uint64_t mem = vm->opts.mem_size, argc = 0, envc = 0;
	struct stack_builder sb = { .top = mem,
				    .bottom = mem - EXEC_ARGS_MAX,
				    .sp = mem - 16 };
	struct gmvm_exec_info info = { .magic = GMVM_EXEC_MAGIC };
	uint64_t *vec, execfn, platform, n, *v;
	const uint8_t zero16[16] = { 0 };
	int ret;

	while (argv[argc])
		argc++;
	while (environ[envc])
		envc++;
	sb.buf = calloc(1, EXEC_ARGS_MAX);
	vec = calloc(argc + envc + 3 + 2 * 20, sizeof(uint64_t));
	if (!sb.buf || !vec) {
		ret = -ENOMEM;
		goto out;
	}
	v = vec;
	*v++ = argc;
	execfn = push_bytes(&sb, argv[0], strlen(argv[0]) + 1, 1);
	platform = push_bytes(&sb, "x86_64", 7, 1);
	for (uint64_t i = 0; i < envc; i++)
		v[argc + 1 + i] =
			push_bytes(&sb, environ[i], strlen(environ[i]) + 1, 1);
	for (uint64_t i = 0; i < argc; i++)
		v[i] = push_bytes(&sb, argv[i], strlen(argv[i]) + 1, 1);
	v += argc + 1 + envc + 1;
	/* the shim fills AT_RANDOM from RDRAND: the host never sees it */
	info.random = push_bytes(&sb, zero16, 16, 16);
#define AUX(type, val)                  \
	do {                            \
		*v++ = (type);          \
		*v++ = (uint64_t)(val); \
	} while (0)
	AUX(AT_PHDR, p->phdr);
	AUX(AT_PHENT, sizeof(Elf64_Phdr));
	AUX(AT_PHNUM, p->phnum);
	AUX(AT_PAGESZ, GM_PAGE_SIZE);
	AUX(AT_BASE, 0);
	AUX(AT_FLAGS, 0);
	AUX(AT_ENTRY, p->entry);
	AUX(AT_UID, 0);
	AUX(AT_EUID, 0);
	AUX(AT_GID, 0);
	AUX(AT_EGID, 0);
	AUX(AT_SECURE, 0);
	AUX(AT_HWCAP, host_hwcap());
	AUX(AT_HWCAP2, 0);
	AUX(AT_CLKTCK, 100);
	AUX(AT_RANDOM, info.random);
	AUX(AT_PLATFORM, platform);
	AUX(AT_EXECFN, execfn);
	AUX(AT_NULL, 0);
#undef AUX
	n = (uint64_t)(v - vec);
	/* the info block, then the vector with sp 16-aligned at argc */
	info.entry = p->entry;
	info.brk_start = p->hi;
	info.mmap_start = p->hi;
	info.mmap_end = mem - EXEC_STACK_SIZE - GM_PAGE_SIZE; /* a guard */
	info.stack_size = EXEC_STACK_SIZE;
	sb.sp &= ~15ull;
	info.sp = (sb.sp - sizeof(info) - n * 8) & ~15ull;
	vm->exec_info = push_bytes(&sb, &info, sizeof(info), 16);
	sb.sp = info.sp + n * 8;
	vm->exec_sp = push_bytes(&sb, vec, n * 8, 8);
	if (sb.overflow || vm->exec_sp != info.sp) {
		fprintf(stderr,
			"gmem-vm exec: arguments and environment "
			"exceed %u KiB\n",
			EXEC_ARGS_MAX >> 10);
		ret = -E2BIG;
		goto out;
	}
	ret = loader_add(vm, PAGE_DOWN(vm->exec_sp),
			 sb.buf + (PAGE_DOWN(vm->exec_sp) - sb.bottom),
			 mem - PAGE_DOWN(vm->exec_sp), init_state(vm));
out:
	free(sb.buf);
	free(vec);
	return ret;
}

int exec_load(struct vm *vm)
{
	struct program p = { 0 };
	int ret;

	if (vm->opts.nr_vcpus != 1)
		return bad(vm->opts.exec_argv[0], "runs on one vCPU");
	ret = sysfs_open(vm);
	if (!ret)
		ret = load_program(vm, vm->opts.exec_argv[0], &p);
	if (!ret)
		ret = build_stack(vm, &p, vm->opts.exec_argv);
	return ret;
}

int exec_cpu_setup(struct vcpu *vcpu)
{
	/* syscall: CS 0x08; sysret: CS 0x18 + 16, SS 0x18 + 8 */
	const struct kvm_msr_entry e[] = {
		{ .index = MSR_STAR,
		  .data = (0x18ull << 48) | (0x08ull << 32) },
		{ .index = MSR_LSTAR,
		  .data = vcpu->vm->entry + GMVM_SHIM_SYSCALL_OFF },
		{ .index = MSR_SFMASK, .data = SHIM_SFMASK },
	};
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + sizeof(e));
	int ret;

	if (!msrs)
		return -ENOMEM;
	msrs->nmsrs = 3;
	memcpy(msrs->entries, e, sizeof(e));
	ret = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
	ret = ret == 3 ? 0 : ret < 0 ? -errno : -EIO;
	free(msrs);
	if (ret)
		fprintf(stderr, "gmem-vm exec: KVM_SET_MSRS: %s\n",
			strerror(-ret));
	return ret;
	return 0;
}
