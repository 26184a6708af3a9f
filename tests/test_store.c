// SPDX-License-Identifier: MIT
/*
 * Store life cycle, options, sizes, initial states, sparse 1 TiB stores, the
 * guest_memfd rules (no MAP_PRIVATE, SIGBUS past the end, fixed size), and
 * the attribute queries (gm_attr_get, gm_range_is, gm_extent_at).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static void expect_error(int ret, int err)
{
	if (ret != err)
		fprintf(stderr, "expected %d, got %d (%s)\n", err, ret,
			gm_last_error());
	assert_int_equal(ret, err);
	assert_non_null(gm_last_error());
	assert_true(strlen(gm_last_error()) > 0);
	assert_non_null(gm_strerror(ret));
	assert_true(strlen(gm_strerror(ret)) > 0);
}

static void test_create_destroy(void **state)
{
	struct gm_store *s = tu_store(16 * PG, 0);
	struct stat st;
	int fd = gm_store_fd(s);

	assert_int_equal(gm_store_size(s), 16 * PG);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, 16 * PG);
	assert_int_equal(gm_store_backing(s), tu_backing);
	assert_string_equal(gm_backing_name(gm_store_backing(s)),
			    tu_backing_str);
	assert_non_null(gm_view_base(s));
	gm_store_destroy(s);
	/* The fd was the store's: closed with it. */
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	gm_store_destroy(NULL);

	/* Several stores at once, each with its own fd. */
	struct gm_store *a = tu_store(PG, 0), *b = tu_store(2 * PG, 0);

	assert_int_not_equal(gm_store_fd(a), gm_store_fd(b));
	assert_int_equal(gm_store_size(a), PG);
	assert_int_equal(gm_store_size(b), 2 * PG);
	gm_store_destroy(a);
	gm_store_destroy(b);
}

/*
 * vm_fd 0 is fd 0: only vm_fd < 0 means "make your own VM". With /dev/null
 * at fd 0 the store cannot be made; with a VM there, it is made on it.
 */
static void vm_fd_zero(void)
{
	struct gm_store_opts o;
	struct gm_store *s;
	int kvm, vm, null, saved_stdin;

	saved_stdin = dup(0);
	assert_true(saved_stdin >= 0);
	tu_opts(&o, 4 * PG, 0);
	o.vm_fd = 0;

	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(null >= 0);
	assert_int_equal(dup2(null, 0), 0);
	expect_error(gm_store_create(&o, &s), -EBADF);
	/* Nor does AUTO fall back to memfd on it: the caller meant a VM. */
	o.backing = GM_BACKING_AUTO;
	expect_error(gm_store_create(&o, &s), -EBADF);
	o.backing = tu_backing;
	close(null);

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	assert_true(kvm >= 0);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	assert_int_equal(dup2(vm, 0), 0);
	s = tu_store_with(&o);
	assert_int_equal(gm_store_backing(s), GM_BACKING_GUEST_MEMFD);
	gm_store_destroy(s);

	assert_int_equal(dup2(saved_stdin, 0), 0);
	close(saved_stdin);
	close(vm);
	close(kvm);
}

static void test_vm_fd(void **state)
{
	struct gm_store_opts o;
	struct gm_store *s;
	int kvm, vm;

	tu_opts(&o, 4 * PG, 0);
	o.vm_fd = -1;
	s = tu_store_with(&o);
	gm_store_destroy(s);
	/* Options that end before vm_fd: -1, whatever the bytes after. */
	o.vm_fd = 1000;
	o.sz = offsetof(struct gm_store_opts, vm_fd);
	s = tu_store_with(&o);
	gm_store_destroy(s);

	if (tu_backing != GM_BACKING_GUEST_MEMFD)
		return;
	vm_fd_zero();
	/* vm_fd 1000 is no VM: the library does not make one of its own. */
	tu_opts(&o, 4 * PG, 0);
	o.vm_fd = 1000;
	assert_true(gm_store_create(&o, &s) < 0);

	/* A VM of the caller's own. */
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	assert_true(kvm >= 0);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	o.vm_fd = vm;
	s = tu_store_with(&o);
	assert_int_equal(gm_store_backing(s), GM_BACKING_GUEST_MEMFD);
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_write(s, 10, "abc", 3), 0);
	gm_store_destroy(s);
	/* The caller's VM fd is the caller's: still open. */
	assert_true(fcntl(vm, F_GETFD) >= 0);
	close(vm);

	/* AUTO picks guest_memfd where /dev/kvm exists (these machines). */
	tu_opts(&o, 4 * PG, 0);
	o.backing = GM_BACKING_AUTO;
	assert_int_equal(gm_store_create(&o, &s), 0);
	assert_int_equal(gm_store_backing(s), GM_BACKING_GUEST_MEMFD);
	gm_store_destroy(s);
	close(kvm);
}

/* Open fds of this process. */
static int nr_fds(void)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

/* The names gm_backing_name() gives, and only those, parse. */
static void test_backing_parse(void **state)
{
	static const char *const bad[] = { "",	     "nvme",	    "Memfd",
					   "memfd ", "guest-memfd", "unknown" };
	static const enum gm_backing all[] = { GM_BACKING_AUTO,
					       GM_BACKING_GUEST_MEMFD,
					       GM_BACKING_MEMFD };
	enum gm_backing b;

	(void)state;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		b = (enum gm_backing)77;
		assert_int_equal(gm_backing_parse(gm_backing_name(all[i]), &b),
				 0);
		assert_int_equal(b, all[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = GM_BACKING_MEMFD;
		expect_error(gm_backing_parse(bad[i], &b), -EINVAL);
		assert_int_equal(b, GM_BACKING_MEMFD);
		if (bad[i][0])
			assert_non_null(strstr(gm_last_error(), bad[i]));
	}
	expect_error(gm_backing_parse(NULL, &b), -EINVAL);
	expect_error(gm_backing_parse("memfd", NULL), -EINVAL);
}

/* The backing a store is created with, asking for want on vm_fd. */
static int created_backing(enum gm_backing want, int vm_fd,
			   enum gm_backing *out)
{
	struct gm_store_opts o;
	struct gm_store *s;
	int ret;

	tu_opts(&o, 4 * PG, 0);
	o.backing = want;
	o.vm_fd = vm_fd;
	ret = gm_store_create(&o, &s);
	if (!ret) {
		*out = gm_store_backing(s);
		gm_store_destroy(s);
	}
	return ret;
}

/* gm_backing_resolve() answers what gm_store_create() then does. */
static void test_backing_resolve(void **state)
{
	static const enum gm_backing all[] = { GM_BACKING_AUTO,
					       GM_BACKING_GUEST_MEMFD,
					       GM_BACKING_MEMFD };
	enum gm_backing got, made;
	int vm = -1, kvm, fds = nr_fds();

	(void)state;
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm >= 0)
		vm = ioctl(kvm, KVM_CREATE_VM, 0);
	for (int with_vm = 0; with_vm <= (vm >= 0); with_vm++) {
		int vm_fd = with_vm ? vm : -1;

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
			int r1 = gm_backing_resolve(all[i], vm_fd, &got);
			int r2 = created_backing(all[i], vm_fd, &made);

			printf("  %s (vm_fd %d): resolves to %s (%d), store "
			       "gets %s (%d)\n",
			       gm_backing_name(all[i]), vm_fd,
			       r1 ? "-" : gm_backing_name(got), r1,
			       r2 ? "-" : gm_backing_name(made), r2);
			assert_int_equal(r1, r2);
			if (!r1)
				assert_int_equal(got, made);
			if (!r1)
				assert_int_not_equal(got, GM_BACKING_AUTO);
		}
	}
	/* This test's backing resolves to itself: the tests can run it. */
	assert_int_equal(gm_backing_resolve(tu_backing, -1, &got), 0);
	assert_int_equal(got, tu_backing);
	expect_error(gm_backing_resolve((enum gm_backing)77, -1, &got),
		     -EINVAL);
	expect_error(gm_backing_resolve(GM_BACKING_AUTO, -1, NULL), -EINVAL);
	if (vm >= 0)
		close(vm);
	if (kvm >= 0)
		close(kvm);
	/* The VMs it opened to find out are closed again. */
	assert_int_equal(nr_fds(), fds);
}

static void test_bad_sizes(void **state)
{
	static const uint64_t bad[] = {
		0,
		1,
		4095,
		4097,
		PG + 512,
		3 * PG - 1,
		UINT64_MAX,
		UINT64_MAX & ~(PG - 1), /* overflows any size computation */
		1ULL << 63,
		(1ULL << 63) + PG,
	};
	struct gm_store_opts o;
	struct gm_store *s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_opts(&o, bad[i], 0);
		s = (struct gm_store *)0x1;
		fprintf(stderr, "size 0x%llx\n", (unsigned long long)bad[i]);
		expect_error(gm_store_create(&o, &s), -EINVAL);
		assert_ptr_equal(s, (struct gm_store *)0x1);
	}
	/* Smallest valid size. */
	tu_opts(&o, PG, 0);
	s = tu_store_with(&o);
	gm_store_destroy(s);
}

static void test_bad_opts(void **state)
{
	struct gm_store_opts o;
	struct gm_store *s = NULL;

	expect_error(gm_store_create(NULL, &s), -EINVAL);
	assert_null(s);

	/* sz must cover sz itself (other sizes: test_abi.c). */
	tu_opts(&o, PG, 0);
	o.sz = 0;
	expect_error(gm_store_create(&o, &s), -EINVAL);
	o.sz = sizeof(o.sz) - 1;
	expect_error(gm_store_create(&o, &s), -EINVAL);
	/* Options that end before size: size 0. */
	o.sz = sizeof(o.sz);
	expect_error(gm_store_create(&o, &s), -EINVAL);
	assert_null(s);

	tu_opts(&o, PG, 1u << 30);
	expect_error(gm_store_create(&o, &s), -EINVAL);
	tu_opts(&o, PG, 0);
	o.backing = (enum gm_backing)77;
	expect_error(gm_store_create(&o, &s), -EINVAL);
	assert_null(s);

	tu_opts(&o, PG, 0);
	expect_error(gm_store_create(&o, NULL), -EINVAL);
}

static void test_init_private(void **state)
{
	const uint64_t n = 64;
	struct gm_store *s = tu_store(n * PG, 0);
	struct gm_extent ext = { .sz = sizeof(ext) };
	struct gm_stats st;
	enum gm_attr a;
	uint8_t buf[16];

	assert_int_equal(gm_extent_count(s), 1);
	assert_int_equal(gm_extent_at(s, 5 * PG + 7, &ext), 0);
	assert_int_equal(ext.off, 0);
	assert_int_equal(ext.len, n * PG);
	assert_int_equal(ext.attr, GM_ATTR_PRIVATE);
	assert_int_equal(gm_range_is(s, 0, n * PG, GM_ATTR_PRIVATE), 1);
	assert_int_equal(gm_range_is(s, 0, n * PG, GM_ATTR_SHARED), 0);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(gm_attr_get(s, i * PG, &a), 0);
		assert_int_equal(a, GM_ATTR_PRIVATE);
	}
	memset(buf, 0xAA, sizeof(buf));
	expect_error(gm_read(s, 0, buf, sizeof(buf)), -EFAULT);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xAA);
	expect_error(gm_write(s, PG * 3, buf, sizeof(buf)), -EFAULT);
	assert_int_equal(gm_view_is_open(s, 0, n * PG), 0);
	tu_stats(s, &st);
	assert_int_equal(st.private_pages, n);
	assert_int_equal(st.shared_pages, 0);
	assert_int_equal(st.extents, 1);
	assert_int_equal(st.pins_active, 0);
	gm_store_destroy(s);
}

static void test_init_shared(void **state)
{
	const uint64_t n = 64;
	struct gm_store *s = tu_store(n * PG, GM_STORE_INIT_SHARED);
	struct gm_stats st;
	struct gm_extent ext = { .sz = sizeof(ext) };
	uint8_t buf[3 * 4096];
	enum gm_attr a;

	assert_int_equal(gm_extent_count(s), 1);
	assert_int_equal(gm_extent_at(s, n * PG - 1, &ext), 0);
	assert_int_equal(ext.off, 0);
	assert_int_equal(ext.len, n * PG);
	assert_int_equal(ext.attr, GM_ATTR_SHARED);
	assert_int_equal(gm_range_is(s, 0, n * PG, GM_ATTR_SHARED), 1);
	assert_int_equal(gm_range_is(s, 0, n * PG, GM_ATTR_PRIVATE), 0);
	assert_int_equal(gm_attr_get(s, 17 * PG + 3, &a), 0);
	assert_int_equal(a, GM_ATTR_SHARED);
	/* A fresh store reads back zeroes. */
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(gm_read(s, 100, buf, sizeof(buf)), 0);
	assert_int_equal(tu_zero_check(buf, sizeof(buf)), sizeof(buf));
	/* Eager view: every page is open. */
	assert_int_equal(gm_view_is_open(s, 0, n * PG), 1);
	assert_int_equal(tu_probe((uint8_t *)gm_view_base(s) + 5 * PG, true),
			 0);
	tu_stats(s, &st);
	assert_int_equal(st.private_pages, 0);
	assert_int_equal(st.shared_pages, n);
	gm_store_destroy(s);
}

static void test_huge_sparse(void **state)
{
	const uint64_t size = TU_SPARSE_STORE_SIZE;
	const unsigned int flags[] = { 0, GM_STORE_INIT_SHARED,
				       GM_STORE_VIEW_LAZY };
	uint8_t buf[64], out[64];

	for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
		long rss0 = tu_rss_kib(), rss1;
		struct gm_store *s = tu_store(size, flags[f]);
		struct gm_stats st;
		enum gm_attr a;

		rss1 = tu_rss_kib();
		fprintf(stderr, "%llu GiB store (flags %u): RSS +%ld KiB\n",
			(unsigned long long)(size >> 30), flags[f],
			rss1 - rss0);
		assert_true(rss1 - rss0 < 16 * 1024);
		assert_int_equal(gm_store_size(s), size);
		tu_stats(s, &st);
		fprintf(stderr, "  tracking_bytes %llu\n",
			(unsigned long long)st.tracking_bytes);
		assert_true(st.tracking_bytes < 64 * 1024);
		assert_int_equal(st.private_pages + st.shared_pages, size / PG);

		/* Use the last page and a page in the middle. */
		assert_int_equal(
			gm_convert(s, size - PG, PG, GM_ATTR_SHARED, 0), 0);
		assert_int_equal(gm_convert(s, size / 2, PG, GM_ATTR_SHARED, 0),
				 0);
		tu_pat_fill(buf, sizeof(buf), size - 64, 1);
		assert_int_equal(gm_write(s, size - 64, buf, sizeof(buf)), 0);
		assert_int_equal(gm_read(s, size - 64, out, sizeof(out)), 0);
		assert_memory_equal(buf, out, sizeof(buf));
		assert_int_equal(gm_attr_get(s, size - 1, &a), 0);
		assert_int_equal(a, GM_ATTR_SHARED);
		assert_int_equal(gm_read(s, size / 2, out, sizeof(out)), 0);
		assert_int_equal(tu_zero_check(out, sizeof(out)), sizeof(out));
		/* Make the whole store private and then shared: one op each. */
		assert_int_equal(gm_convert(s, 0, size, GM_ATTR_PRIVATE, 0), 0);
		assert_int_equal(gm_extent_count(s), 1);
		assert_int_equal(gm_read(s, size - 64, out, sizeof(out)),
				 -EFAULT);
		assert_int_equal(gm_convert(s, 0, size, GM_ATTR_SHARED, 0), 0);
		assert_int_equal(gm_read(s, size - 64, out, sizeof(out)), 0);
		assert_memory_equal(buf, out, sizeof(buf));
		tu_stats(s, &st);
		assert_int_equal(st.shared_pages, size / PG);
		assert_true(st.tracking_bytes < 64 * 1024);
		rss1 = tu_rss_kib();
		assert_true(rss1 - rss0 < 32 * 1024);
		gm_store_destroy(s);
	}
}

static void test_guest_memfd_rules(void **state)
{
	const uint64_t size = 8 * PG;
	struct gm_store *s = tu_store(size, GM_STORE_INIT_SHARED);
	int fd = gm_store_fd(s);
	struct stat st;
	uint8_t *p;
	pid_t pid;
	int status;

	/* The size is fixed, as a guest_memfd's. */
	assert_int_not_equal(ftruncate(fd, size * 2), 0);
	assert_int_not_equal(ftruncate(fd, size / 2), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, size);

	/* guest_memfd refuses MAP_PRIVATE. */
	if (tu_backing == GM_BACKING_GUEST_MEMFD) {
		errno = 0;
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
			 0);
		assert_true(p == MAP_FAILED);
		assert_int_equal(errno, EINVAL);
	}

	/* A mapping past the end: the last page works, the next SIGBUSes. */
	p = mmap(NULL, size + PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	p[size - 1] = 7;
	assert_int_equal(gm_read(s, size - 1, &p[0], 1), 0);
	assert_int_equal(p[0], 7);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL);
		signal(SIGSEGV, SIG_DFL);
		*(volatile uint8_t *)(p + size) = 1;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status))
		fprintf(stderr, "child status 0x%x\n", status);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGBUS);
	/* And the same in process. */
	assert_int_equal(tu_probe(p + size, false), SIGBUS);
	munmap(p, size + PG);

	/* Punched pages read back zero (destructive round trip). */
	assert_int_equal(gm_write(s, 0, "secret", 6), 0);
	assert_int_equal(
		gm_convert(s, 0, PG, GM_ATTR_PRIVATE, GM_CONVERT_DESTRUCTIVE),
		0);
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_SHARED, 0), 0);
	{
		char b[6];

		assert_int_equal(gm_read(s, 0, b, 6), 0);
		assert_int_equal(tu_zero_check(b, 6), 6);
	}
	gm_store_destroy(s);
}

/* A random pattern of states over n pages, applied with gm_convert. */
static void random_pattern(struct gm_store *s, uint8_t *ref, uint64_t n,
			   uint64_t *rng)
{
	for (int k = 0; k < 40; k++) {
		uint64_t a = tu_rand(rng) % n, b = tu_rand(rng) % n;
		uint8_t v = tu_rand(rng) & 1;

		if (a > b) {
			uint64_t t = a;

			a = b;
			b = t;
		}
		b++;
		assert_int_equal(gm_convert(s, a * PG, (b - a) * PG, v, 0), 0);
		memset(ref + a, v, b - a);
	}
}

static void test_extents(void **state)
{
	const uint64_t n = 97;
	uint64_t rng = tu_seed("test_extents", 0x5eed0001);
	struct gm_store *s = tu_store(n * PG, 0);
	uint8_t ref[97], got[97];
	struct gm_extent ext = { .sz = sizeof(ext) }, e2 = { .sz = sizeof(e2) };

	memset(ref, GM_ATTR_PRIVATE, n);
	for (int round = 0; round < 20; round++) {
		random_pattern(s, ref, n, &rng);
		tu_attrs(s, got);
		assert_memory_equal(ref, got, n);
		/* Any byte of an extent gives the same extent. */
		for (uint64_t i = 0; i < n; i++) {
			uint64_t off = i * PG + tu_rand(&rng) % PG;

			assert_int_equal(gm_extent_at(s, off, &ext), 0);
			assert_true(ext.off <= off && off < ext.off + ext.len);
			assert_int_equal(ext.attr, ref[i]);
			assert_int_equal(gm_extent_at(s, ext.off, &e2), 0);
			assert_int_equal(e2.off, ext.off);
			assert_int_equal(e2.len, ext.len);
			assert_int_equal(e2.attr, ext.attr);
			/* Maximal. */
			if (ext.off)
				assert_int_not_equal(ref[ext.off / PG - 1],
						     ext.attr);
			if (ext.off + ext.len < n * PG)
				assert_int_not_equal(
					ref[(ext.off + ext.len) / PG],
					ext.attr);
		}
	}
	expect_error(gm_extent_at(s, n * PG, &ext), -ERANGE);
	expect_error(gm_extent_at(s, UINT64_MAX, &ext), -ERANGE);
	assert_true(gm_extent_at(s, 0, NULL) < 0);
	gm_store_destroy(s);
}

static void test_range_is(void **state)
{
	const uint64_t n = 33;
	uint64_t rng = tu_seed("test_range_is", 0x5eed0002);
	struct gm_store *s = tu_store(n * PG, 0);
	uint8_t ref[33];

	memset(ref, GM_ATTR_PRIVATE, n);
	for (int round = 0; round < 10; round++) {
		random_pattern(s, ref, n, &rng);
		for (int k = 0; k < 300; k++) {
			uint64_t off = tu_rand(&rng) % (n * PG);
			uint64_t len = 1 + tu_rand(&rng) % (n * PG - off);
			uint64_t p0 = off / PG, p1 = (off + len + PG - 1) / PG;
			int all[2] = { 1, 1 };

			for (uint64_t p = p0; p < p1; p++)
				all[ref[p]] = 0;
			/* all[0]: every page private; all[1]: every shared */
			assert_int_equal(
				gm_range_is(s, off, len, GM_ATTR_PRIVATE),
				all[0]);
			assert_int_equal(
				gm_range_is(s, off, len, GM_ATTR_SHARED),
				all[1]);
		}
	}
	expect_error(gm_range_is(s, 0, 0, GM_ATTR_SHARED), -EINVAL);
	expect_error(gm_range_is(s, 0, n * PG + 1, GM_ATTR_SHARED), -ERANGE);
	expect_error(gm_range_is(s, n * PG, 1, GM_ATTR_SHARED), -ERANGE);
	expect_error(gm_range_is(s, PG, UINT64_MAX, GM_ATTR_SHARED), -ERANGE);
	expect_error(gm_range_is(s, 0, PG, (enum gm_attr)2), -EINVAL);
	expect_error(gm_range_is(s, 0, PG, (enum gm_attr) - 1), -EINVAL);
	expect_error(gm_range_is(NULL, 0, PG, GM_ATTR_SHARED), -EINVAL);
	gm_store_destroy(s);
}

static void test_attr_get(void **state)
{
	const uint64_t n = 40;
	uint64_t rng = tu_seed("test_attr_get", 0x5eed0003);
	struct gm_store *s = tu_store(n * PG, GM_STORE_INIT_SHARED);
	uint8_t ref[40];
	enum gm_attr a;
	struct gm_stats st;

	memset(ref, GM_ATTR_SHARED, n);
	random_pattern(s, ref, n, &rng);
	for (uint64_t i = 0; i < n; i++) {
		a = (enum gm_attr)7;
		assert_int_equal(gm_attr_get(s, i * PG, &a), 0);
		assert_int_equal(a, ref[i]);
		assert_int_equal(gm_attr_get(s, i * PG + PG - 1, &a), 0);
		assert_int_equal(a, ref[i]);
		assert_int_equal(gm_attr_get(s, i * PG + 1234, &a), 0);
		assert_int_equal(a, ref[i]);
	}
	tu_stats(s, &st);
	{
		uint64_t priv = 0;

		for (uint64_t i = 0; i < n; i++)
			priv += ref[i] == GM_ATTR_PRIVATE;
		assert_int_equal(st.private_pages, priv);
		assert_int_equal(st.shared_pages, n - priv);
	}
	expect_error(gm_attr_get(s, n * PG, &a), -ERANGE);
	expect_error(gm_attr_get(s, UINT64_MAX, &a), -ERANGE);
	assert_true(gm_attr_get(s, 0, NULL) < 0);
	assert_true(gm_attr_get(NULL, 0, &a) < 0);
	gm_store_destroy(s);
}

static void test_errors_text(void **state)
{
	static const int errs[] = { -EINVAL,  -ERANGE, -EFAULT,	    -EBUSY,
				    -EDEADLK, -ENOSPC, -EOPNOTSUPP, -ENOMEM };

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		assert_non_null(gm_strerror(errs[i]));
		assert_true(strlen(gm_strerror(errs[i])) > 0);
	}
	assert_true(gm_store_fd(NULL) < 0);
	assert_int_equal(gm_store_size(NULL), 0);
	assert_true(gm_store_stats(NULL, NULL) < 0);
	{
		struct gm_store *s = tu_store(PG, 0);

		assert_true(gm_store_stats(s, NULL) < 0);
		/* The message names the range at fault. */
		assert_int_equal(gm_convert(s, PG, PG, GM_ATTR_SHARED, 0),
				 -ERANGE);
		assert_non_null(strstr(gm_last_error(), "0x1000"));
		gm_store_destroy(s);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_destroy),
		cmocka_unit_test(test_vm_fd),
		cmocka_unit_test(test_backing_parse),
		cmocka_unit_test(test_backing_resolve),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_bad_opts),
		cmocka_unit_test(test_init_private),
		cmocka_unit_test(test_init_shared),
		cmocka_unit_test(test_huge_sparse),
		cmocka_unit_test(test_guest_memfd_rules),
		cmocka_unit_test(test_extents),
		cmocka_unit_test(test_range_is),
		cmocka_unit_test(test_attr_get),
		cmocka_unit_test(test_errors_text),
	};

	tu_init(argc, argv, "test_store");
	return cmocka_run_group_tests_name(tu_group("test_store"), tests, NULL,
					   NULL);
}
