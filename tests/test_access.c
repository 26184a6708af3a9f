// SPDX-License-Identifier: MIT
/*
 * gm_read/gm_write: any offset and length, checked against a shadow copy;
 * a range with any private byte gives -EFAULT and copies nothing (the
 * buffer untouched on read, the store untouched on write); length 0; bounds
 * and overflow; the same through a lazy view and past the view budget.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define N 24

struct afix {
	struct gm_store *s;
	uint8_t state[N];
	uint8_t shadow[N * 4096];
	uint64_t rng;
};

static void afix_check_all(struct afix *f)
{
	static uint8_t buf[N * 4096];

	for (int i = 0; i < N; i++) {
		int r;

		memset(buf, 0xC3, PG);
		r = gm_read(f->s, i * PG, buf, PG);
		if (f->state[i] == GM_ATTR_SHARED) {
			assert_int_equal(r, 0);
			assert_memory_equal(buf, f->shadow + i * PG, PG);
		} else {
			assert_int_equal(r, -EFAULT);
		}
	}
}

static void random_access(struct afix *f, int iters)
{
	static uint8_t buf[N * 4096 + 64], canary[N * 4096 + 64];
	uint64_t size = N * PG;

	for (int k = 0; k < iters; k++) {
		uint64_t off = tu_rand(&f->rng) % size;
		uint64_t maxlen = size - off;
		uint64_t len;
		bool write = tu_rand(&f->rng) & 1;
		bool priv = false;
		int r;

		switch (tu_rand(&f->rng) % 4) {
		case 0:
			len = 1 + tu_rand(&f->rng) % 16;
			break;
		case 1:
			len = 1 + tu_rand(&f->rng) % (2 * PG);
			break;
		default:
			len = 1 + tu_rand(&f->rng) % maxlen;
			break;
		}
		if (len > maxlen)
			len = maxlen;
		for (uint64_t p = off / PG; p <= (off + len - 1) / PG; p++)
			priv |= f->state[p] == GM_ATTR_PRIVATE;
		/* Guard bytes around the buffer. */
		memset(buf, 0xA5, len + 64);
		if (write) {
			tu_pat_fill(buf + 32, len, off, (uint32_t)k);
			memcpy(canary, buf, len + 64);
			r = gm_write(f->s, off, buf + 32, len);
			assert_int_equal(r, priv ? -EFAULT : 0);
			/* The caller's buffer is never written. */
			assert_memory_equal(buf, canary, len + 64);
			if (!r)
				memcpy(f->shadow + off, buf + 32, len);
		} else {
			r = gm_read(f->s, off, buf + 32, len);
			assert_int_equal(r, priv ? -EFAULT : 0);
			for (int g = 0; g < 32; g++) {
				assert_int_equal(buf[g], 0xA5);
				assert_int_equal(buf[32 + len + g], 0xA5);
			}
			if (r) {
				/* Nothing copied. */
				for (uint64_t i = 0; i < len; i++)
					assert_int_equal(buf[32 + i], 0xA5);
			} else {
				assert_memory_equal(buf + 32, f->shadow + off,
						    len);
			}
		}
		if (r)
			assert_true(strlen(gm_last_error()) > 0);
	}
}

static void random_states(struct afix *f)
{
	for (int k = 0; k < 4; k++) {
		int p = tu_rand(&f->rng) % N;
		int len = 1 + tu_rand(&f->rng) % 4;
		uint8_t v = tu_rand(&f->rng) & 1;

		if (p + len > N)
			len = N - p;
		/* In place: the shadow stays right. */
		assert_int_equal(gm_convert(f->s, p * PG, len * PG, v, 0), 0);
		memset(f->state + p, v, len);
	}
}

static void run_random(unsigned int flags, uint32_t budget, uint64_t seed)
{
	struct afix *f = calloc(1, sizeof(*f));
	struct gm_store_opts o;

	assert_non_null(f);
	tu_opts(&o, N * PG, flags | GM_STORE_INIT_SHARED);
	o.view_budget = budget;
	f->s = tu_store_with(&o);
	f->rng = seed;
	for (int round = 0; round < 40; round++) {
		random_states(f);
		random_access(f, 100);
		afix_check_all(f);
	}
	gm_store_destroy(f->s);
	free(f);
}

static void test_random_eager(void **state)
{
	run_random(0, 0, tu_seed("access eager", 0xacce0001));
}

static void test_random_lazy(void **state)
{
	run_random(GM_STORE_VIEW_LAZY, 0, tu_seed("access lazy", 0xacce0002));
}

static void test_random_budget(void **state)
{
	struct gm_store_opts o;
	struct gm_store *s;
	struct gm_stats st;

	run_random(0, 3, tu_seed("access budget 3", 0xacce0003));
	/* The budget path goes around the view (and says so). */
	tu_opts(&o, 8 * PG, 0);
	o.view_budget = 1;
	s = tu_store_with(&o);
	assert_int_equal(gm_convert(s, 2 * PG, PG, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_write(s, 2 * PG + 1, "x", 1), 0);
	tu_stats(s, &st);
	assert_true(st.access_fallbacks > 0);
	gm_store_destroy(s);
}

static void test_edges(void **state)
{
	const uint64_t size = tu_round(4 * PG);
	struct gm_store *s = tu_store(size, GM_STORE_INIT_SHARED);
	uint8_t buf[32], out[32];

	memset(buf, 0x11, sizeof(buf));
	/* Length 0: nothing to do, anywhere in the store. */
	assert_int_equal(gm_read(s, 0, buf, 0), 0);
	assert_int_equal(gm_write(s, 5, buf, 0), 0);
	assert_int_equal(gm_read(s, size - 1, buf, 0), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0x11);
	/* The last byte and the first. */
	assert_int_equal(gm_write(s, size - 1, "z", 1), 0);
	assert_int_equal(gm_read(s, size - 1, out, 1), 0);
	assert_int_equal(out[0], 'z');
	assert_int_equal(gm_write(s, 0, "a", 1), 0);
	/* Past the end, overflow. */
	assert_int_equal(gm_read(s, size - 1, out, 2), -ERANGE);
	assert_int_equal(gm_write(s, size - 1, buf, 2), -ERANGE);
	assert_int_equal(gm_read(s, size, out, 1), -ERANGE);
	assert_int_equal(gm_read(s, size + 100, out, 1), -ERANGE);
	assert_int_equal(gm_read(s, UINT64_MAX - 3, out, 8), -ERANGE);
	assert_int_equal(gm_write(s, UINT64_MAX, buf, 1), -ERANGE);
	assert_int_equal(gm_read(s, 16, out, SIZE_MAX), -ERANGE);
	assert_true(strlen(gm_last_error()) > 0);
	/* The failed write touched nothing. */
	assert_int_equal(gm_read(s, size - 1, out, 1), 0);
	assert_int_equal(out[0], 'z');
	/* NULL buffer, NULL store. */
	assert_int_equal(gm_read(s, 0, NULL, 4), -EINVAL);
	assert_int_equal(gm_write(s, 0, NULL, 4), -EINVAL);
	assert_true(gm_read(NULL, 0, out, 4) < 0);
	/* A private page in the middle: nothing copied either way. */
	assert_int_equal(gm_convert(s, PG, PG, GM_ATTR_PRIVATE, 0), 0);
	memset(out, 0x77, sizeof(out));
	assert_int_equal(gm_write(s, PG - 4, buf, 8), -EFAULT);
	assert_int_equal(gm_read(s, PG - 4, out, 8), -EFAULT);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0x77);
	assert_int_equal(gm_read(s, 2 * PG - 2, out, 4), -EFAULT);
	assert_int_equal(gm_read(s, 0, out, 1), 0);
	assert_int_equal(out[0], 'a');
	/* The page before it was not written by the failed write. */
	assert_int_equal(gm_read(s, PG - 4, out, 4), 0);
	assert_int_equal(tu_zero_check(out, 4), 4);
	/* One byte of the private page is enough. */
	assert_int_equal(gm_read(s, 2 * PG - 1, out, 1), -EFAULT);
	assert_int_equal(gm_read(s, 2 * PG, out, 1), 0);
	gm_store_destroy(s);
}

static void test_big_access(void **state)
{
	const uint64_t size = 256 * PG;
	struct gm_store *s = tu_store(size, GM_STORE_INIT_SHARED);
	uint8_t *a = malloc(size), *b = malloc(size);

	assert_non_null(a);
	assert_non_null(b);
	tu_pat_fill(a, size - 3, 3, 5);
	assert_int_equal(gm_write(s, 3, a, size - 3), 0);
	assert_int_equal(gm_convert(s, 0, size, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_read(s, 3, b, size - 3), -EFAULT);
	assert_int_equal(gm_convert(s, 0, size, GM_ATTR_SHARED, 0), 0);
	memset(b, 0, size);
	assert_int_equal(gm_read(s, 3, b, size - 3), 0);
	assert_int_equal(tu_pat_check(b, size - 3, 3, 5), size - 3);
	assert_int_equal(gm_convert(s, size - PG, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_read(s, 3, b, size - 3), -EFAULT);
	assert_int_equal(gm_read(s, 3, b, size - PG - 3), 0);
	free(a);
	free(b);
	gm_store_destroy(s);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_eager),
		cmocka_unit_test(test_random_lazy),
		cmocka_unit_test(test_random_budget),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_big_access),
	};

	tu_init(argc, argv, "test_access");
	return cmocka_run_group_tests_name(tu_group("test_access"), tests, NULL,
					   NULL);
}
