// SPDX-License-Identifier: MIT
/*
 * The system-call device of gmem-vm exec (docs/exec.md): the host half of
 * the calls the shim cannot answer inside the guest. A request names the
 * Linux system call and its arguments, with every buffer a gpa in the
 * shim's shared I/O area; the device reads and writes guest memory only
 * through the library (gm_read/gm_write), so a private page is refused
 * (-EFAULT), never read. Served: stdin, stdout and stderr, and the file
 * calls of the sandbox directory (sysfs.c). Every answer is a Linux
 * return value; errors are counted by errno, unknown calls (-ENOSYS) by
 * number.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "exec_abi.h"
#include "vmm.h"

#define SYSDEV_MAX_NR 512

static atomic_ullong calls[SYSDEV_MAX_NR + 1]; /* the last: nr too big */
static atomic_ullong unknown[SYSDEV_MAX_NR + 1];
#define SYSDEV_MAX_ERRNO 134
static atomic_ullong errors[SYSDEV_MAX_ERRNO]; /* answers by errno */

static int32_t host_errno(void)
{
	return -errno;
}

/* A buffer of the request: inside guest memory and the I/O area's size. */
static int32_t guest_buf(struct vm *vm, uint64_t gpa, uint64_t len)
{
	return check_buffer(vm, gpa, len, GMVM_SHIM_IO_SIZE) ? -EFAULT : 0;
}

static int32_t put(struct vm *vm, uint64_t gpa, const void *p, size_t len)
{
	int32_t st = guest_buf(vm, gpa, len);
	int ret;

	if (st)
		return st;
	ret = gm_write(vm->store, gpa, p, len);
	if (ret < 0) {
		refuse_lib(vm, ret);
		return -EFAULT;
	}
	return 0;
}

/* write and pwrite64 (off >= 0); stdin is not written, stdout not read */
static int32_t dev_write(struct vm *vm, uint64_t gfd, uint64_t gpa,
			 uint64_t len, int64_t off)
{
	int fd = sysfs_fd(vm, gfd);
	uint8_t *buf;
	int32_t st;
	int ret;
	size_t done = 0;

	if (fd < 0)
		return fd;
	if (!len)
		return 0;
	st = guest_buf(vm, gpa, len);
	if (st)
		return st;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	ret = gm_read(vm->store, gpa, buf, len);
	if (ret < 0) {
		free(buf);
		refuse_lib(vm, ret);
		return -EFAULT;
	}
	while (done < len) {
		ssize_t n = off < 0 ? write(fd, buf + done, len - done) :
				      pwrite(fd, buf + done, len - done,
					     off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			st = done ? (int32_t)done : host_errno();
			free(buf);
			return st;
		}
		done += (size_t)n;
	}
	free(buf);
	return (int32_t)done;
}

/* read, pread64 (off >= 0) and getdents64 (dents) */
static int32_t dev_read(struct vm *vm, uint64_t gfd, uint64_t gpa, uint64_t len,
			int64_t off, bool dents)
{
	int fd = sysfs_fd(vm, gfd);
	uint8_t *buf;
	ssize_t n;
	off_t pos;
	int32_t st;

	if (fd < 0)
		return fd;
	if (!len)
		return dents ? -EINVAL : 0;
	st = guest_buf(vm, gpa, len);
	if (st)
		return st;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	pos = off < 0 ? lseek(fd, 0, SEEK_CUR) : -1;
	do
		n = dents   ? syscall(SYS_getdents64, fd, buf, len) :
		    off < 0 ? read(fd, buf, len) :
			      pread(fd, buf, len, off);
	while (n < 0 && errno == EINTR);
	st = n < 0 ? host_errno() : (int32_t)n;
	if (n > 0 && put(vm, gpa, buf, (size_t)n)) {
		st = -EFAULT; /* nothing consumed, as Linux: rewind */
		if (pos >= 0)
			lseek(fd, pos, SEEK_SET);
	}
	free(buf);
	return st;
}

static int32_t dev_fstat(struct vm *vm, uint64_t gfd, uint64_t gpa)
{
	int fd = sysfs_fd(vm, gfd);
	struct stat st;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st))
		return host_errno();
	return put(vm, gpa, &st, sizeof(st));
}

/* Flags can be read; changes are accepted, not made. */
static int32_t dev_fcntl(struct vm *vm, uint64_t gfd, uint64_t cmd,
			 uint64_t arg)
{
	int fd = sysfs_fd(vm, gfd);
	int flags;

	if (fd < 0)
		return fd;
	switch (cmd) {
	case F_GETFD:
	case F_SETFD:
	case F_SETFL:
		return 0;
	case F_GETFL:
		flags = fcntl(fd, F_GETFL);
		return flags < 0 ? host_errno() : flags;
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return sysfs_dup(vm, gfd, -1, arg);
	default:
		return -EINVAL;
	}
}

static int32_t dev_lseek(struct vm *vm, uint64_t gfd, uint64_t off,
			 uint64_t whence)
{
	int fd = sysfs_fd(vm, gfd);
	off_t pos;

	if (fd < 0)
		return fd;
	if (whence > SEEK_HOLE)
		return -EINVAL;
	pos = lseek(fd, (off_t)off, (int)whence);
	if (pos < 0)
		return host_errno();
	return pos > INT32_MAX ? -EOVERFLOW : (int32_t)pos; /* EAX: 31 bits */
}

static int32_t dev_clock(struct vm *vm, uint64_t clock, uint64_t gpa)
{
	struct timespec ts;
	uint64_t v[2];

	if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
		return -EINVAL;
	clock_gettime((clockid_t)clock, &ts);
	v[0] = (uint64_t)ts.tv_sec;
	v[1] = (uint64_t)ts.tv_nsec;
	return put(vm, gpa, v, sizeof(v));
}

/* Calls that name paths: each a 4 KiB slot of the I/O area. */
static int32_t dev_path_call(struct vm *vm, const struct io_args *a)
{
	char path[SYSFS_PATH_MAX], path2[SYSFS_PATH_MAX], link[SYSFS_PATH_MAX];
	struct stat st;
	int32_t ret = sysfs_path(vm, a->a1, path);

	if (ret)
		return ret;
	switch (a->op) {
	case SYS_openat:
		return sysfs_openat(vm, a->a0, path, a->a2, a->a3);
	case SYS_newfstatat:
		ret = sysfs_stat(vm, a->a0, path, a->a3, &st);
		return ret ? ret : put(vm, a->a2, &st, sizeof(st));
	case SYS_readlinkat:
		if ((int64_t)a->a3 <= 0)
			return -EINVAL;
		ret = guest_buf(vm, a->a2, a->a3);
		if (ret)
			return ret;
		ret = sysfs_readlink(vm, a->a0, path, link,
				     a->a3 < sizeof(link) ? a->a3 :
							    sizeof(link));
		return ret > 0 && put(vm, a->a2, link, (size_t)ret) ? -EFAULT :
								      ret;
	case SYS_unlinkat:
		return sysfs_unlinkat(vm, a->a0, path, a->a2);
	case SYS_mkdirat:
		return sysfs_mkdirat(vm, a->a0, path, a->a2);
	case SYS_renameat2:
		ret = sysfs_path(vm, a->a3, path2);
		if (ret)
			return ret;
		return sysfs_renameat(vm, a->a0, path, a->a2, path2, a->a4);
	default:
		return -ENOSYS;
	}
}

static int32_t dispatch(struct vm *vm, const struct io_args *a)
{
	int fd;

	if (!vm->fs) /* not gmem-vm exec: no program, no files */
		return -ENOSYS;
	switch (a->op) {
	case SYS_write:
		return dev_write(vm, a->a0, a->a1, a->a2, -1);
	case SYS_pwrite64:
		if ((int64_t)a->a3 < 0)
			return -EINVAL;
		return dev_write(vm, a->a0, a->a1, a->a2, (int64_t)a->a3);
	case SYS_read:
		return dev_read(vm, a->a0, a->a1, a->a2, -1, false);
	case SYS_pread64:
		if ((int64_t)a->a3 < 0)
			return -EINVAL;
		return dev_read(vm, a->a0, a->a1, a->a2, (int64_t)a->a3, false);
	case SYS_getdents64:
		return dev_read(vm, a->a0, a->a1, a->a2, -1, true);
	case SYS_fstat:
		return dev_fstat(vm, a->a0, a->a1);
	case SYS_close:
		return sysfs_close(vm, a->a0);
	case SYS_lseek:
		return dev_lseek(vm, a->a0, a->a1, a->a2);
	case SYS_fcntl:
		return dev_fcntl(vm, a->a0, a->a1, a->a2);
	case SYS_dup:
		return sysfs_dup(vm, a->a0, -1, 0);
	case SYS_dup2:
		if (sysfs_fd(vm, a->a0) >= 0 && a->a0 == a->a1)
			return (int32_t)a->a1;
		return sysfs_dup(vm, a->a0, (int64_t)(a->a1 & INT32_MAX), 0);
	case SYS_dup3:
		if (a->a0 == a->a1 || (a->a2 & ~(uint64_t)O_CLOEXEC))
			return -EINVAL;
		return sysfs_dup(vm, a->a0, (int64_t)(a->a1 & INT32_MAX), 0);
	case SYS_ftruncate:
		fd = sysfs_fd(vm, a->a0);
		if (fd < 0)
			return fd;
		if ((int64_t)a->a1 < 0)
			return -EINVAL;
		return ftruncate(fd, (off_t)a->a1) ? host_errno() : 0;
	case SYS_fsync:
	case SYS_fdatasync:
		fd = sysfs_fd(vm, a->a0);
		if (fd < 0)
			return fd;
		return (a->op == SYS_fsync ? fsync(fd) : fdatasync(fd)) ?
			       host_errno() :
			       0;
	case SYS_clock_gettime:
		return dev_clock(vm, a->a0, a->a1);
	case SYS_openat:
	case SYS_newfstatat:
	case SYS_readlinkat:
	case SYS_unlinkat:
	case SYS_mkdirat:
	case SYS_renameat2:
		return dev_path_call(vm, a);
	default:
		return -ENOSYS;
	}
}

static int32_t sysdev_request(struct vm *vm, struct vcpu *vcpu,
			      const struct io_args *a)
{
	uint64_t nr = a->op < SYSDEV_MAX_NR ? a->op : SYSDEV_MAX_NR;
	int32_t ret;

	(void)vcpu;
	atomic_fetch_add(&calls[nr], 1);
	ret = dispatch(vm, a);
	if (ret == -ENOSYS)
		atomic_fetch_add(&unknown[nr], 1);
	else if (ret < 0 && -ret < SYSDEV_MAX_ERRNO)
		atomic_fetch_add(&errors[-ret], 1);
	return ret;
}

static struct io_device sysdev = {
	.name = "sysdev",
	.port = GMVM_PORT_SYSDEV,
	.len = 4,
	.request = sysdev_request,
};

void sysdev_init(void)
{
	bus_register(&sysdev);
}

static void print_counts(FILE *out, bool json, const atomic_ullong *v,
			 unsigned int n)
{
	const char *sep = "";

	for (unsigned int i = 0; i < n; i++) {
		unsigned long long c = atomic_load(&v[i]);

		if (!c)
			continue;
		fprintf(out, json ? "%s\"%u\": %llu" : "%s %u x%llu", sep, i,
			c);
		sep = json ? ", " : ",";
	}
}

void sysdev_report(struct vm *vm, FILE *out, bool json)
{
	fprintf(out, json ? "{\"exec\": {\"host_calls\": {" :
			    "exec: host calls by number:");
	print_counts(out, json, calls, SYSDEV_MAX_NR + 1);
	fprintf(out, json ? "}, \"errors\": {" :
			    "\nexec: errors answered, by errno:");
	print_counts(out, json, errors, SYSDEV_MAX_ERRNO);
	fprintf(out, json ? "}, " : "\n");
	sysfs_report(vm, out, json);
	fprintf(out, json ? "\"unknown\": {" :
			    "exec: unknown system calls (ENOSYS), by number:");
	print_counts(out, json, unknown, SYSDEV_MAX_NR + 1);
	fprintf(out, json ? "}}}\n" : "\n");
}
