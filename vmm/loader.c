// SPDX-License-Identifier: MIT
/*
 * Static ELF64 loader. Segments are copied into guest memory with gm_write
 * while their pages are shared. Read-only and executable segments stay
 * shared and become hypervisor-visible (KVM fetches and emulates the port
 * I/O instructions there); writable segments then go to the --init state.
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

int loader_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len)
{
	int ret = gm_write(vm->store, gpa, buf, len);

	if (ret < 0) {
		fprintf(stderr,
			"gmem-vm: writing %zu bytes at gpa 0x%llx: %s\n", len,
			(unsigned long long)gpa, gm_last_error());
		return ret;
	}
	return 0;
}

static int bad(const char *path, const char *why)
{
	fprintf(stderr, "gmem-vm: %s: not a loadable guest: %s\n", path, why);
	return -ENOEXEC;
}

/*
 * Convert the pages of [start, end) that are not protected to `to`: one
 * conversion per run of such pages.
 */
static int convert_unprotected(struct vm *vm, uint64_t start, uint64_t end,
			       enum gm_attr to)
{
	uint64_t run = start;

	for (uint64_t p = start; p <= end; p += GM_PAGE_SIZE) {
		int ret = 0;

		if (p < end && !vm_protected_overlap(vm, p, p + GM_PAGE_SIZE))
			continue;
		if (p > run)
			ret = gm_convert(vm->store, run, p - run, to, 0);
		if (ret)
			return ret;
		run = p + GM_PAGE_SIZE;
	}
	return 0;
}

int loader_load_elf(struct vm *vm, const char *path)
{
	uint64_t mem = vm->opts.mem_size;
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	struct stat st;
	uint8_t *img;
	int fd, ret = 0;
	unsigned int nload = 0;

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
	img = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (img == MAP_FAILED)
		return -errno;
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
	if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff > (uint64_t)st.st_size ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) >
		    (uint64_t)st.st_size - eh->e_phoff) {
		ret = bad(path, "bad program headers");
		goto out;
	}
	ph = (const Elf64_Phdr *)(img + eh->e_phoff);
	vm->image_start = UINT64_MAX;
	vm->image_end = 0;

	/* check every segment and mark the non-writable ones */
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		uint64_t start, end;

		if (p->p_type != PT_LOAD || !p->p_memsz)
			continue;
		if (p->p_filesz > p->p_memsz ||
		    p->p_offset > (uint64_t)st.st_size ||
		    p->p_filesz > (uint64_t)st.st_size - p->p_offset ||
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

	/* copy: writable segments are made shared for the copy */
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type != PT_LOAD || !p->p_memsz)
			continue;
		if (p->p_flags & PF_W) {
			ret = convert_unprotected(
				vm, PAGE_DOWN(p->p_vaddr),
				PAGE_UP(p->p_vaddr + p->p_memsz),
				GM_ATTR_SHARED);
			if (ret)
				goto out;
		}
		if (p->p_filesz) {
			ret = loader_write(vm, p->p_vaddr, img + p->p_offset,
					   p->p_filesz);
			if (ret)
				goto out;
		}
	}
	/* writable segments to the --init state, contents kept */
	if (vm->opts.init_private) {
		for (unsigned int i = 0; i < eh->e_phnum; i++) {
			const Elf64_Phdr *p = &ph[i];

			if (p->p_type != PT_LOAD || !(p->p_flags & PF_W))
				continue;
			ret = convert_unprotected(
				vm, PAGE_DOWN(p->p_vaddr),
				PAGE_UP(p->p_vaddr + p->p_memsz),
				GM_ATTR_PRIVATE);
			if (ret)
				goto out;
		}
	}
out:
	munmap(img, st.st_size);
	return ret;
}
