// SPDX-License-Identifier: MIT
/*
 * The library's ABI, from the side of a program built against another
 * version of the headers (docs/api-stability.md). Linked against libgmem.so.
 *
 * Older programs: structs are declared here as an older <gmem/gmem.h> had
 * them, without their last fields. The library must accept them, treat the
 * missing fields as their defaults, and write nothing past their sz (guard
 * bytes after each struct stay untouched).
 *
 * Newer programs: structs with fields this library does not know. A larger
 * struct is accepted if those bytes are zero and refused with -E2BIG if
 * not; a larger output struct gets the library's fields and nothing more.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#define PG 4096ULL
#define GUARD 0xa5

/* ---- as older headers declared them ---- */

/* gm_store_opts before view_budget. */
struct old_store_opts {
	size_t sz;
	uint64_t size;
	enum gm_backing backing;
	int vm_fd;
	unsigned int flags;
};

/* gm_store_opts before vm_fd: the store makes a VM of its own. */
struct older_store_opts {
	size_t sz;
	uint64_t size;
	enum gm_backing backing;
};

/* gm_convert_opts before pages_changed. */
struct old_convert_opts {
	size_t sz;
	uint64_t revoke_timeout_ns;
	uint64_t error_offset;
};

/* gm_stats with its first counters only. */
struct old_stats {
	size_t sz;
	uint64_t to_private_requests;
	uint64_t to_shared_requests;
};

struct old_caps {
	size_t sz;
	bool kvm;
};

struct old_extent {
	size_t sz;
	uint64_t off;
};

/* gm_listener_ops with prepare only. */
struct old_listener_ops {
	size_t sz;
	int (*prepare)(void *opaque, const struct gm_range_change *change);
};

/* Each struct under test is followed by guard bytes. */
#define GUARDED(type)                    \
	struct {                         \
		type s;                  \
		unsigned char guard[64]; \
	}

static void guard(void *g, size_t len)
{
	memset(g, GUARD, len);
}

static void assert_guard(const unsigned char *g, size_t len)
{
	for (size_t i = 0; i < len; i++)
		assert_int_equal(g[i], GUARD);
}

static struct gm_store *memfd_store(void)
{
	GUARDED(struct old_store_opts) o;
	struct gm_store *s;

	/* As an old program zeroes it (padding too) and sets it. */
	guard(&o, sizeof(o));
	memset(&o.s, 0, sizeof(o.s));
	o.s.sz = sizeof(o.s);
	o.s.size = 16 * PG;
	o.s.backing = GM_BACKING_MEMFD;
	o.s.vm_fd = -1;
	o.s.flags = GM_STORE_INIT_SHARED;
	/* The non-zero bytes past sz are not read: they are not the caller's. */
	assert_int_equal(gm_store_create((const void *)&o.s, &s), 0);
	assert_guard(o.guard, sizeof(o.guard));
	return s;
}

static void test_old_store_opts(void **state)
{
	GUARDED(struct older_store_opts) o;
	struct gm_store *s = memfd_store();
	struct gm_stats st = { .sz = sizeof(st) };

	/* view_budget missing: the default budget; shared from the start. */
	assert_int_equal(gm_range_is(s, 0, 16 * PG, GM_ATTR_SHARED), 1);
	assert_int_equal(gm_store_stats(s, &st), 0);
	assert_int_equal(st.shared_pages, 16);
	gm_store_destroy(s);

	/* vm_fd missing: -1, whatever the bytes after sz hold (guard). */
	guard(&o, sizeof(o));
	memset(&o.s, 0, sizeof(o.s));
	o.s.sz = sizeof(o.s);
	o.s.size = 16 * PG;
	o.s.backing = GM_BACKING_MEMFD;
	assert_int_equal(gm_store_create((const void *)&o.s, &s), 0);
	assert_int_equal(gm_store_backing(s), GM_BACKING_MEMFD);
	/* flags missing: all private. */
	assert_int_equal(gm_range_is(s, 0, 16 * PG, GM_ATTR_PRIVATE), 1);
	gm_store_destroy(s);
}

static void test_old_convert_opts(void **state)
{
	struct gm_store *s = memfd_store();
	GUARDED(struct old_convert_opts) co;

	guard(&co, sizeof(co));
	memset(&co.s, 0, sizeof(co.s));
	co.s.sz = sizeof(co.s);
	assert_int_equal(
		gm_convert_ex(s, PG, 2 * PG, GM_ATTR_PRIVATE, 0, (void *)&co.s),
		0);
	assert_int_equal(co.s.error_offset, PG);
	/* pages_changed lies past sz: not written. */
	assert_guard(co.guard, sizeof(co.guard));

	/* A failure writes error_offset, nothing past sz. */
	guard(&co, sizeof(co));
	memset(&co.s, 0, sizeof(co.s));
	co.s.sz = sizeof(co.s);
	assert_int_equal(
		gm_convert_ex(s, 3 * PG, PG, (enum gm_attr)5, 0, (void *)&co.s),
		-EINVAL);
	assert_int_equal(co.s.error_offset, 3 * PG);
	assert_guard(co.guard, sizeof(co.guard));

	/* Only the timeout: no out field is written at all. */
	guard(&co, sizeof(co));
	co.s.sz = offsetof(struct old_convert_opts, error_offset);
	co.s.revoke_timeout_ns = 0;
	assert_int_equal(
		gm_convert_ex(s, PG, 2 * PG, GM_ATTR_SHARED, 0, (void *)&co.s),
		0);
	assert_guard((unsigned char *)&co.s.error_offset,
		     sizeof(co) -
			     offsetof(struct old_convert_opts, error_offset));
	gm_store_destroy(s);
}

static void test_old_out_structs(void **state)
{
	struct gm_store *s = memfd_store();
	GUARDED(struct old_stats) st;
	GUARDED(struct old_caps) caps;
	GUARDED(struct old_extent) ext;

	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_PRIVATE, 0), 0);
	guard(&st, sizeof(st));
	st.s.sz = sizeof(st.s);
	assert_int_equal(gm_store_stats(s, (void *)&st.s), 0);
	assert_int_equal(st.s.sz, sizeof(st.s));
	assert_int_equal(st.s.to_private_requests, 1);
	assert_int_equal(st.s.to_shared_requests, 0);
	assert_guard(st.guard, sizeof(st.guard));

	guard(&caps, sizeof(caps));
	caps.s.sz = sizeof(caps.s);
	assert_int_equal(gm_caps_probe((void *)&caps.s), 0);
	assert_int_equal(caps.s.sz, sizeof(caps.s));
	assert_guard(caps.guard, sizeof(caps.guard));

	guard(&ext, sizeof(ext));
	ext.s.sz = sizeof(ext.s);
	assert_int_equal(gm_extent_at(s, 3 * PG, (void *)&ext.s), 0);
	assert_int_equal(ext.s.sz, sizeof(ext.s));
	assert_int_equal(ext.s.off, PG);
	assert_guard(ext.guard, sizeof(ext.guard));

	/* sz must cover sz itself; then nothing is written. */
	guard(&st, sizeof(st));
	st.s.sz = sizeof(size_t) - 1;
	assert_int_equal(gm_store_stats(s, (void *)&st.s), -EINVAL);
	caps.s.sz = 0;
	assert_int_equal(gm_caps_probe((void *)&caps.s), -EINVAL);
	ext.s.sz = 0;
	assert_int_equal(gm_extent_at(s, 0, (void *)&ext.s), -EINVAL);
	assert_int_equal(st.s.sz, sizeof(size_t) - 1);
	assert_guard((unsigned char *)&st.s.to_private_requests,
		     sizeof(st) -
			     offsetof(struct old_stats, to_private_requests));
	assert_int_equal(gm_store_stats(s, NULL), -EINVAL);
	gm_store_destroy(s);
}

static int n_prepare;

static int count_prepare(void *opaque, const struct gm_range_change *ch)
{
	/* The library tells which fields of the change exist. */
	assert_int_equal(ch->sz, sizeof(struct gm_range_change));
	n_prepare++;
	return 0;
}

static void test_old_listener_ops(void **state)
{
	struct gm_store *s = memfd_store();
	GUARDED(struct old_listener_ops) ops;
	struct gm_listener *l;

	/* commit and abort lie past sz: garbage there must not be called. */
	guard(&ops, sizeof(ops));
	ops.s.sz = sizeof(ops.s);
	ops.s.prepare = count_prepare;
	assert_int_equal(gm_listener_register(s, (void *)&ops.s, NULL, &l), 0);
	n_prepare = 0;
	assert_int_equal(gm_convert(s, 0, 2 * PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(n_prepare, 1);
	gm_listener_unregister(l);
	ops.s.sz = 0;
	assert_int_equal(gm_listener_register(s, (void *)&ops.s, NULL, &l),
			 -EINVAL);
	gm_store_destroy(s);
}

/* ---- a newer program: bytes this library does not know ---- */

struct new_store_opts {
	struct gm_store_opts o;
	uint64_t future;
};

struct new_convert_opts {
	struct gm_convert_opts o;
	uint64_t future_in;
	uint64_t future_out;
};

struct new_listener_ops {
	struct gm_listener_ops o;
	void (*future)(void *opaque);
};

struct new_stats {
	struct gm_stats st;
	uint64_t future;
};

static void test_new_structs(void **state)
{
	struct new_store_opts so = {
		.o = { .sz = sizeof(so),
		       .size = 4 * PG,
		       .backing = GM_BACKING_MEMFD,
		       .vm_fd = -1 },
	};
	struct new_convert_opts co = { .o = { .sz = sizeof(co) } };
	struct new_listener_ops lo = { .o = { .sz = sizeof(lo) } };
	struct new_stats st = { .st = { .sz = sizeof(st) }, .future = 77 };
	struct gm_listener *l;
	struct gm_store *s;

	/* Zero tail: accepted. */
	assert_int_equal(gm_store_create(&so.o, &s), 0);
	assert_int_equal(gm_convert_ex(s, 0, PG, GM_ATTR_SHARED, 0, &co.o), 0);
	assert_int_equal(co.o.pages_changed, 1);
	assert_int_equal(co.future_out, 0);
	assert_int_equal(gm_listener_register(s, &lo.o, NULL, &l), 0);
	gm_listener_unregister(l);

	/* A field the library does not know is set: -E2BIG, nothing done. */
	gm_store_destroy(s);
	s = NULL;
	so.future = 1;
	assert_int_equal(gm_store_create(&so.o, &s), -E2BIG);
	assert_null(s);
	/* Even the last byte alone. */
	so.future = 1ULL << 56;
	assert_int_equal(gm_store_create(&so.o, &s), -E2BIG);
	so.future = 0;
	assert_int_equal(gm_store_create(&so.o, &s), 0);

	co.future_in = 1;
	co.o.pages_changed = 99;
	assert_int_equal(gm_convert_ex(s, 0, PG, GM_ATTR_SHARED, 0, &co.o),
			 -E2BIG);
	assert_int_equal(gm_range_is(s, 0, PG, GM_ATTR_PRIVATE), 1);
	assert_int_equal(co.o.pages_changed, 0);
	assert_int_equal(co.future_out, 0);

	lo.future = (void (*)(void *))test_new_structs;
	l = NULL;
	assert_int_equal(gm_listener_register(s, &lo.o, NULL, &l), -E2BIG);
	assert_null(l);

	/* A larger output struct: the library's fields, the rest untouched. */
	assert_int_equal(gm_store_stats(s, &st.st), 0);
	assert_int_equal(st.st.sz, sizeof(struct gm_stats));
	assert_int_equal(st.st.failed_requests, 1);
	assert_int_equal(st.future, 77);
	gm_store_destroy(s);
}

/* ---- version, page size ---- */

static void test_version(void **state)
{
	char want[32];

	/* The headers this was built with are the library's own here. */
	assert_int_equal(gm_version(), GMEM_VERSION);
	assert_string_equal(gm_version_string(), GMEM_VERSION_STRING);
	snprintf(want, sizeof(want), "%d.%d.%d", GMEM_VERSION_MAJOR,
		 GMEM_VERSION_MINOR, GMEM_VERSION_PATCH);
	assert_string_equal(gm_version_string(), want);
	assert_int_equal(GMEM_VERSION, (GMEM_VERSION_MAJOR << 16) |
					       (GMEM_VERSION_MINOR << 8) |
					       GMEM_VERSION_PATCH);
	/* CMake's project version (and so the SONAME) is the header's. */
	assert_string_equal(gm_version_string(), GM_PROJECT_VERSION);
}

static void test_page_size(void **state)
{
	struct gm_store *s = memfd_store();

	assert_int_equal(gm_store_page_size(s), 4096);
	assert_int_equal(gm_store_page_size(s), GM_PAGE_SIZE);
	assert_int_equal(gm_store_page_size(NULL), 0);
	gm_store_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_old_store_opts),
		cmocka_unit_test(test_old_convert_opts),
		cmocka_unit_test(test_old_out_structs),
		cmocka_unit_test(test_old_listener_ops),
		cmocka_unit_test(test_new_structs),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_page_size),
	};

	return cmocka_run_group_tests_name("test_abi", tests, NULL, NULL);
}
