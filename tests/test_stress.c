// SPDX-License-Identifier: MIT
/*
 * Several threads for a bounded time doing conversions (in place,
 * destructive, with REVOKE), pins (plain, exclusive, revocable), reads and
 * writes on one store, with invariants checked during the run and at the
 * end:
 *  - each thread owns some chunks: it writes a checksum pattern there and
 *    verifies it after in-place round trips (zeroes after destructive ones);
 *    while it holds a chunk private, gm_read and gm_pin there give -EFAULT;
 *    while it holds a chunk pinned, gm_read there succeeds and conversion to
 *    private is -EBUSY;
 *  - the other threads read the owned chunks too: when the owner's state
 *    did not change during the read (a sequence count), a private chunk must
 *    give -EFAULT (no gm_read ever returns data from a private page) and a
 *    shared one exactly the owner's pattern;
 *  - a chaos region where everyone converts, pins and copies at random;
 *  - at the end: no pins left, private + shared pages == size / 4096, the
 *    attribute counters add up, the failed conversions counted by the
 *    threads match failed_requests, and every owned chunk is as its owner
 *    left it.
 * Threads do not call cmocka asserts; they count failures with a message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define NTHREADS 4
#define CHUNK_PAGES 4
#define CHUNKS_PER_THREAD 16
#define OWNED_PAGES (NTHREADS * CHUNKS_PER_THREAD * CHUNK_PAGES)
#define CHAOS_PAGES 256
#define NPAGES (OWNED_PAGES + CHAOS_PAGES)
#define CHUNK_BYTES (CHUNK_PAGES * 4096)

/*
 * Chaos pages are cut into one slice per thread: a thread copies only in
 * its own slices, so copies never race each other's bytes (they race the
 * conversions, which is the point).
 */
#define SLICE (4096 / NTHREADS)

struct chunk {
	/*
	 * Held for writing by the owner while it writes the contents, for
	 * reading by other threads while they read them: concurrent copies
	 * of the same bytes are a data race of the caller's, not the
	 * library's. Conversions are not under it.
	 */
	pthread_rwlock_t content;
	atomic_uint_fast64_t seq; /* odd while the owner changes it */
	atomic_uint state; /* GM_ATTR_* */
	atomic_uint gen; /* pattern seed of the contents; 0: zeroes */
};

struct rslot {
	_Atomic(struct gm_pin *) pin;
};

struct shared {
	struct gm_store *s;
	uint64_t deadline_ms;
	struct chunk chunks[NTHREADS * CHUNKS_PER_THREAD];
	atomic_int errors;
	atomic_llong convert_failures; /* gm_convert calls that failed */
	atomic_llong pins_taken;
	/* the listener's view of things */
	atomic_llong prepares, commits, aborts, vetoes;
	atomic_int in_listener; /* listeners never overlap */
	atomic_bool no_veto;
	pthread_mutex_t msg_lock;
	char first_error[512];
};

struct worker {
	struct shared *sh;
	int id;
	uint64_t rng;
	struct rslot slot;
	uint8_t buf[CHUNK_BYTES], tmp[CHUNK_BYTES];
	long ops, cross_checked, cross_private_checked;
};

static void failf(struct shared *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void failf(struct shared *sh, const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&sh->errors, 1) == 0) {
		pthread_mutex_lock(&sh->msg_lock);
		va_start(ap, fmt);
		vsnprintf(sh->first_error, sizeof(sh->first_error), fmt, ap);
		va_end(ap);
		pthread_mutex_unlock(&sh->msg_lock);
	}
}

static uint64_t chunk_off(int c)
{
	return (uint64_t)c * CHUNK_BYTES;
}

static int convert(struct worker *w, uint64_t off, uint64_t len,
		   enum gm_attr to, unsigned int flags,
		   struct gm_convert_opts *co)
{
	int r = gm_convert_ex(w->sh->s, off, len, to, flags, co);

	if (r)
		atomic_fetch_add(&w->sh->convert_failures, 1);
	return r;
}

/* The owner makes chunk c private; cross pins may hold it a moment. */
static int owner_to(struct worker *w, int c, enum gm_attr to,
		    unsigned int flags)
{
	struct gm_convert_opts co = { .sz = sizeof(co) };
	int r, tries = 0;

	do {
		r = convert(w, chunk_off(c), CHUNK_BYTES, to, flags, &co);
		if (r == -EBUSY)
			sched_yield();
	} while (r == -EBUSY && ++tries < 100000);
	if (r)
		failf(w->sh, "thread %d: chunk %d to %d (flags %u): %d (%s)",
		      w->id, c, to, flags, r, gm_last_error());
	else if (co.pages_changed != CHUNK_PAGES)
		failf(w->sh, "thread %d: chunk %d: %llu pages changed", w->id,
		      c, (unsigned long long)co.pages_changed);
	return r;
}

static bool contents_ok(const uint8_t *b, uint64_t off, size_t len,
			unsigned int gen)
{
	return gen ? tu_pat_check(b, len, off, gen) == len :
		     tu_zero_check(b, len) == len;
}

static void owner_verify(struct worker *w, int c)
{
	struct chunk *ch = &w->sh->chunks[c];
	unsigned int st = atomic_load(&ch->state), gen = atomic_load(&ch->gen);
	int r;

	memset(w->buf, 0x5A, CHUNK_BYTES);
	r = gm_read(w->sh->s, chunk_off(c), w->buf, CHUNK_BYTES);
	if (st == GM_ATTR_PRIVATE) {
		if (r != -EFAULT)
			failf(w->sh,
			      "thread %d: gm_read of its private chunk %d: %d",
			      w->id, c, r);
		else if (w->buf[0] != 0x5A || w->buf[CHUNK_BYTES - 1] != 0x5A)
			failf(w->sh, "thread %d: failed read wrote the buffer",
			      w->id);
		return;
	}
	if (r)
		failf(w->sh, "thread %d: gm_read of its shared chunk %d: %d",
		      w->id, c, r);
	else if (!contents_ok(w->buf, chunk_off(c), CHUNK_BYTES, gen))
		failf(w->sh, "thread %d: chunk %d lost its contents (gen %u)",
		      w->id, c, gen);
}

static void owner_step(struct worker *w)
{
	struct shared *sh = w->sh;
	int c = w->id * CHUNKS_PER_THREAD +
		(int)(tu_rand(&w->rng) % CHUNKS_PER_THREAD);
	struct chunk *ch = &sh->chunks[c];
	unsigned int st = atomic_load(&ch->state);
	unsigned int gen = atomic_load(&ch->gen);
	unsigned int op = tu_rand(&w->rng) % 8;
	struct gm_pin *p;
	int r;

	owner_verify(w, c);
	if (st == GM_ATTR_PRIVATE) {
		struct gm_pin *p2 = NULL;

		r = gm_pin(sh->s, chunk_off(c), PG, 0, &p2);
		if (r != -EFAULT) {
			failf(sh, "thread %d: gm_pin of private chunk %d: %d",
			      w->id, c, r);
			if (!r)
				gm_unpin(p2);
		}
		atomic_fetch_add(&ch->seq, 1);
		if (op < 5) {
			r = owner_to(w, c, GM_ATTR_SHARED, 0);
		} else {
			r = owner_to(w, c, GM_ATTR_SHARED,
				     GM_CONVERT_DESTRUCTIVE);
			gen = 0;
		}
		if (!r)
			atomic_store(&ch->state, GM_ATTR_SHARED);
		atomic_store(&ch->gen, gen);
		atomic_fetch_add(&ch->seq, 1);
		owner_verify(w, c);
		return;
	}
	switch (op) {
	case 0:
	case 1:
		/* New contents. */
		gen = 1 + (unsigned int)(tu_rand(&w->rng) % 0xffffff);
		tu_pat_fill(w->buf, CHUNK_BYTES, chunk_off(c), gen);
		atomic_fetch_add(&ch->seq, 1);
		pthread_rwlock_wrlock(&ch->content);
		r = gm_write(sh->s, chunk_off(c), w->buf, CHUNK_BYTES);
		pthread_rwlock_unlock(&ch->content);
		if (r)
			failf(sh, "thread %d: gm_write of shared chunk %d: %d",
			      w->id, c, r);
		atomic_store(&ch->gen, gen);
		atomic_fetch_add(&ch->seq, 1);
		break;
	case 2:
	case 3:
	case 4:
		/* To private, in place or destructive. */
		atomic_fetch_add(&ch->seq, 1);
		r = owner_to(w, c, GM_ATTR_PRIVATE,
			     op == 4 ? GM_CONVERT_DESTRUCTIVE : 0);
		if (!r) {
			atomic_store(&ch->state, GM_ATTR_PRIVATE);
			if (op == 4)
				atomic_store(&ch->gen, 0);
		}
		atomic_fetch_add(&ch->seq, 1);
		break;
	default:
		/* Pin: reads work, conversion to private is refused. */
		r = gm_pin(sh->s, chunk_off(c), CHUNK_BYTES,
			   op == 7 ? GM_PIN_EXCLUSIVE : 0, &p);
		if (r == -EBUSY)
			break; /* a cross reader's pin */
		if (r) {
			failf(sh, "thread %d: gm_pin of shared chunk %d: %d",
			      w->id, c, r);
			break;
		}
		atomic_fetch_add(&sh->pins_taken, 1);
		r = convert(w, chunk_off(c) + PG, PG, GM_ATTR_PRIVATE, 0, NULL);
		if (r != -EBUSY)
			failf(sh,
			      "thread %d: conversion of pinned chunk %d: %d",
			      w->id, c, r);
		if (gm_range_is(sh->s, chunk_off(c), CHUNK_BYTES,
				GM_ATTR_SHARED) != 1)
			failf(sh, "thread %d: pinned chunk %d not shared",
			      w->id, c);
		r = gm_read(sh->s, chunk_off(c), w->tmp, CHUNK_BYTES);
		if (r || !contents_ok(w->tmp, chunk_off(c), CHUNK_BYTES, gen))
			failf(sh, "thread %d: read of pinned chunk %d: %d",
			      w->id, c, r);
		if (!contents_ok(gm_pin_ptr(p), chunk_off(c), CHUNK_BYTES, gen))
			failf(sh, "thread %d: pin pointer of chunk %d", w->id,
			      c);
		/* New contents through the pin pointer. */
		gen = 1 + (unsigned int)(tu_rand(&w->rng) % 0xffffff);
		atomic_fetch_add(&ch->seq, 1);
		pthread_rwlock_wrlock(&ch->content);
		tu_pat_fill(gm_pin_ptr(p), CHUNK_BYTES, chunk_off(c), gen);
		pthread_rwlock_unlock(&ch->content);
		atomic_store(&ch->gen, gen);
		atomic_fetch_add(&ch->seq, 1);
		gm_unpin(p);
		break;
	}
}

/* Read another thread's chunk; check when its state held still. */
static void cross_step(struct worker *w)
{
	struct shared *sh = w->sh;
	int other = (w->id + 1 + (int)(tu_rand(&w->rng) % (NTHREADS - 1))) %
		    NTHREADS;
	int c = other * CHUNKS_PER_THREAD +
		(int)(tu_rand(&w->rng) % CHUNKS_PER_THREAD);
	struct chunk *ch = &sh->chunks[c];
	uint64_t s1, s2, off, len;
	unsigned int st, gen;
	struct gm_pin *p = NULL;
	bool pin = tu_rand(&w->rng) % 4 == 0;
	int r;

	off = tu_rand(&w->rng) % CHUNK_BYTES;
	len = 1 + tu_rand(&w->rng) % (CHUNK_BYTES - off);
	s1 = atomic_load(&ch->seq);
	st = atomic_load(&ch->state);
	gen = atomic_load(&ch->gen);
	if (s1 & 1)
		return;
	if (pin) {
		r = gm_pin(sh->s, chunk_off(c), PG, 0, &p);
		if (!r) {
			atomic_fetch_add(&sh->pins_taken, 1);
			gm_unpin(p);
		}
	} else {
		memset(w->buf, 0x5A, len);
		pthread_rwlock_rdlock(&ch->content);
		r = gm_read(sh->s, chunk_off(c) + off, w->buf, len);
		pthread_rwlock_unlock(&ch->content);
	}
	s2 = atomic_load(&ch->seq);
	if (s1 != s2)
		return;
	w->cross_checked++;
	if (st == GM_ATTR_PRIVATE) {
		w->cross_private_checked++;
		if (r != -EFAULT)
			failf(sh,
			      "thread %d: %s of chunk %d, private all along: "
			      "%d",
			      w->id, pin ? "gm_pin" : "gm_read", c, r);
		else if (!pin && w->buf[0] != 0x5A)
			failf(sh, "thread %d: failed gm_read wrote the buffer",
			      w->id);
	} else if (pin) {
		if (r && r != -EBUSY)
			failf(sh, "thread %d: gm_pin of shared chunk %d: %d",
			      w->id, c, r);
	} else if (r) {
		failf(sh,
		      "thread %d: gm_read of chunk %d, shared all along: "
		      "%d",
		      w->id, c, r);
	} else if (!contents_ok(w->buf, chunk_off(c) + off, len, gen)) {
		failf(sh, "thread %d: chunk %d read torn or stale data", w->id,
		      c);
	}
}

static void chaos_revoke(struct gm_pin *pin, void *opaque)
{
	struct rslot *sl = opaque;
	struct gm_pin *exp = pin;

	if (atomic_compare_exchange_strong(&sl->pin, &exp, NULL))
		gm_unpin(pin);
}

static void chaos_range(struct worker *w, uint64_t *off, uint64_t *len)
{
	uint64_t a = tu_rand(&w->rng) % CHAOS_PAGES;
	uint64_t n = 1 + tu_rand(&w->rng) % 16;

	if (a + n > CHAOS_PAGES)
		n = CHAOS_PAGES - a;
	*off = (OWNED_PAGES + a) * PG;
	*len = n * PG;
}

static void chaos_step(struct worker *w)
{
	struct shared *sh = w->sh;
	uint64_t off, len;
	struct gm_pin *p, *old;
	int r;

	chaos_range(w, &off, &len);
	switch (tu_rand(&w->rng) % 6) {
	case 0:
	case 1: {
		struct gm_convert_opts co = { .sz = sizeof(co),
					      .revoke_timeout_ns = 2000000 };
		unsigned int flags = 0;
		enum gm_attr to = tu_rand(&w->rng) & 1;

		if (tu_rand(&w->rng) & 1)
			flags |= GM_CONVERT_DESTRUCTIVE;
		if (tu_rand(&w->rng) % 3 == 0)
			flags |= GM_CONVERT_REVOKE;
		r = convert(w, off, len, to, flags, &co);
		if (r && r != -EBUSY && r != -ECANCELED)
			failf(sh, "thread %d: chaos conversion: %d (%s)", w->id,
			      r, gm_last_error());
		break;
	}
	case 2: {
		/* A plain pin: reads work while it is held. */
		unsigned int fl = tu_rand(&w->rng) % 4 ? 0 : GM_PIN_EXCLUSIVE;

		r = gm_pin(sh->s, off, len, fl, &p);
		if (r && r != -EFAULT && r != -EBUSY) {
			failf(sh, "thread %d: chaos pin: %d", w->id, r);
			break;
		}
		if (r)
			break;
		atomic_fetch_add(&sh->pins_taken, 1);
		/* Its own slice: other threads write theirs meanwhile. */
		r = gm_read(sh->s, off + w->id * SLICE, w->buf, SLICE);
		if (r)
			failf(sh, "thread %d: read of its pinned range: %d",
			      w->id, r);
		if (gm_range_is(sh->s, off, len, GM_ATTR_SHARED) != 1)
			failf(sh, "thread %d: pinned range not shared", w->id);
		r = convert(w, off, len, GM_ATTR_PRIVATE, 0, NULL);
		if (r != -EBUSY)
			failf(sh, "thread %d: conversion of its pin: %d", w->id,
			      r);
		memcpy(w->tmp, (uint8_t *)gm_pin_ptr(p) + w->id * SLICE, 64);
		gm_unpin(p);
		break;
	}
	case 3:
		/* A revocable pin: kept until the next one or revoked. */
		old = atomic_exchange(&w->slot.pin, NULL);
		gm_unpin(old);
		r = gm_pin_revocable(sh->s, off, len, 0, chaos_revoke, &w->slot,
				     &p);
		if (r && r != -EFAULT && r != -EBUSY)
			failf(sh, "thread %d: revocable pin: %d", w->id, r);
		if (!r) {
			atomic_fetch_add(&sh->pins_taken, 1);
			atomic_store(&w->slot.pin, p);
		}
		break;
	case 4: {
		uint64_t at = off + (tu_rand(&w->rng) % (len / PG)) * PG +
			      w->id * SLICE;
		uint64_t x = tu_rand(&w->rng) % SLICE;

		r = gm_read(sh->s, at + x, w->buf, SLICE - x);
		if (r && r != -EFAULT)
			failf(sh, "thread %d: chaos read: %d", w->id, r);
		break;
	}
	default: {
		uint64_t at = off + (tu_rand(&w->rng) % (len / PG)) * PG +
			      w->id * SLICE;
		uint64_t x = tu_rand(&w->rng) % SLICE;

		memset(w->tmp, w->id + 1, SLICE);
		r = gm_write(sh->s, at + x, w->tmp, SLICE - x);
		if (r && r != -EFAULT)
			failf(sh, "thread %d: chaos write: %d", w->id, r);
		break;
	}
	}
}

/*
 * A listener: checks what it hears, vetoes some chaos conversions, and
 * counts, so that prepares == commits + aborts at the end.
 */
static int l_prepare(void *opaque, const struct gm_range_change *ch)
{
	struct shared *sh = opaque;
	int r = 0;

	if (atomic_fetch_add(&sh->in_listener, 1) != 0)
		failf(sh, "listeners of one store ran concurrently");
	if (ch->from == ch->to || ch->len == 0 || (ch->off | ch->len) % PG ||
	    ch->off + ch->len > NPAGES * PG)
		failf(sh, "listener heard a bad change [0x%llx, +0x%llx)",
		      (unsigned long long)ch->off, (unsigned long long)ch->len);
	atomic_fetch_add(&sh->prepares, 1);
	if (!atomic_load(&sh->no_veto) && ch->off >= OWNED_PAGES * PG &&
	    (ch->off / PG) % 29 == 0) {
		atomic_fetch_add(&sh->vetoes, 1);
		r = -ECANCELED;
	}
	atomic_fetch_sub(&sh->in_listener, 1);
	return r;
}

static void l_commit(void *opaque, const struct gm_range_change *ch)
{
	struct shared *sh = opaque;

	atomic_fetch_add(&sh->commits, 1);
}

static void l_abort(void *opaque, const struct gm_range_change *ch)
{
	struct shared *sh = opaque;

	atomic_fetch_add(&sh->aborts, 1);
}

static const struct gm_listener_ops l_ops = {
	.sz = sizeof(struct gm_listener_ops),
	.prepare = l_prepare,
	.commit = l_commit,
	.abort = l_abort,
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	while (tu_now_ms() < w->sh->deadline_ms &&
	       atomic_load(&w->sh->errors) == 0) {
		unsigned int k = tu_rand(&w->rng) % 10;

		if (k < 4)
			owner_step(w);
		else if (k < 7)
			cross_step(w);
		else
			chaos_step(w);
		w->ops++;
	}
	gm_unpin(atomic_exchange(&w->slot.pin, NULL));
	return NULL;
}

static void run(unsigned int flags, uint32_t budget, uint64_t ms, uint64_t seed)
{
	struct shared *sh = calloc(1, sizeof(*sh));
	static struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	struct gm_store_opts o;
	struct gm_listener *l;
	struct gm_stats st;
	static uint8_t attrs[NPAGES];
	uint64_t priv = 0;
	long ops = 0, cross = 0, cross_priv = 0;

	assert_non_null(sh);
	pthread_mutex_init(&sh->msg_lock, NULL);
	tu_opts(&o, NPAGES * PG, flags | GM_STORE_INIT_SHARED);
	o.view_budget = budget;
	sh->s = tu_store_with(&o);
	assert_int_equal(gm_listener_register(sh->s, &l_ops, sh, &l), 0);
	for (int c = 0; c < NTHREADS * CHUNKS_PER_THREAD; c++) {
		pthread_rwlock_init(&sh->chunks[c].content, NULL);
		atomic_init(&sh->chunks[c].seq, 0);
		atomic_init(&sh->chunks[c].state, GM_ATTR_SHARED);
		atomic_init(&sh->chunks[c].gen, 0);
	}
	sh->deadline_ms = tu_now_ms() + ms;
	for (int i = 0; i < NTHREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].sh = sh;
		w[i].id = i;
		w[i].rng = seed + 0x9E3779B97F4A7C15ULL * (i + 1);
		atomic_init(&w[i].slot.pin, NULL);
		assert_int_equal(
			pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		ops += w[i].ops;
		cross += w[i].cross_checked;
		cross_priv += w[i].cross_private_checked;
	}
	fprintf(stderr,
		"stress (flags %u, budget %u): %ld ops, %ld cross reads "
		"checked (%ld of private chunks), %d errors\n",
		flags, budget, ops, cross, cross_priv,
		atomic_load(&sh->errors));
	if (atomic_load(&sh->errors))
		fail_msg("%d errors; first: %s", atomic_load(&sh->errors),
			 sh->first_error);
	assert_true(ops > 100);
	assert_true(cross > 0);

	/* The end: counters and states add up. */
	tu_stats(sh->s, &st);
	assert_int_equal(st.pins_active, 0);
	assert_int_equal(st.private_pages + st.shared_pages, NPAGES);
	assert_int_equal(st.pins, (uint64_t)atomic_load(&sh->pins_taken));
	assert_int_equal(st.failed_requests,
			 (uint64_t)atomic_load(&sh->convert_failures));
	assert_int_equal(st.private_pages,
			 st.to_private_pages - st.to_shared_pages);
	/* Every prepare was committed or aborted; vetoes were counted. */
	fprintf(stderr,
		"  listener: %lld prepares, %lld commits, %lld aborts, "
		"%lld vetoes\n",
		(long long)atomic_load(&sh->prepares),
		(long long)atomic_load(&sh->commits),
		(long long)atomic_load(&sh->aborts),
		(long long)atomic_load(&sh->vetoes));
	assert_int_equal(atomic_load(&sh->prepares) - atomic_load(&sh->vetoes),
			 atomic_load(&sh->commits) + atomic_load(&sh->aborts));
	assert_true(st.vetoes <= (uint64_t)atomic_load(&sh->vetoes));
	tu_attrs(sh->s, attrs);
	for (int i = 0; i < NPAGES; i++)
		priv += attrs[i] == GM_ATTR_PRIVATE;
	assert_int_equal(priv, st.private_pages);
	assert_int_equal(st.extents, gm_extent_count(sh->s));
	/*
	 * Pinned pages stay open whatever the budget (gmem.h: up to two
	 * extents each), and once unpinned they stay open until a conversion
	 * closes their run: the bound holds with every chunk's pin counted.
	 */
	assert_true(st.view_extents <=
		    (budget ? budget : GM_VIEW_BUDGET_DEFAULT) +
			    2 * NTHREADS * CHUNKS_PER_THREAD);
	for (int c = 0; c < NTHREADS * CHUNKS_PER_THREAD; c++) {
		unsigned int state = atomic_load(&sh->chunks[c].state);

		for (int p = 0; p < CHUNK_PAGES; p++)
			assert_int_equal(attrs[c * CHUNK_PAGES + p], state);
		w[0].id = -1;
		owner_verify(&w[0], c);
		if (state == GM_ATTR_PRIVATE) {
			/* In place back: the pattern (or zeroes) is there. */
			assert_int_equal(gm_convert(sh->s, chunk_off(c),
						    CHUNK_BYTES, GM_ATTR_SHARED,
						    0),
					 0);
			atomic_store(&sh->chunks[c].state, GM_ATTR_SHARED);
			owner_verify(&w[0], c);
		}
	}
	if (atomic_load(&sh->errors))
		fail_msg("final check: %s", sh->first_error);
	/* Everything can be made private now that no pin is left. */
	atomic_store(&sh->no_veto, true);
	assert_int_equal(gm_convert(sh->s, 0, NPAGES * PG, GM_ATTR_PRIVATE, 0),
			 0);
	tu_stats(sh->s, &st);
	assert_int_equal(st.private_pages, NPAGES);
	gm_listener_unregister(l);
	assert_int_equal(gm_store_destroy(sh->s), 0);
	for (int c = 0; c < NTHREADS * CHUNKS_PER_THREAD; c++)
		pthread_rwlock_destroy(&sh->chunks[c].content);
	pthread_mutex_destroy(&sh->msg_lock);
	free(sh);
}

static void test_stress_eager(void **state)
{
	run(0, 0, 1500, tu_seed("stress eager", 0x57e55001));
}

static void test_stress_lazy_budget(void **state)
{
	/* A small budget: closing a run closes neighbours' pages too. */
	run(GM_STORE_VIEW_LAZY, 12, 1500,
	    tu_seed("stress lazy budget", 0x57e55002));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress_eager),
		cmocka_unit_test(test_stress_lazy_budget),
	};

	tu_init(argc, argv, "test_stress");
	return cmocka_run_group_tests_name(tu_group("test_stress"), tests, NULL,
					   NULL);
}
