// SPDX-License-Identifier: MIT
/*
 * Huge backings (issue 9), each figure beside its 4 KiB counterpart or its
 * maximum in the same run:
 *  - coverage: a 4 GiB store on 2 MiB THP (and on 2 MiB hugetlb where the
 *    pool can be filled), every page written, 10,000 random 4 KiB pages
 *    converted to private one by one and then back in another random
 *    order, in place; then the same, destructive. Bytes on huge pages
 *    (gm_stats.huge_bytes) against the most there can be: every 2 MiB
 *    region uniform at the end, read after gm_store_compact (the figure
 *    before it is an extra);
 *  - what the guest gains: bench_chase (dependent random loads over 1 GiB
 *    of guest memory) on 2m-thp against 4k backing, alternating runs;
 *  - conversion cost: 1 GiB in place both ways, and the guest's 4 KiB
 *    round trip, on 2m-thp against the same on 4k.
 * As root the section allows shmem THP and fills the 2 MiB hugetlb pool
 * for its run (tests/huge_fixture.c) and puts the settings back after.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "bench.h"
#include "huge_fixture.h"

#define COVER_SIZE (4 * GiB)
#define COVER_CONVERSIONS 10000
#define REGION (2 * MiB)

static struct gm_store *huge_store(uint64_t size, enum gm_pages pages)
{
	struct gm_store_opts o = {
		.sz = sizeof(o),
		.size = size,
		.backing = GM_BACKING_MEMFD,
		.vm_fd = -1,
		.flags = GM_STORE_INIT_SHARED,
		.pages = pages,
	};
	struct gm_store *s;
	int ret = gm_store_create(&o, &s);

	if (ret)
		die("gm_store_create(%s, %llu bytes): %s (%s)",
		    gm_pages_name(pages), (unsigned long long)size,
		    gm_strerror(ret), gm_last_error());
	return s;
}

static void touch_all(uint8_t *p, uint64_t size, uint8_t v)
{
	for (uint64_t off = 0; off < size; off += 4096)
		p[off] = v;
}

static struct gm_stats stats(struct gm_store *s)
{
	struct gm_stats st = { .sz = sizeof(st) };

	if (gm_store_stats(s, &st))
		die("gm_store_stats: %s", gm_last_error());
	return st;
}

static uint64_t huge_bytes(struct gm_store *s)
{
	return stats(s).huge_bytes;
}

static void shuffle(uint64_t *v, int n, uint64_t *seed)
{
	for (int i = n - 1; i > 0; i--) {
		uint64_t j = rnd_below(seed, i + 1), t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

/*
 * 10,000 random pages to private, then back in another order; µs per
 * conversion. The pages end shared: every region uniform.
 */
static double round_trip(struct gm_store *s, unsigned int flags, uint64_t *seed)
{
	static uint64_t pg[COVER_CONVERSIONS];
	uint64_t npages = COVER_SIZE / 4096, t0;
	int ret;

	for (int i = 0; i < COVER_CONVERSIONS; i++)
		pg[i] = rnd_below(seed, npages);
	t0 = now_ns();
	for (int to = 0; to < 2; to++) {
		for (int i = 0; i < COVER_CONVERSIONS; i++) {
			ret = gm_convert(s, pg[i] * 4096, 4096,
					 to ? GM_ATTR_SHARED : GM_ATTR_PRIVATE,
					 flags);
			if (ret)
				die("gm_convert: %s (%s)", gm_strerror(ret),
				    gm_last_error());
		}
		shuffle(pg, COVER_CONVERSIONS, seed);
	}
	return (now_ns() - t0) / 1e3 / (2 * COVER_CONVERSIONS);
}

static void cover_row(const char *id, const char *what, struct gm_store *s,
		      uint64_t bytes, double us_per_conversion,
		      double before_compact)
{
	struct gm_stats st = stats(s);
	struct row r = { .id = id,
			 .what = what,
			 .unit = "GiB",
			 .ours = bytes / (double)GiB,
			 .floor_what = "every uniform 2 MiB region huge",
			 .floor = COVER_SIZE / (double)GiB };

	row_extra(&r, "conversions", 2 * COVER_CONVERSIONS);
	row_extra(&r, "us_per_conversion", us_per_conversion);
	row_extra(&r, "ratio_before_compact", before_compact);
	row_extra(&r, "huge_splits", st.huge_splits);
	row_extra(&r, "huge_merges", st.huge_merges);
	row_add(&r);
}

static void coverage(enum gm_pages pages, const char *ids[2],
		     const char *whats[2])
{
	struct gm_store *s = huge_store(COVER_SIZE, pages);
	uint64_t seed = cfg.seed;
	double us, before;

	touch_all(gm_view_base(s), COVER_SIZE, 1);
	for (int i = 0; i < 2; i++) {
		us = round_trip(s, i ? GM_CONVERT_DESTRUCTIVE : 0, &seed);
		before = huge_bytes(s) / (double)COVER_SIZE;
		if (gm_store_compact(s) < 0)
			die("gm_store_compact: %s", gm_last_error());
		cover_row(ids[i], whats[i], s, huge_bytes(s), us, before);
	}
	gm_store_destroy(s);
}

static const char *const thp_ids[2] = { "huge.cover.thp.inplace",
					"huge.cover.thp.destructive" };
static const char *const thp_whats[2] = {
	"4 GiB 2m-thp: huge after 10k+10k in place, compact",
	"4 GiB 2m-thp: huge after 10k+10k destructive, compact"
};
static const char *const tlb_ids[2] = { "huge.cover.hugetlb.inplace",
					"huge.cover.hugetlb.destructive" };
static const char *const tlb_whats[2] = {
	"4 GiB 2m-hugetlb: huge after 10k+10k in-place 4K conv.",
	"4 GiB 2m-hugetlb: huge after 10k+10k destructive"
};

/* ---- 1 GiB in place on 2m-thp against 4k ---- */

static double t_convert(struct gm_store *s, enum gm_attr to, uint8_t *v)
{
	uint64_t t0 = now_ns();
	int ret = gm_convert(s, 0, GiB, to, 0);

	if (ret)
		die("gm_convert 1 GiB: %s (%s)", gm_strerror(ret),
		    gm_last_error());
	/* back to shared: what the host pays includes its next writes */
	if (to == GM_ATTR_SHARED)
		touch_all(v, GiB, 2);
	return (now_ns() - t0) / 1e6;
}

static void convert1g_rows(void)
{
	struct gm_store *h = huge_store(GiB, GM_PAGES_THP_2M),
			*b = huge_store(GiB, GM_PAGES_4K);
	uint8_t *hv = gm_view_base(h), *bv = gm_view_base(b);
	int n = cfg.reps;
	double hp[n], bp[n], hs[n], bs[n];
	struct row r;

	touch_all(hv, GiB, 1);
	touch_all(bv, GiB, 1);
	for (int i = 0; i < n; i++) {
		bool huge_first = i % 2;

		touch_all(hv, GiB, 1);
		touch_all(bv, GiB, 1);
		if (huge_first)
			hp[i] = t_convert(h, GM_ATTR_PRIVATE, hv);
		bp[i] = t_convert(b, GM_ATTR_PRIVATE, bv);
		if (!huge_first)
			hp[i] = t_convert(h, GM_ATTR_PRIVATE, hv);
		if (huge_first)
			hs[i] = t_convert(h, GM_ATTR_SHARED, hv);
		bs[i] = t_convert(b, GM_ATTR_SHARED, bv);
		if (!huge_first)
			hs[i] = t_convert(h, GM_ATTR_SHARED, hv);
	}
	r = (struct row){ .id = "huge.convert1g.inplace.to_private",
			  .what = "1 GiB in place to private, 2m-thp",
			  .unit = "ms",
			  .ours = median(hp, n),
			  .floor_what = "the same on 4k backing",
			  .floor = median(bp, n) };
	row_extra(&r, "reps", n);
	row_add(&r);
	r = (struct row){ .id = "huge.convert1g.inplace.to_shared",
			  .what = "1 GiB in place to shared + writes, 2m-thp",
			  .unit = "ms",
			  .ours = median(hs, n),
			  .floor_what = "the same on 4k backing",
			  .floor = median(bs, n) };
	row_extra(&r, "reps", n);
	row_add(&r);
	gm_store_destroy(h);
	gm_store_destroy(b);
}

/* ---- through gmem-vm ---- */

static double chase_ns(const char *vmm, const char *guests, const char *pages)
{
	char extra[64];
	struct kv kv;

	snprintf(extra, sizeof(extra), "--mem 1100M --page-size %s", pages);
	run_guest(vmm, guests, "bench_chase", 1, extra, &kv);
	if (kv_get(&kv, "bytes") != GiB)
		die("bench_chase walked %.0f bytes, not 1 GiB",
		    kv_get(&kv, "bytes"));
	return kv_get(&kv, "ticks") * 1e6 / kv_get(&kv, "tsc_khz") /
	       kv_get(&kv, "loads");
}

static void guest_rows(const char *vmm, const char *guests)
{
	int n = cfg.reps < 3 ? 3 : cfg.reps > 5 ? 5 : cfg.reps;
	double c4[n], c2[n], i4[n], i2[n], d4[n], d2[n];
	struct kv kv;
	struct row r;

	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 2; k++) {
			bool huge = (i + k) % 2;
			const char *extra = huge ? "--page-size 2m-thp" : "";

			(huge ? c2 : c4)[i] =
				chase_ns(vmm, guests, huge ? "2m-thp" : "4k");
			run_guest(vmm, guests, "bench_convert", 1, extra, &kv);
			(huge ? i2 : i4)[i] = kv_get(&kv, "inplace") * 1e3 /
					      kv_get(&kv, "tsc_khz");
			(huge ? d2 : d4)[i] = kv_get(&kv, "destructive") * 1e3 /
					      kv_get(&kv, "tsc_khz");
		}
	}
	r = (struct row){ .id = "huge.guest.chase",
			  .what = "guest dependent loads over 1 GiB: speed-up",
			  .unit = "x",
			  .ours = median(c4, n) / median(c2, n),
			  .floor_what = "4k backing (1.0)",
			  .floor = 1 };
	row_extra(&r, "ns_per_load_4k", median(c4, n));
	row_extra(&r, "ns_per_load_2m_thp", median(c2, n));
	row_extra(&r, "runs", n);
	row_add(&r);
	r = (struct row){ .id = "huge.vmm.convert4k.inplace",
			  .what = "guest 4 KiB round trip in place, 2m-thp",
			  .unit = "us",
			  .ours = median(i2, n),
			  .floor_what = "the same on 4k backing",
			  .floor = median(i4, n) };
	row_extra(&r, "runs", n);
	row_add(&r);
	r = (struct row){ .id = "huge.vmm.convert4k.destructive",
			  .what = "guest 4 KiB round trip destructive, 2m-thp",
			  .unit = "us",
			  .ours = median(d2, n),
			  .floor_what = "the same on 4k backing",
			  .floor = median(d4, n) };
	row_extra(&r, "runs", n);
	row_add(&r);
}

static const char *const guest_ids[][2] = {
	{ "huge.guest.chase", "guest dependent loads over 1 GiB: speed-up" },
	{ "huge.vmm.convert4k.inplace",
	  "guest 4 KiB round trip in place, 2m-thp" },
	{ "huge.vmm.convert4k.destructive",
	  "guest 4 KiB round trip destructive, 2m-thp" },
};

void bench_huge(void)
{
	const char *vmm, *guests, *why;
	char path[1024];

	if (geteuid() || !tu_thp_enable()) {
		const char *r = geteuid() ? "not root: cannot allow shmem THP" :
					    "shmem THP cannot be allowed";

		for (int i = 0; i < 2; i++)
			row_missing(thp_ids[i], thp_whats[i], r);
		row_missing("huge.convert1g.inplace.to_private",
			    "1 GiB in place to private, 2m-thp", r);
		row_missing("huge.convert1g.inplace.to_shared",
			    "1 GiB in place to shared + writes, 2m-thp", r);
		for (int i = 0; i < 3; i++)
			row_missing(guest_ids[i][0], guest_ids[i][1], r);
		return;
	}
	coverage(GM_PAGES_THP_2M, (const char **)thp_ids,
		 (const char **)thp_whats);
	if (tu_hugetlb_reserve(2048, COVER_SIZE / REGION)) {
		coverage(GM_PAGES_HUGETLB_2M, (const char **)tlb_ids,
			 (const char **)tlb_whats);
	} else {
		for (int i = 0; i < 2; i++)
			row_missing(tlb_ids[i], tlb_whats[i],
				    "2048 hugetlb pages of 2 MiB cannot be "
				    "reserved here");
	}
	/* give the pool back before the next rows need the memory */
	tu_knobs_restore();
	if (!tu_thp_enable())
		die("shmem THP no longer allowed");
	convert1g_rows();
	why = vmm_guests(&vmm, &guests);
	snprintf(path, sizeof(path), "%s/bench_chase.elf",
		 guests ? guests : "");
	if (!why && access(path, R_OK))
		why = "bench guests not built";
	if (why) {
		for (int i = 0; i < 3; i++)
			row_missing(guest_ids[i][0], guest_ids[i][1], why);
	} else {
		guest_rows(vmm, guests);
	}
	tu_knobs_restore();
}
