// SPDX-License-Identifier: MIT
/*
 * Identity-mapped 4-level long-mode page tables with 2 MiB pages, every
 * entry user-accessible (U bit) so the guest runs at CPL3. Accessed and
 * dirty bits are preset so that the walker rarely writes the tables.
 * The tables live in the hypervisor-visible system region: the MMU (and,
 * on shadow-paging KVM, the host) reads and writes them through the host
 * mapping.
 */
#include <errno.h>
#include <stdlib.h>

#include "vmm.h"

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)

#define GIB (1ull << 30)
#define MIB2 (2ull << 20)

static uint64_t nr_gib(uint64_t mem_size)
{
	return (mem_size + GIB - 1) / GIB;
}

/* PML4 + PDPT + one PD per GiB */
uint64_t pagetable_size(uint64_t mem_size)
{
	return (2 + nr_gib(mem_size)) * GM_PAGE_SIZE;
}

int pagetable_build(struct vm *vm)
{
	uint64_t mem = vm->opts.mem_size, n = nr_gib(mem);
	uint64_t pml4 = vm->pt_start, pdpt = pml4 + GM_PAGE_SIZE;
	uint64_t pd0 = pdpt + GM_PAGE_SIZE;
	const uint64_t dir = PTE_P | PTE_RW | PTE_US | PTE_A;
	uint64_t *page;
	int ret = 0;

	if (n > 512)
		return -EINVAL;
	page = calloc(512, sizeof(uint64_t));
	if (!page)
		return -ENOMEM;
	page[0] = pdpt | dir;
	ret = loader_add(vm, pml4, page, GM_PAGE_SIZE, GM_ATTR_SHARED);
	for (uint64_t g = 0; !ret && g < 512; g++)
		page[g] = g < n ? (pd0 + g * GM_PAGE_SIZE) | dir : 0;
	if (!ret)
		ret = loader_add(vm, pdpt, page, GM_PAGE_SIZE, GM_ATTR_SHARED);
	for (uint64_t g = 0; !ret && g < n; g++) {
		for (uint64_t i = 0; i < 512; i++) {
			uint64_t addr = g * GIB + i * MIB2;

			page[i] = addr < mem ? addr | dir | PTE_D | PTE_PS : 0;
		}
		ret = loader_add(vm, pd0 + g * GM_PAGE_SIZE, page, GM_PAGE_SIZE,
				 GM_ATTR_SHARED);
	}
	free(page);
	return ret;
}
