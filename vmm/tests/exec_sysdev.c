// SPDX-License-Identifier: MIT
/*
 * exec_sysdev: the system-call device of gmem-vm exec (vmm/sysdev.c,
 * vmm/sysfs.c) fed malformed requests directly, as a hostile shim could
 * send them, through the VMM's own port bus with no KVM (like
 * fuzz/fuzz_memctl.c): bad gpas, a private buffer, lengths, paths without
 * NUL, flags, fds and escapes. Each gets the errno Linux would give, is
 * counted, and the device still serves a good request afterwards.
 *   exec_sysdev SANDBOX   (SANDBOX holds a.txt = "hello\n")
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include <gmem/gmem.h>

#include "exec_abi.h"
#include "vmm.h"

#define MEM (2ull << 20)
#define IO 0x10000ull /* shared: [IO, IO + 64 KiB) */
#define PRIV (IO + GMVM_SHIM_IO_SIZE) /* a private page */
#define PATH (IO + 8192)

static struct vm vm;
static struct vcpu vcpu;
static struct kvm_run run;
static int failed;

static int32_t sys(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2,
		   uint64_t a3, uint64_t a4)
{
	struct kvm_regs *g = &run.s.regs.regs;
	uint32_t val = 0xdeadbeef;
	struct io_req req = { .vcpu = &vcpu,
			      .port = GMVM_PORT_SYSDEV,
			      .in = true,
			      .size = 4,
			      .val = &val };

	g->rdi = nr;
	g->rsi = a0;
	g->rcx = a1;
	g->r8 = a2;
	g->r9 = a3;
	g->r10 = a4;
	bus_io(&vm, &req);
	return (int32_t)val;
}

static void expect(const char *what, int32_t got, int32_t want)
{
	if (got != want) {
		printf("FAIL %s: %d, want %d\n", what, got, want);
		failed = 1;
	}
}

static void put_path(const char *p)
{
	if (gm_write(vm.store, PATH, p, strlen(p) + 1))
		failed = 1;
}

static int setup(const char *dir)
{
	struct gm_store_opts o = { .sz = sizeof(o),
				   .size = MEM,
				   .backing = GM_BACKING_MEMFD,
				   .vm_fd = -1,
				   .flags = GM_STORE_VIEW_LAZY };
	static uint8_t fill[GMVM_SHIM_IO_SIZE];

	vm.opts.mem_size = MEM;
	vm.opts.nr_vcpus = 1;
	vm.opts.init_private = true;
	vm.opts.quiet = true;
	vm.opts.exec_dir = dir;
	vm.kvm_fd = vm.vm_fd = -1;
	pthread_mutex_init(&vm.report_lock, NULL);
	pthread_mutex_init(&vm.peek_lock, NULL);
	vcpu.vm = &vm;
	vcpu.fd = -1;
	vcpu.run = &run;
	vcpu.sync_regs = true;
	if (gm_store_create(&o, &vm.store) ||
	    gm_convert(vm.store, 0, MEM, GM_ATTR_PRIVATE, 0) ||
	    gm_convert(vm.store, IO, GMVM_SHIM_IO_SIZE, GM_ATTR_SHARED, 0))
		return -1;
	memset(fill, 'a', sizeof(fill)); /* no NUL anywhere */
	if (gm_write(vm.store, IO, fill, sizeof(fill)))
		return -1;
	bus_init();
	return sysfs_open(&vm);
}

int main(int argc, char **argv)
{
	char buf[8];
	int32_t fd;

	if (argc != 2 || setup(argv[1])) {
		fprintf(stderr, "usage: exec_sysdev SANDBOX (setup failed)\n");
		return 2;
	}
	/* paths: private, outside memory, no NUL, empty, escaping */
	expect("private path", sys(SYS_openat, -100, PRIV, 0, 0, 0), -EFAULT);
	expect("path past memory", sys(SYS_openat, -100, MEM - 10, 0, 0, 0),
	       -EFAULT);
	expect("path wraps", sys(SYS_openat, -100, ~0ull - 5, 0, 0, 0),
	       -EFAULT);
	expect("path without NUL", sys(SYS_openat, -100, IO, 0, 0, 0),
	       -ENAMETOOLONG);
	put_path("");
	expect("empty path", sys(SYS_openat, -100, PATH, 0, 0, 0), -ENOENT);
	put_path("../a.txt");
	expect("escape ..", sys(SYS_openat, -100, PATH, 0, 0, 0), -EACCES);
	put_path("/etc/passwd");
	expect("escape /", sys(SYS_openat, -100, PATH, 0, 0, 0), -EACCES);
	expect("escape stat", sys(SYS_newfstatat, -100, PATH, IO, 0, 0),
	       -EACCES);
	expect("escape unlink", sys(SYS_unlinkat, -100, PATH, 0, 0, 0),
	       -EACCES);
	/* flags, dirfds */
	put_path("a.txt");
	expect("O_ACCMODE", sys(SYS_openat, -100, PATH, 3, 0, 0), -EINVAL);
	expect("O_TMPFILE",
	       sys(SYS_openat, -100, PATH, O_TMPFILE | O_RDWR, 0, 0),
	       -EOPNOTSUPP);
	expect("read-only dir", sys(SYS_openat, -100, PATH, O_WRONLY, 0, 0),
	       -EROFS);
	expect("read-only unlink", sys(SYS_unlinkat, -100, PATH, 0, 0, 0),
	       -EROFS);
	expect("unlink flags", sys(SYS_unlinkat, -100, PATH, 1, 0, 0), -EINVAL);
	expect("dirfd stdout", sys(SYS_openat, 1, PATH, 0, 0, 0), -ENOTDIR);
	expect("dirfd unknown", sys(SYS_openat, 77, PATH, 0, 0, 0), -EBADF);
	expect("stat flags", sys(SYS_newfstatat, -100, PATH, IO, 0x8000, 0),
	       -EINVAL);
	expect("stat into private", sys(SYS_newfstatat, -100, PATH, PRIV, 0, 0),
	       -EFAULT);
	expect("readlink size", sys(SYS_readlinkat, -100, PATH, IO, 0, 0),
	       -EINVAL);
	expect("rename path2", sys(SYS_renameat2, -100, PATH, -100, PRIV, 0),
	       -EFAULT);
	/* fds and buffers */
	fd = sys(SYS_openat, -100, PATH, 0, 0, 0);
	expect("open", fd, 0 + 3);
	expect("read private", sys(SYS_read, fd, PRIV, 10, 0, 0), -EFAULT);
	expect("read too long", sys(SYS_read, fd, IO, 1 << 20, 0, 0), -EFAULT);
	expect("read past memory", sys(SYS_read, fd, MEM - 4, 8, 0, 0),
	       -EFAULT);
	expect("write private", sys(SYS_write, 1, PRIV, 8, 0, 0), -EFAULT);
	expect("pread negative", sys(SYS_pread64, fd, IO, 8, -1ull, 0),
	       -EINVAL);
	expect("lseek whence", sys(SYS_lseek, fd, 0, 99, 0, 0), -EINVAL);
	expect("read bad fd", sys(SYS_read, 999, IO, 8, 0, 0), -EBADF);
	expect("read huge fd", sys(SYS_read, ~0ull, IO, 8, 0, 0), -EBADF);
	expect("write ro fd", sys(SYS_write, fd, IO, 8, 0, 0), -EBADF);
	expect("ftruncate ro fd", sys(SYS_ftruncate, fd, 0, 0, 0, 0), -EINVAL);
	expect("dup2 huge", sys(SYS_dup2, fd, 100000, 0, 0, 0), -EBADF);
	expect("dup3 flags", sys(SYS_dup3, fd, 9, 1, 0, 0), -EINVAL);
	expect("getdents file", sys(SYS_getdents64, fd, IO, 4096, 0, 0),
	       -ENOTDIR);
	expect("unknown call", sys(9999, 0, 0, 0, 0, 0), -ENOSYS);
	/* still served */
	expect("read", sys(SYS_read, fd, IO, 6, 0, 0), 6);
	if (gm_read(vm.store, IO, buf, 6) || memcmp(buf, "hello\n", 6))
		expect("bytes", 1, 0);
	expect("close", sys(SYS_close, fd, 0, 0, 0, 0), 0);
	expect("close again", sys(SYS_close, fd, 0, 0, 0, 0), -EBADF);
	expect("refusals counted",
	       atomic_load(&vm.refused[REFUSE_PRIVATE]) >= 4, 1);
	sysdev_report(&vm, stdout, false);
	if (!failed)
		printf("ok   exec_sysdev: every malformed request refused\n");
	return failed;
}
