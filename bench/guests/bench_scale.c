// SPDX-License-Identifier: MIT
/*
 * bench_scale: the guest side of gmem-bench's scaling rows. Every vCPU,
 * started together at a barrier, does N bare exits (nop port), then, after
 * another barrier, N in place conversions of pages of its own (disjoint)
 * range, alternately to shared and to private. vCPU 0 prints the slowest
 * vCPU's ticks for each phase: "BENCH vcpus=V n=N exit_ticks=...
 * convert_ticks=...". Throughput is V * N / ticks; gmem-bench runs it with
 * 1 and with 2 vCPUs.
 */
#include <gmvm/guest.h>

#define N 400
#define PAGES 16

static unsigned int gate[4];
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

	CHECK(pages);
	barrier(0);
	t0 = rdtsc();
	for (int i = 0; i < N; i++)
		gmvm_nop();
	t_exit[vcpu] = rdtsc() - t0;
	barrier(1);
	t0 = rdtsc();
	for (int i = 0; i < N; i++) {
		uint8_t *p = pages + (uint64_t)(i / 2 % PAGES) * PAGE_SIZE;

		CHECK_EQ(convert(gpa_of(p), PAGE_SIZE,
				 i % 2 ? GMVM_PRIVATE : GMVM_SHARED, false),
			 0);
	}
	t_conv[vcpu] = rdtsc() - t0;
	barrier(2);
	if (vcpu)
		return 0;
	for (unsigned int v = 0; v < boot->nr_vcpus; v++) {
		ex = t_exit[v] > ex ? t_exit[v] : ex;
		cv = t_conv[v] > cv ? t_conv[v] : cv;
	}
	printf("BENCH vcpus=%u n=%d tsc_khz=%llu exit_ticks=%llu "
	       "convert_ticks=%llu\n",
	       boot->nr_vcpus, N, (unsigned long long)boot->tsc_khz,
	       (unsigned long long)ex, (unsigned long long)cv);
	return 0;
}
