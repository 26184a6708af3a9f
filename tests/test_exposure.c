// SPDX-License-Identifier: MIT
/*
 * Private pages out of every host path (issue 8, item 1): once a page is
 * private, no mapping of the store's file covers it (but a
 * hypervisor-visible range, and the memfd backing's mapping for KVM: the
 * documented exceptions), so neither /proc/self/mem nor process_vm_readv
 * nor a forked child reads it; an exec'd child inherits no fd of the store;
 * every mapping of the store's file is MADV_DONTDUMP and MADV_DONTFORK.
 * Each check has a positive control: the same probe does find the bytes
 * where the library lets them be (a shared page, an hv-visible page).
 * The core dump test is in test_coredump.c.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmem/kvm.h>
#include <linux/kvm.h>

#include "test_util.h"

#define NPAGES 32
#define SECRET_PAGE 5

/* What /proc/self/mem gives at addr: 1 if it holds want, else 0. */
static int proc_mem_reveals(const void *addr, const uint8_t *want, size_t len)
{
	uint8_t *buf = malloc(len);
	int fd = open("/proc/self/mem", O_RDONLY);
	ssize_t n;
	int found;

	assert_non_null(buf);
	assert_true(fd >= 0);
	memset(buf, 0, len);
	n = pread(fd, buf, len, (off_t)(uintptr_t)addr);
	found = n == (ssize_t)len && !memcmp(buf, want, len);
	close(fd);
	free(buf);
	return found;
}

static int vm_readv_reveals(const void *addr, const uint8_t *want, size_t len)
{
	uint8_t *buf = calloc(1, len);
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	int found = n == (ssize_t)len && !memcmp(buf, want, len);

	free(buf);
	return found;
}

static void fill_secret(uint8_t *secret, uint32_t seed)
{
	tu_pat_fill(secret, PG, SECRET_PAGE * PG, seed);
}

/* A store whose page SECRET_PAGE holds a secret, then made private. */
static struct gm_store *store_with_secret(unsigned int flags, uint8_t *secret,
					  unsigned int convert_flags)
{
	struct gm_store *s =
		tu_store(NPAGES * PG, GM_STORE_INIT_SHARED | flags);

	fill_secret(secret, 0x5ec7e7);
	assert_int_equal(gm_write(s, SECRET_PAGE * PG, secret, PG), 0);
	assert_int_equal(gm_convert(s, SECRET_PAGE * PG, PG, GM_ATTR_PRIVATE,
				    convert_flags),
			 0);
	return s;
}

static void test_forced_reads(void **state)
{
	static uint8_t secret[PG];
	struct gm_store *s = store_with_secret(0, secret, 0);
	uint8_t *v = gm_view_base(s);
	struct tu_file_id id = tu_store_file(s);
	uintptr_t at = 0;

	/*
	 * Shared neighbours are mapped from the file (the probe works); on
	 * hugetlb not while their 2 MiB page holds the private one.
	 */
	if (tu_pages == GM_PAGES_HUGETLB_2M) {
		assert_int_equal(
			tu_fd_mappings(id, (SECRET_PAGE + 1) * PG, NULL), 0);
	} else {
		assert_true(tu_fd_mappings(id, (SECRET_PAGE + 1) * PG, &at) >=
			    1);
		assert_ptr_equal((void *)at, v + (SECRET_PAGE + 1) * PG);
	}
	/* ...the private page is not, anywhere in the process. */
	assert_int_equal(tu_fd_mappings(id, SECRET_PAGE * PG, NULL), 0);
	assert_false(proc_mem_reveals(v + SECRET_PAGE * PG, secret, PG));
	assert_false(vm_readv_reveals(v + SECRET_PAGE * PG, secret, PG));
	assert_int_equal(tu_probe(v + SECRET_PAGE * PG, false), SIGSEGV);

	/* Positive control: shared again in place, the same probes see it. */
	assert_int_equal(gm_convert(s, SECRET_PAGE * PG, PG, GM_ATTR_SHARED, 0),
			 0);
	assert_true(proc_mem_reveals(v + SECRET_PAGE * PG, secret, PG));
	assert_true(vm_readv_reveals(v + SECRET_PAGE * PG, secret, PG));
	assert_int_equal(tu_fd_mappings(id, SECRET_PAGE * PG, NULL), 1);

	/* Private again, and a lazy view never mapped it at all. */
	assert_int_equal(
		gm_convert(s, SECRET_PAGE * PG, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_false(proc_mem_reveals(v + SECRET_PAGE * PG, secret, PG));
	assert_int_equal(gm_store_destroy(s), 0);
}

static void test_forced_reads_lazy_and_budget(void **state)
{
	static uint8_t secret[PG];
	struct gm_store_opts o;
	struct gm_store *s;
	struct gm_pin *pin;

	/* Lazy: the page was shared, written through a window, then private */
	s = store_with_secret(GM_STORE_VIEW_LAZY, secret, 0);
	assert_int_equal(
		tu_fd_mappings(tu_store_file(s), SECRET_PAGE * PG, NULL), 0);
	assert_false(proc_mem_reveals(
		(uint8_t *)gm_view_base(s) + SECRET_PAGE * PG, secret, PG));
	assert_int_equal(gm_store_destroy(s), 0);

	/* Budget 1: a pin gets a mapping of its own; unpinned, it is gone. */
	tu_opts(&o, NPAGES * PG, GM_STORE_INIT_SHARED);
	o.view_budget = 1;
	s = tu_store_with(&o);
	fill_secret(secret, 0x5ec7e8);
	assert_int_equal(gm_write(s, SECRET_PAGE * PG, secret, PG), 0);
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_pin(s, SECRET_PAGE * PG, PG, 0, &pin), 0);
	assert_int_equal(
		tu_fd_mappings(tu_store_file(s), SECRET_PAGE * PG, NULL), 1);
	gm_unpin(pin);
	assert_int_equal(gm_convert(s, SECRET_PAGE * PG, PG, GM_ATTR_PRIVATE,
				    GM_CONVERT_REVOKE),
			 0);
	assert_int_equal(
		tu_fd_mappings(tu_store_file(s), SECRET_PAGE * PG, NULL), 0);
	assert_int_equal(gm_store_destroy(s), 0);
}

/*
 * The documented exception: a hypervisor-visible private page stays mapped
 * for KVM, so a forced read of this process does reach it.
 */
static void test_hv_visible_exception(void **state)
{
	static uint8_t secret[PG];
	struct gm_store *s = store_with_secret(0, secret, 0);
	uint8_t *v = gm_view_base(s);

	assert_int_equal(gm_hv_visible_add(s, SECRET_PAGE * PG, PG), 0);
	assert_true(proc_mem_reveals(v + SECRET_PAGE * PG, secret, PG));
	/* ...while the access calls still refuse it. */
	assert_int_equal(gm_read(s, SECRET_PAGE * PG, secret, 1), -EFAULT);
	assert_int_equal(gm_store_destroy(s), 0);
}

/* Count the store's mappings missing " dd" or " dc" in smaps; *seen all. */
static int smaps_unprotected(struct tu_file_id id, int *seen)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool ours = false;
	int bad = 0;

	assert_non_null(f);
	*seen = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, ino;
		unsigned int ma, mi;

		if (sscanf(line, "%lx-%lx %*s %*x %x:%x %lu", &start, &end, &ma,
			   &mi, &ino) == 5) {
			ours = ma == id.major && mi == id.minor &&
			       ino == id.ino;
			*seen += ours;
		} else if (ours && !strncmp(line, "VmFlags:", 8)) {
			if (!strstr(line, " dd") || !strstr(line, " dc")) {
				fprintf(stderr, "unprotected mapping: %s",
					line);
				bad++;
			}
		}
	}
	fclose(f);
	return bad;
}

static int make_vm(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm;

	assert_true(kvm >= 0);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	close(kvm);
	return vm;
}

static void test_smaps_flags(void **state)
{
	struct gm_store_opts o;
	struct gm_store *s;
	struct gm_pin *in_view, *own;
	int seen, vm = make_vm();

	tu_opts(&o, NPAGES * PG, GM_STORE_INIT_SHARED);
	o.view_budget = 3;
	o.vm_fd = vm;
	s = tu_store_with(&o);
	/* view pieces, a pin in the view, a pin of its own, KVM's mapping */
	assert_int_equal(gm_convert(s, 4 * PG, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_pin(s, 0, PG, 0, &in_view), 0);
	assert_int_equal(gm_convert(s, 8 * PG, 4 * PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_pin(s, 14 * PG, PG, 0, &own), 0);
	assert_int_equal(gm_hv_visible_add(s, 20 * PG, PG), 0);
	assert_int_equal(gm_kvm_memslot_bind(s, vm, 0, 0, 0, NPAGES * PG), 0);
	assert_int_equal(smaps_unprotected(tu_store_file(s), &seen), 0);
	/* the view's open pieces and the windows: at least three mappings */
	assert_true(seen >= 3);
	gm_unpin(own);
	gm_unpin(in_view);
	assert_int_equal(gm_kvm_memslot_unbind(s, vm, 0), 0);
	assert_int_equal(gm_store_destroy(s), 0);
	close(vm);
}

/* In a forked child: no mapping of the store's file, shared or not. */
static void test_fork(void **state)
{
	static uint8_t secret[PG];
	struct gm_store *s = store_with_secret(0, secret, 0);
	struct tu_file_id id = tu_store_file(s);
	uint8_t *v = gm_view_base(s);
	struct gm_pin *pin;
	int status;
	pid_t pid;

	static uint8_t marker[64];

	tu_pat_fill(marker, sizeof(marker), 0, 0xf0f);
	assert_int_equal(gm_write(s, 0, marker, sizeof(marker)), 0);
	assert_int_equal(gm_pin(s, 0, 2 * PG, 0, &pin), 0);
	/* The parent has them... */
	assert_true(tu_fd_mappings(id, UINT64_MAX, NULL) >= 1);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int code = 0;

		signal(SIGSEGV, SIG_DFL);
		if (tu_fd_mappings(id, UINT64_MAX, NULL) != 0)
			code |= 1;
		if (proc_mem_reveals(v + SECRET_PAGE * PG, secret, PG))
			code |= 2;
		/*
		 * The pin's address is a hole in the child (a sanitizer's
		 * runtime may map something of its own there): never the
		 * page's bytes.
		 */
		if (tu_probe(gm_pin_ptr(pin), false) == 0 &&
		    !memcmp(gm_pin_ptr(pin), marker, sizeof(marker)))
			code |= 4;
		_exit(code);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	gm_unpin(pin);
	assert_int_equal(gm_store_destroy(s), 0);
}

/* argv[1] of the exec'd child: list leaked fds, exit with their count. */
#define EXEC_CHILD "--exec-child"

static int exec_child(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int leaked = 0;

	if (!d)
		return 100;
	while ((e = readdir(d))) {
		char path[300], target[256];
		ssize_t n;

		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = 0;
		if (strstr(target, "kvm") || strstr(target, "memfd:gmem")) {
			fprintf(stderr, "exec'd child inherited fd %s -> %s\n",
				e->d_name, target);
			leaked++;
		}
	}
	closedir(d);
	return leaked;
}

static int run_exec_child(void)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_exposure", EXEC_CHILD,
		      (char *)NULL);
		_exit(101);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_exec(void **state)
{
	struct gm_store *s = tu_store(NPAGES * PG, 0);
	int fd;

	/* The store's own fds (and its own VM's) are close-on-exec. */
	assert_int_equal(run_exec_child(), 0);
	/* Positive control: an inheritable duplicate is seen by the child. */
	fd = fcntl(gm_store_fd(s), F_DUPFD, 3);
	assert_true(fd >= 0);
	assert_int_equal(run_exec_child(), 1);
	close(fd);
	assert_int_equal(gm_store_destroy(s), 0);
}

/*
 * What a process allowed to read /proc/<pid>/mem can also do: open the
 * store's fd through /proc/<pid>/fd. A memfd reopens (and maps, so every
 * page reads: the documented limit of that backing); a guest_memfd does
 * not (an anonymous inode: ENXIO).
 */
static void test_reopen_through_proc(void **state)
{
	struct gm_store *s = tu_store(NPAGES * PG, 0);
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", gm_store_fd(s));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (tu_backing == GM_BACKING_GUEST_MEMFD) {
		assert_int_equal(fd, -1);
		assert_int_equal(errno, ENXIO);
	} else {
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(gm_store_destroy(s), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forced_reads),
		cmocka_unit_test(test_forced_reads_lazy_and_budget),
		cmocka_unit_test(test_hv_visible_exception),
		cmocka_unit_test(test_smaps_flags),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_exec),
		cmocka_unit_test(test_reopen_through_proc),
	};

	if (argc > 1 && !strcmp(argv[1], EXEC_CHILD))
		return exec_child();
	tu_init(argc, argv, "test_exposure");
	return cmocka_run_group_tests_name(tu_group("test_exposure"), tests,
					   NULL, NULL);
}
