// SPDX-License-Identifier: MIT
/*
 * Huge backings (issue 9): THP and hugetlb memfd stores. Conversions keep
 * the contents and the backing's huge folio, a destructive conversion of
 * one 4 KiB page zeroes exactly that page, hugetlb views open a huge page
 * only when all of it is shared (mixed ones stay reachable through the
 * access calls and pins), split THP regions merge back, and the setting
 * checks. Sets the system's THP and hugetlb settings for its run (root)
 * and restores them (tests/huge_fixture.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmem/snapshot.h>

#include "huge_fixture.h"
#include "test_util.h"
#include "testing/mem_stream.h"

#define MB (1ULL << 20)
#define HUGE (2 * MB)
#define HPAGES (HUGE / PG)

static bool have_thp, have_2m, have_1g;

static struct gm_store *huge_store(enum gm_pages pages, uint64_t size,
				   unsigned int flags)
{
	struct gm_store_opts o = { .sz = sizeof(o),
				   .size = size,
				   .backing = GM_BACKING_MEMFD,
				   .vm_fd = -1,
				   .flags = flags,
				   .pages = pages };
	struct gm_store *s = tu_store_with(&o);

	assert_int_equal(gm_store_page_size(s), PG);
	return s;
}

static bool unavailable(bool have, const char *what)
{
	if (!have)
		fprintf(stderr, "SKIP: %s not available here\n", what);
	return !have;
}

/* PFN of the page at addr (root), from /proc/self/pagemap. */
static uint64_t pfn_of(void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &e, 8, (uintptr_t)addr / PG * 8), 8);
	close(fd);
	return e & ((1ULL << 55) - 1);
}

#define KPF_THP 22

static uint64_t kpageflags(uint64_t pfn)
{
	uint64_t f = 0;
	int fd = open("/proc/kpageflags", O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &f, 8, pfn * 8), 8);
	close(fd);
	return f;
}

/*
 * The backing's 2 MiB folio at store offset off: its PFNs (touching
 * through a raw mapping of the fd) are consecutive and flagged THP. Its
 * first PFN.
 */
static uint64_t huge_folio(struct gm_store *s, uint64_t off)
{
	uint8_t *raw = tu_raw_map(s);
	uint64_t first, pfn;

	for (uint64_t i = 0; i < HPAGES; i++)
		(void)*(volatile uint8_t *)(raw + off + i * PG);
	first = pfn_of(raw + off);
	assert_true(first != 0);
	assert_int_equal(first % HPAGES, 0);
	for (uint64_t i = 0; i < HPAGES; i += 37) {
		pfn = pfn_of(raw + off + i * PG);
		assert_int_equal(pfn, first + i);
		assert_true(kpageflags(pfn) & (1ULL << KPF_THP));
	}
	tu_raw_unmap(s, raw);
	return first;
}

static void stats(struct gm_store *s, struct gm_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	assert_int_equal(gm_store_stats(s, st), 0);
}

/* In place conversions inside a THP folio keep it, and its bytes. */
static void test_thp_folio_survives(void **state)
{
	struct gm_store *s;
	struct gm_stats st;
	uint64_t pfn;

	(void)state;
	if (unavailable(have_thp, "shmem THP"))
		return;
	s = huge_store(GM_PAGES_THP_2M, 4 * MB, GM_STORE_INIT_SHARED);
	assert_int_equal(gm_store_backing_page_size(s), HUGE);
	tu_write_pattern(s, 0, 4 * MB, 1);
	memset(gm_view_base(s), 0x5a, 1); /* touch through the view */
	tu_write_pattern(s, 0, 4 * MB, 1);
	stats(s, &st);
	assert_int_equal(st.huge_bytes, 4 * MB);
	pfn = huge_folio(s, 0);

	for (int i = 0; i < 20; i++) {
		uint64_t pg = (uint64_t)(i * 53 % HPAGES);

		assert_int_equal(gm_convert(s, pg * PG, PG, GM_ATTR_PRIVATE, 0),
				 0);
		/* a touch while mixed maps its neighbours at 4 KiB */
		(void)*(volatile uint8_t *)((uint8_t *)gm_view_base(s) +
					    (pg ^ 1) * PG);
		assert_int_equal(gm_convert(s, pg * PG, PG, GM_ATTR_SHARED, 0),
				 0);
	}
	assert_int_equal(huge_folio(s, 0), pfn);
	tu_expect_pattern(s, 0, 4 * MB, 1);
	stats(s, &st);
	assert_int_equal(st.huge_splits, 20);
	assert_int_equal(st.huge_merges, 20);
	/* merged: the view maps the region at 2 MiB again */
	assert_int_equal(st.huge_bytes, 4 * MB);
	assert_int_equal(gm_store_destroy(s), 0);
}

/* A region split and made uniform under compact reads the same bytes. */
static void test_thp_compact(void **state)
{
	struct gm_store *s;
	struct gm_stats st;

	(void)state;
	if (unavailable(have_thp, "shmem THP"))
		return;
	s = huge_store(GM_PAGES_THP_2M, 4 * MB,
		       GM_STORE_INIT_SHARED | GM_STORE_VIEW_LAZY);
	tu_write_pattern(s, 0, 4 * MB, 2);
	assert_int_equal(gm_view_open(s, 0, 4 * MB), 0);
	assert_int_equal(gm_view_release(s, 0, 4 * MB), 0);
	assert_int_equal(gm_convert(s, 5 * PG, PG, GM_ATTR_PRIVATE, 0), 0);
	/* lazy: the page comes back shared but closed; the region is mixed */
	assert_int_equal(gm_convert(s, 5 * PG, PG, GM_ATTR_SHARED, 0), 0);
	stats(s, &st);
	assert_int_equal(st.huge_splits, 1);
	assert_int_equal(st.huge_merges, 0);
	assert_int_equal(gm_view_open(s, 5 * PG, PG), 0);
	assert_int_equal(gm_view_release(s, 5 * PG, PG), 0);
	stats(s, &st);
	assert_int_equal(st.huge_merges, 1);
	assert_int_equal(gm_store_compact(s), 0);
	tu_expect_pattern(s, 0, 4 * MB, 2);
	assert_int_equal(memcmp(gm_view_base(s), gm_view_base(s), 1), 0);
	assert_int_equal(gm_store_destroy(s), 0);
}

/*
 * Scattered conversions past the view budget leave whole runs closed after
 * the pages are shared again; compact opens them and maps them at 2 MiB.
 */
static void test_thp_compact_reopens(void **state)
{
	struct gm_store_opts o = { .sz = sizeof(o),
				   .size = 8 * MB,
				   .backing = GM_BACKING_MEMFD,
				   .vm_fd = -1,
				   .flags = GM_STORE_INIT_SHARED,
				   .view_budget = 3,
				   .pages = GM_PAGES_THP_2M };
	const uint64_t pages[] = { 5, 2 * HPAGES + 7 };
	uint8_t buf[PG];
	struct gm_store *s;
	struct gm_stats st;

	(void)state;
	if (unavailable(have_thp, "shmem THP"))
		return;
	s = tu_store_with(&o);
	tu_write_pattern(s, 0, 8 * MB, 3);
	for (int to = 0; to < 2; to++)
		for (int i = 0; i < 2; i++)
			assert_int_equal(gm_convert(s, pages[i] * PG, PG,
						    to ? GM_ATTR_SHARED :
							 GM_ATTR_PRIVATE,
						    0),
					 0);
	stats(s, &st);
	assert_true(st.huge_bytes < 8 * MB);
	assert_int_equal(gm_store_compact(s), 4);
	stats(s, &st);
	assert_int_equal(st.huge_bytes, 8 * MB);
	tu_expect_pattern(s, 0, 8 * MB, 3);
	assert_int_equal(gm_read(s, 7 * MB, buf, PG), 0);
	assert_memory_equal((uint8_t *)gm_view_base(s) + 7 * MB, buf, PG);
	assert_int_equal(gm_store_destroy(s), 0);
}

/* Destructive conversion of one page zeroes it and none of its 511. */
static void destructive_one(enum gm_pages pages, uint64_t size)
{
	struct gm_store *s = huge_store(pages, size, GM_STORE_INIT_SHARED);
	uint64_t off = 7 * PG, pfn = 0;
	uint8_t *buf = malloc(HUGE);
	struct gm_stats st;

	tu_write_pattern(s, 0, HUGE, 3);
	if (pages == GM_PAGES_THP_2M)
		pfn = huge_folio(s, 0);
	assert_int_equal(
		gm_convert(s, off, PG, GM_ATTR_PRIVATE, GM_CONVERT_DESTRUCTIVE),
		0);
	assert_int_equal(gm_convert(s, off, PG, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_read(s, 0, buf, HUGE), 0);
	assert_int_equal(tu_pat_check(buf, off, 0, 3), off);
	assert_int_equal(tu_zero_check(buf + off, PG), PG);
	assert_int_equal(
		tu_pat_check(buf + off + PG, HUGE - off - PG, off + PG, 3),
		HUGE - off - PG);
	if (pages == GM_PAGES_THP_2M)
		assert_int_equal(huge_folio(s, 0), pfn);
	/* a whole huge page is punched: it reads zero, and is no more (a
	 * 2 MiB part of a 1 GiB page is zeroed, the page stays) */
	assert_int_equal(
		gm_convert(s, 0, HUGE, GM_ATTR_PRIVATE, GM_CONVERT_DESTRUCTIVE),
		0);
	stats(s, &st);
	if (pages == GM_PAGES_HUGETLB_2M)
		assert_int_equal(st.huge_bytes, 0);
	if (pages == GM_PAGES_HUGETLB_1G)
		assert_int_equal(st.huge_bytes, size);
	assert_int_equal(gm_convert(s, 0, HUGE, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_read(s, 0, buf, HUGE), 0);
	assert_int_equal(tu_zero_check(buf, HUGE), HUGE);
	free(buf);
	assert_int_equal(gm_store_destroy(s), 0);
}

static void test_destructive_thp(void **state)
{
	(void)state;
	if (!unavailable(have_thp, "shmem THP"))
		destructive_one(GM_PAGES_THP_2M, 4 * MB);
}

static void test_destructive_hugetlb(void **state)
{
	(void)state;
	if (!unavailable(have_2m, "2 MiB hugetlb pages"))
		destructive_one(GM_PAGES_HUGETLB_2M, 4 * MB);
}

static void test_destructive_hugetlb_1g(void **state)
{
	(void)state;
	if (!unavailable(have_1g, "a 1 GiB hugetlb page"))
		destructive_one(GM_PAGES_HUGETLB_1G, 1ULL << 30);
}

/*
 * hugetlb: a huge page opens in the view only when all of it is shared;
 * the shared pages of a mixed one stay reachable by the access calls and
 * pins; a gm_view_open hold keeps its huge page from having private pages.
 */
static void test_hugetlb_mixed(void **state)
{
	struct gm_store *s;
	struct gm_pin *pin;
	struct gm_stats st;
	uint8_t buf[PG];

	(void)state;
	if (unavailable(have_2m, "2 MiB hugetlb pages"))
		return;
	s = huge_store(GM_PAGES_HUGETLB_2M, 4 * MB, GM_STORE_INIT_SHARED);
	assert_int_equal(gm_store_backing_page_size(s), HUGE);
	tu_write_pattern(s, 0, 4 * MB, 4);
	stats(s, &st);
	assert_int_equal(st.huge_bytes, 4 * MB);
	assert_int_equal(gm_view_is_open(s, 0, 4 * MB), 1);

	assert_int_equal(gm_convert(s, 3 * PG, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_view_is_open(s, 0, HUGE), 0);
	assert_int_equal(gm_view_is_open(s, 4 * PG, PG), 0);
	assert_int_equal(gm_view_is_open(s, HUGE, HUGE), 1);
	assert_int_equal(tu_probe((uint8_t *)gm_view_base(s) + 4 * PG, false),
			 SIGSEGV);
	assert_int_equal(gm_read(s, 4 * PG, buf, PG), 0);
	assert_int_equal(tu_pat_check(buf, PG, 4 * PG, 4), PG);
	assert_int_equal(gm_read(s, 3 * PG, buf, PG), -EFAULT);
	memset(buf, 0x77, PG);
	assert_int_equal(gm_write(s, 5 * PG, buf, PG), 0);

	assert_int_equal(gm_pin(s, 4 * PG, PG, 0, &pin), 0);
	assert_int_equal(tu_pat_check(gm_pin_ptr(pin), PG, 4 * PG, 4), PG);
	assert_int_equal(gm_convert(s, 4 * PG, PG, GM_ATTR_PRIVATE, 0), -EBUSY);
	/* the pin does not keep its neighbours shared */
	assert_int_equal(gm_convert(s, 6 * PG, PG, GM_ATTR_PRIVATE, 0), 0);
	gm_unpin(pin);

	/* back to all shared: the huge page opens again, bytes kept */
	assert_int_equal(gm_convert(s, 0, HUGE, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_view_is_open(s, 0, HUGE), 1);
	tu_expect_pattern(s, 0, 5 * PG, 4);
	assert_int_equal(((uint8_t *)gm_view_base(s))[5 * PG], 0x77);
	tu_expect_pattern(s, 6 * PG, HUGE - 6 * PG, 4);

	/* a pin in an all-shared huge page keeps no neighbour shared */
	assert_int_equal(gm_pin(s, HUGE + 2 * PG, PG, 0, &pin), 0);
	assert_int_equal(gm_convert(s, HUGE + 3 * PG, PG, GM_ATTR_PRIVATE, 0),
			 0);
	assert_int_equal(tu_pat_check(gm_pin_ptr(pin), PG, HUGE + 2 * PG, 4),
			 PG);
	gm_unpin(pin);
	assert_int_equal(gm_convert(s, HUGE + 3 * PG, PG, GM_ATTR_SHARED, 0),
			 0);

	/* no hold of shared pages in a mixed huge page: the error says why */
	assert_int_equal(gm_convert(s, HUGE + 9 * PG, PG, GM_ATTR_PRIVATE, 0),
			 0);
	assert_int_equal(gm_view_open(s, HUGE + PG, PG), -EFAULT);
	assert_non_null(strstr(gm_last_error(), "huge page"));
	assert_non_null(strstr(gm_last_error(), "holds private pages"));
	assert_null(strstr(gm_last_error(), "budget"));
	assert_int_equal(gm_convert(s, HUGE + 9 * PG, PG, GM_ATTR_SHARED, 0),
			 0);

	/* a hold of one page holds its whole huge page shared */
	assert_int_equal(gm_view_open(s, HUGE + PG, PG), 0);
	assert_int_equal(gm_convert(s, HUGE + 9 * PG, PG, GM_ATTR_PRIVATE, 0),
			 -EBUSY);
	assert_int_equal(gm_convert(s, 9 * PG, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_view_release(s, HUGE + PG, PG), 0);
	assert_int_equal(gm_convert(s, HUGE + 9 * PG, PG, GM_ATTR_PRIVATE, 0),
			 0);
	assert_int_equal(gm_view_is_open(s, HUGE, PG), 0);
	assert_int_equal(gm_store_destroy(s), 0);
}

/* What cannot be had is -EOPNOTSUPP, naming the setting. */
/*
 * Export and import on hugetlb: their windows are whole huge pages and go
 * away afterwards (a window left mapped would keep private pages mapped
 * from the fd), and the contents and states come back.
 */
static void test_hugetlb_snapshot(void **state)
{
	static const uint8_t key[GM_SNAPSHOT_KEY_SIZE] = { 7 };
	struct gm_store *s, *d;
	struct stream st = { 0 };
	struct gm_export_opts eo = { .sz = sizeof(eo),
				     .key = key,
				     .key_len = sizeof(key) };
	struct gm_import_opts io = { .sz = sizeof(io),
				     .key = key,
				     .key_len = sizeof(key) };

	if (unavailable(have_2m, "2 MiB hugetlb"))
		return;
	s = huge_store(GM_PAGES_HUGETLB_2M, 4 * MB, GM_STORE_INIT_SHARED);
	d = huge_store(GM_PAGES_HUGETLB_2M, 4 * MB, 0);
	tu_write_pattern(s, 0, 4 * MB, 0x7e);
	assert_int_equal(gm_convert(s, 3 * PG, 5 * PG, GM_ATTR_PRIVATE, 0), 0);
	/* page 3 is private: nothing may map its huge page from the fd */
	assert_int_equal(tu_fd_mappings(tu_store_file(s), 3 * PG, NULL), 0);
	assert_int_equal(gm_store_export(s, &eo, stream_write, &st), 0);
	assert_int_equal(tu_fd_mappings(tu_store_file(s), 3 * PG, NULL), 0);
	assert_int_equal(gm_store_import(d, &io, stream_read, &st), 0);
	assert_int_equal(tu_fd_mappings(tu_store_file(d), 3 * PG, NULL), 0);
	assert_int_equal(gm_range_is(d, 3 * PG, 5 * PG, GM_ATTR_PRIVATE), 1);
	tu_expect_pattern(d, 0, 3 * PG, 0x7e);
	tu_expect_pattern(d, 8 * PG, 4 * MB - 8 * PG, 0x7e);
	assert_int_equal(gm_convert(d, 0, 4 * MB, GM_ATTR_SHARED, 0), 0);
	tu_expect_pattern(d, 3 * PG, 5 * PG, 0x7e);
	free(st.p);
	assert_int_equal(gm_store_destroy(d), 0);
	assert_int_equal(gm_store_destroy(s), 0);
}

static void test_settings(void **state)
{
	struct gm_store_opts o = { .sz = sizeof(o),
				   .size = 4 * MB,
				   .backing = GM_BACKING_GUEST_MEMFD,
				   .vm_fd = -1,
				   .pages = GM_PAGES_THP_2M };
	struct gm_store *s = NULL;
	enum gm_pages p;

	(void)state;
	assert_int_equal(gm_store_create(&o, &s), -EOPNOTSUPP);
	assert_non_null(strstr(gm_last_error(), "guest_memfd"));
	o.backing = GM_BACKING_MEMFD;
	o.pages = 17;
	assert_int_equal(gm_store_create(&o, &s), -EINVAL);
	o.pages = GM_PAGES_HUGETLB_2M;
	o.size = 3 * MB;
	assert_int_equal(gm_store_create(&o, &s), -EINVAL);
	o.size = (tu_hugetlb_avail(2048) + 1) * HUGE;
	assert_int_equal(gm_store_create(&o, &s), -EOPNOTSUPP);
	assert_non_null(strstr(gm_last_error(), "nr_hugepages"));
	if (have_thp && !tu_knob_set(TU_THP_KNOB, "never")) {
		o.pages = GM_PAGES_THP_2M;
		assert_int_equal(gm_store_create(&o, &s), -EOPNOTSUPP);
		assert_non_null(strstr(gm_last_error(), "shmem_enabled"));
		assert_int_equal(tu_knob_set(TU_THP_KNOB, "advise"), 0);
	}
	assert_int_equal(gm_pages_parse("2m-hugetlb", &p), 0);
	assert_int_equal(p, GM_PAGES_HUGETLB_2M);
	assert_string_equal(gm_pages_name(GM_PAGES_HUGETLB_1G), "1g-hugetlb");
	assert_int_equal(gm_pages_parse("3m", &p), -EINVAL);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thp_folio_survives),
		cmocka_unit_test(test_thp_compact),
		cmocka_unit_test(test_thp_compact_reopens),
		cmocka_unit_test(test_destructive_thp),
		cmocka_unit_test(test_destructive_hugetlb),
		cmocka_unit_test(test_destructive_hugetlb_1g),
		cmocka_unit_test(test_hugetlb_mixed),
		cmocka_unit_test(test_hugetlb_snapshot),
		cmocka_unit_test(test_settings),
	};

	tu_init(1, argv, "test_huge");
	(void)argc;
	if (geteuid()) {
		fprintf(stderr, "test_huge: SKIP: needs root to set the "
				"system's huge-page settings\n");
		return 77;
	}
	have_thp = tu_thp_enable();
	have_2m = tu_hugetlb_reserve(2048, 64);
	have_1g = tu_hugetlb_reserve(1048576, 1);
	if (!have_thp || !have_2m)
		return 1; /* root on these machines: they must run */
	return cmocka_run_group_tests_name("test_huge", tests, NULL, NULL);
}
