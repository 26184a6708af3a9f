// SPDX-License-Identifier: MIT
/*
 * Rows measured through the public API on whole stores:
 *  - vmas:   the mappings (VMAs) of the host view after each adversarial
 *            pattern, applied with gm_convert on a 1 TiB store and then
 *            opened by the host wherever it asks, against vm.max_map_count;
 *  - pergib: tracking memory (attributes, view, pins, hypervisor-visible
 *            ranges: gm_stats.tracking_bytes) per GiB of guest memory, for a
 *            typical guest and adversarial ones, against a 1 bit/page bitmap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gmem/gmem.h>

#include "bench.h"
#include "patterns.h"

static void must(int ret, const char *what)
{
	if (ret < 0)
		die("%s: %s (%s)", what, gm_strerror(ret), gm_last_error());
}

static void apply(struct gm_store *s, const struct pattern *p)
{
	for (uint64_t i = 0; i < p->nr_ops; i++) {
		const struct pat_op *o = &p->ops[i];

		must(gm_convert(s, o->s << 12, (o->e - o->s) << 12, o->v, 0),
		     "gm_convert");
	}
}

static long max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long v = 65530;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

/*
 * The host asks to open shared pages all over the store, as a VMM touching
 * guest buffers would: every shared range of the pattern, or the shared
 * neighbour of a private page. Refusals (-ENOSPC: over the view budget)
 * are expected; the pages stay reachable through gm_read.
 */
static uint64_t host_touches(struct gm_store *s, const struct pattern *p,
			     uint64_t max, uint64_t *refused)
{
	uint64_t st = cfg.seed ^ 0x5555, n = 0;
	char buf[64];

	*refused = 0;
	for (uint64_t k = 0; k < max && k < p->nr_ops; k++) {
		const struct pat_op *o =
			&p->ops[p->nr_ops <= max ? k :
						   rnd_below(&st, p->nr_ops)];
		uint64_t off = (o->v == GM_ATTR_SHARED ? o->s : o->e) << 12;
		uint64_t len =
			o->v == GM_ATTR_SHARED ? (o->e - o->s) << 12 : 4096;
		int ret;

		if (off + len > gm_store_size(s) ||
		    gm_range_is(s, off, len, GM_ATTR_SHARED) != 1)
			continue;
		/* the host touches the range: opened, not held */
		ret = gm_view_open(s, off, len);
		if (ret == -ENOSPC)
			(*refused)++;
		else
			must(ret ? ret : gm_view_release(s, off, len),
			     "gm_view_open");
		must(gm_read(s, off, buf, sizeof(buf)), "gm_read");
		n++;
	}
	return n;
}

void bench_vmas(void)
{
	long limit = max_map_count();

	for (int pat = 0; pat < PAT_NR; pat++) {
		struct pattern p;
		struct gm_store *s;
		struct gm_stats stats = { .sz = sizeof(stats) };
		uint64_t t0, touched, refused;
		long vmas, total;
		char id[64], what[128];
		struct row r;

		pattern_build(&p, pat, TiB >> 12, cfg.seed * 31 + pat);
		s = bench_store(TiB, p.base == GM_ATTR_SHARED ?
					     GM_STORE_INIT_SHARED :
					     0);
		t0 = now_ns();
		apply(s, &p);
		touched = host_touches(s, &p, 200000, &refused);
		must(gm_store_stats(s, &stats), "gm_store_stats");
		vmas = count_maps(gm_view_base(s), gm_store_size(s));
		total = count_maps(NULL, 0);
		note("vmas %s: %.1f s, %llu touched, %llu refused", p.name,
		     (now_ns() - t0) / 1e9, (unsigned long long)touched,
		     (unsigned long long)refused);

		snprintf(id, sizeof(id), "vmas.%s", p.name);
		snprintf(what, sizeof(what), "view VMAs, 1 TiB, %s", p.what);
		r = (struct row){ .id = strdup(id),
				  .what = strdup(what),
				  .unit = "",
				  .ours = vmas,
				  .floor_what = "vm.max_map_count",
				  .floor = limit };
		row_extra(&r, "process_maps", total);
		row_extra(&r, "extents", stats.extents);
		row_extra(&r, "view_extents", stats.view_extents);
		row_extra(&r, "view_budget", GM_VIEW_BUDGET_DEFAULT);
		row_extra(&r, "host_opens", touched);
		row_extra(&r, "host_opens_refused", refused);
		row_extra(&r, "tracking_bytes", stats.tracking_bytes);
		row_add(&r);
		gm_store_destroy(s);
		pattern_free(&p);
	}
}

/* ---- tracking memory per GiB ---- */

#define GUEST (4 * GiB)

static void per_gib_row(const char *id, const char *what, struct gm_store *s,
			uint64_t pins)
{
	struct gm_stats st = { .sz = sizeof(st) };
	double gib = (double)gm_store_size(s) / GiB;
	struct row r = { .id = id,
			 .what = what,
			 .unit = "B",
			 .floor_what = "bitmap, 1 bit/page" };

	must(gm_store_stats(s, &st), "gm_store_stats");
	r.ours = st.tracking_bytes / gib;
	r.floor = (GiB >> 12) / 8;
	row_extra(&r, "tracking_bytes", st.tracking_bytes);
	row_extra(&r, "guest_gib", gib);
	row_extra(&r, "extents", st.extents);
	row_extra(&r, "view_extents", st.view_extents);
	row_extra(&r, "pins", pins);
	row_extra(&r, "bytearray_per_gib", GiB >> 12);
	row_add(&r);
}

void bench_per_gib(void)
{
	uint64_t st = cfg.seed ^ 0xabcdef;
	struct gm_pin *pins[1024];
	struct gm_store *s;
	struct pattern p;
	unsigned int np;
	static char buf[64 * KiB];

	/*
	 * Typical: a 4 GiB guest, private, with its first 2 MiB
	 * hypervisor-visible (page tables, code), a 64 MiB bounce buffer
	 * shared and written by the host, 64 small shared buffers (4-64 KiB)
	 * and 16 device pins on them.
	 */
	s = bench_store(GUEST, 0);
	must(gm_hv_visible_add(s, 0, 2 * MiB), "gm_hv_visible_add");
	must(gm_convert(s, GiB, 64 * MiB, GM_ATTR_SHARED, 0), "gm_convert");
	for (uint64_t off = GiB; off < GiB + 64 * MiB; off += sizeof(buf))
		must(gm_write(s, off, buf, sizeof(buf)), "gm_write");
	np = 0;
	for (int i = 0; i < 64; i++) {
		uint64_t len = (1 + rnd_below(&st, 16)) << 12;
		uint64_t off = 2 * GiB + (rnd_below(&st, GiB >> 12) << 12);

		must(gm_convert(s, off, len, GM_ATTR_SHARED, 0), "gm_convert");
		if (i % 4 == 0)
			must(gm_pin(s, off, len, 0, &pins[np++]), "gm_pin");
	}
	per_gib_row("pergib.typical",
		    "tracking/GiB, typical 4 GiB guest (bounce buf, 64 bufs)",
		    s, np);
	for (unsigned int i = 0; i < np; i++)
		gm_unpin(pins[i]);
	gm_store_destroy(s);

	/* Adversarial: alternating pages over 4 GiB, 1024 pinned pages. */
	s = bench_store(GUEST, GM_STORE_INIT_SHARED);
	pattern_build(&p, PAT_ALTERNATING, GUEST >> 12, cfg.seed);
	apply(s, &p);
	np = 0;
	for (unsigned int i = 0; i < 1024; i++)
		must(gm_pin(s, (uint64_t)i * 8 * 4096, 4096, 0, &pins[np++]),
		     "gm_pin");
	per_gib_row("pergib.alternating",
		    "tracking/GiB, alternating 4K over 4 GiB, 1024 pins", s,
		    np);
	for (unsigned int i = 0; i < np; i++)
		gm_unpin(pins[i]);
	gm_store_destroy(s);
	pattern_free(&p);

	/* Adversarial: 1 % random private pages over 4 GiB. */
	s = bench_store(GUEST, GM_STORE_INIT_SHARED);
	pattern_build(&p, PAT_RANDOM1PCT, GUEST >> 12, cfg.seed);
	apply(s, &p);
	per_gib_row("pergib.random1pct", "tracking/GiB, 1% private at random",
		    s, 0);
	gm_store_destroy(s);
	pattern_free(&p);
}
