// SPDX-License-Identifier: MIT
/*
 * bench_chase: the guest side of gmem-bench's huge-page gain row. vCPU 0
 * takes (nearly) all of its heap, links one 64-byte slot of every 4 KiB
 * page into one random cycle (Sattolo's shuffle), walks it once untimed
 * (every page faulted in), then times dependent loads along it: each load
 * needs the previous one's value, so the walk pays every TLB miss in
 * full. Prints "BENCH tsc_khz=... bytes=... loads=... ticks=...".
 */
#include <gmvm/guest.h>

#define SLOT 64
#define LOADS (1u << 20)

int main(unsigned int vcpu)
{
	uint64_t pages = 0, state = 0x9e3779b97f4a7c15ull, t0, t1;
	volatile uint64_t *p;
	uint8_t *heap = NULL;

	if (vcpu)
		return 0;
	/* The largest power-of-two run of heap pages, up to 1 GiB. */
	for (uint64_t n = 1ull << 18; n >= 256 && !heap; n /= 2) {
		heap = alloc_pages(n);
		pages = n;
	}
	CHECK(heap);
	/* A random order of the pages, kept in the slots themselves. */
	for (uint64_t i = 0; i < pages; i++)
		*(uint64_t *)(heap + i * PAGE_SIZE + SLOT) = i;
	for (uint64_t i = pages - 1; i > 0; i--) {
		uint64_t j = rand64(&state) % i;
		uint64_t *a = (uint64_t *)(heap + i * PAGE_SIZE + SLOT);
		uint64_t *b = (uint64_t *)(heap + j * PAGE_SIZE + SLOT);
		uint64_t t = *a;

		*a = *b;
		*b = t;
	}
	/* Page order[i] points at page order[i + 1]: one cycle. */
	for (uint64_t i = 0; i < pages; i++) {
		uint64_t from = *(uint64_t *)(heap + i * PAGE_SIZE + SLOT);
		uint64_t to = *(uint64_t *)(heap + (i + 1) % pages * PAGE_SIZE +
					    SLOT);

		*(uint64_t *)(heap + from * PAGE_SIZE) =
			(uint64_t)(heap + to * PAGE_SIZE);
	}
	p = (volatile uint64_t *)heap;
	for (uint64_t i = 0; i < pages; i++)
		p = (volatile uint64_t *)*p;
	t0 = rdtsc();
	for (uint32_t i = 0; i < LOADS; i++)
		p = (volatile uint64_t *)*p;
	t1 = rdtsc();
	CHECK(p);
	printf("BENCH tsc_khz=%llu bytes=%llu loads=%u ticks=%llu\n",
	       (unsigned long long)gmvm_tsc_khz(),
	       (unsigned long long)(pages * PAGE_SIZE), LOADS,
	       (unsigned long long)(t1 - t0));
	return 0;
}
