// SPDX-License-Identifier: MIT
/*
 * convert: round trips between private and shared. In place keeps the
 * data, destructive zeroes the pages that change state, a conversion to
 * the state a range already has changes nothing, and the VMM's default
 * mode (--conversion) is what share()/unshare() get. The VMM's view is
 * checked with peeks: it reads shared pages, never private ones.
 */
#include <gmvm/guest.h>

#define NP 4
#define LEN (NP * PAGE_SIZE)

static void fill(uint8_t *p, uint64_t seed)
{
	for (uint64_t i = 0; i < LEN; i++)
		p[i] = (uint8_t)(seed ^ (i * 13) ^ (i >> 9));
}

static bool is_filled(const uint8_t *p, uint64_t seed)
{
	for (uint64_t i = 0; i < LEN; i++)
		if (p[i] != (uint8_t)(seed ^ (i * 13) ^ (i >> 9)))
			return false;
	return true;
}

static bool is_zero(const uint8_t *p, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static int hash31(const void *p, uint64_t len)
{
	return (int)(fnv1a64(p, len) & 0x7fffffff);
}

int main(unsigned int vcpu)
{
	bool destructive_vmm = boot->flags & GMVM_BOOT_DESTRUCTIVE;
	uint8_t *p = alloc_pages(NP);
	uint64_t gpa = gpa_of(p);

	CHECK(p);
	CHECK_EQ(query(gpa), boot->flags & GMVM_BOOT_INIT_PRIVATE ?
				     GMVM_PRIVATE :
				     GMVM_SHARED);
	/* start private, with known data */
	CHECK_EQ(convert(gpa, LEN, GMVM_PRIVATE, true), 0);
	CHECK_EQ(query(gpa), GMVM_PRIVATE);
	fill(p, 1);
	CHECK_EQ(peek(p, 64), GMVM_EFAULT);

	if (!destructive_vmm) {
		/* in place: private -> shared keeps the data, the VMM sees it */
		CHECK_EQ(convert(gpa, LEN, GMVM_SHARED, false), 0);
		CHECK_EQ(query(gpa + LEN - 1), GMVM_SHARED);
		CHECK(is_filled(p, 1));
		CHECK_EQ(peek(p, 64), hash31(p, 64));
		/* shared -> private in place keeps it too */
		fill(p, 2);
		CHECK_EQ(convert(gpa, LEN, GMVM_PRIVATE, false), 0);
		CHECK(is_filled(p, 2));
		CHECK_EQ(peek(p, 64), GMVM_EFAULT);
		/* mixed range: one page shared, then all four in place */
		CHECK_EQ(
			convert(gpa + PAGE_SIZE, PAGE_SIZE, GMVM_SHARED, false),
			0);
		CHECK_EQ(convert(gpa, LEN, GMVM_SHARED, false), 0);
		CHECK(is_filled(p, 2));
		CHECK_EQ(convert(gpa, LEN, GMVM_PRIVATE, false), 0);
		printf("in place: private -> shared -> private kept the data\n");
	} else {
		/* a destructive VMM refuses in-place conversions */
		CHECK_EQ(convert(gpa, LEN, GMVM_SHARED, false),
			 GMVM_EOPNOTSUPP);
		CHECK_EQ(query(gpa), GMVM_PRIVATE);
		CHECK(is_filled(p, 1));
		fill(p, 2);
		printf("in place: refused by the VMM's destructive policy\n");
	}

	/* destructive: private -> shared zeroes, shared -> private zeroes */
	CHECK_EQ(convert(gpa, LEN, GMVM_SHARED, true), 0);
	CHECK(is_zero(p, LEN));
	CHECK_EQ(peek(p, 64), hash31(p, 64));
	fill(p, 3);
	CHECK_EQ(convert(gpa, LEN, GMVM_PRIVATE, true), 0);
	CHECK(is_zero(p, LEN));
	printf("destructive: both directions zeroed the data\n");

	/* idempotence: already private, even destructive, changes nothing */
	fill(p, 4);
	CHECK_EQ(convert(gpa, LEN, GMVM_PRIVATE, true), 0);
	CHECK(is_filled(p, 4));
	/* mixed destructive: only the page that changes state is zeroed */
	CHECK_EQ(convert(gpa + PAGE_SIZE, PAGE_SIZE, GMVM_SHARED, true), 0);
	CHECK(is_zero(p + PAGE_SIZE, PAGE_SIZE));
	memset(p + PAGE_SIZE, 0x5a, PAGE_SIZE);
	CHECK_EQ(convert(gpa, LEN, GMVM_SHARED, true), 0);
	CHECK(is_zero(p, PAGE_SIZE));
	CHECK(p[PAGE_SIZE] == 0x5a && p[2 * PAGE_SIZE - 1] == 0x5a);
	CHECK(is_zero(p + 2 * PAGE_SIZE, 2 * PAGE_SIZE));
	printf("idempotent and per-page: only pages that change are zeroed\n");

	/* the VMM's default mode */
	fill(p, 5);
	CHECK_EQ(unshare(gpa, LEN), 0);
	CHECK(destructive_vmm ? is_zero(p, LEN) : is_filled(p, 5));
	fill(p, 6);
	CHECK_EQ(share(gpa, LEN), 0);
	CHECK(destructive_vmm ? is_zero(p, LEN) : is_filled(p, 6));
	printf("default mode (%s) honoured by share/unshare\n",
	       destructive_vmm ? "destructive" : "in place");
	(void)vcpu;
	return 0;
}
