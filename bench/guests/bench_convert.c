// SPDX-License-Identifier: MIT
/*
 * bench_convert: the guest side of gmem-bench's single-page rows. vCPU 0
 * times, in rounds that interleave them:
 *  - a bare exit and resume (the nop port): the floor's exit part;
 *  - a memctl QUERY request (an exit whose arguments the VMM reads from
 *    the registers), to show what a request costs beyond a bare exit;
 *  - a conversion of one 4 KiB page, in place, alternately to shared and
 *    to private (request, conversion, resume);
 *  - the same, destructive.
 * The page is written before each conversion (so it is populated, as the
 * floor's page is). Prints one line "BENCH key=value ..." of medians in
 * TSC ticks, and tsc_khz to convert them.
 */
#include <gmvm/guest.h>

#define ROUNDS 10
#define PER_ROUND 50
#define N (ROUNDS * PER_ROUND)

static uint64_t s_exit[N], s_req[N], s_in[N], s_de[N];
static uint64_t s_in_sh[N / 2], s_in_pr[N / 2], s_de_sh[N / 2], s_de_pr[N / 2];

static uint64_t median(uint64_t *v, int n)
{
	for (int i = 1; i < n; i++) {
		uint64_t x = v[i];
		int j = i - 1;

		for (; j >= 0 && v[j] > x; j--)
			v[j + 1] = v[j];
		v[j + 1] = x;
	}
	return n ? v[n / 2] : 0;
}

static uint64_t timed_convert(volatile uint8_t *page, int to, bool destructive,
			      int i)
{
	uint64_t t0, t1;
	int ret;

	page[0] = (uint8_t)i;
	page[4095] = (uint8_t)i;
	t0 = rdtsc();
	ret = convert(gpa_of((const void *)page), PAGE_SIZE, to, destructive);
	t1 = rdtsc();
	CHECK_EQ(ret, 0);
	if (destructive)
		CHECK_EQ(page[0], 0);
	else
		CHECK_EQ(page[0], (uint8_t)i);
	return t1 - t0;
}

int main(unsigned int vcpu)
{
	volatile uint8_t *pi, *pd;
	int e = 0, k = 0, h = 0;
	uint64_t t0;

	if (vcpu)
		return 0;
	pi = alloc_pages(1);
	pd = alloc_pages(1);
	CHECK(pi && pd);
	/* start both pages shared, the first conversion is to private */
	CHECK_EQ(convert(gpa_of((const void *)pi), PAGE_SIZE, GMVM_SHARED,
			 false),
		 0);
	CHECK_EQ(convert(gpa_of((const void *)pd), PAGE_SIZE, GMVM_SHARED,
			 false),
		 0);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < PER_ROUND; i++) {
			t0 = rdtsc();
			gmvm_nop();
			s_exit[e] = rdtsc() - t0;
			t0 = rdtsc();
			CHECK(query(gpa_of((const void *)pi)) >= 0);
			s_req[e++] = rdtsc() - t0;
		}
		for (int i = 0; i < PER_ROUND; i += 2, h++) {
			s_in_pr[h] = timed_convert(pi, GMVM_PRIVATE, false, i);
			s_in_sh[h] = timed_convert(pi, GMVM_SHARED, false, i);
			s_de_pr[h] = timed_convert(pd, GMVM_PRIVATE, true, i);
			s_de_sh[h] = timed_convert(pd, GMVM_SHARED, true, i);
			s_in[k] = s_in_pr[h];
			s_de[k++] = s_de_pr[h];
			s_in[k] = s_in_sh[h];
			s_de[k++] = s_de_sh[h];
		}
	}
	printf("BENCH tsc_khz=%llu n=%d exit=%llu request=%llu inplace=%llu "
	       "inplace_to_private=%llu inplace_to_shared=%llu "
	       "destructive=%llu destructive_to_private=%llu "
	       "destructive_to_shared=%llu\n",
	       (unsigned long long)gmvm_tsc_khz(), N,
	       (unsigned long long)median(s_exit, e),
	       (unsigned long long)median(s_req, e),
	       (unsigned long long)median(s_in, k),
	       (unsigned long long)median(s_in_pr, h),
	       (unsigned long long)median(s_in_sh, h),
	       (unsigned long long)median(s_de, k),
	       (unsigned long long)median(s_de_pr, h),
	       (unsigned long long)median(s_de_sh, h));
	return 0;
}
