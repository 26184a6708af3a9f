// SPDX-License-Identifier: MIT
/*
 * Extent map: randomized against plain references, memory bounds on the
 * issue's patterns, the reserve contract, edge cases.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "extent_map.h"
#include "testing/emap_testing.h"

#define TIB_PAGES (1ULL << 28)
#define MAX_PAGES (1ULL << 40)

/* ---- deterministic random numbers (splitmix64) ---- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. */
static uint64_t rnd_below(struct rng *r, uint64_t n)
{
	return rnd(r) % n;
}

static struct rng seeded(const char *test, uint64_t seed)
{
	printf("%s: seed 0x%" PRIx64 "\n", test, seed);
	return (struct rng){ seed };
}

static struct emap *create(uint64_t npages, uint8_t initial)
{
	struct emap *m = NULL;

	assert_int_equal(emap_create(npages, initial, &m), 0);
	assert_non_null(m);
	assert_int_equal(emap_test_check(m), 0);
	return m;
}

/*
 * emap_reserve(), then emap_set() with every allocation failing: the set
 * must not need any (it cannot fail). The callers check its full effect.
 */
static void set_reserved(struct emap *m, uint64_t s, uint64_t e, uint8_t v)
{
	uint64_t allocs;

	assert_int_equal(emap_reserve(m), 0);
	allocs = emap_test_nr_allocs(m);
	emap_test_fail_after(m, 0);
	emap_set(m, s, e, v);
	emap_test_fail_after(m, -1);
	assert_int_equal(emap_test_nr_allocs(m), allocs);
}

/* emap_set_checked(), which must succeed (no failure is injected). */
static void set_checked(struct emap *m, uint64_t s, uint64_t e, uint8_t v)
{
	assert_int_equal(emap_set_checked(m, s, e, v), 0);
}

/* ---- byte-array reference ---- */

struct bref {
	uint8_t *v;
	uint64_t n;
	uint64_t bounds; /* pages p > 0 with v[p] != v[p - 1] */
};

/* Boundaries in [lo, hi), 1 <= lo. */
static uint64_t bref_count(const struct bref *r, uint64_t lo, uint64_t hi)
{
	uint64_t n = 0;

	while (lo < hi) {
		const uint8_t *q = memchr(r->v + lo, r->v[lo - 1] ^ 1, hi - lo);

		if (!q)
			break;
		n++;
		lo = q - r->v + 1;
	}
	return n;
}

static void bref_set(struct bref *r, uint64_t s, uint64_t e, uint8_t v)
{
	uint64_t lo = s ? s : 1, hi = e + 1 < r->n ? e + 1 : r->n;

	r->bounds -= bref_count(r, lo, hi);
	memset(r->v + s, v, e - s);
	r->bounds += bref_count(r, lo, hi);
}

/* The maximal run around page p, from the reference. */
static void bref_extent(const struct bref *r, uint64_t p, uint64_t *s,
			uint64_t *e)
{
	uint8_t v = r->v[p];
	const uint8_t *q;

	q = memrchr(r->v, v ^ 1, p);
	*s = q ? (uint64_t)(q - r->v) + 1 : 0;
	q = memchr(r->v + p, v ^ 1, r->n - p);
	*e = q ? (uint64_t)(q - r->v) : r->n;
}

static void check_extent_bref(const struct emap *m, const struct bref *r,
			      uint64_t p)
{
	uint64_t s, e, rs, re;
	uint8_t v = 0xff;

	emap_extent(m, p, &s, &e, &v);
	bref_extent(r, p, &rs, &re);
	assert_int_equal(v, r->v[p]);
	assert_int_equal(s, rs);
	assert_int_equal(e, re);
}

/* Walk every extent and compare with the reference. */
static void check_all_bref(const struct emap *m, const struct bref *r)
{
	uint64_t p = 0, n = 0;

	while (p < r->n) {
		uint64_t s, e;
		uint8_t v;

		emap_extent(m, p, &s, &e, &v);
		assert_int_equal(s, p);
		assert_true(e > s);
		check_extent_bref(m, r, p);
		n++;
		p = e;
	}
	assert_int_equal(n, emap_nr_extents(m));
	assert_int_equal(n, r->bounds + 1);
	assert_int_equal(emap_test_check(m), 0);
}

/* A random range of [0, n): long_pct % long, med_pct % medium, else short. */
static void rnd_range(struct rng *g, uint64_t n, unsigned int long_pct,
		      unsigned int med_pct, uint64_t *s, uint64_t *e)
{
	uint64_t k = rnd_below(g, 100), len;

	if (k < long_pct)
		len = 1 + rnd_below(g, n);
	else if (k < long_pct + med_pct)
		len = 1 + rnd_below(g, 1 + rnd_below(g, 8192));
	else
		len = 1 + rnd_below(g, 4);
	*s = rnd_below(g, n);
	if (long_pct && rnd_below(g, 64) == 0)
		*s = 0;
	*e = *s + len < n ? *s + len : n;
	if (long_pct && rnd_below(g, 64) == 0)
		*e = n;
}

/*
 * nops random operations on a map of n pages against a byte array. The mix
 * changes by phase so that the map goes from fragmented (bitmap chunks)
 * through mixed to nearly empty and back.
 */
static void random_vs_bytes(uint64_t n, uint64_t nops, uint64_t seed)
{
	struct rng g = seeded("random_vs_bytes", seed);
	struct bref r = { .n = n };
	struct emap *m;
	uint8_t init = seed & 1;
	uint64_t max_ext = 0;

	r.v = malloc(n);
	assert_non_null(r.v);
	memset(r.v, init, n);
	m = create(n, init);
	for (uint64_t i = 0; i < nops; i++) {
		/* Fragment, mix, then wipe more and more. */
		static const unsigned int sets_pct[] = { 70, 50, 40, 40 };
		static const unsigned int med_pct[] = { 0, 5, 20, 30 };
		static const unsigned int long_pct[] = { 0, 0, 1, 5 };
		unsigned int phase = (i / 50000) % 4, k = rnd_below(&g, 100);
		unsigned int sets = sets_pct[phase];
		uint64_t p = rnd_below(&g, n), s, e;
		uint8_t v = rnd_below(&g, 2);

		if (k < sets) {
			rnd_range(&g, n, long_pct[phase], med_pct[phase], &s,
				  &e);
			if (k & 1)
				set_reserved(m, s, e, v);
			else
				set_checked(m, s, e, v);
			bref_set(&r, s, e, v);
			assert_int_equal(emap_nr_extents(m), r.bounds + 1);
		} else if (k < sets + (100 - sets) / 2) {
			assert_int_equal(emap_get(m, p), r.v[p]);
		} else {
			check_extent_bref(m, &r, p);
		}
		if (r.bounds + 1 > max_ext)
			max_ext = r.bounds + 1;
		if (i % 4096 == 0)
			assert_int_equal(emap_test_check(m), 0);
		if (i % 100000 == 0)
			check_all_bref(m, &r);
	}
	check_all_bref(m, &r);
	printf("  %" PRIu64 " pages, %" PRIu64 " ops, at most %" PRIu64
	       " extents, %zu bytes at the end\n",
	       n, nops, max_ext, emap_bytes(m));
	emap_destroy(m);
	free(r.v);
}

static void test_random_small(void **state)
{
	(void)state;
	random_vs_bytes(1 << 16, 1200000, 0x5eed0001);
}

/* Not a multiple of the chunk size, with a taller tree. */
static void test_random_medium(void **state)
{
	(void)state;
	random_vs_bytes((1 << 22) + 12345, 400000, 0x5eed0002);
}

/* ---- extent-list reference, for maps too large for a byte array ---- */

struct lref {
	uint64_t n;
	uint8_t v0;
	uint64_t *b; /* sorted boundaries */
	uint64_t nb, cap;
};

/* Number of boundaries <= p. */
static uint64_t lref_rank(const struct lref *r, uint64_t p)
{
	uint64_t lo = 0, hi = r->nb;

	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;

		if (r->b[mid] <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint8_t lref_get(const struct lref *r, uint64_t p)
{
	return r->v0 ^ (lref_rank(r, p) & 1);
}

static void lref_set(struct lref *r, uint64_t s, uint64_t e, uint8_t v)
{
	uint64_t add[2], k = 0, i0, i1;

	if (s > 0 && lref_get(r, s - 1) != v)
		add[k++] = s;
	if (e < r->n && lref_get(r, e) != v)
		add[k++] = e;
	if (s == 0)
		r->v0 = v;
	i0 = s ? lref_rank(r, s - 1) : 0; /* first boundary >= s */
	i1 = lref_rank(r, e); /* first boundary > e */
	if (!r->b || r->nb - (i1 - i0) + k > r->cap) {
		r->cap = 2 * r->cap + 16;
		r->b = realloc(r->b, r->cap * sizeof(*r->b));
		assert_non_null(r->b);
	}
	memmove(r->b + i0 + k, r->b + i1, (r->nb - i1) * sizeof(*r->b));
	memcpy(r->b + i0, add, k * sizeof(*r->b));
	r->nb = r->nb - (i1 - i0) + k;
}

static void check_extent_lref(const struct emap *m, const struct lref *r,
			      uint64_t p)
{
	uint64_t s, e, i = lref_rank(r, p);
	uint8_t v;

	emap_extent(m, p, &s, &e, &v);
	assert_int_equal(v, r->v0 ^ (i & 1));
	assert_int_equal(s, i ? r->b[i - 1] : 0);
	assert_int_equal(e, i < r->nb ? r->b[i] : r->n);
	assert_int_equal(emap_get(m, p), v);
}

static void check_all_lref(const struct emap *m, const struct lref *r)
{
	uint64_t p = 0, n = 0;

	while (p < r->n) {
		uint64_t s, e;
		uint8_t v;

		emap_extent(m, p, &s, &e, &v);
		assert_int_equal(s, p);
		check_extent_lref(m, r, p);
		if (e < r->n)
			assert_int_not_equal(emap_get(m, e), v);
		n++;
		p = e;
	}
	assert_int_equal(n, r->nb + 1);
	assert_int_equal(emap_nr_extents(m), n);
	assert_int_equal(emap_test_check(m), 0);
}

/* A page near an existing boundary, or anywhere. */
static uint64_t rnd_page_lref(struct rng *g, const struct lref *r)
{
	uint64_t p;

	if (!r->nb || rnd_below(g, 2))
		return rnd_below(g, r->n);
	p = r->b[rnd_below(g, r->nb)] + rnd_below(g, 16);
	p = p >= 8 ? p - 8 : 0;
	return p < r->n ? p : r->n - 1;
}

static void random_vs_list(uint64_t n, uint64_t nops, uint64_t seed)
{
	struct rng g = seeded("random_vs_list", seed);
	struct lref r = { .n = n };
	uint64_t max_ext = 0;
	struct emap *m;

	m = create(n, 0);
	for (uint64_t i = 0; i < nops; i++) {
		unsigned int k = rnd_below(&g, 100);
		uint64_t p = rnd_page_lref(&g, &r), s, e, len;
		uint8_t v = rnd_below(&g, 2);

		if (k < 50) {
			/* Mostly short ranges, anywhere or near boundaries. */
			unsigned int kind = rnd_below(&g, 1000);

			/* Grow for the first half, then wipe now and then. */
			if (kind < 2 && i > nops / 2)
				len = 1 + rnd_below(&g, n);
			else if (kind < 5)
				len = 1 + rnd_below(&g, 1 << 24);
			else if (kind < 400)
				len = 1 + rnd_below(&g, 1 << 13);
			else
				len = 1 + rnd_below(&g, 3);
			s = p;
			e = s + len < n ? s + len : n;
			if (k & 1)
				set_reserved(m, s, e, v);
			else
				set_checked(m, s, e, v);
			lref_set(&r, s, e, v);
			assert_int_equal(emap_nr_extents(m), r.nb + 1);
		} else {
			check_extent_lref(m, &r, p);
		}
		if (r.nb + 1 > max_ext)
			max_ext = r.nb + 1;
		if (i % 20000 == 0)
			assert_int_equal(emap_test_check(m), 0);
	}
	check_all_lref(m, &r);
	printf("  %" PRIu64 " pages, %" PRIu64 " ops, at most %" PRIu64
	       " extents, %zu bytes at the end for %" PRIu64 "\n",
	       n, nops, max_ext, emap_bytes(m), r.nb + 1);
	emap_destroy(m);
	free(r.b);
}

static void test_random_tib(void **state)
{
	(void)state;
	random_vs_list(TIB_PAGES, 150000, 0x5eed0003);
}

static void test_random_max(void **state)
{
	(void)state;
	random_vs_list(MAX_PAGES, 150000, 0x5eed0004);
}

/*
 * Sets whose two ends land in chunks that do not exist yet, on a tall tree:
 * two insertions in one emap_set(), splitting leaves and inner nodes.
 */
static void test_reserve_two_inserts(void **state)
{
	struct rng g = seeded("reserve_two_inserts", 0x5eed0005);
	struct lref r = { .n = MAX_PAGES };
	struct emap *m = create(MAX_PAGES, 0);
	(void)state;
	for (unsigned int i = 0; i < 30000; i++) {
		uint64_t s = rnd_below(&g, MAX_PAGES - (1 << 20));
		uint64_t e = s + 4096 + rnd_below(&g, 8192);

		set_reserved(m, s, e, !(i % 3 == 0));
		lref_set(&r, s, e, !(i % 3 == 0));
		if (i % 10000 == 0)
			check_all_lref(m, &r);
	}
	check_all_lref(m, &r);
	/* And remove it all again, in large ranges. */
	for (uint64_t s = 0; s < MAX_PAGES; s += MAX_PAGES / 64) {
		set_reserved(m, s, s + MAX_PAGES / 64, 0);
		lref_set(&r, s, s + MAX_PAGES / 64, 0);
		if (s % (MAX_PAGES / 8) == 0)
			check_all_lref(m, &r);
	}
	assert_int_equal(emap_nr_extents(m), 1);
	assert_int_equal(emap_test_check(m), 0);
	emap_destroy(m);
	free(r.b);
}

/* ---- memory on the patterns (1 TiB map) ---- */

static uint64_t mem_limit(const struct emap *m)
{
	uint64_t by_extents = 32 * emap_nr_extents(m);
	uint64_t by_bitmap = emap_npages(m) / 8 * 5 / 4;

	return (by_extents < by_bitmap ? by_extents : by_bitmap) + 65536;
}

static void report_mem(const char *name, const struct emap *m)
{
	printf("  %s: %" PRIu64 " extents, %zu bytes (%.1f per extent), limit "
	       "%" PRIu64 "\n",
	       name, emap_nr_extents(m), emap_bytes(m),
	       (double)emap_bytes(m) / emap_nr_extents(m), mem_limit(m));
	assert_true(emap_bytes(m) <= mem_limit(m));
}

/* A bitmap reference of a whole map (1 bit per page). */
static uint64_t *bits_new(uint64_t n)
{
	uint64_t *b = calloc((n + 63) / 64, sizeof(uint64_t));

	assert_non_null(b);
	return b;
}

static int bits_get(const uint64_t *b, uint64_t p)
{
	return (b[p / 64] >> (p % 64)) & 1;
}

static void bits_set(uint64_t *b, uint64_t p)
{
	b[p / 64] |= 1ULL << (p % 64);
}

static uint64_t bits_extents(const uint64_t *b, uint64_t n)
{
	uint64_t t = 0, carry = b[0] & 1;

	for (uint64_t w = 0; w < n / 64; w++) {
		t += __builtin_popcountll(b[w] ^ ((b[w] << 1) | carry));
		carry = b[w] >> 63;
	}
	return t + 1;
}

static void check_bits(struct rng *g, const struct emap *m, const uint64_t *b,
		       uint64_t n)
{
	assert_int_equal(emap_nr_extents(m), bits_extents(b, n));
	for (unsigned int i = 0; i < 200000; i++) {
		uint64_t p = rnd_below(g, n);

		assert_int_equal(emap_get(m, p), bits_get(b, p));
	}
	assert_int_equal(emap_test_check(m), 0);
}

static void test_mem_ranges(void **state)
{
	struct rng g = seeded("mem_ranges", 0x5eed0006);
	struct emap *m = create(TIB_PAGES, 0);
	uint64_t *b = bits_new(TIB_PAGES);

	(void)state;
	for (int i = 0; i < 1000; i++) {
		uint64_t len = 1 + rnd_below(&g, 16384);
		uint64_t s = rnd_below(&g, TIB_PAGES - len);

		set_reserved(m, s, s + len, 1);
		for (uint64_t p = s; p < s + len; p++)
			bits_set(b, p);
	}
	check_bits(&g, m, b, TIB_PAGES);
	report_mem("1000 random ranges", m);
	free(b);
	emap_destroy(m);
}

static void test_mem_sparse_pages(void **state)
{
	struct rng g = seeded("mem_sparse_pages", 0x5eed0007);
	struct emap *m = create(TIB_PAGES, 0);
	uint64_t *b = bits_new(TIB_PAGES);

	(void)state;
	for (uint64_t i = 0; i < TIB_PAGES / 100; i++) {
		uint64_t p = rnd_below(&g, TIB_PAGES);

		if (i % 16 == 0)
			set_reserved(m, p, p + 1, 1);
		else
			set_checked(m, p, p + 1, 1);
		bits_set(b, p);
	}
	check_bits(&g, m, b, TIB_PAGES);
	report_mem("1% random pages", m);
	free(b);
	emap_destroy(m);
}

static void test_mem_alternating(void **state)
{
	struct rng g = seeded("mem_alternating", 0x5eed0008);
	struct emap *m = create(TIB_PAGES, 0);
	uint64_t *b = bits_new(TIB_PAGES);

	(void)state;
	for (uint64_t p = 1; p < (1 << 20); p += 2) {
		set_checked(m, p, p + 1, 1);
		bits_set(b, p);
	}
	assert_int_equal(emap_nr_extents(m), (1 << 20) + 1);
	check_bits(&g, m, b, TIB_PAGES);
	report_mem("alternating over 4 GiB", m);
	/* Set it all back: one extent, and the memory goes with it. */
	set_reserved(m, 0, TIB_PAGES, 0);
	assert_int_equal(emap_nr_extents(m), 1);
	assert_true(emap_bytes(m) < 65536);
	assert_int_equal(emap_test_check(m), 0);
	free(b);
	emap_destroy(m);
}

static void test_mem_few_extents(void **state)
{
	struct emap *m = create(TIB_PAGES, 1);

	(void)state;
	set_reserved(m, 12345, 1 << 20, 0);
	set_reserved(m, TIB_PAGES / 2, TIB_PAGES / 2 + 7, 0);
	set_reserved(m, TIB_PAGES - 1, TIB_PAGES, 0);
	assert_int_equal(emap_nr_extents(m), 6);
	assert_true(emap_bytes(m) < 16384);
	printf("  6 extents on 1 TiB: %zu bytes\n", emap_bytes(m));
	emap_destroy(m);
}

/* ---- the reserve ---- */

static void snapshot(const struct emap *m, uint64_t *ext, uint64_t *n)
{
	uint64_t p = 0, s, e;
	uint8_t v;

	*n = 0;
	while (p < emap_npages(m)) {
		emap_extent(m, p, &s, &e, &v);
		ext[(*n)++] = e | (uint64_t)v << 63;
		p = e;
	}
}

/*
 * The contract of emap_set(): after a successful emap_reserve(), the set
 * takes full effect even when every allocation fails, across patterns that
 * need every part of the reserve (tree splits, arrays grown into buffers,
 * chunks turned to bitmaps, directories and flat bitmaps kept in step).
 */
static void test_set_after_reserve_cannot_fail(void **state)
{
	struct rng g = seeded("set_after_reserve", 0x5eed000d);
	/* 17 groups: room for directories and a flat bitmap */
	struct bref r = { .n = (1 << 24) + 4321 };
	struct emap *m = create(r.n, 0);
	uint64_t dirs = 0, flats = 0, f;

	(void)state;
	r.v = calloc(r.n, 1);
	assert_non_null(r.v);
	for (int i = 0; i < 120000; i++) {
		uint64_t group = 2 * (i / 60000) + 1, s, e;
		uint8_t v = rnd_below(&g, 2);

		if (i % 60000 < 40000) {
			/* every other page of one group: bitmaps, flat */
			s = (group << 20) + 2 * rnd_below(&g, 1 << 19) + 1;
			e = s + 1;
			v = 1;
		} else {
			rnd_range(&g, r.n, i > 60000 ? 2 : 0, 30, &s, &e);
		}
		set_reserved(m, s, e, v);
		bref_set(&r, s, e, v);
		assert_int_equal(emap_nr_extents(m), r.bounds + 1);
		assert_int_equal(emap_get(m, s), r.v[s]);
		assert_int_equal(emap_get(m, e - 1), r.v[e - 1]);
		if (e < r.n)
			assert_int_equal(emap_get(m, e), r.v[e]);
		if (i % 2000 == 0) {
			assert_int_equal(emap_test_check(m), 0);
			if (emap_test_nr_dirs(m, &f) > dirs)
				dirs = emap_test_nr_dirs(m, NULL);
			flats = f > flats ? f : flats;
		}
	}
	check_all_bref(m, &r);
	printf("  at most %" PRIu64 " directories, %" PRIu64 " flat bitmaps\n",
	       dirs, flats);
	assert_true(dirs >= 1 && flats >= 1);
	emap_destroy(m);
	free(r.v);
}

/*
 * Run emap_set() on m in a child (after prepare, if any): it must abort,
 * naming the broken contract on stderr.
 */
static void expect_set_aborts(struct emap *m, bool reserve, bool set_first)
{
	char msg[512] = "";
	int fds[2], status;
	ssize_t n, len = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		if (reserve && emap_reserve(m))
			_exit(2);
		if (set_first)
			emap_set(m, 3, 9, 1);
		emap_set(m, 5, 7, 0);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], msg + len, sizeof(msg) - 1 - len)) > 0)
		len += n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	printf("  child: %s", msg);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(msg, "emap_set() called without a successful "
				    "emap_reserve()"));
}

/* emap_set() without its reserve is a bug: it aborts, loudly. */
static void test_set_without_reserve_aborts(void **state)
{
	struct emap *m = create(1 << 16, 0);

	(void)state;
	/* never reserved */
	expect_set_aborts(m, false, false);
	/* a second set on one reserve */
	expect_set_aborts(m, true, true);
	set_reserved(m, 100, 200, 1);
	expect_set_aborts(m, false, false);
	/* a reserve that failed (a new map's reserve must allocate) */
	emap_destroy(m);
	m = create(1 << 16, 0);
	emap_test_fail_after(m, 0);
	assert_int_equal(emap_reserve(m), -ENOMEM);
	expect_set_aborts(m, false, false);
	emap_test_fail_after(m, -1);
	/* the map is unharmed in the parent, and works once reserved */
	assert_int_equal(emap_nr_extents(m), 1);
	set_reserved(m, 100, 200, 1);
	assert_int_equal(emap_nr_extents(m), 3);
	assert_int_equal(emap_test_check(m), 0);
	emap_destroy(m);
}

static void test_reserve_failures(void **state)
{
	struct rng g = seeded("reserve_failures", 0x5eed0009);
	uint64_t npages = 1 << 18, *before, *after, nb, na;
	struct emap *m = create(npages, 0);
	struct bref r = { .n = npages };
	int fails = 0;

	(void)state;
	before = malloc(sizeof(uint64_t) * (npages + 1));
	after = malloc(sizeof(uint64_t) * (npages + 1));
	r.v = calloc(npages, 1);
	assert_true(before && after && r.v);
	for (int i = 0; i < 20000; i++) {
		uint64_t s, e;
		uint8_t v = rnd_below(&g, 2);
		int ret;

		rnd_range(&g, npages, 1, 30, &s, &e);
		/* Fail some allocation of the reserve, or none. */
		emap_test_fail_after(m, (int64_t)rnd_below(&g, 4) - 1);
		if (i % 8 == 0)
			snapshot(m, before, &nb);
		ret = emap_set_checked(m, s, e, v);
		emap_test_fail_after(m, -1);
		assert_true(ret == 0 || ret == -ENOMEM);
		if (ret == 0)
			bref_set(&r, s, e, v);
		else
			fails++;
		if (ret && i % 8 == 0) {
			/* -ENOMEM: unchanged. */
			snapshot(m, after, &na);
			assert_int_equal(na, nb);
			assert_memory_equal(after, before, na * sizeof(*after));
		}
		assert_int_equal(emap_nr_extents(m), r.bounds + 1);
		/* After a good reserve, a set works with no memory at all. */
		if (i % 4 == 0 && emap_reserve(m) == 0) {
			rnd_range(&g, npages, 1, 30, &s, &e);
			emap_test_fail_after(m, 0);
			emap_set(m, s, e, v);
			emap_test_fail_after(m, -1);
			bref_set(&r, s, e, v);
		}
		assert_int_equal(emap_test_check(m), 0);
	}
	check_all_bref(m, &r);
	printf("  %d reserve failures\n", fails);
	assert_true(fails > 100);
	free(before);
	free(after);
	free(r.v);
	emap_destroy(m);
}

/* The reserve stays a few nodes, and frees itself as the tree shrinks. */
static void test_reserve_bounded(void **state)
{
	struct emap *m = create(TIB_PAGES, 0);
	size_t empty;

	(void)state;
	assert_int_equal(emap_reserve(m), 0);
	empty = emap_bytes(m);
	printf("  empty 1 TiB map with its reserve: %zu bytes\n", empty);
	assert_true(empty < 16384);
	for (uint64_t p = 0; p < TIB_PAGES; p += TIB_PAGES / 100000)
		set_reserved(m, p + 5, p + 9, 1);
	set_reserved(m, 0, TIB_PAGES, 1);
	assert_int_equal(emap_reserve(m), 0);
	assert_int_equal(emap_bytes(m), empty);
	assert_int_equal(emap_test_check(m), 0);
	emap_destroy(m);
}

/* ---- edge cases ---- */

static void test_create_args(void **state)
{
	struct emap *m = (struct emap *)1;

	(void)state;
	assert_int_equal(emap_create(0, 0, &m), -EINVAL);
	assert_null(m);
	assert_int_equal(emap_create(MAX_PAGES + 1, 0, &m), -EINVAL);
	assert_int_equal(emap_create(UINT64_MAX, 0, &m), -EINVAL);
	assert_int_equal(emap_create(16, EMAP_MAX_VALUE + 1, &m), -EINVAL);
	assert_int_equal(emap_create(MAX_PAGES, 1, &m), 0);
	assert_int_equal(emap_npages(m), MAX_PAGES);
	assert_int_equal(emap_get(m, MAX_PAGES - 1), 1);
	emap_destroy(m);
	emap_destroy(NULL);
}

static void expect_extent(const struct emap *m, uint64_t p, uint64_t s,
			  uint64_t e, uint8_t v)
{
	uint64_t S, E;
	uint8_t V;

	emap_extent(m, p, &S, &E, &V);
	assert_int_equal(S, s);
	assert_int_equal(E, e);
	assert_int_equal(V, v);
	assert_int_equal(emap_get(m, p), v);
}

static void test_single_page(void **state)
{
	struct emap *m = create(1, 0);

	(void)state;
	expect_extent(m, 0, 0, 1, 0);
	set_reserved(m, 0, 1, 1);
	expect_extent(m, 0, 0, 1, 1);
	assert_int_equal(emap_nr_extents(m), 1);
	assert_int_equal(emap_set_checked(m, 0, 1, 0), 0);
	expect_extent(m, 0, 0, 1, 0);
	/* Bad arguments: rejected or clamped, never a crash. */
	assert_int_equal(emap_set_checked(m, 0, 2, 1), -EINVAL);
	assert_int_equal(emap_set_checked(m, 1, 1, 1), -EINVAL);
	assert_int_equal(emap_set_checked(m, 0, 1, 2), -EINVAL);
	set_reserved(m, 1, 1, 1);
	set_reserved(m, 5, 3, 1);
	expect_extent(m, 0, 0, 1, 0);
	set_reserved(m, 0, 5, 1); /* clamped to the end */
	expect_extent(m, 0, 0, 1, 1);
	assert_int_equal(emap_get(m, 7), 1); /* clamped */
	assert_int_equal(emap_test_check(m), 0);
	emap_destroy(m);
}

static void test_whole_and_end(void **state)
{
	static const uint64_t sizes[] = { 2,	4095,	4096,	   4097,
					  8192, 100003, TIB_PAGES, MAX_PAGES };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t n = sizes[i];
		struct emap *m = create(n, 0);

		set_reserved(m, n - 1, n, 1); /* the last page */
		expect_extent(m, n - 1, n - 1, n, 1);
		expect_extent(m, 0, 0, n - 1, 0);
		assert_int_equal(emap_nr_extents(m), 2);
		set_reserved(m, 0, 1, 1); /* the first page */
		expect_extent(m, 0, 0, n > 2 ? 1 : n, 1);
		assert_int_equal(emap_nr_extents(m), n > 2 ? 3 : 1);
		set_reserved(m, 0, n, 1); /* the whole map */
		expect_extent(m, n / 2, 0, n, 1);
		assert_int_equal(emap_nr_extents(m), 1);
		set_reserved(m, n / 2, n, 0); /* to the end */
		expect_extent(m, n - 1, n / 2, n, 0);
		expect_extent(m, 0, 0, n / 2, 1);
		/* Many pages at the end, then the whole map again. */
		for (uint64_t p = n > 9000 ? n - 9000 : 0; p < n; p += 3)
			set_reserved(m, p, p + 1, 1);
		assert_int_equal(emap_test_check(m), 0);
		set_reserved(m, 0, n, 0);
		expect_extent(m, n - 1, 0, n, 0);
		assert_int_equal(emap_nr_extents(m), 1);
		assert_int_equal(emap_test_check(m), 0);
		emap_destroy(m);
	}
}

/* Chunk-sized patterns: dense, back to sparse, every form change. */
static void test_forms(void **state)
{
	struct bref r = { .n = 1 << 16 };
	struct emap *m = create(r.n, 0);

	(void)state;
	r.v = calloc(r.n, 1);
	assert_non_null(r.v);
	for (unsigned int step = 1; step < 64; step = step * 2 + 1) {
		for (uint64_t p = 0; p < r.n; p += step + 1) {
			set_reserved(m, p, p + 1, 1);
			bref_set(&r, p, p + 1, 1);
		}
		check_all_bref(m, &r);
		for (uint64_t p = 0; p < r.n; p += 2) {
			set_reserved(m, p, p + 2, 0);
			bref_set(&r, p, p + 2, 0);
			if (p % 8192 == 0)
				check_all_bref(m, &r);
		}
		check_all_bref(m, &r);
	}
	emap_destroy(m);
	free(r.v);
}

/*
 * Lookup directories: a group (2^20 pages) with enough boundaries gets one
 * at the next reserve, lookups and sets through it agree with the
 * reference, and it goes when the group empties. Maps too large for
 * directories never get one.
 */
/*
 * iters random lookups against the reference; every 4th also sets a short
 * (med_pct %: medium) range inside [base, r->n) to a random value, and with
 * to_end every 64th of those a few pages at the end of the map.
 */
static void lookups_and_sets(struct emap *m, struct bref *r, struct rng *g,
			     int iters, uint64_t base, unsigned int med_pct,
			     bool to_end)
{
	for (int i = 0; i < iters; i++) {
		uint64_t s, e, p = rnd_below(g, r->n);
		uint8_t v = rnd_below(g, 2);

		assert_int_equal(emap_get(m, p), r->v[p]);
		if (i % 4)
			continue;
		rnd_range(g, r->n - base, 0, med_pct, &s, &e);
		s += base;
		e += base;
		if (to_end && i % 64 == 0)
			s = r->n - 1 - rnd_below(g, 16), e = r->n;
		set_reserved(m, s, e, v);
		bref_set(r, s, e, v);
		if (i % 4096 == 0)
			assert_int_equal(emap_test_check(m), 0);
	}
}

static void dense_group(struct emap *m, struct bref *r, uint64_t base)
{
	/* 1024 single pages: 2048 boundaries, far above the build mark. */
	for (uint64_t p = base + 1; p < base + 2049; p += 2) {
		set_reserved(m, p, p + 1, 1);
		bref_set(r, p, p + 1, 1);
	}
	assert_int_equal(emap_reserve(m), 0);
}

static void test_directory(void **state)
{
	struct rng g = seeded("directory", 0x5eed000b);
	struct bref r = { .n = (3 << 20) + 5000 };
	struct emap *m = create(r.n, 0);
	uint64_t big = 1ULL << 31;

	(void)state;
	r.v = calloc(r.n, 1);
	assert_non_null(r.v);
	assert_int_equal(emap_test_nr_dirs(m, NULL), 0);
	dense_group(m, &r, 5);
	assert_int_equal(emap_test_nr_dirs(m, NULL), 1);
	dense_group(m, &r, 1 << 20);
	dense_group(m, &r, 3ULL << 20); /* the last, partial group */
	assert_int_equal(emap_test_nr_dirs(m, NULL), 3);
	check_all_bref(m, &r);
	/* short and medium ranges: the groups stay dense */
	lookups_and_sets(m, &r, &g, 200000, 0, 10, false);
	check_all_bref(m, &r);
	assert_true(emap_test_nr_dirs(m, NULL) >= 1);
	/* Emptied groups lose their pages. */
	set_reserved(m, 0, r.n, 0);
	bref_set(&r, 0, r.n, 0);
	assert_int_equal(emap_test_nr_dirs(m, NULL), 0);
	dense_group(m, &r, 5);
	dense_group(m, &r, 1 << 20);
	dense_group(m, &r, 3ULL << 20);
	assert_int_equal(emap_test_nr_dirs(m, NULL), 3);
	/*
	 * A range across groups: group 0 keeps its boundaries, group 1 keeps
	 * enough of them (its page stays, its slots now say 1), group 2 has
	 * none, group 3 is untouched.
	 */
	set_reserved(m, 3000, (1 << 20) + 1500, 1);
	bref_set(&r, 3000, (1 << 20) + 1500, 1);
	assert_int_equal(emap_test_nr_dirs(m, NULL), 3);
	check_all_bref(m, &r);
	for (uint64_t p = 0; p < r.n; p += 61)
		assert_int_equal(emap_get(m, p), r.v[p]);
	/* Emptied groups lose their pages. */
	set_reserved(m, 2000, r.n, 0);
	bref_set(&r, 2000, r.n, 0);
	assert_int_equal(emap_test_nr_dirs(m, NULL), 1);
	set_reserved(m, 0, r.n, 1);
	bref_set(&r, 0, r.n, 1);
	assert_int_equal(emap_test_nr_dirs(m, NULL), 0);
	check_all_bref(m, &r);
	emap_destroy(m);
	free(r.v);

	/* Above 2^30 pages: no directory, the tree serves every lookup. */
	m = create(big, 0);
	for (uint64_t p = 1; p < 4097; p += 2)
		set_reserved(m, p, p + 1, 1);
	assert_int_equal(emap_reserve(m), 0);
	assert_int_equal(emap_test_nr_dirs(m, NULL), 0);
	for (uint64_t p = 0; p < 5000; p++)
		assert_int_equal(emap_get(m, p), p < 4097 ? p & 1 : 0);
	assert_int_equal(emap_test_check(m), 0);
	emap_destroy(m);
}

/*
 * A group with a boundary every other page gets a flat bitmap as well: its
 * lookups, sets (also those that end at the end of the map) and the drop.
 */
static void test_flat(void **state)
{
	struct rng g = seeded("flat", 0x5eed000c);
	/* 16 groups: the map can afford a flat bitmap (npages / 8 = 2 MiB) */
	struct bref r = { .n = (15 << 20) + 300001 };
	struct emap *m = create(r.n, 0);
	uint64_t flats;

	(void)state;
	r.v = calloc(r.n, 1);
	assert_non_null(r.v);
	/* The last, partial group: 300,000 boundaries. */
	for (uint64_t p = (15 << 20) + 1; p < r.n; p += 2) {
		set_checked(m, p, p + 1, 1);
		bref_set(&r, p, p + 1, 1);
	}
	assert_int_equal(emap_reserve(m), 0);
	assert_int_equal(emap_test_nr_dirs(m, &flats), 1);
	assert_int_equal(flats, 1);
	check_all_bref(m, &r);
	/* short, in the last group: it stays dense, the others sparse */
	lookups_and_sets(m, &r, &g, 400000, 15 << 20, 0, true);
	assert_int_equal(emap_test_nr_dirs(m, &flats), 1);
	assert_int_equal(flats, 1);
	check_all_bref(m, &r);
	/* Below FLAT_DROP the bitmap goes; the directory stays. */
	set_reserved(m, (15 << 20) + 200000, r.n, 1);
	bref_set(&r, (15 << 20) + 200000, r.n, 1);
	set_reserved(m, 15 << 20, (15 << 20) + 150000, 0);
	bref_set(&r, 15 << 20, (15 << 20) + 150000, 0);
	assert_int_equal(emap_test_nr_dirs(m, &flats), 1);
	assert_int_equal(flats, 0);
	check_all_bref(m, &r);
	for (uint64_t p = 0; p < r.n; p += 7)
		assert_int_equal(emap_get(m, p), r.v[p]);
	emap_destroy(m);
	free(r.v);

	/*
	 * A map dense all over already holds about a bitmap's worth: a flat
	 * bitmap would double it, so it gets none (its directory, yes).
	 */
	m = create(1 << 20, 0);
	for (uint64_t p = 1; p < (1 << 20); p += 2)
		set_checked(m, p, p + 1, 1);
	assert_int_equal(emap_reserve(m), 0);
	assert_int_equal(emap_test_nr_dirs(m, &flats), 1);
	assert_int_equal(flats, 0);
	assert_true(emap_bytes(m) <= 1.25 * (1 << 20) / 8 + 65536);
	assert_int_equal(emap_test_check(m), 0);
	emap_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_args),
		cmocka_unit_test(test_single_page),
		cmocka_unit_test(test_whole_and_end),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_flat),
		cmocka_unit_test(test_random_small),
		cmocka_unit_test(test_random_medium),
		cmocka_unit_test(test_random_tib),
		cmocka_unit_test(test_random_max),
		cmocka_unit_test(test_reserve_two_inserts),
		cmocka_unit_test(test_set_after_reserve_cannot_fail),
		cmocka_unit_test(test_set_without_reserve_aborts),
		cmocka_unit_test(test_reserve_failures),
		cmocka_unit_test(test_reserve_bounded),
		cmocka_unit_test(test_mem_few_extents),
		cmocka_unit_test(test_mem_ranges),
		cmocka_unit_test(test_mem_sparse_pages),
		cmocka_unit_test(test_mem_alternating),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
