// SPDX-License-Identifier: MIT
/*
 * The system-call device of gmem-vm exec (docs/exec.md): the host half of
 * the calls the shim cannot answer inside the guest. A request names the
 * Linux system call and its arguments, with every buffer a gpa in the
 * shim's shared I/O area; the device reads and writes guest memory only
 * through the library (gm_read/gm_write), so a private page is refused
 * (-EFAULT), never read. Served so far: stdin, stdout and stderr. There
 * is no file system yet: openat, readlink and path stats answer -ENOENT.
 * Unknown calls answer -ENOSYS and are counted by number.
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
static atomic_ullong no_such_file; /* openat/readlink/stat answered ENOENT */

static bool std_fd(uint64_t fd)
{
	return fd <= 2;
}

static int32_t host_errno(void)
{
	return -errno;
}

static int32_t dev_write(struct vm *vm, uint64_t fd, uint64_t gpa, uint64_t len)
{
	uint8_t *buf;
	int32_t st;
	int ret;
	size_t done = 0;

	if (fd != 1 && fd != 2)
		return -EBADF;
	if (!len)
		return 0;
	st = check_buffer(vm, gpa, len, GMVM_SHIM_IO_SIZE);
	if (st)
		return st;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	ret = gm_read(vm->store, gpa, buf, len);
	if (ret < 0) {
		free(buf);
		return refuse_lib(vm, ret);
	}
	while (done < len) {
		ssize_t n = write((int)fd, buf + done, len - done);

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

static int32_t dev_read(struct vm *vm, uint64_t fd, uint64_t gpa, uint64_t len)
{
	uint8_t *buf;
	ssize_t n;
	int32_t st;
	int ret;

	if (fd != 0)
		return -EBADF;
	if (!len)
		return 0;
	st = check_buffer(vm, gpa, len, GMVM_SHIM_IO_SIZE);
	if (st)
		return st;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	do
		n = read(0, buf, len);
	while (n < 0 && errno == EINTR);
	st = n < 0 ? host_errno() : (int32_t)n;
	if (n > 0) {
		ret = gm_write(vm->store, gpa, buf, (size_t)n);
		if (ret < 0)
			st = refuse_lib(vm, ret);
	}
	free(buf);
	return st;
}

static int32_t put(struct vm *vm, uint64_t gpa, const void *p, size_t len)
{
	int32_t st = check_buffer(vm, gpa, len, GMVM_SHIM_IO_SIZE);
	int ret;

	if (st)
		return st;
	ret = gm_write(vm->store, gpa, p, len);
	return ret < 0 ? refuse_lib(vm, ret) : 0;
}

static int32_t dev_fstat(struct vm *vm, uint64_t fd, uint64_t gpa)
{
	struct stat st;

	if (!std_fd(fd))
		return -EBADF;
	if (fstat((int)fd, &st))
		return host_errno();
	return put(vm, gpa, &st, sizeof(st));
}

/* The standard fds' flags can be read; changes are accepted, not made. */
static int32_t dev_fcntl(uint64_t fd, uint64_t cmd)
{
	int flags;

	if (!std_fd(fd))
		return -EBADF;
	switch (cmd) {
	case F_GETFD:
	case F_SETFD:
	case F_SETFL:
		return 0;
	case F_GETFL:
		flags = fcntl((int)fd, F_GETFL);
		return flags < 0 ? host_errno() : flags;
	default:
		return -EINVAL;
	}
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

static int32_t sysdev_request(struct vm *vm, struct vcpu *vcpu,
			      const struct io_args *a)
{
	uint64_t nr = a->op < SYSDEV_MAX_NR ? a->op : SYSDEV_MAX_NR;

	(void)vcpu;
	atomic_fetch_add(&calls[nr], 1);
	switch (a->op) {
	case SYS_write:
		return dev_write(vm, a->a0, a->a1, a->a2);
	case SYS_read:
		return dev_read(vm, a->a0, a->a1, a->a2);
	case SYS_fstat:
		return dev_fstat(vm, a->a0, a->a1);
	case SYS_close:
		return std_fd(a->a0) ? 0 : -EBADF; /* the host's stay open */
	case SYS_lseek: {
		off_t off;

		if (!std_fd(a->a0))
			return -EBADF;
		off = lseek((int)a->a0, (off_t)a->a1, (int)a->a2);
		return off < 0 ? host_errno() : (int32_t)(off & 0x7fffffff);
	}
	case SYS_fcntl:
		return dev_fcntl(a->a0, a->a1);
	case SYS_getdents64:
		return std_fd(a->a0) ? -ENOTDIR : -EBADF;
	case SYS_clock_gettime:
		return dev_clock(vm, a->a0, a->a1);
	case SYS_openat:
	case SYS_readlink:
	case SYS_newfstatat:
		atomic_fetch_add(&no_such_file, 1);
		return -ENOENT;
	default:
		atomic_fetch_add(&unknown[nr], 1);
		return -ENOSYS;
	}
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

void sysdev_report(FILE *out, bool json)
{
	const char *sep = "";

	if (json)
		fprintf(out, "{\"exec\": {\"host_calls\": {");
	else
		fprintf(out, "exec: host calls:");
	for (unsigned int i = 0; i <= SYSDEV_MAX_NR; i++) {
		unsigned long long n = atomic_load(&calls[i]);

		if (!n)
			continue;
		fprintf(out, json ? "%s\"%u\": %llu" : "%s nr %u x%llu", sep, i,
			n);
		sep = json ? ", " : ",";
	}
	fprintf(out,
		json ? "}, \"enoent\": %llu, \"unknown\": {" :
		       "\nexec: no file system: %llu paths answered "
		       "ENOENT\nexec: unknown system calls (ENOSYS):",
		(unsigned long long)atomic_load(&no_such_file));
	sep = "";
	for (unsigned int i = 0; i <= SYSDEV_MAX_NR; i++) {
		unsigned long long n = atomic_load(&unknown[i]);

		if (!n)
			continue;
		fprintf(out, json ? "%s\"%u\": %llu" : "%s nr %u x%llu", sep, i,
			n);
		sep = json ? ", " : ",";
	}
	fprintf(out, json ? "}}}\n" : "\n");
}
