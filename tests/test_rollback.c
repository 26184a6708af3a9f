// SPDX-License-Identifier: MIT
/*
 * All or nothing: every fallible step of a conversion (GM_FAULT_*) is made
 * to fail at its 1st, 2nd, 3rd... call, over random mixed patterns, both
 * directions, in place and destructive, eager and lazy views. After each
 * failure the store must be exactly as before: every page's state, the
 * contents of every page (shared ones through gm_read, all of them through
 * a test-side mapping of the fd), the view's open state, the extent
 * counts; failed_requests counts it; every listener prepare that succeeded
 * is aborted and nothing is committed. The same conversion then succeeds
 * without faults. A failing punch may be absorbed (the header: a failing
 * step makes the conversion fail, but the pages may be zeroed another
 * way): then the conversion succeeds and the changed pages hold zeroes,
 * with no old byte readable anywhere. And the header's one exception: when
 * both the punch and the zeroing of a changed sub-range fail, the changed
 * sub-ranges before it (error_offset) stay discarded, their state unchanged;
 * that case is checked for exactly that and nothing more.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "testing.h"

#define NPAGES 48

enum inj_mode {
	INJ_OFF,
	INJ_ONE, /* only the nth call of site fails */
	INJ_FROM, /* every call of site from the nth on fails */
	INJ_ALL_FROM, /* every call of any site from the nth on fails */
};

struct inj {
	enum inj_mode mode;
	enum gm_fault_site site;
	int nth;
	int err;
	int calls[GM_FAULT_NR]; /* calls per site since armed */
	int all_calls;
	int fired; /* failures injected */
	int fired_site[GM_FAULT_NR];
};

static int inject(void *opaque, enum gm_fault_site site)
{
	struct inj *in = opaque;
	bool fail = false;

	assert_true(site >= GM_FAULT_ALLOC && site < GM_FAULT_NR);
	if (in->mode == INJ_OFF)
		return 0;
	in->calls[site]++;
	in->all_calls++;
	/*
	 * The zeroing window is only used when a punch fails: make every
	 * punch fail when it is the site under test.
	 */
	if (site == GM_FAULT_PUNCH && in->site == GM_FAULT_ZERO_WINDOW &&
	    (in->mode == INJ_ONE || in->mode == INJ_FROM)) {
		in->fired_site[site]++;
		return in->err;
	}
	switch (in->mode) {
	case INJ_ONE:
		fail = site == in->site && in->calls[site] == in->nth;
		break;
	case INJ_FROM:
		fail = site == in->site && in->calls[site] >= in->nth;
		break;
	case INJ_ALL_FROM:
		fail = in->all_calls >= in->nth;
		break;
	default:
		break;
	}
	if (fail) {
		in->fired++;
		in->fired_site[site]++;
		return in->err;
	}
	return 0;
}

static void arm(struct inj *in, enum inj_mode mode, enum gm_fault_site site,
		int nth, int err)
{
	memset(in, 0, sizeof(*in));
	in->site = site;
	in->nth = nth;
	in->err = err;
	in->mode = mode;
}

/* Listener bookkeeping: prepares must be matched by aborts on failure. */
struct lcount {
	int prepare, commit, abort;
};

static int lc_prepare(void *o, const struct gm_range_change *ch)
{
	((struct lcount *)o)->prepare++;
	return 0;
}

static void lc_commit(void *o, const struct gm_range_change *ch)
{
	((struct lcount *)o)->commit++;
}

static void lc_abort(void *o, const struct gm_range_change *ch)
{
	((struct lcount *)o)->abort++;
}

static const struct gm_listener_ops lc_ops = {
	.sz = sizeof(struct gm_listener_ops),
	.prepare = lc_prepare,
	.commit = lc_commit,
	.abort = lc_abort,
};

struct snap {
	uint8_t attrs[NPAGES];
	uint8_t open[NPAGES];
	uint8_t raw[NPAGES * 4096]; /* through the fd */
	uint64_t extents, view_extents;
};

struct fix {
	struct gm_store *s;
	struct inj in;
	struct lcount lc[2];
	struct gm_listener *l[2];
	uint8_t *raw;
	uint64_t rng;
	uint32_t gen;
};

/* State, view and contents; no call that could open the view. */
static void take(struct fix *f, struct snap *sn)
{
	tu_attrs(f->s, sn->attrs);
	sn->extents = gm_extent_count(f->s);
	sn->view_extents = gm_view_extent_count(f->s);
	for (int i = 0; i < NPAGES; i++) {
		int r = gm_view_is_open(f->s, i * PG, PG);

		assert_true(r == 0 || r == 1);
		sn->open[i] = r;
	}
	memcpy(sn->raw, f->raw, NPAGES * PG);
}

/*
 * gm_read of every page: the snapshot's contents for shared pages, -EFAULT
 * and an untouched buffer for private ones. (May open pages in a lazy view.)
 */
static void check_reads(struct fix *f, const struct snap *sn, const char *what)
{
	static uint8_t buf[4096];

	for (int i = 0; i < NPAGES; i++) {
		int r;

		memset(buf, 0x5A, PG);
		r = gm_read(f->s, i * PG, buf, PG);
		if (sn->attrs[i] == GM_ATTR_SHARED) {
			if (r)
				fail_msg("%s: gm_read of shared page %d: %d",
					 what, i, r);
			if (memcmp(buf, sn->raw + i * PG, PG))
				fail_msg("%s: gm_read of page %d differs from "
					 "the backing",
					 what, i);
		} else {
			if (r != -EFAULT)
				fail_msg("%s: gm_read of private page %d: %d",
					 what, i, r);
			for (int k = 0; k < (int)PG; k++)
				if (buf[k] != 0x5A)
					fail_msg("%s: gm_read of private page "
						 "%d wrote the buffer",
						 what, i);
		}
	}
}

static void compare(struct fix *f, const struct snap *a, const char *what)
{
	static struct snap now;

	take(f, &now);
	for (int i = 0; i < NPAGES; i++) {
		if (now.attrs[i] != a->attrs[i])
			fail_msg("%s: page %d state %u, was %u", what, i,
				 now.attrs[i], a->attrs[i]);
		if (now.open[i] != a->open[i])
			fail_msg("%s: page %d view open %u, was %u", what, i,
				 now.open[i], a->open[i]);
		if (memcmp(now.raw + i * PG, a->raw + i * PG, PG))
			fail_msg("%s: page %d (%s) contents changed", what, i,
				 a->attrs[i] ? "private" : "shared");
	}
	assert_int_equal(now.extents, a->extents);
	assert_int_equal(now.view_extents, a->view_extents);
	check_reads(f, a, what);
}

static void fix_init(struct fix *f, unsigned int flags, uint64_t seed)
{
	struct gm_store_opts o;

	memset(f, 0, sizeof(*f));
	tu_opts(&o, NPAGES * PG, flags);
	f->s = tu_store_with(&o);
	assert_int_equal(gm_test_set_fault_inject(f->s, inject, &f->in), 0);
	f->raw = tu_raw_map(f->s);
	f->rng = seed;
	for (int i = 0; i < 2; i++)
		assert_int_equal(gm_listener_register(f->s, &lc_ops, &f->lc[i],
						      &f->l[i]),
				 0);
}

static void fix_fini(struct fix *f)
{
	tu_raw_unmap(f->s, f->raw);
	for (int i = 0; i < 2; i++)
		gm_listener_unregister(f->l[i]);
	assert_int_equal(gm_store_destroy(f->s), 0);
}

/*
 * A fresh random mixed pattern: runs of random length and state, every
 * page given distinct contents (written while shared; private pages keep
 * theirs in place), some pages touched through the API (lazy view).
 */
static void scramble(struct fix *f)
{
	uint8_t want[NPAGES];
	int i = 0;

	arm(&f->in, INJ_OFF, 0, 0, 0);
	assert_int_equal(gm_convert(f->s, 0, NPAGES * PG, GM_ATTR_SHARED, 0),
			 0);
	f->gen++;
	for (int p = 0; p < NPAGES; p++)
		tu_pat_fill(f->raw + p * PG, PG, p * PG, f->gen);
	while (i < NPAGES) {
		int len = 1 + tu_rand(&f->rng) % 6;
		uint8_t v = tu_rand(&f->rng) & 1;

		for (; len && i < NPAGES; len--)
			want[i++] = v;
	}
	tu_apply(f->s, want, NPAGES);
	/* Touch a few shared pages through the API (opens them if lazy). */
	for (int k = 0; k < 6; k++) {
		int p = tu_rand(&f->rng) % NPAGES;
		uint8_t b;

		if (want[p] == GM_ATTR_SHARED)
			assert_int_equal(gm_read(f->s, p * PG + 5, &b, 1), 0);
	}
}

static void random_range(struct fix *f, uint64_t *off, uint64_t *len)
{
	uint64_t a = tu_rand(&f->rng) % NPAGES, b = tu_rand(&f->rng) % NPAGES;

	if (tu_rand(&f->rng) % 3 == 0) {
		a = 0;
		b = NPAGES - 1;
	}
	if (a > b) {
		uint64_t t = a;

		a = b;
		b = t;
	}
	*off = a * PG;
	*len = (b + 1 - a) * PG;
}

/* After a successful conversion: states, and the contents rule. */
static void check_success(struct fix *f, const struct snap *before,
			  uint64_t off, uint64_t len, enum gm_attr to,
			  unsigned int flags, const char *what)
{
	static struct snap now;
	uint64_t p0 = off / PG, p1 = (off + len) / PG;

	take(f, &now);
	for (uint64_t p = 0; p < NPAGES; p++) {
		bool in = p >= p0 && p < p1;
		bool changed = in && before->attrs[p] != to;

		if (now.attrs[p] != (in ? to : before->attrs[p]))
			fail_msg("%s: page %llu has state %u", what,
				 (unsigned long long)p, now.attrs[p]);
		if (changed && (flags & GM_CONVERT_DESTRUCTIVE)) {
			if (tu_zero_check(now.raw + p * PG, PG) != PG)
				fail_msg("%s: page %llu: destructive "
					 "conversion left old bytes",
					 what, (unsigned long long)p);
		} else if (memcmp(now.raw + p * PG, before->raw + p * PG, PG)) {
			fail_msg("%s: page %llu: contents changed by a "
				 "conversion that keeps them",
				 what, (unsigned long long)p);
		}
	}
	/* gm_read agrees: zeroes where discarded, -EFAULT where private. */
	check_reads(f, &now, what);
}

static const char *site_name(enum gm_fault_site s)
{
	static const char *n[] = { "any",	"ALLOC", "VIEW_CLOSE",
				   "VIEW_OPEN", "PUNCH", "ZERO_WINDOW" };

	return s < GM_FAULT_NR ? n[s] : "?";
}

static const char *mode_name(enum inj_mode m)
{
	static const char *n[] = { "off", "one", "from", "all-from" };

	return n[m];
}

struct tally {
	int failed, absorbed, unreached;
	int partial; /* failed with earlier sub-ranges discarded (allowed) */
	int fired[GM_FAULT_NR]; /* trials where the site failed */
};

/*
 * One trial: scramble, convert with the injection armed, check the
 * outcome, retry without injection. Returns 1 if the injection was reached.
 */
static int trial(struct fix *f, enum inj_mode mode, enum gm_fault_site site,
		 int nth, enum gm_attr to, unsigned int flags, struct tally *t)
{
	static struct snap before;
	struct gm_convert_opts co = { .sz = sizeof(co) };
	struct gm_stats s0, s1;
	struct lcount lc0[2];
	uint64_t off, len;
	char what[160];
	int ret;

	scramble(f);
	random_range(f, &off, &len);
	/* Make sure something changes. */
	if (gm_range_is(f->s, off, len, to) == 1)
		assert_int_equal(gm_convert(f->s, off, PG, !to, 0), 0);
	take(f, &before);
	tu_stats(f->s, &s0);
	memcpy(lc0, f->lc, sizeof(lc0));
	snprintf(what, sizeof(what),
		 "%s %s at call %d, %s%s [0x%llx, +0x%llx) to %s",
		 mode_name(mode),
		 mode == INJ_ALL_FROM ? "any step" : site_name(site), nth,
		 flags & GM_CONVERT_DESTRUCTIVE ? "destructive" : "in place",
		 "", (unsigned long long)off, (unsigned long long)len,
		 to ? "private" : "shared");

	arm(&f->in, mode, site, nth, -EIO);
	ret = gm_convert_ex(f->s, off, len, to, flags, &co);
	f->in.mode = INJ_OFF;
	tu_stats(f->s, &s1);

	for (int k = 0; k < GM_FAULT_NR; k++)
		t->fired[k] += f->in.fired_site[k] > 0;
	if (!f->in.fired) {
		/* Not reached: a plain successful conversion. */
		if (ret)
			fail_msg("%s: not injected, yet %d (%s)", what, ret,
				 gm_last_error());
		check_success(f, &before, off, len, to, flags, what);
		t->unreached++;
		return 0;
	}
	if (ret == 0) {
		/*
		 * Absorbed. Allowed: a failed punch (the pages are zeroed
		 * another way) and a failed view open of new shared pages
		 * (the view is a cache; the pages stay reachable through
		 * the API). Anything else must fail the conversion.
		 */
		bool ok = true;

		for (int sidx = GM_FAULT_ALLOC; sidx < GM_FAULT_NR; sidx++)
			if (f->in.fired_site[sidx] && sidx != GM_FAULT_PUNCH &&
			    sidx != GM_FAULT_VIEW_OPEN)
				ok = false;
		if (!ok)
			fail_msg("%s: injected failure was ignored", what);
		check_success(f, &before, off, len, to, flags, what);
		assert_int_equal(s1.failed_requests, s0.failed_requests);
		for (int i = 0; i < 2; i++)
			assert_int_equal(f->lc[i].abort, lc0[i].abort);
		t->absorbed++;
		return 1;
	}
	/* Failed: exactly as before. */
	assert_int_equal(ret, -EIO);
	assert_true(strlen(gm_last_error()) > 0);
	assert_true(co.error_offset >= off && co.error_offset < off + len);
	if ((flags & GM_CONVERT_DESTRUCTIVE) &&
	    f->in.fired_site[GM_FAULT_PUNCH] &&
	    f->in.fired_site[GM_FAULT_ZERO_WINDOW]) {
		/*
		 * The header's one exception: punch and zeroing both failed
		 * for the changed sub-range at error_offset; the changed
		 * sub-ranges before it stay discarded (zeroes), their state
		 * unchanged. Everything else is exactly as before.
		 */
		static struct snap expect;
		uint64_t e = co.error_offset / PG;

		assert_int_equal(co.error_offset % PG, 0);
		assert_int_not_equal(before.attrs[e], to);
		assert_true(e == off / PG || before.attrs[e - 1] == to);
		expect = before;
		for (uint64_t p = off / PG; p < e; p++)
			if (before.attrs[p] != to)
				memset(expect.raw + p * PG, 0, PG);
		compare(f, &expect, what);
		t->partial++;
	} else {
		compare(f, &before, what);
	}
	assert_int_equal(s1.failed_requests, s0.failed_requests + 1);
	for (int i = 0; i < 2; i++) {
		int prepared = f->lc[i].prepare - lc0[i].prepare;

		assert_int_equal(f->lc[i].commit, lc0[i].commit);
		if (f->lc[i].abort - lc0[i].abort != prepared)
			fail_msg("%s: listener %d: %d prepares, %d aborts",
				 what, i, prepared,
				 f->lc[i].abort - lc0[i].abort);
	}
	t->failed++;
	/* And without faults the same conversion works. */
	ret = gm_convert(f->s, off, len, to, flags);
	if (ret)
		fail_msg("%s: retry without faults: %d (%s)", what, ret,
			 gm_last_error());
	check_success(f, &before, off, len, to, flags, what);
	return 1;
}

static void run_matrix(unsigned int store_flags, enum inj_mode mode,
		       uint64_t seed)
{
	struct fix *f = malloc(sizeof(*f));
	struct tally t = { 0 };

	assert_non_null(f);
	fix_init(f, store_flags, seed);
	for (int dir = 0; dir < 2; dir++) {
		for (int destr = 0; destr < 2; destr++) {
			enum gm_attr to =
				dir ? GM_ATTR_SHARED : GM_ATTR_PRIVATE;
			unsigned int flags = destr ? GM_CONVERT_DESTRUCTIVE : 0;

			for (int site = GM_FAULT_ALLOC; site < GM_FAULT_NR;
			     site++) {
				if (mode == INJ_ALL_FROM &&
				    site != GM_FAULT_ALLOC)
					continue;
				/*
				 * nth = 1, 2, 3... until trials stop reaching
				 * the injection point (3 misses in a row:
				 * patterns are random), over a few rounds.
				 */
				for (int round = 0; round < 4; round++) {
					int misses = 0;

					for (int nth = 1;
					     nth <= 64 && misses < 3; nth++) {
						if (trial(f, mode, site, nth,
							  to, flags, &t))
							misses = 0;
						else
							misses++;
					}
				}
			}
		}
	}
	fprintf(stderr,
		"rollback (flags %u, %s): %d failed and rolled back (%d of "
		"them after punch and zeroing failed), %d absorbed, %d not "
		"reached\n",
		store_flags, mode_name(mode), t.failed, t.partial, t.absorbed,
		t.unreached);
	for (int k = GM_FAULT_ALLOC; k < GM_FAULT_NR; k++)
		fprintf(stderr, "  %s failed in %d trials\n",
			site_name((enum gm_fault_site)k), t.fired[k]);
	assert_true(t.failed > 0);
	/* Every step was made to fail somewhere (eager: views open too). */
	for (int k = GM_FAULT_ALLOC; k < GM_FAULT_NR; k++)
		if (mode == INJ_ONE && !(store_flags & GM_STORE_VIEW_LAZY))
			assert_true(t.fired[k] > 0);
	fix_fini(f);
	free(f);
}

static void test_rollback_one_eager(void **state)
{
	run_matrix(0, INJ_ONE, tu_seed("rollback one eager", 0xfa110001));
}

static void test_rollback_one_lazy(void **state)
{
	run_matrix(GM_STORE_VIEW_LAZY, INJ_ONE,
		   tu_seed("rollback one lazy", 0xfa110002));
}

static void test_rollback_from(void **state)
{
	run_matrix(0, INJ_FROM, tu_seed("rollback from", 0xfa110003));
}

static void test_rollback_all_from(void **state)
{
	run_matrix(0, INJ_ALL_FROM, tu_seed("rollback all-from", 0xfa110004));
	run_matrix(GM_STORE_VIEW_LAZY, INJ_ALL_FROM,
		   tu_seed("rollback all-from lazy", 0xfa110005));
}

/*
 * The same with a small view budget, where closing part of a run closes
 * the whole run: the rollback must reopen all of it.
 */
static void test_rollback_budget(void **state)
{
	struct fix *f = malloc(sizeof(*f));
	struct gm_store_opts o;
	struct tally t = { 0 };

	assert_non_null(f);
	memset(f, 0, sizeof(*f));
	tu_opts(&o, NPAGES * PG, 0);
	o.view_budget = 6;
	f->s = tu_store_with(&o);
	assert_int_equal(gm_test_set_fault_inject(f->s, inject, &f->in), 0);
	f->raw = tu_raw_map(f->s);
	f->rng = tu_seed("rollback budget", 0xfa110006);
	for (int i = 0; i < 2; i++)
		assert_int_equal(gm_listener_register(f->s, &lc_ops, &f->lc[i],
						      &f->l[i]),
				 0);
	for (int k = 0; k < 3; k++)
		for (int nth = 1; nth <= 6; nth++) {
			trial(f, INJ_ONE, GM_FAULT_VIEW_CLOSE, nth,
			      GM_ATTR_PRIVATE, 0, &t);
			trial(f, INJ_ALL_FROM, 0, nth, GM_ATTR_PRIVATE,
			      GM_CONVERT_DESTRUCTIVE, &t);
			assert_true(gm_view_extent_count(f->s) <= 6);
		}
	fprintf(stderr, "rollback budget: %d failed, %d absorbed\n", t.failed,
		t.absorbed);
	assert_true(t.failed > 0);
	fix_fini(f);
	free(f);
}

struct open_fault {
	int nth, calls;
};

static int fail_nth_open(void *opaque, enum gm_fault_site site)
{
	struct open_fault *f = opaque;

	return site == GM_FAULT_VIEW_OPEN && ++f->calls == f->nth ? -ENOMEM : 0;
}

/*
 * gm_hv_visible_add opens only the closed pieces of its range; if one
 * fails, it closes again what it opened and leaves open pages (a held
 * ring, say) alone: the view is exactly as before.
 */
static void test_hv_add_rollback(void **state)
{
	const int n = 16;
	struct open_fault f = { 0 };
	struct gm_store *s = tu_store(n * PG, GM_STORE_INIT_SHARED);
	uint8_t *v = gm_view_base(s);
	int before[16];

	assert_int_equal(gm_test_set_fault_inject(s, fail_nth_open, &f), 0);
	/* open 0-3 (3 held), closed 4-5 and 9-10 (private), open 6-8 */
	assert_int_equal(gm_view_open(s, 3 * PG, PG), 0);
	assert_int_equal(gm_convert(s, 4 * PG, 2 * PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_convert(s, 9 * PG, 2 * PG, GM_ATTR_PRIVATE, 0), 0);
	for (int i = 0; i < n; i++)
		before[i] = gm_view_is_open(s, i * PG, PG);
	for (int nth = 1; nth <= 2; nth++) {
		f = (struct open_fault){ .nth = nth };
		assert_int_equal(gm_hv_visible_add(s, 2 * PG, 10 * PG),
				 -ENOMEM);
		assert_int_equal(f.calls, nth);
		assert_int_equal(gm_hv_visible_overlaps(s, 0, n * PG), 0);
		for (int i = 0; i < n; i++)
			assert_int_equal(gm_view_is_open(s, i * PG, PG),
					 before[i]);
		assert_int_equal(tu_probe(v + 3 * PG, true), 0);
		assert_int_equal(tu_probe(v + 7 * PG, true), 0);
		assert_int_equal(tu_probe(v + 4 * PG, false), SIGSEGV);
		assert_int_equal(tu_probe(v + 10 * PG, false), SIGSEGV);
	}
	/* Without a failure: two pieces opened, the range now visible. */
	f = (struct open_fault){ .nth = 0 };
	assert_int_equal(gm_hv_visible_add(s, 2 * PG, 10 * PG), 0);
	assert_int_equal(f.calls, 2);
	assert_int_equal(gm_view_is_open(s, 2 * PG, 10 * PG), 1);
	assert_int_equal(tu_probe(v + 10 * PG, true), 0);
	assert_int_equal(gm_view_release(s, 3 * PG, PG), 0);
	assert_int_equal(gm_store_destroy(s), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rollback_one_eager),
		cmocka_unit_test(test_rollback_one_lazy),
		cmocka_unit_test(test_rollback_from),
		cmocka_unit_test(test_rollback_all_from),
		cmocka_unit_test(test_rollback_budget),
		cmocka_unit_test(test_hv_add_rollback),
	};

	tu_init(argc, argv, "test_rollback");
	return cmocka_run_group_tests_name(tu_group("test_rollback"), tests,
					   NULL, NULL);
}
