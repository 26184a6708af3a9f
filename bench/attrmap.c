// SPDX-License-Identifier: MIT
/*
 * The attribute map (lib/extent_map.c) on a 1 TiB sparse store against two
 * baselines built here: a flat bitmap, one bit per page (QEMU's
 * RamBlockAttributes), and a per-page byte array (the kernel's per-gfn
 * attribute store, at its most compact). For each pattern: bytes held,
 * point lookup ns (random pages of the pattern's region, same positions for
 * every structure), and the time to set a 1 GiB range to shared (random
 * page-aligned positions inside the region, the pattern restored untimed
 * between repetitions).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "extent_map.h"
#include "patterns.h"

#define NPAGES (TiB >> 12)
#define SET_PAGES (GiB >> 12)

/* ---- baseline 1: flat bitmap ---- */

struct bitmap {
	uint64_t *w;
	uint64_t npages;
};

static void *big_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap of %zu bytes failed", n);
	return p;
}

static void bm_set(struct bitmap *b, uint64_t s, uint64_t e, uint8_t v)
{
	uint64_t ws = s >> 6, we = (e - 1) >> 6;
	uint64_t hm = ~0ULL << (s & 63), tm = ~0ULL >> (63 - ((e - 1) & 63));

	if (ws == we) {
		uint64_t m = hm & tm;

		b->w[ws] = v ? b->w[ws] | m : b->w[ws] & ~m;
		return;
	}
	b->w[ws] = v ? b->w[ws] | hm : b->w[ws] & ~hm;
	memset(&b->w[ws + 1], v ? 0xff : 0, (we - ws - 1) * 8);
	b->w[we] = v ? b->w[we] | tm : b->w[we] & ~tm;
}

static inline uint8_t bm_get(const struct bitmap *b, uint64_t p)
{
	return (b->w[p >> 6] >> (p & 63)) & 1;
}

/* ---- baseline 2: per-page byte array ---- */

struct bytearr {
	uint8_t *a;
	uint64_t npages;
};

static void ba_set(struct bytearr *b, uint64_t s, uint64_t e, uint8_t v)
{
	memset(b->a + s, v, e - s);
}

static inline uint8_t ba_get(const struct bytearr *b, uint64_t p)
{
	return b->a[p];
}

/* ---- the three structures behind one set of calls ---- */

enum { S_EMAP, S_BITMAP, S_BYTES, S_NR };
static const char *const sname[S_NR] = { "emap", "bitmap", "bytearray" };

struct structs {
	struct emap *em;
	struct bitmap bm;
	struct bytearr ba;
};

static void st_set(struct structs *st, int which, uint64_t s, uint64_t e,
		   uint8_t v)
{
	int ret;

	switch (which) {
	case S_EMAP:
		ret = emap_set_checked(st->em, s, e, v);
		if (ret)
			die("emap_set_checked: %d", ret);
		break;
	case S_BITMAP:
		bm_set(&st->bm, s, e, v);
		break;
	case S_BYTES:
		ba_set(&st->ba, s, e, v);
		break;
	}
}

/* Apply the pattern's ops clipped to [lo, hi), after setting it to base. */
static void restore(struct structs *st, int which, const struct pattern *p,
		    uint64_t lo, uint64_t hi)
{
	st_set(st, which, lo, hi, p->base);
	for (uint64_t i = 0; i < p->nr_ops; i++) {
		const struct pat_op *o = &p->ops[i];
		uint64_t s = o->s > lo ? o->s : lo, e = o->e < hi ? o->e : hi;

		if (s < e)
			st_set(st, which, s, e, o->v);
	}
}

/*
 * ns per lookup. dep: each lookup's position depends on the previous
 * result (latency: one lookup at a time, as in a fault path); else the
 * lookups are independent and the CPU overlaps them (throughput).
 */
static double lookup_ns(const struct structs *st, int which,
			const uint64_t *pos, uint64_t n, bool dep,
			uint64_t *sum)
{
	uint64_t t0, acc = 0, mask = dep ? ~0ULL : 0;

#define LOOP(get)                                                  \
	do {                                                       \
		for (uint64_t i = 0; i < n; i++)                   \
			acc += get(pos[i] ^ ((acc >> 62) & mask)); \
	} while (0)
#define EM(q) emap_get(st->em, q)
#define BM(q) bm_get(&st->bm, q)
#define BA(q) ba_get(&st->ba, q)
	t0 = now_ns();
	switch (which) {
	case S_EMAP:
		LOOP(EM);
		break;
	case S_BITMAP:
		LOOP(BM);
		break;
	case S_BYTES:
		LOOP(BA);
		break;
	}
#undef LOOP
#undef EM
#undef BM
#undef BA
	*sum = acc;
	return (double)(now_ns() - t0) / n;
}

static void one_pattern(int pat)
{
	uint64_t nlook = cfg.quick ? 1000000 : 4000000, st_rng = cfg.seed + pat;
	int reps = cfg.reps, lreps = 5;
	struct structs st = { 0 };
	struct pattern p;
	uint64_t *pos, *win, sums[S_NR], extents, t0;
	double look[S_NR], thru[S_NR], set[S_NR],
		v[lreps > reps ? lreps : reps];
	double bytes[S_NR];
	char id[64], what[128];
	struct row r;
	int ret;

	pattern_build(&p, pat, NPAGES, cfg.seed * 31 + pat);
	note("pattern %s: %llu ops", p.name, (unsigned long long)p.nr_ops);

	ret = emap_create(NPAGES, p.base, &st.em);
	if (ret)
		die("emap_create(2^28 pages): %d", ret);
	st.bm.npages = st.ba.npages = NPAGES;
	st.bm.w = big_alloc(NPAGES / 8);
	st.ba.a = big_alloc(NPAGES);
	for (int s = 0; s < S_NR; s++) {
		t0 = now_ns();
		restore(&st, s, &p, 0, NPAGES);
		note("  %s built in %.1f ms", sname[s], (now_ns() - t0) / 1e6);
	}
	extents = emap_nr_extents(st.em);
	bytes[S_EMAP] = emap_bytes(st.em);
	bytes[S_BITMAP] = NPAGES / 8;
	bytes[S_BYTES] = NPAGES;

	/* Check the three agree, on a sample. */
	for (int i = 0; i < 100000; i++) {
		uint64_t q = rnd_below(&st_rng, p.region);
		uint8_t a = emap_get(st.em, q);

		if (a != bm_get(&st.bm, q) || a != ba_get(&st.ba, q))
			die("pattern %s: structures disagree at page %llu",
			    p.name, (unsigned long long)q);
	}

	pos = malloc(nlook * sizeof(*pos));
	if (!pos)
		die("out of memory");
	for (uint64_t i = 0; i < nlook; i++)
		pos[i] = rnd_below(&st_rng, p.region);
	for (int s = 0; s < S_NR; s++) {
		lookup_ns(&st, s, pos, nlook / 4, false, &sums[s]); /* warm */
		for (int i = 0; i < lreps; i++)
			v[i] = lookup_ns(&st, s, pos, nlook, true, &sums[s]);
		look[s] = median(v, lreps);
		for (int i = 0; i < lreps; i++)
			v[i] = lookup_ns(&st, s, pos, nlook, false, &sums[s]);
		thru[s] = median(v, lreps);
	}
	if (sums[S_EMAP] != sums[S_BITMAP] || sums[S_EMAP] != sums[S_BYTES])
		die("pattern %s: lookups disagree", p.name);

	win = malloc(reps * sizeof(*win));
	for (int i = 0; i < reps; i++)
		win[i] = rnd_below(&st_rng, p.region - SET_PAGES + 1);
	for (int s = 0; s < S_NR; s++) {
		for (int i = 0; i < reps; i++) {
			t0 = now_ns();
			st_set(&st, s, win[i], win[i] + SET_PAGES, 0);
			v[i] = (now_ns() - t0) / 1e3;
			restore(&st, s, &p, win[i], win[i] + SET_PAGES);
		}
		set[s] = median(v, reps);
	}
	if (emap_nr_extents(st.em) != extents)
		die("pattern %s: restoring changed the extent count", p.name);

	snprintf(id, sizeof(id), "attrmap.%s.bytes", p.name);
	snprintf(what, sizeof(what), "attr map bytes, %s", p.what);
	r = (struct row){ .id = strdup(id),
			  .what = strdup(what),
			  .unit = "B",
			  .ours = bytes[S_EMAP],
			  .floor_what = "flat bitmap, 1 bit/page",
			  .floor = bytes[S_BITMAP] };
	row_extra(&r, "extents", extents);
	row_extra(&r, "bitmap_bytes", bytes[S_BITMAP]);
	row_extra(&r, "bytearray_bytes", bytes[S_BYTES]);
	row_extra(&r, "npages", NPAGES);
	row_add(&r);

	snprintf(id, sizeof(id), "attrmap.%s.lookup", p.name);
	snprintf(what, sizeof(what), "attr map point lookup (latency), %s",
		 p.what);
	r = (struct row){ .id = strdup(id),
			  .what = strdup(what),
			  .unit = "ns",
			  .ours = look[S_EMAP],
			  .floor_what = "flat bitmap lookup (latency)",
			  .floor = look[S_BITMAP] };
	row_extra(&r, "bytearray_ns", look[S_BYTES]);
	row_extra(&r, "throughput_ns", thru[S_EMAP]);
	row_extra(&r, "bitmap_throughput_ns", thru[S_BITMAP]);
	row_extra(&r, "bytearray_throughput_ns", thru[S_BYTES]);
	row_extra(&r, "lookups", nlook);
	row_add(&r);

	snprintf(id, sizeof(id), "attrmap.%s.set1g", p.name);
	snprintf(what, sizeof(what), "attr map 1 GiB range set, %s", p.what);
	r = (struct row){ .id = strdup(id),
			  .what = strdup(what),
			  .unit = "us",
			  .ours = set[S_EMAP],
			  .floor_what = "flat bitmap range set",
			  .floor = set[S_BITMAP] };
	row_extra(&r, "bytearray_us", set[S_BYTES]);
	row_extra(&r, "reps", reps);
	row_add(&r);

	free(win);
	free(pos);
	munmap(st.bm.w, NPAGES / 8);
	munmap(st.ba.a, NPAGES);
	emap_destroy(st.em);
	pattern_free(&p);
}

void bench_attr_map(void)
{
	for (int pat = 0; pat < PAT_NR; pat++)
		one_pattern(pat);
}
