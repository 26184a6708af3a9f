// SPDX-License-Identifier: MIT
/*
 * fuzz_extent_map: the attribute map (lib/extent_map.c) against a plain
 * reference model (the sorted list of boundaries, where a page's value
 * differs from the page before it), on maps of 1 page to 2^40 pages. The
 * input is decoded into a map size and a sequence of operations whose
 * positions cluster around interesting places (0, the end, chunk edges,
 * earlier positions) so that extents meet, split and merge. After each
 * operation: extent count, values and extents around the touched range;
 * now and then and at the end, every extent, the map's own invariants
 * (emap_test_check: tree, counts, every directory slot against the tree)
 * and the memory bound of the issue (bytes <= min(32 B x extents, 1.25 x a
 * bitmap) + 64 KiB). A "comb" operation sets up to 16384 single pages at
 * once, so that groups become dense enough for lookup directories and flat
 * bitmaps.
 */
#include <errno.h>
#include <string.h>

#include "extent_map.h"
#include "testing/emap_testing.h"
#include "fuzz_common.h"

/* Enough for a 4 GiB group with a flat bitmap (1 boundary in 16 pages). */
#define MAX_B (1 << 17)

struct model {
	uint64_t np;
	uint8_t v0;
	uint64_t b[MAX_B + 2];
	size_t nb;
};

/* Index of the first boundary > page. */
static size_t upper(const struct model *m, uint64_t page)
{
	size_t lo = 0, hi = m->nb;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->b[mid] <= page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint8_t mval(const struct model *m, uint64_t page)
{
	return (m->v0 ^ upper(m, page)) & 1;
}

static void mextent(const struct model *m, uint64_t page, uint64_t *s,
		    uint64_t *e, uint8_t *v)
{
	size_t i = upper(m, page);

	*s = i ? m->b[i - 1] : 0;
	*e = i < m->nb ? m->b[i] : m->np;
	*v = (m->v0 ^ i) & 1;
}

static void mset(struct model *m, uint64_t s, uint64_t e, uint8_t v)
{
	int has_vb = s > 0, has_ve = e < m->np;
	uint8_t vb = has_vb ? mval(m, s - 1) : 0;
	uint8_t ve = has_ve ? mval(m, e) : 0;
	size_t lo, hi, k;

	/* remove the boundaries in [s, e] */
	lo = s ? upper(m, s - 1) : 0;
	hi = upper(m, e);
	memmove(&m->b[lo], &m->b[hi], (m->nb - hi) * sizeof(m->b[0]));
	m->nb -= hi - lo;
	if (!has_vb)
		m->v0 = v;
	k = lo;
	if (has_ve && ve != v) {
		memmove(&m->b[k + 1], &m->b[k], (m->nb - k) * sizeof(m->b[0]));
		m->b[k] = e;
		m->nb++;
	}
	if (has_vb && vb != v) {
		memmove(&m->b[k + 1], &m->b[k], (m->nb - k) * sizeof(m->b[0]));
		m->b[k] = s;
		m->nb++;
	}
}

/* Pages s, s + stride, ... below e now have value v: a comb. O(nb + e - s). */
static void mcomb(struct model *m, uint64_t s, uint64_t e, uint64_t stride,
		  uint8_t v)
{
	static uint64_t nb[MAX_B + 2];
	size_t lo = s ? upper(m, s - 1) : 0, hi = upper(m, e), bi = upper(m, s);
	uint8_t old = mval(m, s), prev = s ? mval(m, s - 1) : 0, nv, v0 = m->v0;
	size_t n = lo;

	memcpy(nb, m->b, lo * sizeof(nb[0]));
	for (uint64_t p = s; p < e; p++) {
		if (p > s && bi < m->nb && m->b[bi] == p) {
			old ^= 1;
			bi++;
		}
		nv = (p - s) % stride == 0 ? v : old;
		if (p == 0)
			v0 = nv;
		else if (nv != prev)
			nb[n++] = p;
		prev = nv;
	}
	if (e < m->np && mval(m, e) != prev)
		nb[n++] = e;
	memcpy(&nb[n], &m->b[hi], (m->nb - hi) * sizeof(nb[0]));
	n += m->nb - hi;
	memcpy(m->b, nb, n * sizeof(nb[0]));
	m->nb = n;
	m->v0 = v0;
}

static uint64_t pick_np(struct reader *r)
{
	switch (rd(r, 1) % 5) {
	case 0:
		return 1 + rd(r, 1) % 64;
	case 1:
		return 1 + rd(r, 3) % (1u << 17);
	case 2:
		return 1ULL << 28; /* 1 TiB */
	case 3:
		return 1ULL << 40; /* the largest map */
	default:
		return ((1 + rd(r, 1)) << 12) + (rd(r, 1) % 3) - 1;
	}
}

static uint64_t pick_pos(struct reader *r, uint64_t np, const uint64_t *hist,
			 int nh)
{
	uint64_t a, d = rd(r, 2) % 64;

	switch (rd(r, 1) % 6) {
	case 0:
		a = 0;
		break;
	case 1:
		a = np;
		break;
	case 2: /* a chunk edge */
		a = (rd(r, 4) % (np / 4096 + 1)) << 12;
		break;
	case 3:
		a = nh ? hist[rd(r, 1) % nh] : 0;
		break;
	case 4:
		a = rd(r, 5) % np;
		break;
	default:
		a = rd(r, 2) % (np < 70000 ? np : 70000);
		break;
	}
	a = rd(r, 1) & 1 ? a + d : (a > d ? a - d : 0);
	return a < np ? a : np - 1;
}

static uint64_t pick_len(struct reader *r, uint64_t np)
{
	switch (rd(r, 1) % 4) {
	case 0:
		return 1;
	case 1:
		return 1 + rd(r, 1) % 16;
	case 2:
		return 1 + rd(r, 2) % 8192;
	default:
		return 1 + rd(r, 5) % np;
	}
}

static void check_point(const struct emap *em, const struct model *m,
			uint64_t p)
{
	uint64_t s, e, ms, me;
	uint8_t v, mv;

	if (p >= m->np)
		return;
	FZ_CHECK(emap_get(em, p) == mval(m, p), "emap_get(%llu) = %u, want %u",
		 (unsigned long long)p, emap_get(em, p), mval(m, p));
	emap_extent(em, p, &s, &e, &v);
	mextent(m, p, &ms, &me, &mv);
	FZ_CHECK(s == ms && e == me && v == mv,
		 "emap_extent(%llu) = [%llu, %llu) %u, want [%llu, %llu) %u",
		 (unsigned long long)p, (unsigned long long)s,
		 (unsigned long long)e, v, (unsigned long long)ms,
		 (unsigned long long)me, mv);
}

static void check_all(const struct emap *em, const struct model *m)
{
	uint64_t p = 0, s, e, n = 0;
	uint8_t v;
	double bitmap = (double)m->np / 8, ext = (double)(m->nb + 1);
	double bound =
		(32 * ext < 1.25 * bitmap ? 32 * ext : 1.25 * bitmap) + 65536;

	while (p < m->np) {
		check_point(em, m, p);
		emap_extent(em, p, &s, &e, &v);
		FZ_CHECK(e > p, "emap_extent(%llu) ends at %llu",
			 (unsigned long long)p, (unsigned long long)e);
		p = e;
		n++;
	}
	FZ_CHECK(n == m->nb + 1, "walked %llu extents, model has %zu",
		 (unsigned long long)n, m->nb + 1);
	FZ_CHECK(emap_bytes(em) <= bound,
		 "emap_bytes %zu > bound %.0f (%zu extents, %llu pages)",
		 emap_bytes(em), bound, m->nb + 1, (unsigned long long)m->np);
}

/* Keep pos among the 16 positions later operations cluster around. */
static void remember(uint64_t *hist, int *nh, struct reader *r, uint64_t pos)
{
	hist[*nh < 16 ? (uint64_t)(*nh)++ : rd(r, 1) % 16] = pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct model m;
	struct reader r = { data, size, 0 };
	uint64_t hist[16] = { 0 };
	struct emap *em, *bad;
	int nh = 0, ops = 0, ret;

	m.np = pick_np(&r);
	m.v0 = rd(&r, 1) & 1;
	m.nb = 0;
	if (emap_create(0, 0, &bad) == 0)
		fz_fail("emap_create(0 pages) succeeded");
	if (emap_create((1ULL << 40) + 1, 0, &bad) == 0)
		fz_fail("emap_create(2^40 + 1 pages) succeeded");
	ret = emap_create(m.np, m.v0, &em);
	FZ_CHECK(!ret, "emap_create(%llu): %d", (unsigned long long)m.np, ret);
	FZ_CHECK(emap_npages(em) == m.np, "emap_npages");

	while (rd_more(&r) && ops++ < 2000) {
		uint8_t op = rd(&r, 1) % 9, v;
		uint64_t s = pick_pos(&r, m.np, hist, nh), e;

		e = s + pick_len(&r, m.np);
		e = e < m.np ? e : m.np;
		v = rd(&r, 1) & 1;
		switch (op) {
		case 0:
		case 1:
		case 2:
		case 3:
		case 4:
			if (m.nb + 2 > MAX_B)
				break;
			if (op == 4) {
				FZ_CHECK(!emap_reserve(em), "emap_reserve");
				emap_set(em, s, e, v);
			} else {
				ret = emap_set_checked(em, s, e, v);
				FZ_CHECK(!ret, "emap_set_checked: %d", ret);
			}
			mset(&m, s, e, v);
			remember(hist, &nh, &r, s);
			remember(hist, &nh, &r, e);
			break;
		case 5:
			check_point(em, &m, s);
			break;
		case 6:
			if (m.nb < 512)
				check_all(em, &m);
			ret = emap_test_check(em);
			FZ_CHECK(!ret, "emap_test_check: %d", ret);
			break;
		case 7: {
			/* every stride-th page of up to 16384 from s */
			uint64_t n = 1 + rd(&r, 2) % 16384,
				 st = 2 + rd(&r, 1) % 4;
			uint64_t end = s + (n - 1) * st + 1;

			end = end < m.np ? end : m.np;
			if (m.nb + 2 * n + 2 > MAX_B)
				break;
			for (uint64_t p = s; p < end; p += st) {
				ret = emap_set_checked(em, p, p + 1, v);
				FZ_CHECK(!ret, "emap_set_checked: %d", ret);
			}
			mcomb(&m, s, end, st, v);
			/* the next comb may go on from here */
			remember(hist, &nh, &r, end);
			break;
		}
		default:
			FZ_CHECK(!emap_reserve(em), "emap_reserve");
			break;
		}
		FZ_CHECK(emap_nr_extents(em) == m.nb + 1,
			 "after op %d [%llu, %llu) = %u: %llu extents, want "
			 "%zu",
			 op, (unsigned long long)s, (unsigned long long)e, v,
			 (unsigned long long)emap_nr_extents(em), m.nb + 1);
		check_point(em, &m, s ? s - 1 : 0);
		check_point(em, &m, s);
		check_point(em, &m, e - 1);
		check_point(em, &m, e);
	}
	check_all(em, &m);
	ret = emap_test_check(em);
	FZ_CHECK(!ret, "emap_test_check: %d", ret);
	emap_destroy(em);
	return 0;
}
