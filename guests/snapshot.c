// SPDX-License-Identifier: MIT
/*
 * snapshot: writes a secret and a pattern to private memory and a marker to
 * a shared page, takes a device hold, then asks for a snapshot (memctl
 * SNAPSHOT) with a value in XMM5 across the request. Whether it goes on
 * after the snapshot ("snapshot: taken") or was restored from it
 * ("snapshot: restored"), it checks the XMM register, every byte of the
 * data area (its pages, and zero beyond them), the page states, the hold,
 * that the TSC did not go back, and that conversions still work; then exits
 * 0 ("snapshot: all memory checked"). Without --snapshot the request is
 * refused ("snapshot: refused") and the same checks run.
 *
 * Built a second time with SNAP_BY_SIGNAL (snapshot-signal): two vCPUs work
 * on their private pages (converting them back and forth, checking them)
 * after printing "snapshot: ready", until the VMM says the VM was restored
 * (memctl INFO RESTORES): a SIGUSR1 snapshot with --snapshot-exit, then
 * `gmem-vm restore`, lets them finish.
 *
 * guests/check_snapshot.py knows the secret's formula (not its bytes in the
 * image: it is computed here, into private memory, from the memory size).
 */
#include <gmvm/guest.h>

#define PRIV_PAGES 64
#define SHARED_PAGES 4
#define SECRET_LEN 48
#define XMM_MAGIC 0x5a17c0de600dcafeull

struct state {
	uint64_t seed;
	uint64_t tsc_before;
	int hold;
	volatile uint64_t iters[GMVM_MAX_VCPUS_GUEST];
	volatile int finished;
};

static uint8_t *area; /* secret page, private pages, shared pages */
static struct state *st; /* in the secret page, private */

static uint8_t pattern(uint64_t seed, uint64_t page, uint64_t i)
{
	return (uint8_t)(seed + page * 131 + i * 7 + (i >> 9));
}

static uint8_t *priv_page(unsigned int i)
{
	return area + (1 + i) * PAGE_SIZE;
}

static uint8_t *shared_page(unsigned int i)
{
	return area + (1 + PRIV_PAGES + i) * PAGE_SIZE;
}

static void secret(volatile uint8_t *out)
{
	uint64_t base = boot->mem_size >> 20;

	for (unsigned int i = 0; i < SECRET_LEN; i++)
		out[i] = (uint8_t)('A' + (i * 7 + base) % 26);
}

static void marker(volatile uint8_t *out)
{
	uint64_t base = boot->mem_size >> 20;

	for (unsigned int i = 0; i < SECRET_LEN; i++)
		out[i] = (uint8_t)('a' + (i * 5 + base) % 26);
}

static void setup(void)
{
	uint64_t n = 1 + PRIV_PAGES + SHARED_PAGES;

	area = alloc_pages(n);
	CHECK(area);
	/* private whatever --init says; then the shared pages shared */
	if (query(gpa_of(area)) != GMVM_PRIVATE)
		CHECK_EQ(unshare(gpa_of(area), n * PAGE_SIZE), 0);
	CHECK_EQ(share(gpa_of(shared_page(0)), SHARED_PAGES * PAGE_SIZE), 0);
	st = (struct state *)(area + 1024);
	st->seed = rdtsc() | 1;
	st->tsc_before = rdtsc();
	secret(area);
	for (unsigned int p = 0; p < PRIV_PAGES; p++)
		for (uint64_t i = 0; i < PAGE_SIZE; i++)
			priv_page(p)[i] = pattern(st->seed, p, i);
	for (unsigned int p = 0; p < SHARED_PAGES; p++)
		for (uint64_t i = 0; i < PAGE_SIZE; i++)
			shared_page(p)[i] = pattern(~st->seed, p, i);
	marker(shared_page(0));
	st->hold = dev_hold(shared_page(1), PAGE_SIZE, false);
	CHECK(st->hold >= 0);
}

static void verify(void)
{
	uint8_t want[SECRET_LEN];
	const uint64_t *rest;
	uint64_t words;

	secret(want);
	CHECK(!memcmp(area, want, SECRET_LEN));
	CHECK_EQ(query(gpa_of(area)), GMVM_PRIVATE);
	for (unsigned int p = 0; p < PRIV_PAGES; p++) {
		CHECK_EQ(query(gpa_of(priv_page(p))), GMVM_PRIVATE);
		for (uint64_t i = 0; i < PAGE_SIZE; i++)
			if (priv_page(p)[i] != pattern(st->seed, p, i)) {
				printf("FAIL private page %u byte %llu\n", p,
				       (unsigned long long)i);
				exit(1);
			}
	}
	marker(want);
	CHECK(!memcmp(shared_page(0), want, SECRET_LEN));
	for (unsigned int p = 0; p < SHARED_PAGES; p++) {
		CHECK_EQ(query(gpa_of(shared_page(p))), GMVM_SHARED);
		for (uint64_t i = p ? 0 : SECRET_LEN; i < PAGE_SIZE; i++)
			CHECK_EQ(shared_page(p)[i], pattern(~st->seed, p, i));
	}
	/* the rest of the data area was never written: zero */
	rest = (const uint64_t *)shared_page(SHARED_PAGES);
	words = (boot->heap_end - gpa_of(rest)) / 8;
	for (uint64_t w = 0; w < words; w++)
		if (rest[w]) {
			printf("FAIL data area word at 0x%llx not zero\n",
			       (unsigned long long)gpa_of(&rest[w]));
			exit(1);
		}
	CHECK(rdtsc() > st->tsc_before);
}

#ifndef SNAP_BY_SIGNAL
/*
 * The request, with XMM5 holding a value across it (guest code is built
 * without SSE: the compiler never uses XMM5, so no clobber to declare).
 */
static int32_t request_snapshot(uint64_t *xmm_after)
{
	register uint64_t r8 __asm__("r8") = 0;
	register uint64_t r9 __asm__("r9") = 0;
	register uint64_t r10 __asm__("r10") = 0;
	uint64_t magic = XMM_MAGIC;
	uint32_t ret;

	__asm__ volatile("movq %[m], %%xmm5\n\t"
			 "inl %%dx, %%eax\n\t"
			 "movq %%xmm5, %[x]"
			 : "=a"(ret), [x] "=r"(*xmm_after)
			 : [m] "r"(magic), "d"(GMVM_PORT_MEMCTL),
			   "D"((uint64_t)GMVM_MEMCTL_SNAPSHOT), "S"(0ull),
			   "c"(0ull), "r"(r8), "r"(r9), "r"(r10)
			 : "memory");
	return (int32_t)ret;
}
#endif

static int32_t restores(void)
{
	return gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_INFO, GMVM_INFO_RESTORES,
			 0, 0, 0, 0);
}

/* A private page converted shared and back in place keeps its bytes. */
static void churn(unsigned int p)
{
	CHECK_EQ(share(gpa_of(priv_page(p)), PAGE_SIZE), 0);
	CHECK_EQ(priv_page(p)[100], pattern(st->seed, p, 100));
	CHECK_EQ(unshare(gpa_of(priv_page(p)), PAGE_SIZE), 0);
}

static void finish(void)
{
	churn(0);
	verify();
	CHECK_EQ(dev_held(st->hold), 1);
	CHECK_EQ(dev_release(st->hold), 0);
	printf("snapshot: all memory checked\n");
}

#ifndef SNAP_BY_SIGNAL
int main(unsigned int vcpu)
{
	uint64_t xmm = 0;
	int32_t r;

	if (vcpu)
		return 0;
	setup();
	r = request_snapshot(&xmm);
	if (r == GMVM_EOPNOTSUPP) {
		printf("snapshot: refused\n");
		CHECK_EQ(restores(), 0);
	} else {
		CHECK(r == GMVM_SNAP_TAKEN || r == GMVM_SNAP_RESTORED);
		printf("snapshot: %s\n",
		       r == GMVM_SNAP_TAKEN ? "taken" : "restored");
		CHECK_EQ(restores(), r == GMVM_SNAP_RESTORED ? 1 : 0);
		CHECK_EQ(xmm, XMM_MAGIC);
	}
	finish();
	return 0;
}
#else
int main(unsigned int vcpu)
{
	if (vcpu == 0) {
		setup();
		__atomic_store_n(&st->finished, 1, __ATOMIC_RELEASE);
		printf("snapshot: ready\n");
	} else {
		while (!__atomic_load_n(&st, __ATOMIC_ACQUIRE) ||
		       !__atomic_load_n(&st->finished, __ATOMIC_ACQUIRE))
			;
	}
	/* each vCPU churns its own pages until the VM is restored */
	while (restores() == 0) {
		unsigned int p = vcpu + 2 * (st->iters[vcpu] % 8);

		churn(p);
		st->iters[vcpu]++;
	}
	if (vcpu) {
		__atomic_add_fetch(&st->finished, 1, __ATOMIC_RELEASE);
		return 0;
	}
	while (__atomic_load_n(&st->finished, __ATOMIC_ACQUIRE) <
	       (int)boot->nr_vcpus)
		;
	printf("snapshot: restored after %llu + %llu iterations\n",
	       (unsigned long long)st->iters[0],
	       (unsigned long long)st->iters[1]);
	finish();
	return 0;
}
#endif
