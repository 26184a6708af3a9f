// SPDX-License-Identifier: MIT
/*
 * storm: every vCPU converts random ranges of its own slice of the data
 * area, in place and destructively, for a bounded time, and checks after
 * each conversion that the data it owns is what it should be: kept by an
 * in-place conversion, zero where a destructive one changed the state.
 */
#include <gmvm/guest.h>

#define SLICE_PAGES 256
#define MAX_RUN 16
#define STORM_MS 1500
#define MAX_ITERS 20000

struct slice {
	uint8_t *base;
	uint64_t sums[SLICE_PAGES];
	uint8_t state[SLICE_PAGES];
	uint64_t rng;
	uint64_t convs, pages, destructive, refused;
};

static struct slice slices[GMVM_MAX_VCPUS_GUEST];
static uint64_t zero_sum;
static unsigned int finished;

static void write_page(struct slice *s, unsigned int i)
{
	uint64_t *p = (uint64_t *)(s->base + i * PAGE_SIZE);
	uint64_t seed = rand64(&s->rng);

	for (unsigned int w = 0; w < PAGE_SIZE / 8; w++)
		p[w] = seed + w * 0x9e3779b97f4a7c15ull;
	s->sums[i] = fnv1a64(p, PAGE_SIZE);
}

static void verify(struct slice *s, unsigned int first, unsigned int n,
		   unsigned int vcpu)
{
	for (unsigned int i = first; i < first + n; i++) {
		uint64_t sum = fnv1a64(s->base + i * PAGE_SIZE, PAGE_SIZE);

		if (sum != s->sums[i]) {
			printf("FAIL vCPU %u: page %u of its slice (gpa 0x%llx, "
			       "%s) has the wrong contents\n",
			       vcpu, i,
			       (unsigned long long)gpa_of(s->base +
							  i * PAGE_SIZE),
			       s->state[i] ? "private" : "shared");
			exit(1);
		}
	}
}

int main(unsigned int vcpu)
{
	bool destructive_vmm = boot->flags & GMVM_BOOT_DESTRUCTIVE;
	struct slice *s = &slices[vcpu];
	uint64_t t0 = rdtsc(), limit = gmvm_tsc_khz() * STORM_MS;
	uint8_t init = boot->flags & GMVM_BOOT_INIT_PRIVATE ? 1 : 0;
	uint64_t iters = 0;

	CHECK(vcpu < GMVM_MAX_VCPUS_GUEST);
	s->base = (uint8_t *)(boot->heap_start +
			      (uint64_t)vcpu * SLICE_PAGES * PAGE_SIZE);
	CHECK(gpa_of(s->base) + SLICE_PAGES * PAGE_SIZE <= boot->heap_end);
	s->rng = 0x1234567ull * (vcpu + 1) ^ rdtsc();
	if (vcpu == 0) {
		static uint8_t zero[PAGE_SIZE];

		__atomic_store_n(&zero_sum, fnv1a64(zero, PAGE_SIZE),
				 __ATOMIC_RELEASE);
	}
	while (!__atomic_load_n(&zero_sum, __ATOMIC_ACQUIRE))
		;
	for (unsigned int i = 0; i < SLICE_PAGES; i++) {
		s->state[i] = init;
		write_page(s, i);
	}

	while (iters < MAX_ITERS && (!limit || rdtsc() - t0 < limit)) {
		unsigned int n = 1 + rand64(&s->rng) % MAX_RUN;
		unsigned int first = rand64(&s->rng) % (SLICE_PAGES - n + 1);
		int to = rand64(&s->rng) & 1;
		bool destr = destructive_vmm || (rand64(&s->rng) % 4 == 0);
		int ret;

		ret = convert(gpa_of(s->base + first * PAGE_SIZE),
			      n * PAGE_SIZE, to, destr);
		CHECK_EQ(ret, 0);
		s->convs++;
		for (unsigned int i = first; i < first + n; i++) {
			if (s->state[i] != to) {
				s->pages++;
				if (destr) {
					s->sums[i] = zero_sum;
					s->destructive++;
				}
			}
			s->state[i] = (uint8_t)to;
		}
		verify(s, first, n, vcpu);
		/* new data in some pages of the range */
		for (unsigned int i = first; i < first + n; i++)
			if (rand64(&s->rng) & 1)
				write_page(s, i);
		if (iters % 64 == 0) {
			unsigned int i = rand64(&s->rng) % SLICE_PAGES;

			CHECK_EQ(query(gpa_of(s->base + i * PAGE_SIZE)),
				 s->state[i]);
			verify(s, 0, SLICE_PAGES, vcpu);
		}
		iters++;
	}
	verify(s, 0, SLICE_PAGES, vcpu);
	printf("vCPU %u: %llu conversions, %llu pages changed state, %llu "
	       "zeroed by destructive ones; all data checked\n",
	       vcpu, (unsigned long long)s->convs, (unsigned long long)s->pages,
	       (unsigned long long)s->destructive);
	__atomic_add_fetch(&finished, 1, __ATOMIC_SEQ_CST);
	if (vcpu)
		return 0;
	while (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) < boot->nr_vcpus)
		gmvm_nop(); /* let the host breathe while we wait */
	printf("storm: %u vCPUs done in %llu ms\n", boot->nr_vcpus,
	       (unsigned long long)(tsc_to_us(rdtsc() - t0) / 1000));
	return 0;
}
