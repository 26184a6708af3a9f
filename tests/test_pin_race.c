// SPDX-License-Identifier: MIT
/*
 * Pin creation raced against GM_CONVERT_REVOKE. Holder threads pin random
 * small ranges with gm_pin_revocable, some exclusive; the revoke callback
 * either unpins at once (possibly before gm_pin_revocable has returned) or
 * leaves it to the holder thread, which unpins when it next looks.
 * Converter threads convert overlapping ranges to private with
 * GM_CONVERT_REVOKE and back to shared; a revoker thread makes revoke
 * passes (that give up at once) over the page being pinned right now, so
 * that passes meet pins in creation. Invariants:
 *  - every pin returned gives a pointer that reads the store's pattern
 *    until it is unpinned (a pin handed out half-built, or freed by a
 *    callback under its creator, faults or reads garbage, or trips the
 *    sanitizers);
 *  - no pin survives a conversion of its pages to private: a listener
 *    checks, as each conversion commits, that no pin still held (by the
 *    holders' own account, kept in a table) overlaps it;
 *  - the callback always gets the pin its gm_pin_revocable returned;
 *  - at the end: no pin active, gm_store_stats counts every pin, callback
 *    and conversion the threads saw, the pages' states add up, and the
 *    contents are intact.
 * Each configuration runs for RUN_MS (or until the tickets run out), so the
 * test is bounded in sanitizer builds too. Against the code before the
 * fix (pins linked before their pointer was set) ASan and TSan report a
 * use after free in gm_pin_revocable in every run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define NPAGES 24
#define HOLDERS 3
#define CONVERTERS 2
#define RUN_MS 700
#define TICKETS 60000 /* pins per holder thread, at most */
#define SEED 0x5eed

struct holder;

/* One gm_pin_revocable call: its callback's opaque. Never reused. */
struct ticket {
	struct holder *h;
	bool immediate; /* the callback unpins at once */
	/* under h->mu: */
	struct gm_pin *pin; /* set once gm_pin_revocable returned 0 */
	bool asked, released;
};

struct race {
	struct gm_store *s;
	bool stop; /* __atomic */
	uint64_t hint; /* __atomic: the page a holder is pinning now */
	pthread_mutex_t table_mu; /* a leaf lock: no gmem call under it */
	struct {
		bool held;
		uint64_t off, len;
	} table[HOLDERS]; /* what each holder holds, by its own account */
	/* __atomic counters */
	uint64_t failures, pins_ok, callbacks, conv_calls, conv_busy, conv_ok,
		survivors, commits_private;
};

struct holder {
	struct race *r;
	unsigned int idx;
	uint64_t rng;
	pthread_mutex_t mu;
	struct ticket *tickets;
};

static void add(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

/* cmocka's asserts must stay on the main thread: count, print, go on. */
#define CHECK(r, cond)                                                         \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			add(&(r)->failures, 1);                                \
		}                                                              \
	} while (0)

static void table_set(struct race *r, unsigned int idx, bool held, uint64_t off,
		      uint64_t len)
{
	pthread_mutex_lock(&r->table_mu);
	r->table[idx].held = held;
	r->table[idx].off = off;
	r->table[idx].len = len;
	pthread_mutex_unlock(&r->table_mu);
}

/* Unpin; the caller holds h->mu and the pin is not released yet. */
static void release_locked(struct ticket *t, struct gm_pin *pin)
{
	/* Out of the table first: once unpinned, the pages may go private. */
	table_set(t->h->r, t->h->idx, false, 0, 0);
	gm_unpin(pin);
	t->released = true;
}

static void revoke_cb(struct gm_pin *pin, void *opaque)
{
	struct ticket *t = opaque;
	struct holder *h = t->h;

	add(&h->r->callbacks, 1);
	pthread_mutex_lock(&h->mu);
	/* Before gm_pin_revocable returned, t->pin is not set yet. */
	CHECK(h->r, !t->pin || t->pin == pin);
	if (!t->released) {
		if (t->immediate)
			release_locked(t, pin);
		else
			t->asked = true;
	}
	pthread_mutex_unlock(&h->mu);
}

/* Under h->mu, while held: the pointer reads the pattern. */
static void check_bytes(struct holder *h, struct gm_pin *pin)
{
	size_t len = gm_pin_length(pin);

	CHECK(h->r, tu_pat_check(gm_pin_ptr(pin), len, gm_pin_offset(pin),
				 SEED) == len);
}

static void *holder_main(void *arg)
{
	struct holder *h = arg;
	struct race *r = h->r;

	for (unsigned int k = 0;
	     k < TICKETS && !__atomic_load_n(&r->stop, __ATOMIC_RELAXED); k++) {
		struct ticket *t = &h->tickets[k];
		uint64_t len = 1 + tu_rand(&h->rng) % 4;
		uint64_t off = tu_rand(&h->rng) % (NPAGES - len + 1);
		unsigned int flags =
			tu_rand(&h->rng) % 8 ? 0 : GM_PIN_EXCLUSIVE;
		struct gm_pin *pin = NULL;
		int ret, looks = tu_rand(&h->rng) % 4;

		*t = (struct ticket){ .h = h,
				      .immediate = tu_rand(&h->rng) % 2 };
		__atomic_store_n(&r->hint, off, __ATOMIC_RELAXED);
		ret = gm_pin_revocable(r->s, off * PG, len * PG, flags,
				       revoke_cb, t, &pin);
		CHECK(r, ret == 0 || ret == -EFAULT || ret == -EBUSY);
		if (ret)
			continue;
		add(&r->pins_ok, 1);
		pthread_mutex_lock(&h->mu);
		if (!t->released) {
			t->pin = pin;
			table_set(r, h->idx, true, off * PG, len * PG);
			check_bytes(h, pin);
		}
		pthread_mutex_unlock(&h->mu);
		/* Hold it a little, looking now and then. */
		for (int i = 0; i <= looks; i++) {
			sched_yield();
			pthread_mutex_lock(&h->mu);
			if (!t->released) {
				check_bytes(h, pin);
				if (t->asked || i == looks)
					release_locked(t, pin);
			}
			pthread_mutex_unlock(&h->mu);
		}
	}
	return NULL;
}

static void *converter_main(void *arg)
{
	static uint64_t nr_converters;
	struct race *r = arg;
	uint64_t rng = 0x1234567 * (1 + __atomic_fetch_add(&nr_converters, 1,
							   __ATOMIC_RELAXED));

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		uint64_t len = 1 + tu_rand(&rng) % 8;
		uint64_t off = tu_rand(&rng) % (NPAGES - len + 1);
		struct gm_convert_opts co = {
			.sz = sizeof(co),
			.revoke_timeout_ns = (1 + tu_rand(&rng) % 20) * 1000000,
		};
		int ret;

		add(&r->conv_calls, 1);
		ret = gm_convert_ex(r->s, off * PG, len * PG, GM_ATTR_PRIVATE,
				    GM_CONVERT_REVOKE, &co);
		/* -EBUSY: a pin came after the revoke, or would not go. */
		CHECK(r, ret == 0 || ret == -EBUSY);
		add(ret ? &r->conv_busy : &r->conv_ok, 1);
		if (ret)
			continue;
		if (tu_rand(&rng) % 2)
			sched_yield();
		add(&r->conv_calls, 1);
		ret = gm_convert(r->s, off * PG, len * PG, GM_ATTR_SHARED, 0);
		CHECK(r, ret == 0);
		add(&r->conv_ok, 1);
	}
	return NULL;
}

static void anchor_cb(struct gm_pin *pin, void *opaque)
{
	struct race *r = opaque;

	add(&r->callbacks, 1);
}

/*
 * Revoke passes, many, over the page a holder is pinning right now: each
 * asks every pin from page 0 (where the anchor, a holder that never lets
 * go, sits) to past the hint, then gives up at once, without the write
 * lock, so that the passes come as fast as the pins.
 */
static void *revoker_main(void *arg)
{
	struct race *r = arg;
	struct gm_convert_opts co = { .sz = sizeof(co),
				      .revoke_timeout_ns = 1 };

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		uint64_t hint = __atomic_load_n(&r->hint, __ATOMIC_RELAXED);
		uint64_t len = hint + 4 < NPAGES ? hint + 4 : NPAGES;
		int ret;

		add(&r->conv_calls, 1);
		ret = gm_convert_ex(r->s, 0, len * PG, GM_ATTR_PRIVATE,
				    GM_CONVERT_REVOKE, &co);
		CHECK(r, ret == -EBUSY);
		add(&r->conv_busy, 1);
	}
	return NULL;
}

/* Under the write lock, as each change to private commits. */
static void on_commit(void *opaque, const struct gm_range_change *c)
{
	struct race *r = opaque;

	if (c->to != GM_ATTR_PRIVATE)
		return;
	add(&r->commits_private, 1);
	pthread_mutex_lock(&r->table_mu);
	for (int i = 0; i < HOLDERS; i++) {
		if (r->table[i].held && r->table[i].off < c->off + c->len &&
		    c->off < r->table[i].off + r->table[i].len) {
			fprintf(stderr,
				"pin [0x%llx, +0x%llx) survived a conversion "
				"of [0x%llx, +0x%llx) to private\n",
				(unsigned long long)r->table[i].off,
				(unsigned long long)r->table[i].len,
				(unsigned long long)c->off,
				(unsigned long long)c->len);
			add(&r->survivors, 1);
		}
	}
	pthread_mutex_unlock(&r->table_mu);
}

static void race(struct gm_store *s)
{
	static struct race r;
	static struct holder h[HOLDERS];
	const struct gm_listener_ops ops = { .sz = sizeof(ops),
					     .commit = on_commit };
	pthread_t th[HOLDERS], tc[CONVERTERS], tr;
	struct gm_listener *l;
	struct gm_pin *anchor;
	struct gm_stats a, b;
	uint8_t attrs[NPAGES];
	uint64_t t0, seed = tu_seed("test_pin_race", 0x9ace);

	r = (struct race){ .s = s };
	pthread_mutex_init(&r.table_mu, NULL);
	tu_write_pattern(s, 0, NPAGES * PG, SEED);
	assert_int_equal(gm_listener_register(s, &ops, &r, &l), 0);
	tu_stats(s, &a);
	assert_int_equal(gm_pin_revocable(s, 0, PG, 0, anchor_cb, &r, &anchor),
			 0);
	for (unsigned int i = 0; i < HOLDERS; i++) {
		h[i] = (struct holder){ .r = &r,
					.idx = i,
					.rng = seed * (i + 1) };
		h[i].tickets = calloc(TICKETS, sizeof(*h[i].tickets));
		assert_non_null(h[i].tickets);
		pthread_mutex_init(&h[i].mu, NULL);
		assert_int_equal(
			pthread_create(&th[i], NULL, holder_main, &h[i]), 0);
	}
	for (unsigned int i = 0; i < CONVERTERS; i++)
		assert_int_equal(
			pthread_create(&tc[i], NULL, converter_main, &r), 0);
	assert_int_equal(pthread_create(&tr, NULL, revoker_main, &r), 0);
	t0 = tu_now_ms();
	while (tu_now_ms() - t0 < RUN_MS) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	for (unsigned int i = 0; i < HOLDERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (unsigned int i = 0; i < CONVERTERS; i++)
		assert_int_equal(pthread_join(tc[i], NULL), 0);
	assert_int_equal(pthread_join(tr, NULL), 0);
	gm_unpin(anchor);
	tu_stats(s, &b);
	fprintf(stderr,
		"%llu pins, %llu callbacks, %llu conversions (%llu ok, %llu "
		"busy), %llu to private committed\n",
		(unsigned long long)r.pins_ok, (unsigned long long)r.callbacks,
		(unsigned long long)r.conv_calls, (unsigned long long)r.conv_ok,
		(unsigned long long)r.conv_busy,
		(unsigned long long)r.commits_private);

	assert_int_equal(r.failures, 0);
	assert_int_equal(r.survivors, 0);
	/* The race took place. */
	assert_true(r.pins_ok > 0 && r.callbacks > 0 && r.conv_ok > 0);
	/* The counts agree with what the threads saw. */
	assert_int_equal(b.pins_active, 0);
	assert_int_equal(b.pins - a.pins, r.pins_ok + 1);
	assert_int_equal(b.revokes - a.revokes, r.callbacks);
	assert_int_equal(b.failed_requests - a.failed_requests, r.conv_busy);
	assert_int_equal(b.busy_refusals - a.busy_refusals, r.conv_busy);
	assert_int_equal(b.to_private_requests + b.to_shared_requests -
				 a.to_private_requests - a.to_shared_requests,
			 r.conv_ok);
	assert_int_equal(b.private_pages + b.shared_pages, NPAGES);
	/* Every conversion to private was undone: all shared, intact. */
	tu_attrs(s, attrs);
	for (unsigned int i = 0; i < NPAGES; i++)
		assert_int_equal(attrs[i], GM_ATTR_SHARED);
	assert_int_equal(b.private_pages, 0);
	tu_expect_pattern(s, 0, NPAGES * PG, SEED);

	gm_listener_unregister(l);
	for (unsigned int i = 0; i < HOLDERS; i++) {
		pthread_mutex_destroy(&h[i].mu);
		free(h[i].tickets);
	}
	pthread_mutex_destroy(&r.table_mu);
}

static void test_pin_race_view(void **state)
{
	struct gm_store *s = tu_store(NPAGES * PG, GM_STORE_INIT_SHARED);

	race(s);
	assert_int_equal(gm_store_destroy(s), 0);
}

/* A tight view budget: many pins get a mapping of their own. */
static void test_pin_race_own_maps(void **state)
{
	struct gm_store_opts o;
	struct gm_store *s;

	tu_opts(&o, NPAGES * PG, GM_STORE_INIT_SHARED | GM_STORE_VIEW_LAZY);
	o.view_budget = 3;
	s = tu_store_with(&o);
	race(s);
	assert_int_equal(gm_store_destroy(s), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pin_race_view),
		cmocka_unit_test(test_pin_race_own_maps),
	};

	tu_init(argc, argv, "test_pin_race");
	return cmocka_run_group_tests_name(tu_group("test_pin_race"), tests,
					   NULL, NULL);
}
