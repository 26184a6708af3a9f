// SPDX-License-Identifier: MIT
/*
 * A core dump holds no byte of the store (issue 8, item 1): a child makes a
 * page private (and, bound to a KVM memslot, gives the memfd backing its
 * read/write mapping for KVM), asks for the most inclusive dump
 * (coredump_filter 0x1ff) and aborts. Its core must hold neither the private
 * page nor a shared one (every mapping of the store is MADV_DONTDUMP), and
 * must hold a marker the child kept on its heap (the positive control that
 * the dump and the search work).
 *
 * The kernel's core_pattern is system-wide: the test sets it to a file in a
 * directory of its own and restores it. Needs root (skips otherwise).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmem/kvm.h>
#include <linux/kvm.h>

#include "test_util.h"

#define PATTERN "/proc/sys/kernel/core_pattern"
#define NPAGES 16

static char saved_pattern[512];
static char dir[64];

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

static void restore_pattern(void)
{
	if (saved_pattern[0])
		write_file(PATTERN, saved_pattern);
}

/* The child: a store with a private and a shared secret, then abort. */
static void child(uint8_t *priv, uint8_t *shared, const uint8_t *heap_marker,
		  size_t len)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct gm_store_opts o;
	struct gm_store *s = NULL;
	uint8_t *heap = malloc(len);
	int kvm, vm;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vm = kvm >= 0 ? ioctl(kvm, KVM_CREATE_VM, 0) : -1;
	if (vm < 0)
		_exit(10);
	tu_opts(&o, NPAGES * PG, GM_STORE_INIT_SHARED);
	o.vm_fd = vm;
	if (!heap || gm_store_create(&o, &s) ||
	    gm_kvm_memslot_bind(s, vm, 0, 0, 0, NPAGES * PG) ||
	    gm_write(s, 3 * PG, priv, len) ||
	    gm_write(s, 9 * PG, shared, len) ||
	    gm_convert(s, 3 * PG, PG, GM_ATTR_PRIVATE, 0))
		_exit(11);
	/* The test's own copies are wiped: only the store and heap remain. */
	memcpy(heap, heap_marker, len);
	memset(priv, 0, len);
	memset(shared, 0, len);
	if (write_file("/proc/self/coredump_filter", "0x1ff") ||
	    setrlimit(RLIMIT_CORE, &unlimited) || chdir(dir))
		_exit(12);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	abort();
}

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle,
		     size_t len)
{
	return memmem(hay, n, needle, len) != NULL;
}

static void test_core_dump(void **state)
{
	static uint8_t priv[PG], shared[PG], marker[PG];
	char core[128];
	struct stat st;
	uint8_t *buf;
	int status, fd;
	pid_t pid;

	tu_pat_fill(priv, PG, 0, 0xc0de01);
	tu_pat_fill(shared, PG, 0, 0xc0de02);
	tu_pat_fill(marker, PG, 0, 0xc0de03);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(priv, shared, marker, PG);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_true(WCOREDUMP(status));

	snprintf(core, sizeof(core), "%s/core.%d", dir, (int)pid);
	fd = open(core, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc(st.st_size);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, st.st_size), st.st_size);
	close(fd);
	unlink(core);

	/* Search for the first 256 bytes of each: a page's worth is unique. */
	assert_true(contains(buf, st.st_size, marker, 256));
	assert_false(contains(buf, st.st_size, priv, 256));
	assert_false(contains(buf, st.st_size, shared, 256));
	free(buf);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_dump),
	};
	char pattern[128];
	int fd, ret;

	tu_init(argc, argv, "test_coredump");
	fd = open(PATTERN, O_RDONLY);
	if (fd < 0 || read(fd, saved_pattern, sizeof(saved_pattern) - 1) <= 0 ||
	    access(PATTERN, W_OK)) {
		fprintf(stderr,
			"test_coredump: SKIP: %s is not writable "
			"(needs root)\n",
			PATTERN);
		return 77;
	}
	close(fd);
	snprintf(dir, sizeof(dir), "/tmp/gmem-core.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(pattern, sizeof(pattern), "%s/core.%%p", dir);
	if (write_file(PATTERN, pattern)) {
		fprintf(stderr, "test_coredump: cannot set %s\n", PATTERN);
		return 1;
	}
	atexit(restore_pattern);
	ret = cmocka_run_group_tests_name(tu_group("test_coredump"), tests,
					  NULL, NULL);
	restore_pattern();
	saved_pattern[0] = 0;
	rmdir(dir);
	return ret;
}
