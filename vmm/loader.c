// SPDX-License-Identifier: MIT
/*
 * The launch image: everything gmem-vm puts in guest memory before the first
 * instruction (boot info, GDT and TSS, page tables, the ELF image) is first
 * collected here as page-aligned regions with the state each launches in,
 * then populated in one pass by launch_populate (measure.c): written while
 * shared, converted with gm_convert, hashed into the launch digest.
 *
 * Static ELF64 loader: read-only and executable segments stay shared and
 * become hypervisor-visible (KVM fetches and emulates the port I/O
 * instructions there); writable segments launch in the --init state. A page
 * shared by both kinds of segment is hypervisor-visible.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm.h"

int loader_add(struct vm *vm, uint64_t gpa, const void *buf, size_t len,
	       enum gm_attr attr)
{
	uint64_t start = PAGE_DOWN(gpa), end = PAGE_UP(gpa + len);
	struct launch_region *r;
	uint8_t *copy;

	if (!len || gpa + len < gpa || end > vm->opts.mem_size)
		return -EINVAL;
	if (vm->nr_launch == vm->cap_launch) {
		unsigned int cap = vm->cap_launch ? 2 * vm->cap_launch : 16;

		r = realloc(vm->launch, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		vm->launch = r;
		vm->cap_launch = cap;
	}
	copy = calloc(1, end - start);
	if (!copy)
		return -ENOMEM;
	memcpy(copy + (gpa - start), buf, len);
	vm->launch[vm->nr_launch++] = (struct launch_region){
		.gpa = start, .len = end - start, .attr = attr, .data = copy
	};
	return 0;
}

void loader_free(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_launch; i++)
		free((void *)vm->launch[i].data);
	free(vm->launch);
	vm->launch = NULL;
	vm->nr_launch = vm->cap_launch = 0;
}

static int bad(const char *path, const char *why)
{
	fprintf(stderr, "gmem-vm: %s: not a loadable guest: %s\n", path, why);
	return -ENOEXEC;
}

/* Per page of the image: in a segment, and in a protected range. */
#define PG_LOADED 1u
#define PG_PROTECTED 2u

/*
 * The image [image_start, image_end) as regions: maximal runs of loaded
 * pages that launch in the same state.
 */
static int add_image(struct vm *vm, const uint8_t *image, const uint8_t *pg)
{
	uint64_t n = (vm->image_end - vm->image_start) / GM_PAGE_SIZE, run = 0;
	enum gm_attr init =
		vm->opts.init_private ? GM_ATTR_PRIVATE : GM_ATTR_SHARED;
#define STATE(k) (pg[k] & PG_PROTECTED ? GM_ATTR_SHARED : init)

	for (uint64_t i = 1; i <= n; i++) {
		int ret;

		if (i < n && (pg[i] & PG_LOADED) && (pg[run] & PG_LOADED) &&
		    STATE(i) == STATE(run))
			continue;
		if (pg[run] & PG_LOADED) {
			ret = loader_add(vm,
					 vm->image_start + run * GM_PAGE_SIZE,
					 image + run * GM_PAGE_SIZE,
					 (i - run) * GM_PAGE_SIZE, STATE(run));
			if (ret)
				return ret;
		}
		run = i;
	}
#undef STATE
	return 0;
}

/* Copy the segments into one zeroed buffer for the image and add it. */
static int load_segments(struct vm *vm, const uint8_t *img,
			 const Elf64_Ehdr *eh, const Elf64_Phdr *ph)
{
	uint64_t span = vm->image_end - vm->image_start;
	uint8_t *image = calloc(1, span);
	uint8_t *pg = calloc(1, span / GM_PAGE_SIZE);
	int ret = -ENOMEM;

	if (!image || !pg)
		goto out;
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		uint64_t first, last;

		if (p->p_type != PT_LOAD || !p->p_memsz)
			continue;
		memcpy(image + (p->p_vaddr - vm->image_start),
		       img + p->p_offset, p->p_filesz);
		first = (PAGE_DOWN(p->p_vaddr) - vm->image_start) /
			GM_PAGE_SIZE;
		last = (PAGE_UP(p->p_vaddr + p->p_memsz) - vm->image_start) /
		       GM_PAGE_SIZE;
		for (uint64_t k = first; k < last; k++)
			pg[k] |= PG_LOADED |
				 (p->p_flags & PF_W ? 0 : PG_PROTECTED);
	}
	ret = add_image(vm, image, pg);
out:
	free(image);
	free(pg);
	return ret;
}

int loader_load_elf_image(struct vm *vm, const char *path, const uint8_t *img,
			  uint64_t size)
{
	uint64_t mem = vm->opts.mem_size;
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	int ret = 0;
	unsigned int nload = 0;

	if (size < sizeof(Elf64_Ehdr))
		return bad(path, "too small");
	eh = (const Elf64_Ehdr *)img;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB) {
		ret = bad(path, "not ELF64 little-endian");
		goto out;
	}
	if (eh->e_type != ET_EXEC || eh->e_machine != EM_X86_64) {
		ret = bad(path, "not a static x86-64 executable (ET_EXEC)");
		goto out;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size - eh->e_phoff) {
		ret = bad(path, "bad program headers");
		goto out;
	}
	ph = (const Elf64_Phdr *)(img + eh->e_phoff);
	vm->image_start = UINT64_MAX;
	vm->image_end = 0;

	/* check every segment and protect the non-writable ones */
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		uint64_t start, end;

		if (p->p_type != PT_LOAD || !p->p_memsz)
			continue;
		if (p->p_filesz > p->p_memsz || p->p_offset > size ||
		    p->p_filesz > size - p->p_offset ||
		    p->p_vaddr + p->p_memsz < p->p_vaddr ||
		    p->p_vaddr + p->p_memsz > mem) {
			ret = bad(path, "a segment lies outside guest memory "
					"(try a larger --mem)");
			goto out;
		}
		start = PAGE_DOWN(p->p_vaddr);
		end = PAGE_UP(p->p_vaddr + p->p_memsz);
		if (start < vm->image_start)
			vm->image_start = start;
		if (end > vm->image_end)
			vm->image_end = end;
		nload++;
		if (p->p_flags & PF_W)
			continue;
		ret = vm_add_protected(vm, start, end,
				       (p->p_flags & PF_X) ? "guest code" :
							     "guest rodata");
		if (ret)
			goto out;
	}
	if (!nload) {
		ret = bad(path, "no PT_LOAD segment");
		goto out;
	}
	if (eh->e_entry < vm->image_start || eh->e_entry >= vm->image_end) {
		ret = bad(path, "entry point outside the image");
		goto out;
	}
	vm->entry = eh->e_entry;
	ret = load_segments(vm, img, eh, ph);
out:
	return ret;
}

int loader_map_file(const char *path, const uint8_t **img, size_t *size)
{
	struct stat st;
	void *p;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "gmem-vm: %s: %s\n", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		close(fd);
		return bad(path, "too small");
	}
	p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	*img = p;
	*size = (size_t)st.st_size;
	return 0;
}

int loader_load_elf(struct vm *vm, const char *path)
{
	const uint8_t *img = NULL;
	size_t size = 0;
	int ret = loader_map_file(path, &img, &size);

	if (ret)
		return ret;
	ret = loader_load_elf_image(vm, path, img, size);
	munmap((void *)img, size);
	return ret;
}
