// SPDX-License-Identifier: MIT
/*
 * Conversion semantics: in place keeps bytes, destructive zeroes them (no
 * old byte readable from the view, gm_read or the fd), idempotence, argument
 * errors leave the store unchanged, error_offset and pages_changed, and the
 * listeners: prepare/commit/abort order, once per maximal changed sub-range,
 * vetoes, and -EDEADLK for calls back into the store from a callback.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_util.h"

/* ---- helpers ---- */

static void expect_zero(struct gm_store *s, uint64_t off, uint64_t len)
{
	uint8_t *b = malloc(len);
	size_t bad;

	assert_non_null(b);
	memset(b, 0xEE, len);
	assert_int_equal(gm_read(s, off, b, len), 0);
	bad = tu_zero_check(b, len);
	if (bad != len)
		fprintf(stderr, "byte 0x%llx: 0x%02x, expected 0\n",
			(unsigned long long)(off + bad), b[bad]);
	assert_int_equal(bad, len);
	free(b);
}

/* ---- in place and destructive ---- */

static void test_in_place_keeps_bytes(void **state)
{
	const uint64_t n = 32;
	const unsigned int flags[] = { 0, GM_STORE_VIEW_LAZY };

	for (size_t f = 0; f < 2; f++) {
		struct gm_store *s =
			tu_store(n * PG, GM_STORE_INIT_SHARED | flags[f]);
		uint8_t *view = gm_view_base(s);

		tu_write_pattern(s, 0, n * PG, 11);
		/* Round trip of a middle range, then the whole store. */
		assert_int_equal(
			gm_convert(s, 4 * PG, 9 * PG, GM_ATTR_PRIVATE, 0), 0);
		assert_int_equal(
			gm_range_is(s, 4 * PG, 9 * PG, GM_ATTR_PRIVATE), 1);
		{
			uint8_t b[8];

			assert_int_equal(gm_read(s, 5 * PG, b, 8), -EFAULT);
		}
		tu_expect_pattern(s, 0, 4 * PG, 11);
		tu_expect_pattern(s, 13 * PG, (n - 13) * PG, 11);
		assert_int_equal(
			gm_convert(s, 4 * PG, 9 * PG, GM_ATTR_SHARED, 0), 0);
		tu_expect_pattern(s, 0, n * PG, 11);
		assert_int_equal(gm_convert(s, 0, n * PG, GM_ATTR_PRIVATE, 0),
				 0);
		assert_int_equal(gm_convert(s, 0, n * PG, GM_ATTR_SHARED, 0),
				 0);
		tu_expect_pattern(s, 0, n * PG, 11);
		/* Through the view too (open it first in lazy mode). */
		assert_int_equal(gm_view_open(s, 0, n * PG), 0);
		assert_int_equal(tu_pat_check(view, n * PG, 0, 11), n * PG);
		assert_int_equal(gm_view_release(s, 0, n * PG), 0);
		gm_store_destroy(s);
	}
}

static void test_destructive_zeroes(void **state)
{
	const uint64_t n = 16;

	for (int lazy = 0; lazy < 2; lazy++) {
		struct gm_store *s = tu_store(
			n * PG,
			GM_STORE_INIT_SHARED | (lazy ? GM_STORE_VIEW_LAZY : 0));
		uint8_t *view = gm_view_base(s), *raw = tu_raw_map(s);
		struct gm_stats st;

		tu_write_pattern(s, 0, n * PG, 21);
		/* Shared -> private, destructive. */
		assert_int_equal(gm_convert(s, 2 * PG, 3 * PG, GM_ATTR_PRIVATE,
					    GM_CONVERT_DESTRUCTIVE),
				 0);
		/* Not even the fd shows an old byte. */
		assert_int_equal(tu_zero_check(raw + 2 * PG, 3 * PG), 3 * PG);
		tu_expect_pattern(s, 0, 2 * PG, 21);
		tu_expect_pattern(s, 5 * PG, (n - 5) * PG, 21);
		assert_int_equal(
			gm_convert(s, 2 * PG, 3 * PG, GM_ATTR_SHARED, 0), 0);
		expect_zero(s, 2 * PG, 3 * PG);
		assert_int_equal(gm_view_open(s, 2 * PG, 3 * PG), 0);
		assert_int_equal(tu_zero_check(view + 2 * PG, 3 * PG), 3 * PG);
		assert_int_equal(gm_view_release(s, 2 * PG, 3 * PG), 0);

		/* Private -> shared, destructive. */
		tu_write_pattern(s, 8 * PG, 4 * PG, 22);
		assert_int_equal(
			gm_convert(s, 8 * PG, 4 * PG, GM_ATTR_PRIVATE, 0), 0);
		assert_int_equal(gm_convert(s, 8 * PG, 4 * PG, GM_ATTR_SHARED,
					    GM_CONVERT_DESTRUCTIVE),
				 0);
		expect_zero(s, 8 * PG, 4 * PG);
		assert_int_equal(tu_zero_check(raw + 8 * PG, 4 * PG), 4 * PG);
		assert_int_equal(gm_view_open(s, 8 * PG, 4 * PG), 0);
		assert_int_equal(tu_zero_check(view + 8 * PG, 4 * PG), 4 * PG);
		assert_int_equal(gm_view_release(s, 8 * PG, 4 * PG), 0);

		/*
		 * Only the pages that change state are discarded: pages 13 and
		 * 15 private (in place), then [12, 16) destructive to shared.
		 */
		tu_write_pattern(s, 12 * PG, 4 * PG, 23);
		assert_int_equal(gm_convert(s, 13 * PG, PG, GM_ATTR_PRIVATE, 0),
				 0);
		assert_int_equal(gm_convert(s, 15 * PG, PG, GM_ATTR_PRIVATE, 0),
				 0);
		tu_stats(s, &st);
		{
			uint64_t dp = st.destructive_pages;
			uint64_t dr = st.destructive_requests;
			struct gm_convert_opts co = { .sz = sizeof(co) };

			assert_int_equal(gm_convert_ex(s, 12 * PG, 4 * PG,
						       GM_ATTR_SHARED,
						       GM_CONVERT_DESTRUCTIVE,
						       &co),
					 0);
			assert_int_equal(co.pages_changed, 2);
			tu_stats(s, &st);
			assert_int_equal(st.destructive_pages, dp + 2);
			assert_int_equal(st.destructive_requests, dr + 1);
		}
		tu_expect_pattern(s, 12 * PG, PG, 23);
		expect_zero(s, 13 * PG, PG);
		tu_expect_pattern(s, 14 * PG, PG, 23);
		expect_zero(s, 15 * PG, PG);
		tu_raw_unmap(s, raw);
		gm_store_destroy(s);
	}
}

static void test_idempotent(void **state)
{
	const uint64_t n = 8;
	struct gm_store *s = tu_store(n * PG, GM_STORE_INIT_SHARED);
	struct gm_stats a, b;
	struct gm_convert_opts co = { .sz = sizeof(co) };

	tu_write_pattern(s, 0, n * PG, 31);
	assert_int_equal(gm_convert(s, 4 * PG, 4 * PG, GM_ATTR_PRIVATE, 0), 0);
	tu_stats(s, &a);
	/* Already shared, even destructive: nothing changes. */
	co.pages_changed = 99;
	assert_int_equal(gm_convert_ex(s, 0, 4 * PG, GM_ATTR_SHARED,
				       GM_CONVERT_DESTRUCTIVE, &co),
			 0);
	assert_int_equal(co.pages_changed, 0);
	assert_int_equal(gm_convert(s, 4 * PG, 4 * PG, GM_ATTR_PRIVATE,
				    GM_CONVERT_DESTRUCTIVE),
			 0);
	assert_int_equal(gm_convert(s, PG, PG, GM_ATTR_SHARED, 0), 0);
	tu_stats(s, &b);
	assert_int_equal(b.noop_requests, a.noop_requests + 3);
	assert_int_equal(b.to_private_pages, a.to_private_pages);
	assert_int_equal(b.to_shared_pages, a.to_shared_pages);
	assert_int_equal(b.destructive_pages, a.destructive_pages);
	assert_int_equal(b.failed_requests, a.failed_requests);
	assert_int_equal(b.extents, a.extents);
	tu_expect_pattern(s, 0, 4 * PG, 31);
	assert_int_equal(gm_convert(s, 4 * PG, 4 * PG, GM_ATTR_SHARED, 0), 0);
	tu_expect_pattern(s, 0, n * PG, 31);
	gm_store_destroy(s);
}

/*
 * The state and contents of a small store, to compare before/after: up to
 * one 2 MiB hugetlb page.
 */
#define SNAP_PAGES 512
struct snap {
	uint8_t attrs[SNAP_PAGES];
	uint8_t data[SNAP_PAGES * 4096];
	uint64_t extents;
};

static void take_snap(struct gm_store *s, struct snap *sn)
{
	uint64_t n = gm_store_size(s) / PG;

	assert_true(n <= SNAP_PAGES);
	tu_attrs(s, sn->attrs);
	sn->extents = gm_extent_count(s);
	for (uint64_t i = 0; i < n; i++) {
		int ret = gm_read(s, i * PG, sn->data + i * PG, PG);

		assert_int_equal(ret,
				 sn->attrs[i] == GM_ATTR_SHARED ? 0 : -EFAULT);
	}
}

static void expect_snap(struct gm_store *s, const struct snap *sn)
{
	static struct snap now;
	uint64_t n = gm_store_size(s) / PG;

	take_snap(s, &now);
	assert_memory_equal(now.attrs, sn->attrs, n);
	assert_int_equal(now.extents, sn->extents);
	for (uint64_t i = 0; i < n; i++)
		if (sn->attrs[i] == GM_ATTR_SHARED)
			assert_memory_equal(now.data + i * PG,
					    sn->data + i * PG, PG);
}

static void test_bad_args(void **state)
{
	const uint64_t size = tu_round(16 * PG);
	struct gm_store *s = tu_store(size, GM_STORE_INIT_SHARED);
	static struct snap before;
	struct gm_convert_opts co;
	struct gm_stats st0, st1;
	struct {
		uint64_t off, len;
		int to;
		unsigned int flags;
		int err;
	} bad[] = {
		{ 1, PG, GM_ATTR_PRIVATE, 0, -EINVAL },
		{ PG / 2, PG, GM_ATTR_PRIVATE, 0, -EINVAL },
		{ 0, PG + 1, GM_ATTR_PRIVATE, 0, -EINVAL },
		{ 0, 100, GM_ATTR_PRIVATE, 0, -EINVAL },
		{ 0, 0, GM_ATTR_PRIVATE, 0, -EINVAL },
		{ PG, 0, GM_ATTR_SHARED, 0, -EINVAL },
		{ 0, size + PG, GM_ATTR_PRIVATE, 0, -ERANGE },
		{ size - PG, 2 * PG, GM_ATTR_PRIVATE, 0, -ERANGE },
		{ size, PG, GM_ATTR_PRIVATE, 0, -ERANGE },
		{ size * 4, PG, GM_ATTR_SHARED, 0, -ERANGE },
		/* off + len overflows to a small number */
		{ 2 * PG, UINT64_MAX - PG + 1, GM_ATTR_PRIVATE, 0, -ERANGE },
		{ UINT64_MAX - PG + 1, 2 * PG, GM_ATTR_PRIVATE, 0, -ERANGE },
		{ UINT64_MAX - PG + 1, PG, GM_ATTR_PRIVATE, 0, -ERANGE },
		{ 0, PG, 2, 0, -EINVAL },
		{ 0, PG, -1, 0, -EINVAL },
		{ 0, PG, GM_ATTR_PRIVATE, 1u << 20, -EINVAL },
	};

	tu_write_pattern(s, 0, size, 41);
	assert_int_equal(gm_convert(s, 3 * PG, 2 * PG, GM_ATTR_PRIVATE, 0), 0);
	take_snap(s, &before);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret;

		tu_stats(s, &st0);
		memset(&co, 0, sizeof(co));
		co.sz = sizeof(co);
		co.error_offset = 12345;
		ret = gm_convert_ex(s, bad[i].off, bad[i].len,
				    (enum gm_attr)bad[i].to, bad[i].flags, &co);
		if (ret != bad[i].err)
			fprintf(stderr,
				"case %zu: convert(0x%llx, 0x%llx, %d, 0x%x) "
				"= %d, expected %d\n",
				i, (unsigned long long)bad[i].off,
				(unsigned long long)bad[i].len, bad[i].to,
				bad[i].flags, ret, bad[i].err);
		assert_int_equal(ret, bad[i].err);
		assert_true(strlen(gm_last_error()) > 0);
		assert_int_equal(co.error_offset, bad[i].off);
		assert_int_equal(co.pages_changed, 0);
		assert_int_equal(
			gm_convert(s, bad[i].off, bad[i].len,
				   (enum gm_attr)bad[i].to,
				   bad[i].flags | GM_CONVERT_DESTRUCTIVE),
			bad[i].err);
		tu_stats(s, &st1);
		/* Each call above returned an error. */
		assert_int_equal(st1.failed_requests, st0.failed_requests + 2);
		expect_snap(s, &before);
	}
	/* opts->sz not covering sz itself (other sizes: test_abi.c) */
	memset(&co, 0, sizeof(co));
	co.sz = sizeof(co.sz) - 1;
	assert_int_equal(gm_convert_ex(s, 0, PG, GM_ATTR_PRIVATE, 0, &co),
			 -EINVAL);
	co.sz = 0;
	assert_int_equal(gm_convert_ex(s, 0, PG, GM_ATTR_PRIVATE, 0, &co),
			 -EINVAL);
	assert_int_equal(gm_convert(NULL, 0, PG, GM_ATTR_PRIVATE, 0), -EINVAL);
	expect_snap(s, &before);
	/* opts NULL is fine; the exact end works. */
	assert_int_equal(
		gm_convert_ex(s, size - PG, PG, GM_ATTR_PRIVATE, 0, NULL), 0);
	gm_store_destroy(s);
}

static void test_convert_ex_results(void **state)
{
	struct gm_store *s = tu_store(16 * PG, 0);
	struct gm_convert_opts co = { .sz = sizeof(co) };

	assert_int_equal(gm_convert(s, 2 * PG, PG, GM_ATTR_SHARED, 0), 0);
	co.error_offset = 77;
	assert_int_equal(gm_convert_ex(s, 0, 8 * PG, GM_ATTR_SHARED, 0, &co),
			 0);
	assert_int_equal(co.pages_changed, 7);
	assert_int_equal(co.error_offset, 0);
	assert_int_equal(
		gm_convert_ex(s, 4 * PG, 8 * PG, GM_ATTR_SHARED, 0, &co), 0);
	assert_int_equal(co.pages_changed, 4);
	assert_int_equal(co.error_offset, 4 * PG);
	assert_int_equal(gm_convert_ex(s, PG, 14 * PG, GM_ATTR_PRIVATE, 0, &co),
			 0);
	assert_int_equal(co.pages_changed, 11);
	assert_int_equal(gm_extent_count(s), 2);
	gm_store_destroy(s);
}

/* ---- listeners ---- */

enum ev_kind { EV_PREPARE, EV_COMMIT, EV_ABORT };

struct event {
	int who;
	enum ev_kind kind;
	struct gm_range_change ch;
};

struct lstate {
	struct gm_store *store;
	struct gm_store *other; /* a different store, callable */
	struct event ev[256];
	int nr;
	/* veto: listener veto_who fails its veto_nth prepare (1-based) */
	int veto_who, veto_nth, veto_err;
	int prepares[8];
	/* reentry probes */
	bool probe;
	int reentry_bad; /* reentrant calls that did not give -EDEADLK */
	int reentry_calls;
	int other_bad;
	/* the view at commit time: closed after to-private, open after
	 * to-shared (eager view) */
	uint8_t *view;
	bool eager;
	int commit_view_checked, commit_view_bad;
};

struct lid {
	struct lstate *st;
	int who;
};

static void probe_reentry(struct lstate *st)
{
	struct gm_store *s = st->store;
	uint8_t b[4];
	enum gm_attr a;
	struct gm_pin *pin = NULL;
	struct gm_extent ext = { .sz = sizeof(ext) };
	struct gm_stats stats = { .sz = sizeof(stats) };
	int r[8];

	if (!st->probe)
		return;
	r[0] = gm_convert(s, 0, PG, GM_ATTR_PRIVATE, 0);
	r[1] = gm_convert(s, 0, PG, GM_ATTR_SHARED, 0);
	r[2] = gm_read(s, 0, b, sizeof(b));
	r[3] = gm_write(s, 0, b, sizeof(b));
	r[4] = gm_attr_get(s, 0, &a);
	r[5] = gm_pin(s, 0, PG, 0, &pin);
	r[6] = gm_extent_at(s, 0, &ext);
	r[7] = gm_store_stats(s, &stats);
	for (int i = 0; i < 8; i++) {
		st->reentry_calls++;
		if (r[i] != -EDEADLK) {
			fprintf(stderr, "reentrant call %d returned %d\n", i,
				r[i]);
			st->reentry_bad++;
		}
	}
	if (r[5] == 0)
		gm_unpin(pin);
	/* Another store is fair game. */
	if (st->other && gm_read(st->other, 0, b, sizeof(b)) != 0)
		st->other_bad++;
}

static void record(struct lid *id, enum ev_kind kind,
		   const struct gm_range_change *ch)
{
	struct lstate *st = id->st;

	assert_true(st->nr < 256);
	st->ev[st->nr].who = id->who;
	st->ev[st->nr].kind = kind;
	st->ev[st->nr].ch = *ch;
	st->nr++;
	probe_reentry(st);
}

static int l_prepare(void *opaque, const struct gm_range_change *ch)
{
	struct lid *id = opaque;
	struct lstate *st = id->st;

	record(id, EV_PREPARE, ch);
	if (id->who == st->veto_who && ++st->prepares[id->who] == st->veto_nth)
		return st->veto_err;
	return 0;
}

static void l_commit(void *opaque, const struct gm_range_change *ch)
{
	struct lid *id = opaque;
	struct lstate *st = id->st;

	record(opaque, EV_COMMIT, ch);
	/*
	 * On hugetlb a shared page opens in the view only with the rest of
	 * its 2 MiB page, which these small conversions leave mixed.
	 */
	if (st->view && (ch->to == GM_ATTR_PRIVATE ||
			 (st->eager && tu_pages != GM_PAGES_HUGETLB_2M))) {
		int want = ch->to == GM_ATTR_PRIVATE ? SIGSEGV : 0;

		st->commit_view_checked++;
		if (tu_probe(st->view + ch->off, false) != want ||
		    tu_probe(st->view + ch->off + ch->len - 1, false) != want)
			st->commit_view_bad++;
	}
}

static void l_abort(void *opaque, const struct gm_range_change *ch)
{
	record(opaque, EV_ABORT, ch);
}

static const struct gm_listener_ops lops = {
	.sz = sizeof(struct gm_listener_ops),
	.prepare = l_prepare,
	.commit = l_commit,
	.abort = l_abort,
};

#define NL 3

struct lfix {
	struct gm_store *s;
	struct lstate st;
	struct lid ids[NL];
	struct gm_listener *l[NL];
};

static struct lfix *lfix_new(uint64_t npages, unsigned int flags)
{
	struct lfix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->s = tu_store(npages * PG, flags);
	f->st.store = f->s;
	f->st.veto_who = -1;
	f->st.view = gm_view_base(f->s);
	f->st.eager = !(flags & GM_STORE_VIEW_LAZY);
	for (int i = 0; i < NL; i++) {
		f->ids[i] = (struct lid){ &f->st, i };
		assert_int_equal(
			gm_listener_register(f->s, &lops, &f->ids[i], &f->l[i]),
			0);
	}
	return f;
}

static void lfix_free(struct lfix *f)
{
	for (int i = 0; i < NL; i++)
		gm_listener_unregister(f->l[i]);
	gm_store_destroy(f->s);
	free(f);
}

static bool same_range(const struct gm_range_change *a, uint64_t off,
		       uint64_t len)
{
	return a->off == off && a->len == len;
}

/* Pattern over 12 pages: P S S P P S P S S S P P (3 shared runs). */
static const uint8_t mixed12[12] = { 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1 };
static const uint64_t runs[3][2] = { { 1, 2 }, { 5, 1 }, { 7, 3 } };

static void test_listener_once_per_subrange(void **state)
{
	for (int lazy = 0; lazy < 2; lazy++)
		for (int dir = 0; dir < 2; dir++) {
			for (int destr = 0; destr < 2; destr++) {
				struct lfix *f = lfix_new(
					12, lazy ? GM_STORE_VIEW_LAZY : 0);
				struct lstate *st = &f->st;
				uint8_t want[12];
				unsigned int flags =
					destr ? GM_CONVERT_DESTRUCTIVE : 0;
				enum gm_attr to =
					dir ? GM_ATTR_SHARED : GM_ATTR_PRIVATE;
				int np[NL] = { 0 }, nc[NL] = { 0 };

				/*
			 * dir 0: the 3 shared runs become private. dir 1:
			 * the complement: private runs [0,1) [3,5) [6,7)
			 * [10,12) become shared (4 runs).
			 */
				tu_apply(f->s, mixed12, 12);
				st->nr = 0;
				assert_int_equal(
					gm_convert(f->s, 0, 12 * PG, to, flags),
					0);
				memset(want, to, 12);
				tu_expect_attrs(f->s, want, 12);
				for (int i = 0, pc = 0, cc = 0; i < st->nr;
				     i++) {
					struct event *e = &st->ev[i];
					int before = 0;

					assert_int_not_equal(e->kind, EV_ABORT);
					assert_int_equal(e->ch.to, to);
					assert_int_equal(e->ch.from, !to);
					assert_int_equal(e->ch.flags, flags);
					/* Each event covers one whole changed run. */
					for (uint64_t p = e->ch.off / PG;
					     p < (e->ch.off + e->ch.len) / PG;
					     p++)
						assert_int_equal(mixed12[p],
								 !to);
					if (e->ch.off)
						assert_int_equal(
							mixed12[e->ch.off / PG -
								1],
							to);
					if (e->ch.off + e->ch.len < 12 * PG)
						assert_int_equal(
							mixed12[(e->ch.off +
								 e->ch.len) /
								PG],
							to);
					/* In registration order, for each range. */
					if (e->kind == EV_PREPARE) {
						assert_int_equal(e->who,
								 pc++ % NL);
						np[e->who]++;
					} else {
						assert_int_equal(e->who,
								 cc++ % NL);
						nc[e->who]++;
					}
					/*
				 * A range is prepared once per listener
				 * before, and committed once after.
				 */
					for (int j = 0; j < i; j++)
						before += st->ev[j].who ==
								  e->who &&
							  same_range(
								  &st->ev[j].ch,
								  e->ch.off,
								  e->ch.len);
					assert_int_equal(
						before,
						e->kind == EV_PREPARE ? 0 : 1);
				}
				for (int w = 0; w < NL; w++) {
					assert_int_equal(np[w], dir ? 4 : 3);
					assert_int_equal(nc[w], dir ? 4 : 3);
				}
				if (!dir) {
					/* Each run is heard exactly once per listener */
					for (int r = 0; r < 3; r++) {
						int hits = 0;

						for (int i = 0; i < st->nr; i++)
							hits += st->ev[i].kind ==
									EV_PREPARE &&
								same_range(
									&st->ev[i]
										 .ch,
									runs[r]
									    [0] *
										PG,
									runs[r]
									    [1] *
										PG);
						assert_int_equal(hits, NL);
					}
				}
				/* The view had changed when listeners heard. */
				if (!dir ||
				    (!lazy && tu_pages != GM_PAGES_HUGETLB_2M))
					assert_true(st->commit_view_checked >
						    0);
				assert_int_equal(st->commit_view_bad, 0);
				/* Idempotent conversion: no listener hears anything. */
				st->nr = 0;
				assert_int_equal(
					gm_convert(f->s, 0, 12 * PG, to, flags),
					0);
				assert_int_equal(st->nr, 0);
				lfix_free(f);
			}
		}
}

static void test_listener_veto(void **state)
{
	/* Veto by each listener at each of the 3 sub-ranges. */
	for (int who = 0; who < NL; who++) {
		for (int nth = 1; nth <= 3; nth++) {
			struct lfix *f = lfix_new(12, GM_STORE_INIT_SHARED);
			struct lstate *st = &f->st;
			static struct snap before;
			struct gm_convert_opts co = { .sz = sizeof(co) };
			struct gm_stats s0, s1;
			int ret;

			tu_apply(f->s, mixed12, 12);
			tu_write_pattern(f->s, 1 * PG, 2 * PG, 51);
			tu_write_pattern(f->s, 5 * PG, PG, 51);
			tu_write_pattern(f->s, 7 * PG, 3 * PG, 51);
			take_snap(f->s, &before);
			tu_stats(f->s, &s0);
			st->nr = 0;
			st->veto_who = who;
			st->veto_nth = nth;
			st->veto_err = -EPERM;
			memset(st->prepares, 0, sizeof(st->prepares));
			ret = gm_convert_ex(f->s, 0, 12 * PG, GM_ATTR_PRIVATE,
					    GM_CONVERT_DESTRUCTIVE, &co);
			assert_int_equal(ret, -EPERM);
			assert_true(strlen(gm_last_error()) > 0);
			/* error_offset: the vetoed sub-range. */
			assert_int_equal(co.error_offset,
					 runs[nth - 1][0] * PG);
			expect_snap(f->s, &before);
			tu_stats(f->s, &s1);
			assert_int_equal(s1.vetoes, s0.vetoes + 1);
			assert_int_equal(s1.failed_requests,
					 s0.failed_requests + 1);
			/*
			 * Every successful prepare gets exactly one abort, and
			 * there are no commits. The vetoing listener gets no
			 * abort for the range it vetoed.
			 */
			for (int i = 0; i < st->nr; i++) {
				struct event *e = &st->ev[i];
				int aborts = 0;
				bool vetoed;

				assert_int_not_equal(e->kind, EV_COMMIT);
				if (e->kind != EV_PREPARE)
					continue;
				vetoed = e->who == who &&
					 same_range(&e->ch,
						    runs[nth - 1][0] * PG,
						    runs[nth - 1][1] * PG);
				for (int j = i + 1; j < st->nr; j++)
					aborts += st->ev[j].kind == EV_ABORT &&
						  st->ev[j].who == e->who &&
						  same_range(&st->ev[j].ch,
							     e->ch.off,
							     e->ch.len);
				assert_int_equal(aborts, vetoed ? 0 : 1);
			}
			/* Without the veto, the same conversion works. */
			st->veto_who = -1;
			st->nr = 0;
			assert_int_equal(gm_convert(f->s, 0, 12 * PG,
						    GM_ATTR_PRIVATE,
						    GM_CONVERT_DESTRUCTIVE),
					 0);
			assert_int_equal(
				gm_range_is(f->s, 0, 12 * PG, GM_ATTR_PRIVATE),
				1);
			lfix_free(f);
		}
	}
}

static void test_listener_reentry(void **state)
{
	struct lfix *f = lfix_new(8, GM_STORE_INIT_SHARED);
	struct gm_store *other = tu_store(PG, GM_STORE_INIT_SHARED);
	struct lstate *st = &f->st;

	st->other = other;
	st->probe = true;
	assert_int_equal(gm_convert(f->s, 2 * PG, 2 * PG, GM_ATTR_PRIVATE, 0),
			 0);
	assert_int_equal(gm_convert(f->s, 2 * PG, 2 * PG, GM_ATTR_SHARED, 0),
			 0);
	/* prepare + commit per listener per conversion, 8 probes each */
	assert_int_equal(st->reentry_calls, 2 * 2 * NL * 8);
	assert_int_equal(st->reentry_bad, 0);
	assert_int_equal(st->other_bad, 0);
	/* With a veto: abort callbacks get -EDEADLK too. */
	st->veto_who = NL - 1;
	st->veto_nth = 1;
	st->veto_err = -EACCES;
	st->reentry_calls = 0;
	assert_int_equal(gm_convert(f->s, 2 * PG, 2 * PG, GM_ATTR_PRIVATE, 0),
			 -EACCES);
	assert_int_equal(st->reentry_calls, (NL + NL - 1) * 8);
	assert_int_equal(st->reentry_bad, 0);
	st->probe = false;
	/* The store still works after all that. */
	assert_int_equal(gm_range_is(f->s, 0, 8 * PG, GM_ATTR_SHARED), 1);
	gm_store_destroy(other);
	lfix_free(f);
}

static int n_prep;

static int count_prepare(void *opaque, const struct gm_range_change *ch)
{
	n_prep++;
	return 0;
}

static void test_listener_register(void **state)
{
	struct gm_store *s = tu_store(4 * PG, 0);
	struct gm_listener_ops ops = { .sz = sizeof(ops),
				       .prepare = count_prepare };
	struct gm_listener_ops none = { .sz = sizeof(none) };
	struct gm_listener *l, *l2;

	assert_true(gm_listener_register(s, NULL, NULL, &l) < 0);
	assert_true(gm_listener_register(s, &ops, NULL, NULL) < 0);
	assert_true(gm_listener_register(NULL, &ops, NULL, &l) < 0);
	assert_int_equal(gm_listener_register(s, &ops, NULL, &l), 0);
	/* NULL callbacks are fine. */
	assert_int_equal(gm_listener_register(s, &none, NULL, &l2), 0);
	/* ops is copied. */
	ops.prepare = NULL;
	n_prep = 0;
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(n_prep, 1);
	gm_listener_unregister(l);
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(n_prep, 1);
	gm_listener_unregister(l2);
	gm_listener_unregister(NULL);
	gm_store_destroy(s);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_place_keeps_bytes),
		cmocka_unit_test(test_destructive_zeroes),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_convert_ex_results),
		cmocka_unit_test(test_listener_once_per_subrange),
		cmocka_unit_test(test_listener_veto),
		cmocka_unit_test(test_listener_reentry),
		cmocka_unit_test(test_listener_register),
	};

	tu_init(argc, argv, "test_convert");
	return cmocka_run_group_tests_name(tu_group("test_convert"), tests,
					   NULL, NULL);
}
