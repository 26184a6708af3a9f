// SPDX-License-Identifier: MIT
/*
 * The host view: private pages fault when touched, shared pages are
 * read/write (eager) or after gm_view_open (lazy), lazy conversions of
 * untouched ranges need no mprotect, hypervisor-visible ranges stay mapped
 * while private (but the access calls still refuse them), the view budget
 * is respected, and the 4 GiB alternating-page VMA test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

/* Touch addr in a child process; the child's fate: 0 or the signal. */
static int child_touch(void *addr)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		(void)*(volatile uint8_t *)addr;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return WTERMSIG(status);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status) ? -1 : 0;
}

static void test_private_faults(void **state)
{
	const uint64_t u = tu_unit(); /* the view's unit */
	const uint64_t n = 8;
	struct gm_store *s = tu_store(n * u, 0);
	uint8_t *v = gm_view_base(s);

	assert_non_null(v);
	/* All private: every page faults, in a child and in process. */
	assert_int_equal(child_touch(v + 3 * u + 17), SIGSEGV);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(tu_probe(v + i * u, false), SIGSEGV);
		assert_int_equal(tu_probe(v + i * u + u - 1, true), SIGSEGV);
	}
	/* Shared (eager): read/write through the view. */
	assert_int_equal(gm_convert(s, 2 * u, 2 * u, GM_ATTR_SHARED, 0), 0);
	/* A forked child has no mapping of the store at all (DONTFORK). */
	assert_int_equal(child_touch(v + 3 * u + 17), SIGSEGV);
	assert_int_equal(tu_probe(v + 2 * u, true), 0);
	assert_int_equal(tu_probe(v + 4 * u - 1, true), 0);
	assert_int_equal(tu_probe(v + 4 * u, false), SIGSEGV);
	assert_int_equal(tu_probe(v + 2 * u - 1, false), SIGSEGV);
	assert_int_equal(gm_view_is_open(s, 2 * u, 2 * u), 1);
	assert_int_equal(gm_view_is_open(s, u, 2 * u), 0);
	memcpy(v + 2 * u + 100, "hello", 5);
	{
		char b[5];

		assert_int_equal(gm_read(s, 2 * u + 100, b, 5), 0);
		assert_memory_equal(b, "hello", 5);
		assert_int_equal(gm_write(s, 3 * u, "world", 5), 0);
		assert_memory_equal(v + 3 * u, "world", 5);
	}
	/* Back to private: the old pointer faults again (not a pin). */
	assert_int_equal(gm_convert(s, 2 * u, 2 * u, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(tu_probe(v + 2 * u + 100, false), SIGSEGV);
	assert_int_equal(tu_probe(v + 3 * u, false), SIGSEGV);
	assert_int_equal(child_touch(v + 3 * u), SIGSEGV);
	assert_int_equal(gm_view_is_open(s, 2 * u, u), 0);
	/* gm_view_open refuses private pages. */
	assert_int_equal(gm_view_open(s, 2 * u, u), -EFAULT);
	assert_int_equal(gm_view_open(s, 1, PG), -EINVAL);
	assert_int_equal(gm_view_open(s, 0, (n + 1) * u), -ERANGE);
	assert_int_equal(gm_store_destroy(s), 0);
}

static void test_lazy(void **state)
{
	const uint64_t u = tu_unit(); /* the view's unit */
	const uint64_t n = 16;
	struct gm_store *s = tu_store(n * u, GM_STORE_VIEW_LAZY);
	uint8_t *v = gm_view_base(s);
	struct gm_stats a, b;
	uint8_t buf[8];

	tu_stats(s, &a);
	/* Never touched by the host: no mprotect either way. */
	for (int k = 0; k < 10; k++) {
		assert_int_equal(gm_convert(s, 0, n * u, GM_ATTR_SHARED, 0), 0);
		assert_int_equal(gm_convert(s, 4 * u, 4 * u, GM_ATTR_PRIVATE,
					    k & 1 ? GM_CONVERT_DESTRUCTIVE : 0),
				 0);
		assert_int_equal(gm_convert(s, 0, n * u, GM_ATTR_PRIVATE, 0),
				 0);
	}
	tu_stats(s, &b);
	assert_int_equal(b.view_mprotects, a.view_mprotects);

	/* Shared but not opened: the view faults, the API works. */
	assert_int_equal(gm_convert(s, 0, 8 * u, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_view_is_open(s, 0, u), 0);
	assert_int_equal(tu_probe(v, false), SIGSEGV);
	assert_int_equal(gm_view_open(s, 0, 2 * u), 0);
	assert_int_equal(gm_view_is_open(s, 0, 2 * u), 1);
	assert_int_equal(tu_probe(v, true), 0);
	assert_int_equal(tu_probe(v + 2 * u - 1, true), 0);
	/* First host access through the API opens the page. */
	assert_int_equal(gm_view_is_open(s, 5 * u, u), 0);
	assert_int_equal(gm_read(s, 5 * u + 8, buf, sizeof(buf)), 0);
	assert_int_equal(gm_view_is_open(s, 5 * u, u), 1);
	assert_int_equal(tu_probe(v + 5 * u, true), 0);
	/* Held pages cannot become private; released, they close again. */
	assert_int_equal(gm_convert(s, 0, 8 * u, GM_ATTR_PRIVATE, 0), -EBUSY);
	assert_int_equal(gm_view_release(s, 0, 2 * u), 0);
	assert_int_equal(gm_view_is_open(s, 0, 2 * u), 1);
	assert_int_equal(gm_convert(s, 0, 8 * u, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(tu_probe(v, false), SIGSEGV);
	assert_int_equal(tu_probe(v + 5 * u, false), SIGSEGV);
	assert_int_equal(gm_store_destroy(s), 0);
}

static void test_hv_visible(void **state)
{
	const uint64_t u = tu_unit(); /* the view's unit */
	const uint64_t n = 16;

	for (int lazy = 0; lazy < 2; lazy++) {
		struct gm_store *s = tu_store(
			n * u,
			GM_STORE_INIT_SHARED | (lazy ? GM_STORE_VIEW_LAZY : 0));
		uint8_t *v = gm_view_base(s), buf[4];

		assert_int_equal(gm_hv_visible_overlaps(s, 0, n * u), 0);
		assert_int_equal(gm_hv_visible_add(s, 4 * u, 2 * u), 0);
		assert_int_equal(gm_hv_visible_add(s, 10 * u, u), 0);
		assert_int_equal(gm_hv_visible_overlaps(s, 0, n * u), 1);
		assert_int_equal(gm_hv_visible_overlaps(s, 5 * u + 7, 1), 1);
		assert_int_equal(gm_hv_visible_overlaps(s, 6 * u, 4 * u), 0);
		assert_int_equal(gm_hv_visible_overlaps(s, 9 * u, 2 * u), 1);
		assert_int_equal(gm_hv_visible_add(s, 1, PG), -EINVAL);
		assert_int_equal(gm_hv_visible_add(s, n * u, u), -ERANGE);

		memcpy(v + 4 * u, "pgtable", 7);
		assert_int_equal(gm_convert(s, 0, n * u, GM_ATTR_PRIVATE, 0),
				 0);
		/* Mapped for KVM: the view still reads and writes them. */
		assert_int_equal(tu_probe(v + 4 * u, true), 0);
		assert_int_equal(tu_probe(v + 6 * u - 1, true), 0);
		assert_int_equal(tu_probe(v + 10 * u, true), 0);
		assert_memory_equal(v + 4 * u, "pgtable", 7);
		assert_int_equal(gm_view_is_open(s, 4 * u, 2 * u), 1);
		/* The rest faults. */
		assert_int_equal(tu_probe(v + 3 * u, false), SIGSEGV);
		assert_int_equal(tu_probe(v + 6 * u, false), SIGSEGV);
		assert_int_equal(tu_probe(v + 11 * u, false), SIGSEGV);
		/* The access calls still refuse private pages there. */
		assert_int_equal(gm_read(s, 4 * u, buf, 4), -EFAULT);
		assert_int_equal(gm_write(s, 10 * u, buf, 4), -EFAULT);
		{
			struct gm_pin *p;

			assert_int_equal(gm_pin(s, 4 * u, u, 0, &p), -EFAULT);
		}
		/* Destructive to private: even the view shows no old byte. */
		assert_int_equal(gm_convert(s, 10 * u, u, GM_ATTR_SHARED, 0),
				 0);
		assert_int_equal(gm_write(s, 10 * u, "secret", 6), 0);
		assert_int_equal(gm_convert(s, 10 * u, u, GM_ATTR_PRIVATE,
					    GM_CONVERT_DESTRUCTIVE),
				 0);
		assert_int_equal(tu_zero_check(v + 10 * u, u), u);
		/* Destructive round trip zeroes them too. */
		assert_int_equal(gm_convert(s, 4 * u, 2 * u, GM_ATTR_SHARED,
					    GM_CONVERT_DESTRUCTIVE),
				 0);
		assert_int_equal(gm_read(s, 4 * u, buf, 4), 0);
		assert_int_equal(tu_zero_check(buf, 4), 4);
		assert_int_equal(tu_zero_check(v + 4 * u, 2 * u), 2 * u);
		assert_int_equal(gm_store_destroy(s), 0);
	}
}

static void test_budget(void **state)
{
	const uint64_t u = tu_unit(); /* the view's unit */
	const uint64_t n = 64;
	struct gm_store_opts o;
	struct gm_store *s;
	uint8_t *v, b[PG];

	tu_opts(&o, n * u, 0);
	o.view_budget = 8;
	s = tu_store_with(&o);
	v = gm_view_base(s);
	/* Every other page shared: 64 runs, far more than the budget. */
	for (uint64_t i = 1; i < n; i += 2)
		assert_int_equal(gm_convert(s, i * u, u, GM_ATTR_SHARED, 0), 0);
	assert_true(gm_view_extent_count(s) <= 8);
	for (uint64_t i = 0; i < n; i++) {
		int open = gm_view_is_open(s, i * u, u);

		memset(b, (int)i, sizeof(b));
		if (i & 1) {
			assert_int_equal(gm_write(s, i * u, b, PG), 0);
			assert_int_equal(tu_probe(v + i * u, false),
					 open ? 0 : SIGSEGV);
		} else {
			assert_int_equal(open, 0);
			assert_int_equal(gm_write(s, i * u, b, PG), -EFAULT);
			assert_int_equal(tu_probe(v + i * u, false), SIGSEGV);
		}
	}
	for (uint64_t i = 1; i < n; i += 2) {
		memset(b, 0, sizeof(b));
		assert_int_equal(gm_read(s, i * u, b, PG), 0);
		for (size_t k = 0; k < PG; k++)
			assert_int_equal(b[k], (uint8_t)i);
	}
	assert_true(gm_view_extent_count(s) <= 8);
	/* Opening what cannot fit: -ENOSPC, still reachable by gm_read. */
	{
		uint64_t i;
		int r = 0;

		for (i = 1; i < n && !r; i += 2)
			r = gm_view_open(s, i * u, u);
		assert_int_equal(r, -ENOSPC);
		assert_true(strlen(gm_last_error()) > 0);
		for (i -= 4; i < n; i -= 2)
			assert_int_equal(gm_view_release(s, i * u, u), 0);
	}
	assert_true(gm_view_extent_count(s) <= 8);
	assert_int_equal(gm_store_destroy(s), 0);
}

/*
 * gm_view_open holds its pages open until gm_view_release: conversions
 * elsewhere never close them, whatever the budget asks, and conversions of
 * them to private are refused.
 */
static void test_hold(void **state)
{
	const uint64_t u = tu_unit(); /* the view's unit */
	const uint64_t n = 64;
	struct gm_store_opts o;
	struct gm_store *s;
	uint8_t *v;

	tu_opts(&o, n * u, GM_STORE_INIT_SHARED);
	o.view_budget = 4;
	s = tu_store_with(&o);
	v = gm_view_base(s);
	/* The case: budget 4, hold page 30, convert page 20. */
	assert_int_equal(gm_view_open(s, 30 * u, u), 0);
	assert_int_equal(gm_convert(s, 20 * u, u, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_view_is_open(s, 30 * u, u), 1);
	assert_int_equal(tu_probe(v + 30 * u, true), 0);
	/* Every other page private around it: still open. */
	for (uint64_t i = 0; i < n; i += 2)
		if (i != 30)
			assert_int_equal(
				gm_convert(s, i * u, u, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_view_is_open(s, 30 * u, u), 1);
	assert_int_equal(tu_probe(v + 30 * u, true), 0);
	/* Holds may pass the budget by two extents each, no more. */
	assert_true(gm_view_extent_count(s) <= 4 + 2);
	/* Held pages cannot become private, revocation or not. */
	assert_int_equal(gm_convert(s, 30 * u, u, GM_ATTR_PRIVATE, 0), -EBUSY);
	assert_int_equal(gm_convert(s, 29 * u, 4 * u, GM_ATTR_PRIVATE,
				    GM_CONVERT_REVOKE),
			 -EBUSY);
	/* Counted: two holds need two releases, each of the same range. */
	assert_int_equal(gm_view_open(s, 30 * u, u), 0);
	/* (and a store with holds cannot be destroyed) */
	assert_int_equal(gm_store_destroy(s), -EBUSY);
	assert_int_equal(gm_view_release(s, 30 * u, u), 0);
	assert_int_equal(gm_convert(s, 30 * u, u, GM_ATTR_PRIVATE, 0), -EBUSY);
	assert_int_equal(gm_view_release(s, 29 * u, 2 * u), -ENOENT);
	assert_int_equal(gm_view_release(s, 30 * u, u), 0);
	assert_int_equal(gm_view_release(s, 30 * u, u), -ENOENT);
	assert_int_equal(gm_view_release(s, 1, PG), -EINVAL);
	/* Released: an ordinary page again. */
	assert_int_equal(gm_convert(s, 30 * u, u, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(tu_probe(v + 30 * u, false), SIGSEGV);
	assert_int_equal(gm_store_destroy(s), 0);
}

#define HOLD_PAGES 96
#define MAX_HOLDS 16

/* Random holds, releases and conversions under a small budget. */
static void test_hold_random(void **state)
{
	const uint64_t u = tu_unit(); /* the view's unit */
	uint64_t seed = tu_seed("test_hold_random", 0x401d5);
	struct {
		uint64_t s, e;
	} holds[MAX_HOLDS];
	uint8_t attr[HOLD_PAGES] = { 0 }; /* GM_ATTR_SHARED */
	unsigned int nr = 0, held[HOLD_PAGES] = { 0 };
	struct tu_file_id id;
	struct gm_store_opts o;
	struct gm_store *s;
	uint8_t *v;

	tu_opts(&o, HOLD_PAGES * u, GM_STORE_INIT_SHARED);
	o.view_budget = 6;
	s = tu_store_with(&o);
	v = gm_view_base(s);
	id = tu_store_file(s);
	for (int round = 0; round < 3000; round++) {
		uint64_t a = tu_rand(&seed) % HOLD_PAGES;
		uint64_t e = a + 1 + tu_rand(&seed) % 6;
		unsigned int op = tu_rand(&seed) % 8, k;
		bool any_held = false, any_private = false;
		int ret;

		e = e > HOLD_PAGES ? HOLD_PAGES : e;
		for (uint64_t p = a; p < e; p++) {
			any_held |= held[p] > 0;
			any_private |= attr[p] == GM_ATTR_PRIVATE;
		}
		if (op < 2 && nr < MAX_HOLDS) {
			ret = gm_view_open(s, a * u, (e - a) * u);
			if (any_private) {
				assert_int_equal(ret, -EFAULT);
			} else if (ret == 0) {
				holds[nr].s = a;
				holds[nr++].e = e;
				for (uint64_t p = a; p < e; p++)
					held[p]++;
			} else {
				assert_int_equal(ret, -ENOSPC);
			}
		} else if (op < 4 && nr) {
			k = tu_rand(&seed) % nr;
			assert_int_equal(
				gm_view_release(s, holds[k].s * u,
						(holds[k].e - holds[k].s) * u),
				0);
			for (uint64_t p = holds[k].s; p < holds[k].e; p++)
				held[p]--;
			holds[k] = holds[--nr];
		} else {
			uint8_t to = op & 1;

			ret = gm_convert(s, a * u, (e - a) * u, to, 0);
			if (to == GM_ATTR_PRIVATE && any_held) {
				assert_int_equal(ret, -EBUSY);
			} else {
				assert_int_equal(ret, 0);
				memset(attr + a, to, e - a);
			}
		}
		/* Every held page is open and usable. */
		for (uint64_t p = 0; p < HOLD_PAGES; p++) {
			if (!held[p])
				continue;
			assert_int_equal(attr[p], GM_ATTR_SHARED);
			if (gm_view_is_open(s, p * u, u) != 1)
				fail_msg("round %d: held page %llu closed",
					 round, (unsigned long long)p);
			assert_int_equal(tu_probe(v + p * u, true), 0);
		}
		assert_true(gm_view_extent_count(s) <= 6 + 2 * nr);
		/* Now and then: no private page is mapped from the fd. */
		if (round % 64 == 0)
			for (uint64_t p = 0; p < HOLD_PAGES; p++)
				if (attr[p] == GM_ATTR_PRIVATE &&
				    tu_fd_mappings(id, p * u, NULL))
					fail_msg("round %d: private page %llu "
						 "is mapped from the fd",
						 round, (unsigned long long)p);
	}
	while (nr--)
		assert_int_equal(
			gm_view_release(s, holds[nr].s * u,
					(holds[nr].e - holds[nr].s) * u),
			0);
	assert_int_equal(gm_store_destroy(s), 0);
}

/* ---- the 4 GiB alternating pattern ---- */

static void vma_check(struct gm_store *s, uint64_t npages, int shared_parity)
{
	uint64_t maps = tu_maps_count(), ve = gm_view_extent_count(s);
	struct gm_stats st;
	uint8_t b[64];

	fprintf(stderr,
		"  maps %llu, view extents %llu, attribute extents %llu\n",
		(unsigned long long)maps, (unsigned long long)ve,
		(unsigned long long)gm_extent_count(s));
	assert_true(maps < 65530);
	assert_true(ve <= GM_VIEW_BUDGET_DEFAULT);
	assert_int_equal(gm_extent_count(s), npages);
	tu_stats(s, &st);
	assert_int_equal(st.shared_pages, npages / 2);
	assert_int_equal(st.private_pages, npages / 2);
	for (uint64_t i = 0; i < npages;
	     i += (i < 4 || i + 4 >= npages) ? 1 : 97) {
		bool shared = (int)(i & 1) == shared_parity;
		uint64_t off = i * PG + (i % 7) * 64;
		int ret;

		memset(b, (int)(i * 13 + 1), sizeof(b));
		ret = gm_write(s, off, b, sizeof(b));
		if (ret != (shared ? 0 : -EFAULT))
			fail_msg("page %llu (%s): gm_write %d",
				 (unsigned long long)i,
				 shared ? "shared" : "private", ret);
		memset(b, 0, sizeof(b));
		ret = gm_read(s, off, b, sizeof(b));
		assert_int_equal(ret, shared ? 0 : -EFAULT);
		for (size_t k = 0; k < sizeof(b); k++)
			assert_int_equal(b[k],
					 shared ? (uint8_t)(i * 13 + 1) : 0);
	}
	/* A read across a private page fails. */
	assert_int_equal(gm_read(s, PG * 10 + PG - 8, b, 16), -EFAULT);
}

static void test_vma_4g(void **state)
{
	const uint64_t size = 4ULL << 30, npages = size / PG;
	uint64_t t0 = tu_now_ms();
	long maps0 = tu_maps_count();

	tu_skip_on_hugetlb(
		"the alternating pattern is of 4 KiB pages (the view "
		"maps none of its mixed huge pages) and 4 GiB "
		"exceeds the test's hugetlb pool");

	/* Start private, make every odd page shared. */
	{
		struct gm_store *s = tu_store(size, 0);

		for (uint64_t i = 1; i < npages; i += 2) {
			int ret = gm_convert(s, i * PG, PG, GM_ATTR_SHARED, 0);

			if (ret)
				fail_msg("page %llu: %d (%s)",
					 (unsigned long long)i, ret,
					 gm_last_error());
		}
		fprintf(stderr, "4 GiB, private -> odd pages shared: %llu ms\n",
			(unsigned long long)(tu_now_ms() - t0));
		vma_check(s, npages, 1);
		assert_int_equal(gm_store_destroy(s), 0);
	}
	/* Start shared, make every odd page private. */
	t0 = tu_now_ms();
	{
		struct gm_store *s = tu_store(size, GM_STORE_INIT_SHARED);

		for (uint64_t i = 1; i < npages; i += 2) {
			int ret = gm_convert(s, i * PG, PG, GM_ATTR_PRIVATE, 0);

			if (ret)
				fail_msg("page %llu: %d (%s)",
					 (unsigned long long)i, ret,
					 gm_last_error());
		}
		fprintf(stderr, "4 GiB, shared -> odd pages private: %llu ms\n",
			(unsigned long long)(tu_now_ms() - t0));
		vma_check(s, npages, 0);
		/* And back: one conversion of the whole store. */
		assert_int_equal(gm_convert(s, 0, size, GM_ATTR_SHARED, 0), 0);
		assert_int_equal(gm_extent_count(s), 1);
		assert_true(tu_maps_count() < 65530);
		assert_int_equal(gm_store_destroy(s), 0);
	}
	/* The mappings were given back (sanitizers add a few of their own). */
	assert_true(tu_maps_count() < maps0 + 1000);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_private_faults),
		cmocka_unit_test(test_lazy),
		cmocka_unit_test(test_hv_visible),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_hold),
		cmocka_unit_test(test_hold_random),
		cmocka_unit_test(test_vma_4g),
	};

	tu_init(argc, argv, "test_view");
	return cmocka_run_group_tests_name(tu_group("test_view"), tests, NULL,
					   NULL);
}
