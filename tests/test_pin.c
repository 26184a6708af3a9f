// SPDX-License-Identifier: MIT
/*
 * Pins: -EFAULT on private pages, -EBUSY for conversions to private (with
 * error_offset at the first pinned page), to-shared unaffected, exclusive
 * pins, gm_pin_ptr, and GM_CONVERT_REVOKE (holders that unpin at once, from
 * another thread, never, and pins that are not revocable).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"

static uint64_t pins_active(struct gm_store *s)
{
	struct gm_stats st;

	tu_stats(s, &st);
	return st.pins_active;
}

static void test_pin_private(void **state)
{
	const uint64_t size = tu_round(8 * PG);
	struct gm_store *s = tu_store(size, 0);
	struct gm_pin *p = NULL;

	assert_int_equal(gm_pin(s, 0, PG, 0, &p), -EFAULT);
	assert_true(strlen(gm_last_error()) > 0);
	assert_null(p);
	assert_int_equal(gm_convert(s, 0, 4 * PG, GM_ATTR_SHARED, 0), 0);
	/* One private page in the range is enough. */
	assert_int_equal(gm_pin(s, 2 * PG, 4 * PG, 0, &p), -EFAULT);
	assert_int_equal(gm_pin(s, 3 * PG, 2 * PG, GM_PIN_EXCLUSIVE, &p),
			 -EFAULT);
	assert_int_equal(pins_active(s), 0);
	assert_int_equal(gm_pin(s, 0, 4 * PG, 0, &p), 0);
	assert_non_null(p);
	assert_int_equal(pins_active(s), 1);
	gm_unpin(p);
	assert_int_equal(pins_active(s), 0);
	gm_unpin(NULL);

	/* Arguments. */
	assert_int_equal(gm_pin(s, 1, PG, 0, &p), -EINVAL);
	assert_int_equal(gm_pin(s, 0, PG - 1, 0, &p), -EINVAL);
	assert_int_equal(gm_pin(s, 0, 0, 0, &p), -EINVAL);
	assert_int_equal(gm_pin(s, 0, size + PG, 0, &p), -ERANGE);
	assert_int_equal(gm_pin(s, size, PG, 0, &p), -ERANGE);
	assert_int_equal(gm_pin(s, 2 * PG, UINT64_MAX - PG + 1, 0, &p),
			 -ERANGE);
	assert_int_equal(gm_pin(s, 0, PG, 1u << 9, &p), -EINVAL);
	assert_true(gm_pin(s, 0, PG, 0, NULL) < 0);
	assert_true(gm_pin(NULL, 0, PG, 0, &p) < 0);
	assert_int_equal(pins_active(s), 0);
	gm_store_destroy(s);
}

static void test_pin_blocks_private(void **state)
{
	const uint64_t n = 16;
	struct gm_store *s = tu_store(n * PG, GM_STORE_INIT_SHARED);
	struct gm_convert_opts co = { .sz = sizeof(co) };
	struct gm_pin *p1, *p2, *p3;
	struct gm_stats a, b;

	tu_write_pattern(s, 0, n * PG, 61);
	assert_int_equal(gm_pin(s, 5 * PG, 2 * PG, 0, &p1), 0);
	for (int destr = 0; destr < 2; destr++) {
		unsigned int fl = destr ? GM_CONVERT_DESTRUCTIVE : 0;

		tu_stats(s, &a);
		co.error_offset = 0;
		assert_int_equal(gm_convert_ex(s, 2 * PG, 8 * PG,
					       GM_ATTR_PRIVATE, fl, &co),
				 -EBUSY);
		assert_int_equal(co.error_offset, 5 * PG);
		assert_int_equal(co.pages_changed, 0);
		assert_true(strlen(gm_last_error()) > 0);
		tu_stats(s, &b);
		assert_int_equal(b.busy_refusals, a.busy_refusals + 1);
		assert_int_equal(b.failed_requests, a.failed_requests + 1);
		assert_int_equal(gm_range_is(s, 0, n * PG, GM_ATTR_SHARED), 1);
		tu_expect_pattern(s, 0, n * PG, 61);
		/* Only the pinned page in the range. */
		assert_int_equal(
			gm_convert_ex(s, 6 * PG, PG, GM_ATTR_PRIVATE, fl, &co),
			-EBUSY);
		assert_int_equal(co.error_offset, 6 * PG);
	}
	/* More pins: error_offset is the first pinned page of the range. */
	assert_int_equal(gm_pin(s, 9 * PG, PG, 0, &p2), 0);
	assert_int_equal(gm_pin(s, 3 * PG, PG, 0, &p3), 0);
	assert_int_equal(gm_convert_ex(s, 0, n * PG, GM_ATTR_PRIVATE, 0, &co),
			 -EBUSY);
	assert_int_equal(co.error_offset, 3 * PG);
	assert_int_equal(
		gm_convert_ex(s, 6 * PG, 10 * PG, GM_ATTR_PRIVATE, 0, &co),
		-EBUSY);
	assert_int_equal(co.error_offset, 6 * PG);
	assert_int_equal(
		gm_convert_ex(s, 7 * PG, 9 * PG, GM_ATTR_PRIVATE, 0, &co),
		-EBUSY);
	assert_int_equal(co.error_offset, 9 * PG);
	tu_expect_pattern(s, 0, n * PG, 61);
	/* Around the pins, conversions work. */
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_convert(s, 4 * PG, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_convert(s, 10 * PG, 6 * PG, GM_ATTR_PRIVATE,
				    GM_CONVERT_DESTRUCTIVE),
			 0);
	/* To shared, across pinned pages: unaffected. */
	assert_int_equal(gm_convert(s, 0, n * PG, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_range_is(s, 0, n * PG, GM_ATTR_SHARED), 1);
	tu_expect_pattern(s, 0, 10 * PG, 61);
	gm_unpin(p3);
	gm_unpin(p2);
	/* p1 still blocks. */
	assert_int_equal(gm_convert(s, 0, n * PG, GM_ATTR_PRIVATE, 0), -EBUSY);
	gm_unpin(p1);
	assert_int_equal(pins_active(s), 0);
	assert_int_equal(gm_convert(s, 0, n * PG, GM_ATTR_PRIVATE, 0), 0);
	gm_store_destroy(s);
}

static void test_pin_exclusive(void **state)
{
	struct gm_store *s = tu_store(16 * PG, GM_STORE_INIT_SHARED);
	struct gm_pin *x, *p, *q, *r;

	assert_int_equal(gm_pin(s, 4 * PG, 4 * PG, GM_PIN_EXCLUSIVE, &x), 0);
	/* Other pins on its pages: refused, both kinds. */
	assert_int_equal(gm_pin(s, 7 * PG, 2 * PG, 0, &p), -EBUSY);
	assert_true(strlen(gm_last_error()) > 0);
	assert_int_equal(gm_pin(s, 4 * PG, PG, 0, &p), -EBUSY);
	assert_int_equal(gm_pin(s, 0, 16 * PG, 0, &p), -EBUSY);
	assert_int_equal(gm_pin(s, 5 * PG, PG, GM_PIN_EXCLUSIVE, &p), -EBUSY);
	assert_int_equal(gm_pin_revocable(s, 6 * PG, PG, 0, NULL, NULL, &p),
			 -EBUSY);
	/* Next to it: fine. */
	assert_int_equal(gm_pin(s, 0, 4 * PG, 0, &p), 0);
	assert_int_equal(gm_pin(s, 8 * PG, 4 * PG, 0, &q), 0);
	/* An exclusive pin over another pin: refused. */
	assert_int_equal(gm_pin(s, 3 * PG, PG, GM_PIN_EXCLUSIVE, &r), -EBUSY);
	assert_int_equal(gm_pin(s, 11 * PG, 2 * PG, GM_PIN_EXCLUSIVE, &r),
			 -EBUSY);
	/* Non-exclusive pins share pages. */
	assert_int_equal(gm_pin(s, 2 * PG, PG, 0, &r), 0);
	gm_unpin(r);
	assert_int_equal(pins_active(s), 3);
	/* Once the exclusive pin goes, its pages can be pinned again. */
	gm_unpin(x);
	assert_int_equal(gm_pin(s, 7 * PG, 2 * PG, 0, &r), 0);
	gm_unpin(r);
	gm_unpin(q);
	/* ... and exclusively, where no other pin is. */
	assert_int_equal(gm_pin(s, 4 * PG, 12 * PG, GM_PIN_EXCLUSIVE, &x), 0);
	gm_unpin(x);
	gm_unpin(p);
	assert_int_equal(gm_pin(s, 0, 16 * PG, GM_PIN_EXCLUSIVE, &x), 0);
	gm_unpin(x);
	assert_int_equal(pins_active(s), 0);
	gm_store_destroy(s);
}

static void check_pin_ptr(struct gm_store *s, uint64_t off, uint64_t len,
			  unsigned int flags, uint32_t seed)
{
	struct gm_pin *p;
	uint8_t *ptr, *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(gm_pin(s, off, len, flags, &p), 0);
	ptr = gm_pin_ptr(p);
	assert_non_null(ptr);
	assert_int_equal(gm_pin_offset(p), off);
	assert_int_equal(gm_pin_length(p), len);
	/* Write through the pointer, read through the API. */
	tu_pat_fill(ptr, len, off, seed);
	tu_expect_pattern(s, off, len, seed);
	/* And the other way round. */
	tu_pat_fill(buf, len, off, seed + 1);
	assert_int_equal(gm_write(s, off, buf, len), 0);
	assert_int_equal(tu_pat_check(ptr, len, off, seed + 1), len);
	/* Conversions elsewhere leave it valid. */
	if (off >= PG)
		assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(tu_probe(ptr + len - 1, true), 0);
	assert_int_equal(tu_pat_check(ptr, len, off, seed + 1), len);
	if (off >= PG)
		assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_SHARED, 0), 0);
	gm_unpin(p);
	free(buf);
}

static void test_pin_ptr(void **state)
{
	struct gm_store_opts o;
	struct gm_store *s;

	s = tu_store(16 * PG, GM_STORE_INIT_SHARED);
	check_pin_ptr(s, 2 * PG, 3 * PG, 0, 71);
	check_pin_ptr(s, 0, 16 * PG, GM_PIN_EXCLUSIVE, 73);
	gm_store_destroy(s);

	/* Lazy view: the pin opens what it needs. */
	s = tu_store(16 * PG, GM_STORE_INIT_SHARED | GM_STORE_VIEW_LAZY);
	check_pin_ptr(s, 5 * PG, 2 * PG, 0, 75);
	gm_store_destroy(s);

	/*
	 * A view budget of 1 extent: nothing can be opened in the view, so
	 * the pin needs a mapping of its own.
	 */
	tu_opts(&o, 16 * PG, GM_STORE_VIEW_LAZY);
	o.view_budget = 1;
	s = tu_store_with(&o);
	assert_int_equal(gm_convert(s, 4 * PG, 8 * PG, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_view_is_open(s, 4 * PG, 8 * PG), 0);
	check_pin_ptr(s, 6 * PG, 3 * PG, 0, 77);
	assert_true(gm_view_extent_count(s) <= 1);
	gm_store_destroy(s);
}

/*
 * Past the view budget, closing part of an open run closes the whole run,
 * but for pinned pages and hypervisor-visible ranges: their pointers stay
 * good while the neighbours go.
 */
static void test_pin_survives_budget(void **state)
{
	tu_skip_on_hugetlb("the view budget counts 4 KiB runs; hugetlb's view "
			   "opens and closes whole 2 MiB pages");
	for (int lazy = 0; lazy < 2; lazy++) {
		const uint64_t n = 64;
		struct gm_store_opts o;
		struct gm_store *s;
		struct gm_pin *p;
		uint8_t *ptr, *v, b[16];

		tu_opts(&o, n * PG,
			GM_STORE_INIT_SHARED | (lazy ? GM_STORE_VIEW_LAZY : 0));
		o.view_budget = 5;
		s = tu_store_with(&o);
		v = gm_view_base(s);
		assert_int_equal(gm_hv_visible_add(s, 40 * PG, PG), 0);
		tu_write_pattern(s, 0, n * PG, 111);
		assert_int_equal(gm_pin(s, 20 * PG, 2 * PG, 0, &p), 0);
		ptr = gm_pin_ptr(p);
		assert_int_equal(tu_pat_check(ptr, 2 * PG, 20 * PG, 111),
				 2 * PG);
		/* Every fourth page private, far past the budget. */
		for (uint64_t i = 2; i < n; i += 4) {
			if (i >= 20 && i < 22)
				continue;
			assert_int_equal(
				gm_convert(s, i * PG, PG, GM_ATTR_PRIVATE, 0),
				0);
			/*
			 * The budget, plus what the pages that must stay open
			 * cost: up to 2 extents each for 1 pin and 1
			 * hypervisor-visible range.
			 */
			assert_true(gm_view_extent_count(s) <= 5 + 2 * 2);
			/* The pin's pages stay reachable through its pointer. */
			assert_int_equal(tu_probe(ptr, true), 0);
			assert_int_equal(tu_probe(ptr + 2 * PG - 1, true), 0);
			assert_int_equal(tu_probe(v + 40 * PG, true), 0);
		}
		assert_int_equal(tu_pat_check(ptr, 2 * PG, 20 * PG, 111),
				 2 * PG);
		/* Private pages fault; shared ones are reachable by the API. */
		for (uint64_t i = 0; i < n; i++) {
			bool priv = i % 4 == 2 && !(i >= 20 && i < 22);
			int r = gm_read(s, i * PG + 8, b, sizeof(b));

			if (priv && i != 40)
				assert_int_equal(tu_probe(v + i * PG, false),
						 SIGSEGV);
			assert_int_equal(r, priv ? -EFAULT : 0);
			if (!r)
				assert_int_equal(tu_pat_check(b, sizeof(b),
							      i * PG + 8, 111),
						 sizeof(b));
		}
		gm_unpin(p);
		gm_store_destroy(s);
	}
}

/* ---- revoke ---- */

struct holder {
	struct gm_store *store;
	struct gm_pin *pin;
	int calls;
	bool unpin; /* unpin from the callback */
	bool repin; /* and pin the same pages again at once */
	bool bad_pin; /* the callback got another pin than ours */
	/* from the callback, calls into the same store */
	bool probe;
	int probe_ret[3];
	/* hand the unpin to a thread, which waits delay_ms (0: 5) first */
	bool async;
	unsigned int delay_ms;
	/* the thread pins this one (at join's range) before it unpins */
	struct holder *join;
	uint64_t join_off;
	int join_ret;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool asked, quit;
};

static void revoke_cb(struct gm_pin *pin, void *opaque)
{
	struct holder *h = opaque;

	h->calls++;
	if (pin != h->pin)
		h->bad_pin = true;
	if (h->probe) {
		uint8_t b[4];
		enum gm_attr a;

		h->probe_ret[0] = gm_read(h->store, 0, b, sizeof(b));
		h->probe_ret[1] = gm_attr_get(h->store, 0, &a);
		h->probe_ret[2] =
			gm_convert(h->store, 15 * PG, PG, GM_ATTR_PRIVATE, 0);
	}
	if (h->async) {
		pthread_mutex_lock(&h->mu);
		h->asked = true;
		pthread_cond_signal(&h->cv);
		pthread_mutex_unlock(&h->mu);
	} else if (h->unpin) {
		uint64_t off = gm_pin_offset(pin), len = gm_pin_length(pin);

		gm_unpin(pin);
		if (h->repin && gm_pin_revocable(h->store, off, len, 0,
						 revoke_cb, h, &h->pin))
			h->bad_pin = true;
	}
}

static void *holder_thread(void *arg)
{
	struct holder *h = arg;
	struct timespec ts = { 0, (h->delay_ms ? h->delay_ms : 5) * 1000000L };

	pthread_mutex_lock(&h->mu);
	while (!h->asked && !h->quit)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	if (h->asked) {
		if (h->join)
			h->join_ret = gm_pin_revocable(h->store, h->join_off,
						       PG, 0, revoke_cb,
						       h->join, &h->join->pin);
		nanosleep(&ts, NULL);
		gm_unpin(h->pin);
	}
	return NULL;
}

static void test_revoke_sync(void **state)
{
	struct gm_store *s = tu_store(16 * PG, GM_STORE_INIT_SHARED);
	struct holder h1 = { .unpin = true }, h2 = { .unpin = true },
		      out = { .unpin = true };
	struct gm_stats a, b;
	struct gm_convert_opts co = { .sz = sizeof(co) };

	tu_write_pattern(s, 0, 16 * PG, 81);
	assert_int_equal(
		gm_pin_revocable(s, 2 * PG, 2 * PG, 0, revoke_cb, &h1, &h1.pin),
		0);
	assert_int_equal(
		gm_pin_revocable(s, 3 * PG, 4 * PG, 0, revoke_cb, &h2, &h2.pin),
		0);
	assert_int_equal(
		gm_pin_revocable(s, 12 * PG, PG, 0, revoke_cb, &out, &out.pin),
		0);
	/* Without REVOKE: -EBUSY, nobody asked. */
	assert_int_equal(gm_convert(s, 0, 8 * PG, GM_ATTR_PRIVATE, 0), -EBUSY);
	assert_int_equal(h1.calls + h2.calls + out.calls, 0);
	tu_stats(s, &a);
	assert_int_equal(gm_convert_ex(s, 0, 8 * PG, GM_ATTR_PRIVATE,
				       GM_CONVERT_REVOKE, &co),
			 0);
	assert_int_equal(co.pages_changed, 8);
	assert_int_equal(h1.calls, 1);
	assert_int_equal(h2.calls, 1);
	assert_false(h1.bad_pin || h2.bad_pin);
	/* The pin outside the range stays. */
	assert_int_equal(out.calls, 0);
	assert_int_equal(pins_active(s), 1);
	tu_stats(s, &b);
	assert_int_equal(b.revokes, a.revokes + 2);
	assert_int_equal(gm_range_is(s, 0, 8 * PG, GM_ATTR_PRIVATE), 1);
	/* In place: contents kept. */
	assert_int_equal(gm_convert(s, 0, 8 * PG, GM_ATTR_SHARED, 0), 0);
	tu_expect_pattern(s, 0, 16 * PG, 81);
	/* REVOKE with no pins at all: a plain conversion. */
	assert_int_equal(gm_convert(s, 0, 8 * PG, GM_ATTR_PRIVATE,
				    GM_CONVERT_REVOKE | GM_CONVERT_DESTRUCTIVE),
			 0);
	gm_unpin(out.pin);
	assert_int_equal(pins_active(s), 0);
	gm_store_destroy(s);
}

static void test_revoke_thread(void **state)
{
	struct gm_store *s = tu_store(8 * PG, GM_STORE_INIT_SHARED);
	struct holder h = { .async = true };
	struct gm_convert_opts co = { .sz = sizeof(co),
				      .revoke_timeout_ns = 5000000000ull };
	pthread_t t;

	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.cv, NULL);
	assert_int_equal(gm_pin_revocable(s, 0, 4 * PG, GM_PIN_EXCLUSIVE,
					  revoke_cb, &h, &h.pin),
			 0);
	assert_int_equal(pthread_create(&t, NULL, holder_thread, &h), 0);
	assert_int_equal(gm_convert_ex(s, 0, 8 * PG, GM_ATTR_PRIVATE,
				       GM_CONVERT_REVOKE, &co),
			 0);
	assert_int_equal(h.calls, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(gm_range_is(s, 0, 8 * PG, GM_ATTR_PRIVATE), 1);
	assert_int_equal(pins_active(s), 0);
	pthread_cond_destroy(&h.cv);
	pthread_mutex_destroy(&h.mu);
	gm_store_destroy(s);
}

static void test_revoke_timeout(void **state)
{
	struct gm_store *s = tu_store(8 * PG, GM_STORE_INIT_SHARED);
	struct holder h = { .unpin = false };
	struct gm_convert_opts co = { .sz = sizeof(co),
				      .revoke_timeout_ns = 20000000ull };
	struct gm_stats a, b;
	uint8_t *ptr;

	tu_write_pattern(s, 0, 8 * PG, 91);
	assert_int_equal(
		gm_pin_revocable(s, 3 * PG, 2 * PG, 0, revoke_cb, &h, &h.pin),
		0);
	tu_stats(s, &a);
	assert_int_equal(
		gm_convert_ex(s, 0, 8 * PG, GM_ATTR_PRIVATE,
			      GM_CONVERT_REVOKE | GM_CONVERT_DESTRUCTIVE, &co),
		-EBUSY);
	assert_true(strlen(gm_last_error()) > 0);
	assert_int_equal(h.calls, 1);
	assert_int_equal(co.error_offset, 3 * PG);
	tu_stats(s, &b);
	assert_int_equal(b.failed_requests, a.failed_requests + 1);
	assert_int_equal(b.busy_refusals, a.busy_refusals + 1);
	/* Unchanged, and the pin still good. */
	assert_int_equal(gm_range_is(s, 0, 8 * PG, GM_ATTR_SHARED), 1);
	tu_expect_pattern(s, 0, 8 * PG, 91);
	ptr = gm_pin_ptr(h.pin);
	assert_int_equal(tu_pat_check(ptr, 2 * PG, 3 * PG, 91), 2 * PG);
	assert_int_equal(pins_active(s), 1);
	/* Default timeout (0: 100 ms) also ends. */
	co.revoke_timeout_ns = 0;
	assert_int_equal(gm_convert_ex(s, 4 * PG, 4 * PG, GM_ATTR_PRIVATE,
				       GM_CONVERT_REVOKE, &co),
			 -EBUSY);
	assert_int_equal(co.error_offset, 4 * PG);
	assert_int_equal(h.calls, 2);
	gm_unpin(h.pin);
	assert_int_equal(
		gm_convert(s, 0, 8 * PG, GM_ATTR_PRIVATE, GM_CONVERT_REVOKE),
		0);
	assert_int_equal(h.calls, 2);
	gm_store_destroy(s);
}

/*
 * revoke_timeout_ns = UINT64_MAX waits forever, and a timeout past what the
 * clock can hold waits as long as it can (both once overflowed the deadline
 * and failed at once): the holder unpins after 200 ms from its thread.
 */
static void test_revoke_forever(void **state)
{
	const uint64_t timeouts[] = { UINT64_MAX, UINT64_MAX - 1,
				      UINT64_MAX / 2 };

	for (unsigned int i = 0; i < 3; i++) {
		struct gm_store *s = tu_store(8 * PG, GM_STORE_INIT_SHARED);
		struct holder h = { .async = true, .delay_ms = 200 };
		struct gm_convert_opts co = { .sz = sizeof(co),
					      .revoke_timeout_ns =
						      timeouts[i] };
		uint64_t t0;
		pthread_t t;

		pthread_mutex_init(&h.mu, NULL);
		pthread_cond_init(&h.cv, NULL);
		assert_int_equal(gm_pin_revocable(s, 2 * PG, PG, 0, revoke_cb,
						  &h, &h.pin),
				 0);
		assert_int_equal(pthread_create(&t, NULL, holder_thread, &h),
				 0);
		t0 = tu_now_ms();
		assert_int_equal(gm_convert_ex(s, 0, 8 * PG, GM_ATTR_PRIVATE,
					       GM_CONVERT_REVOKE, &co),
				 0);
		assert_true(tu_now_ms() - t0 >= 150);
		assert_int_equal(h.calls, 1);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(gm_range_is(s, 0, 8 * PG, GM_ATTR_PRIVATE), 1);
		assert_int_equal(pins_active(s), 0);
		pthread_cond_destroy(&h.cv);
		pthread_mutex_destroy(&h.mu);
		gm_store_destroy(s);
	}
}

/*
 * A revocable pin taken on the range while a conversion waits for the
 * pins it asked is asked in turn: the conversion does not wait out its
 * timeout (or, waiting forever, hang) for a holder it never asked.
 */
static void test_revoke_late_pin(void **state)
{
	struct gm_store *s = tu_store(8 * PG, GM_STORE_INIT_SHARED);
	struct holder late = { .unpin = true };
	struct holder h = { .store = s,
			    .async = true,
			    .delay_ms = 50,
			    .join = &late,
			    .join_off = 5 * PG };
	struct gm_convert_opts co = { .sz = sizeof(co),
				      .revoke_timeout_ns = 5000000000ull };
	uint64_t t0;
	pthread_t t;

	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.cv, NULL);
	assert_int_equal(
		gm_pin_revocable(s, 2 * PG, PG, 0, revoke_cb, &h, &h.pin), 0);
	assert_int_equal(pthread_create(&t, NULL, holder_thread, &h), 0);
	t0 = tu_now_ms();
	assert_int_equal(gm_convert_ex(s, 0, 8 * PG, GM_ATTR_PRIVATE,
				       GM_CONVERT_REVOKE, &co),
			 0);
	assert_true(tu_now_ms() - t0 < 2500);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(h.join_ret, 0);
	assert_int_equal(h.calls, 1);
	assert_int_equal(late.calls, 1);
	assert_false(late.bad_pin);
	assert_int_equal(gm_range_is(s, 0, 8 * PG, GM_ATTR_PRIVATE), 1);
	assert_int_equal(pins_active(s), 0);
	pthread_cond_destroy(&h.cv);
	pthread_mutex_destroy(&h.mu);
	gm_store_destroy(s);
}

/*
 * A holder that pins its pages again as soon as it is asked gets asked
 * again, but cannot keep the conversion past its deadline.
 */
static void test_revoke_repinned(void **state)
{
	struct gm_store *s = tu_store(8 * PG, GM_STORE_INIT_SHARED);
	struct holder h = { .store = s, .unpin = true, .repin = true };
	struct gm_convert_opts co = { .sz = sizeof(co),
				      .revoke_timeout_ns = 50000000ull };
	uint64_t t0;

	assert_int_equal(
		gm_pin_revocable(s, 2 * PG, PG, 0, revoke_cb, &h, &h.pin), 0);
	t0 = tu_now_ms();
	assert_int_equal(gm_convert_ex(s, 0, 8 * PG, GM_ATTR_PRIVATE,
				       GM_CONVERT_REVOKE, &co),
			 -EBUSY);
	assert_true(tu_now_ms() - t0 < 5000);
	assert_int_equal(co.error_offset, 2 * PG);
	assert_true(h.calls > 1);
	assert_false(h.bad_pin);
	assert_int_equal(gm_range_is(s, 0, 8 * PG, GM_ATTR_SHARED), 1);
	assert_int_equal(pins_active(s), 1);
	gm_unpin(h.pin);
	assert_int_equal(pins_active(s), 0);
	gm_store_destroy(s);
}

static void test_revoke_not_revocable(void **state)
{
	struct gm_store *s = tu_store(8 * PG, GM_STORE_INIT_SHARED);
	struct gm_convert_opts co = { .sz = sizeof(co),
				      .revoke_timeout_ns = 10000000ull };
	struct gm_pin *p;

	tu_write_pattern(s, 0, 8 * PG, 101);
	assert_int_equal(gm_pin(s, 6 * PG, PG, 0, &p), 0);
	assert_int_equal(gm_convert_ex(s, 0, 8 * PG, GM_ATTR_PRIVATE,
				       GM_CONVERT_REVOKE, &co),
			 -EBUSY);
	assert_int_equal(co.error_offset, 6 * PG);
	assert_int_equal(gm_range_is(s, 0, 8 * PG, GM_ATTR_SHARED), 1);
	tu_expect_pattern(s, 0, 8 * PG, 101);
	/* gm_pin_revocable with a NULL callback is not revocable either. */
	gm_unpin(p);
	assert_int_equal(gm_pin_revocable(s, 6 * PG, PG, 0, NULL, NULL, &p), 0);
	assert_int_equal(gm_convert_ex(s, 0, 8 * PG, GM_ATTR_PRIVATE,
				       GM_CONVERT_REVOKE, &co),
			 -EBUSY);
	gm_unpin(p);
	assert_int_equal(gm_convert(s, 0, 8 * PG, GM_ATTR_PRIVATE, 0), 0);
	gm_store_destroy(s);
}

/*
 * The header: revoke callbacks run with no lock of the store held and may
 * call any function (here gm_read, gm_attr_get and a conversion of another
 * page of the same store) besides gm_unpin.
 */
static void test_revoke_reentry(void **state)
{
	struct gm_store *s = tu_store(16 * PG, GM_STORE_INIT_SHARED);
	struct holder h = { .store = s, .unpin = true, .probe = true };

	assert_int_equal(gm_pin_revocable(s, 0, PG, 0, revoke_cb, &h, &h.pin),
			 0);
	assert_int_equal(
		gm_convert(s, 0, 2 * PG, GM_ATTR_PRIVATE, GM_CONVERT_REVOKE),
		0);
	assert_int_equal(h.calls, 1);
	for (int i = 0; i < 3; i++) {
		if (h.probe_ret[i] != 0)
			fprintf(stderr,
				"revoke callback: call %d into the same store "
				"returned %d\n",
				i, h.probe_ret[i]);
		assert_int_equal(h.probe_ret[i], 0);
	}
	assert_int_equal(gm_range_is(s, 0, 2 * PG, GM_ATTR_PRIVATE), 1);
	assert_int_equal(gm_range_is(s, 15 * PG, PG, GM_ATTR_PRIVATE), 1);
	assert_int_equal(gm_range_is(s, 2 * PG, 13 * PG, GM_ATTR_SHARED), 1);
	assert_int_equal(pins_active(s), 0);
	gm_store_destroy(s);
}

static void test_pin_bookkeeping(void **state)
{
	const uint64_t size = 1ULL << 36; /* 64 GiB, sparse */
	static struct gm_pin *pins[1000];
	struct gm_stats a, b, c;
	struct gm_store *s;

	tu_skip_on_hugetlb("a 64 GiB sparse store needs 32768 reserved pages");
	s = tu_store(size, GM_STORE_INIT_SHARED);

	tu_stats(s, &a);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(
			gm_pin(s, (uint64_t)i * 16 * PG, PG, 0, &pins[i]), 0);
	tu_stats(s, &b);
	assert_int_equal(b.pins_active, 1000);
	assert_int_equal(b.pins, a.pins + 1000);
	/* Grows with the pins, not with 64 GiB of pages. */
	assert_true(b.tracking_bytes > a.tracking_bytes);
	assert_true(b.tracking_bytes - a.tracking_bytes < 1000 * 1024);
	assert_int_equal(gm_convert(s, 0, size, GM_ATTR_PRIVATE, 0), -EBUSY);
	for (int i = 0; i < 1000; i++)
		gm_unpin(pins[i]);
	tu_stats(s, &c);
	assert_int_equal(c.pins_active, 0);
	assert_true(c.tracking_bytes <= a.tracking_bytes + 4096);
	assert_int_equal(gm_convert(s, 0, size, GM_ATTR_PRIVATE, 0), 0);
	gm_store_destroy(s);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pin_private),
		cmocka_unit_test(test_pin_blocks_private),
		cmocka_unit_test(test_pin_exclusive),
		cmocka_unit_test(test_pin_ptr),
		cmocka_unit_test(test_pin_survives_budget),
		cmocka_unit_test(test_revoke_sync),
		cmocka_unit_test(test_revoke_thread),
		cmocka_unit_test(test_revoke_timeout),
		cmocka_unit_test(test_revoke_forever),
		cmocka_unit_test(test_revoke_late_pin),
		cmocka_unit_test(test_revoke_repinned),
		cmocka_unit_test(test_revoke_not_revocable),
		cmocka_unit_test(test_revoke_reentry),
		cmocka_unit_test(test_pin_bookkeeping),
	};

	tu_init(argc, argv, "test_pin");
	return cmocka_run_group_tests_name(tu_group("test_pin"), tests, NULL,
					   NULL);
}
