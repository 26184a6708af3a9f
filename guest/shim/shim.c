// SPDX-License-Identifier: MIT
/*
 * The system-call shim: a trusted library OS of one page of policy that
 * answers an unmodified static Linux program's system calls inside the
 * guest (docs/exec.md). Memory, TLS, time and randomness never leave the
 * guest; for I/O the shim copies exactly the bytes of the call into the
 * shared I/O area and makes one request to the VMM's system-call device.
 */
#include <gmvm/guest.h>

#include <vmm/exec_abi.h>

/* Linux x86-64 system-call numbers and constants the shim uses. */
enum {
	NR_read = 0,
	NR_write = 1,
	NR_open = 2,
	NR_close = 3,
	NR_stat = 4,
	NR_fstat = 5,
	NR_lstat = 6,
	NR_pread64 = 17,
	NR_pwrite64 = 18,
	NR_fsync = 74,
	NR_fdatasync = 75,
	NR_ftruncate = 77,
	NR_rename = 82,
	NR_mkdir = 83,
	NR_rmdir = 84,
	NR_unlink = 87,
	NR_mkdirat = 258,
	NR_unlinkat = 263,
	NR_renameat = 264,
	NR_readlinkat = 267,
	NR_renameat2 = 316,
	NR_gettimeofday = 96,
	NR_time = 201,
	NR_dup = 32,
	NR_dup2 = 33,
	NR_dup3 = 292,
	NR_lseek = 8,
	NR_mmap = 9,
	NR_mprotect = 10,
	NR_munmap = 11,
	NR_brk = 12,
	NR_rt_sigaction = 13,
	NR_rt_sigprocmask = 14,
	NR_ioctl = 16,
	NR_writev = 20,
	NR_mremap = 25,
	NR_madvise = 28,
	NR_getpid = 39,
	NR_fcntl = 72,
	NR_exit = 60,
	NR_uname = 63,
	NR_readlink = 89,
	NR_getuid = 102,
	NR_getgid = 104,
	NR_geteuid = 107,
	NR_getegid = 108,
	NR_getppid = 110,
	NR_arch_prctl = 158,
	NR_gettid = 186,
	NR_set_tid_address = 218,
	NR_clock_gettime = 228,
	NR_exit_group = 231,
	NR_openat = 257,
	NR_newfstatat = 262,
	NR_set_robust_list = 273,
	NR_getdents64 = 217,
	NR_prlimit64 = 302,
	NR_getrandom = 318,
	NR_rseq = 334,
};

#include "shim.h"

#define EPERM 1
#define ENOENT 2
#define EBADF 9
#define ENOMEM 12
#define EFAULT 14
#define EINVAL 22
#define ENOTTY 25
#define ENOSYS 38
#define ENODEV 19

#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define RLIMIT_STACK 3
#define RLIMIT_NOFILE 7
#define CLOCK_REALTIME 0
#define AT_EMPTY_PATH 0x1000
#define AT_FDCWD (-100)
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define ENAMETOOLONG 36

/*
 * The I/O area: two 4 KiB path slots, then the data of the call (a read's
 * or write's bytes, a stat, a link's target).
 */
#define PATH_SLOT 4096
#define IO_DATA (2 * PATH_SLOT)
#define IO_DATA_SIZE (GMVM_SHIM_IO_SIZE - IO_DATA)
#define STAT_SIZE 144 /* struct stat on x86-64 */

struct shim_call {
	uint64_t nr;
	uint64_t a[6];
};

/* read by entry.S */
uint64_t shim_prog_entry, shim_prog_sp, shim_user_rsp;
uint8_t shim_cpl0;
uint8_t shim_stack[64 << 10] __attribute__((aligned(16)));
extern uint8_t shim_stack_top[];
__asm__(".globl shim_stack_top\n.set shim_stack_top, shim_stack + 65536");

static uint8_t io[GMVM_SHIM_IO_SIZE] __attribute__((aligned(4096)));
static struct gmvm_exec_info info;
static uint64_t mem_size, brk_cur, brk_used, mmap_cur, mmap_used;
static uint64_t tsc_khz, tsc_base, real_base_ns, mono_base_ns;

static void die(int code)
{
	for (;;)
		outl(GMVM_PORT_EXIT, (uint32_t)code);
}

/* A program buffer must lie in guest memory (identity-mapped). */
static bool user_ok(uint64_t p, uint64_t len)
{
	return p + len >= p && p + len <= mem_size && p >= 4096;
}

static int64_t host(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2,
		    uint64_t a3, uint64_t a4)
{
	return gmvm_call(GMVM_PORT_SYSDEV, nr, a0, a1, a2, a3, a4);
}

static uint64_t rdrand64(void)
{
	uint64_t v;
	uint8_t ok;

	for (int tries = 0; tries < 64; tries++) {
		__asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
		if (ok)
			return v;
	}
	die(124); /* no randomness the host cannot see: stop */
	return 0;
}

static void fill_random(uint8_t *p, uint64_t len)
{
	while (len) {
		uint64_t v = rdrand64(), n = len < 8 ? len : 8;

		memcpy(p, &v, n);
		p += n;
		len -= n;
	}
}

/* ---- memory ---- */

static int64_t sys_brk(uint64_t want)
{
	if (want < info.brk_start || want > mmap_cur)
		return (int64_t)brk_cur;
	want = (want + 4095) & ~4095ull;
	if (want > brk_cur && brk_cur < brk_used) /* given back, then again */
		memset((void *)brk_cur, 0,
		       (want < brk_used ? want : brk_used) - brk_cur);
	brk_cur = want;
	if (brk_cur > brk_used)
		brk_used = brk_cur;
	return (int64_t)brk_cur;
}

/* Anonymous mappings, top down; munmap returns only the lowest one. */
static int64_t sys_mmap(uint64_t addr, uint64_t len, uint64_t flags)
{
	uint64_t start;

	if (!(flags & MAP_ANONYMOUS))
		return -ENODEV;
	if ((flags & MAP_FIXED) || !len || len > mem_size)
		return -(addr && (flags & MAP_FIXED) ? EPERM : EINVAL);
	len = (len + 4095) & ~4095ull;
	if (mmap_cur - brk_cur < len)
		return -ENOMEM;
	start = mmap_cur - len;
	if (start < mmap_used) /* reused: anonymous memory reads as zero */
		memset((void *)start, 0,
		       (mmap_cur < mmap_used ? mmap_cur : mmap_used) - start);
	mmap_cur = start;
	if (start < mmap_used)
		mmap_used = start;
	return (int64_t)start;
}

static int64_t sys_munmap(uint64_t addr, uint64_t len)
{
	if ((addr & 4095) || !len)
		return -EINVAL;
	if (addr == mmap_cur)
		mmap_cur += (len + 4095) & ~4095ull;
	if (mmap_cur > info.mmap_end)
		mmap_cur = info.mmap_end;
	return 0;
}

/* ---- time ---- */

static uint64_t now_ns(uint64_t base)
{
	uint64_t d = rdtsc() - tsc_base;

	if (!tsc_khz)
		return base;
	return base + d / tsc_khz * 1000000ull +
	       d % tsc_khz * 1000000ull / tsc_khz;
}

static int64_t sys_clock_gettime(uint64_t clock, uint64_t ts)
{
	uint64_t ns =
		now_ns(clock == CLOCK_REALTIME ? real_base_ns : mono_base_ns);
	uint64_t *out = (uint64_t *)ts;

	if (!user_ok(ts, 16))
		return -EFAULT;
	out[0] = ns / 1000000000ull;
	out[1] = ns % 1000000000ull;
	return 0;
}

static int64_t sys_gettimeofday(uint64_t tv)
{
	uint64_t ns = now_ns(real_base_ns);

	if (!tv)
		return 0;
	if (!user_ok(tv, 16))
		return -EFAULT;
	((uint64_t *)tv)[0] = ns / 1000000000ull;
	((uint64_t *)tv)[1] = ns % 1000000000ull / 1000;
	return 0;
}

static int64_t sys_time(uint64_t tloc)
{
	uint64_t sec = now_ns(real_base_ns) / 1000000000ull;

	if (tloc && !user_ok(tloc, 8))
		return -EFAULT;
	if (tloc)
		*(uint64_t *)tloc = sec;
	return (int64_t)sec;
}

/* ---- I/O through the device ---- */

/* write and pwrite64: the bytes cross, at most the data area at once */
static int64_t sys_write(uint64_t nr, uint64_t fd, uint64_t buf, uint64_t len,
			 uint64_t off)
{
	if (len > IO_DATA_SIZE)
		len = IO_DATA_SIZE;
	if (!user_ok(buf, len))
		return -EFAULT;
	memcpy(io + IO_DATA, (void *)buf, len);
	return host(nr, fd, gpa_of(io + IO_DATA), len, off, 0);
}

/* writev: the vectors packed into the data area, one request. */
static int64_t sys_writev(uint64_t fd, uint64_t iov, uint64_t cnt)
{
	uint64_t n = 0;

	if (cnt > 1024 || !user_ok(iov, cnt * 16))
		return -EINVAL;
	for (uint64_t i = 0; i < cnt && n < IO_DATA_SIZE; i++) {
		uint64_t base = ((uint64_t *)iov)[2 * i];
		uint64_t len = ((uint64_t *)iov)[2 * i + 1];

		if (len > IO_DATA_SIZE - n)
			len = IO_DATA_SIZE - n;
		if (!user_ok(base, len))
			break;
		memcpy(io + IO_DATA + n, (void *)base, len);
		n += len;
	}
	if (!n && cnt)
		return -EFAULT;
	return host(NR_write, fd, gpa_of(io + IO_DATA), n, 0, 0);
}

/* read, pread64 and getdents64: only the bytes returned come back */
static int64_t sys_read(uint64_t nr, uint64_t fd, uint64_t buf, uint64_t len,
			uint64_t off)
{
	int64_t ret;

	if (len > IO_DATA_SIZE)
		len = IO_DATA_SIZE;
	if (!user_ok(buf, len))
		return -EFAULT;
	ret = host(nr, fd, gpa_of(io + IO_DATA), len, off, 0);
	if (ret > 0 && (uint64_t)ret <= len)
		memcpy((void *)buf, io + IO_DATA, (uint64_t)ret);
	return ret;
}

static int64_t sys_fstat(uint64_t fd, uint64_t st)
{
	int64_t ret;

	if (!user_ok(st, STAT_SIZE))
		return -EFAULT;
	ret = host(NR_fstat, fd, gpa_of(io + IO_DATA), 0, 0, 0);
	if (!ret)
		memcpy((void *)st, io + IO_DATA, STAT_SIZE);
	return ret;
}

/* A path argument copied into path slot `slot`: its gpa or -errno. */
static int64_t copy_path(uint64_t path, int slot)
{
	uint8_t *dst = io + slot * PATH_SLOT;

	for (uint64_t n = 0;; n++) {
		if (!user_ok(path + n, 1))
			return -EFAULT;
		if (n == PATH_SLOT)
			return -ENAMETOOLONG;
		dst[n] = *(const uint8_t *)(path + n);
		if (!dst[n])
			return (int64_t)gpa_of(dst);
	}
}

static int64_t sys_newfstatat(uint64_t dirfd, uint64_t path, uint64_t st,
			      uint64_t flags)
{
	int64_t p, ret;

	if ((flags & AT_EMPTY_PATH) && user_ok(path, 1) &&
	    !*(const char *)path && (int32_t)dirfd != AT_FDCWD)
		return sys_fstat(dirfd, st);
	if (!user_ok(st, STAT_SIZE))
		return -EFAULT;
	p = copy_path(path, 0);
	if (p < 0)
		return p;
	ret = host(NR_newfstatat, dirfd, (uint64_t)p, gpa_of(io + IO_DATA),
		   flags, 0);
	if (!ret)
		memcpy((void *)st, io + IO_DATA, STAT_SIZE);
	return ret;
}

/* openat, unlinkat, mkdirat: one path crosses, the host answers */
static int64_t path_call(uint64_t nr, uint64_t dirfd, uint64_t path,
			 uint64_t a2, uint64_t a3)
{
	int64_t p = copy_path(path, 0);

	if (p < 0)
		return p;
	return host(nr, dirfd, (uint64_t)p, a2, a3, 0);
}

static int64_t sys_readlinkat(uint64_t dirfd, uint64_t path, uint64_t buf,
			      uint64_t len)
{
	int64_t p = copy_path(path, 0), ret;

	if (p < 0)
		return p;
	if ((int64_t)len <= 0)
		return -EINVAL;
	if (len > PATH_SLOT)
		len = PATH_SLOT;
	if (!user_ok(buf, len))
		return -EFAULT;
	ret = host(NR_readlinkat, dirfd, (uint64_t)p, gpa_of(io + IO_DATA), len,
		   0);
	if (ret > 0 && (uint64_t)ret <= len)
		memcpy((void *)buf, io + IO_DATA, (uint64_t)ret);
	return ret;
}

static int64_t sys_renameat2(uint64_t olddir, uint64_t old, uint64_t newdir,
			     uint64_t new, uint64_t flags)
{
	int64_t p = copy_path(old, 0), q = copy_path(new, 1);

	if (p < 0)
		return p;
	if (q < 0)
		return q;
	return host(NR_renameat2, olddir, (uint64_t)p, newdir, (uint64_t)q,
		    flags);
}

/* ---- misc ---- */

static int64_t sys_prlimit(uint64_t resource, uint64_t old)
{
	uint64_t *lim = (uint64_t *)old;

	if (!old)
		return 0; /* setting a limit: accepted, not enforced */
	if (!user_ok(old, 16))
		return -EFAULT;
	lim[0] = lim[1] = ~0ull;
	if (resource == RLIMIT_STACK)
		lim[0] = lim[1] = info.stack_size;
	if (resource == RLIMIT_NOFILE)
		lim[0] = lim[1] = 1024;
	return 0;
}

static int64_t sys_uname(uint64_t buf)
{
	static const char *const fields[] = { "Linux",	"gmem-vm",
					      "6.1.0",	"#1 gmem-vm exec",
					      "x86_64", "(none)" };
	char *p = (char *)buf;

	if (!user_ok(buf, 6 * 65))
		return -EFAULT;
	memset(p, 0, 6 * 65);
	for (int i = 0; i < 6; i++)
		memcpy(p + 65 * i, fields[i], strlen(fields[i]));
	return 0;
}

static int64_t sys_arch_prctl(uint64_t code, uint64_t addr)
{
	if (code == ARCH_SET_FS) {
		__asm__ volatile("wrfsbase %0" : : "r"(addr));
		return 0;
	}
	if (code == ARCH_GET_FS) {
		uint64_t v;

		if (!user_ok(addr, 8))
			return -EFAULT;
		__asm__ volatile("rdfsbase %0" : "=r"(v));
		*(uint64_t *)addr = v;
		return 0;
	}
	return -EINVAL;
}

int64_t shim_dispatch(struct shim_call *c);

int64_t shim_dispatch(struct shim_call *c)
{
	uint64_t *a = c->a;

	switch (c->nr) {
	case SHIM_PROBE: {
		uint16_t cs;

		__asm__ volatile("mov %%cs, %0" : "=r"(cs));
		shim_cpl0 = (cs & 3) == 0;
		return 0;
	}
	case NR_brk:
		return sys_brk(a[0]);
	case NR_mmap:
		return sys_mmap(a[0], a[1], a[3]);
	case NR_munmap:
		return sys_munmap(a[0], a[1]);
	case NR_mprotect: /* one identity map: every page is RWX already */
	case NR_madvise:
	case NR_set_robust_list:
	case NR_rt_sigaction: /* no signals are ever delivered */
	case NR_rt_sigprocmask:
		return 0;
	case NR_mremap: /* glibc's realloc falls back to copying */
		return -ENOMEM;
	case NR_arch_prctl:
		return sys_arch_prctl(a[0], a[1]);
	case NR_set_tid_address:
	case NR_getpid:
	case NR_gettid:
		return 1;
	case NR_getppid:
	case NR_getuid:
	case NR_getgid:
	case NR_geteuid:
	case NR_getegid:
		return 0;
	case NR_rseq:
		return -ENOSYS;
	case NR_prlimit64:
		return sys_prlimit(a[1], a[3]);
	case NR_getrandom:
		if (!user_ok(a[0], a[1]))
			return -EFAULT;
		fill_random((uint8_t *)a[0], a[1]);
		return (int64_t)a[1];
	case NR_clock_gettime:
		return sys_clock_gettime(a[0], a[1]);
	case NR_uname:
		return sys_uname(a[0]);
	case NR_gettimeofday:
		return sys_gettimeofday(a[0]);
	case NR_time:
		return sys_time(a[0]);
	case NR_exit:
	case NR_exit_group:
		die((int)(a[0] & 0xff));
		return 0;
	case NR_write:
	case NR_pwrite64:
		return sys_write(c->nr, a[0], a[1], a[2], a[3]);
	case NR_writev:
		return sys_writev(a[0], a[1], a[2]);
	case NR_read:
	case NR_pread64:
	case NR_getdents64:
		return sys_read(c->nr, a[0], a[1], a[2], a[3]);
	case NR_ioctl: /* no terminals */
		return -ENOTTY;
	case NR_fstat:
		return sys_fstat(a[0], a[1]);
	case NR_stat:
		return sys_newfstatat((uint64_t)AT_FDCWD, a[0], a[1], 0);
	case NR_lstat:
		return sys_newfstatat((uint64_t)AT_FDCWD, a[0], a[1],
				      AT_SYMLINK_NOFOLLOW);
	case NR_newfstatat:
		return sys_newfstatat(a[0], a[1], a[2], a[3]);
	case NR_close:
	case NR_fcntl:
	case NR_lseek:
	case NR_ftruncate:
	case NR_fsync:
	case NR_fdatasync:
	case NR_dup:
	case NR_dup2:
	case NR_dup3: /* no pointers: the arguments as they are */
		return host(c->nr, a[0], a[1], a[2], 0, 0);
	case NR_open:
		return path_call(NR_openat, (uint64_t)AT_FDCWD, a[0], a[1],
				 a[2]);
	case NR_openat:
		return path_call(NR_openat, a[0], a[1], a[2], a[3]);
	case NR_readlink:
		return sys_readlinkat((uint64_t)AT_FDCWD, a[0], a[1], a[2]);
	case NR_readlinkat:
		return sys_readlinkat(a[0], a[1], a[2], a[3]);
	case NR_unlink:
		return path_call(NR_unlinkat, (uint64_t)AT_FDCWD, a[0], 0, 0);
	case NR_rmdir:
		return path_call(NR_unlinkat, (uint64_t)AT_FDCWD, a[0],
				 AT_REMOVEDIR, 0);
	case NR_unlinkat:
		return path_call(NR_unlinkat, a[0], a[1], a[2], 0);
	case NR_mkdir:
		return path_call(NR_mkdirat, (uint64_t)AT_FDCWD, a[0], a[1], 0);
	case NR_mkdirat:
		return path_call(NR_mkdirat, a[0], a[1], a[2], 0);
	case NR_rename:
		return sys_renameat2((uint64_t)AT_FDCWD, a[0],
				     (uint64_t)AT_FDCWD, a[1], 0);
	case NR_renameat:
		return sys_renameat2(a[0], a[1], a[2], a[3], 0);
	case NR_renameat2:
		return sys_renameat2(a[0], a[1], a[2], a[3], a[4]);
	default: /* counted by number in the VMM's report */
		return host(c->nr, 0, 0, 0, 0, 0);
	}
}

void shim_init(const struct gmvm_exec_info *in);

void shim_init(const struct gmvm_exec_info *in)
{
	const struct gmvm_boot_info *bi =
		(const struct gmvm_boot_info *)GMVM_BOOT_INFO_GPA;
	int64_t ret;

	if (in->magic != GMVM_EXEC_MAGIC || bi->magic != GMVM_BOOT_MAGIC)
		die(125);
	info = *in;
	mem_size = bi->mem_size;
	shim_prog_entry = info.entry;
	shim_prog_sp = info.sp;
	brk_cur = brk_used = info.brk_start;
	mmap_cur = mmap_used = info.mmap_end;
	/* the one page range the host may read: the I/O area */
	ret = gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_CONVERT, gpa_of(io),
			sizeof(io), GMVM_SHARED, 0, 0);
	if (ret < 0)
		die(125);
	/* AT_RANDOM from inside the guest */
	fill_random((uint8_t *)info.random, 16);
	ret = gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_INFO, GMVM_INFO_TSC_KHZ,
			0, 0, 0, 0);
	tsc_khz = ret > 0 ? (uint64_t)ret : 0;
	tsc_base = rdtsc();
	if (host(NR_clock_gettime, CLOCK_REALTIME, gpa_of(io), 0, 0, 0) == 0)
		real_base_ns = ((uint64_t *)io)[0] * 1000000000ull +
			       ((uint64_t *)io)[1];
	if (host(NR_clock_gettime, 1, gpa_of(io), 0, 0, 0) == 0)
		mono_base_ns = ((uint64_t *)io)[0] * 1000000000ull +
			       ((uint64_t *)io)[1];
}
