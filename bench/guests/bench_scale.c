// SPDX-License-Identifier: MIT
/*
 * bench_scale: the guest side of gmem-bench's scaling rows. Every vCPU,
 * in ROUNDS rounds separated by barriers, does BLOCK bare exits (nop port)
 * and then, after another barrier, BLOCK in place conversions of pages of
 * its own (disjoint) range, alternately to shared and to private. The
 * rounds interleave the two phases so that a burst of load from elsewhere
 * on the host hits both alike. vCPU 0 prints the slowest vCPU's total
 * ticks for each phase: "BENCH vcpus=V n=N exit_ticks=... convert_ticks=...".
 * Throughput is V * N / ticks; gmem-bench runs it with 1 and 2 vCPUs.
 */
#include <gmvm/guest.h>

#define ROUNDS 8
#define BLOCK 250
#define PAGES 16

static unsigned int gate[2 * ROUNDS + 2];
static uint64_t t_exit[GMVM_MAX_VCPUS_GUEST], t_conv[GMVM_MAX_VCPUS_GUEST];

static void barrier(int k)
{
	__atomic_add_fetch(&gate[k], 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&gate[k], __ATOMIC_SEQ_CST) < boot->nr_vcpus)
		;
}

int main(unsigned int vcpu)
{
	uint8_t *pages = alloc_pages(PAGES);
	uint64_t t0, ex = 0, cv = 0;
	int g = 0, k = 0;

	CHECK(pages);
	for (int r = 0; r < ROUNDS; r++) {
		barrier(g++);
		t0 = rdtsc();
		for (int i = 0; i < BLOCK; i++)
			gmvm_nop();
		t_exit[vcpu] += rdtsc() - t0;
		barrier(g++);
		t0 = rdtsc();
		for (int i = 0; i < BLOCK; i++, k++) {
			uint8_t *p =
				pages + (uint64_t)(k / 2 % PAGES) * PAGE_SIZE;

			CHECK_EQ(convert(gpa_of(p), PAGE_SIZE,
					 k % 2 ? GMVM_PRIVATE : GMVM_SHARED,
					 false),
				 0);
		}
		t_conv[vcpu] += rdtsc() - t0;
	}
	barrier(g++);
	if (vcpu)
		return 0;
	for (unsigned int v = 0; v < boot->nr_vcpus; v++) {
		ex = t_exit[v] > ex ? t_exit[v] : ex;
		cv = t_conv[v] > cv ? t_conv[v] : cv;
	}
	printf("BENCH vcpus=%u n=%d tsc_khz=%llu exit_ticks=%llu "
	       "convert_ticks=%llu\n",
	       boot->nr_vcpus, ROUNDS * BLOCK,
	       (unsigned long long)gmvm_tsc_khz(), (unsigned long long)ex,
	       (unsigned long long)cv);
	return 0;
}
