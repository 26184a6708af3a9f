// SPDX-License-Identifier: MIT
/*
 * hello: every vCPU says hello; vCPU 0 measures the cost of a bare exit
 * (nop port) and of a request that reads registers (memctl QUERY).
 */
#include <gmvm/guest.h>

static unsigned int arrived; /* private data (the writable segment) */

int main(unsigned int vcpu)
{
	enum { N = 200 };
	uint64_t t0, nop, query_cost;

	printf("hello from vCPU %u of %u (CPL3, %llu MiB, %s memory)\n", vcpu,
	       boot->nr_vcpus, (unsigned long long)(boot->mem_size >> 20),
	       boot->flags & GMVM_BOOT_INIT_PRIVATE ? "private" : "shared");
	__atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
	if (vcpu)
		return 0;
	while (__atomic_load_n(&arrived, __ATOMIC_SEQ_CST) < boot->nr_vcpus)
		;
	t0 = rdtsc();
	for (int i = 0; i < N; i++)
		gmvm_nop();
	nop = (rdtsc() - t0) / N;
	t0 = rdtsc();
	for (int i = 0; i < N; i++)
		CHECK(query(boot->heap_start) >= 0);
	query_cost = (rdtsc() - t0) / N;
	printf("exit round trip: %llu ticks (%llu us); request with "
	       "registers: %llu ticks (%llu us)\n",
	       (unsigned long long)nop, (unsigned long long)tsc_to_us(nop),
	       (unsigned long long)query_cost,
	       (unsigned long long)tsc_to_us(query_cost));
	printf("all %u vCPUs said hello\n", arrived);
	return 0;
}
