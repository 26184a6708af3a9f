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
	NR_close = 3,
	NR_fstat = 5,
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

void *memset(void *s, int c, size_t n)
{
	uint8_t *p = s;

	while (n--)
		*p++ = (uint8_t)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return d;
}

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

/* ---- I/O through the device ---- */

static int64_t sys_write(uint64_t fd, uint64_t buf, uint64_t len)
{
	if (len > GMVM_SHIM_IO_SIZE)
		len = GMVM_SHIM_IO_SIZE;
	if (!user_ok(buf, len))
		return -EFAULT;
	memcpy(io, (void *)buf, len);
	return host(NR_write, fd, gpa_of(io), len, 0, 0);
}

/* writev: the vectors packed into the I/O area, one request. */
static int64_t sys_writev(uint64_t fd, uint64_t iov, uint64_t cnt)
{
	uint64_t n = 0;

	if (cnt > 1024 || !user_ok(iov, cnt * 16))
		return -EINVAL;
	for (uint64_t i = 0; i < cnt && n < GMVM_SHIM_IO_SIZE; i++) {
		uint64_t base = ((uint64_t *)iov)[2 * i];
		uint64_t len = ((uint64_t *)iov)[2 * i + 1];

		if (len > GMVM_SHIM_IO_SIZE - n)
			len = GMVM_SHIM_IO_SIZE - n;
		if (!user_ok(base, len))
			return n ? host(NR_write, fd, gpa_of(io), n, 0, 0) :
				   -EFAULT;
		memcpy(io + n, (void *)base, len);
		n += len;
	}
	return host(NR_write, fd, gpa_of(io), n, 0, 0);
}

static int64_t sys_read(uint64_t fd, uint64_t buf, uint64_t len)
{
	int64_t ret;

	if (len > GMVM_SHIM_IO_SIZE)
		len = GMVM_SHIM_IO_SIZE;
	if (!user_ok(buf, len))
		return -EFAULT;
	ret = host(NR_read, fd, gpa_of(io), len, 0, 0);
	if (ret > 0 && (uint64_t)ret <= len)
		memcpy((void *)buf, io, (uint64_t)ret);
	return ret;
}

static int64_t sys_fstat(uint64_t fd, uint64_t st)
{
	int64_t ret;

	if (!user_ok(st, STAT_SIZE))
		return -EFAULT;
	ret = host(NR_fstat, fd, gpa_of(io), 0, 0, 0);
	if (!ret)
		memcpy((void *)st, io, STAT_SIZE);
	return ret;
}

/* A path argument copied into the I/O area; its length or -errno. */
static int64_t copy_path(uint64_t path)
{
	uint64_t n = 0;

	for (;;) {
		if (!user_ok(path + n, 1))
			return -EFAULT;
		if (n == 4096)
			return -36; /* ENAMETOOLONG */
		io[n] = *(const uint8_t *)(path + n);
		if (!io[n])
			return (int64_t)n;
		n++;
	}
}

static int64_t sys_newfstatat(struct shim_call *c)
{
	int64_t ret;

	if ((c->a[3] & AT_EMPTY_PATH) && user_ok(c->a[1], 1) &&
	    !*(const char *)c->a[1])
		return sys_fstat(c->a[0], c->a[2]);
	ret = copy_path(c->a[1]);
	if (ret < 0)
		return ret;
	return host(NR_newfstatat, c->a[0], gpa_of(io), 0, c->a[3], 0);
}

/* openat and readlink: the path crosses, the host answers */
static int64_t sys_openat(struct shim_call *c)
{
	int64_t ret = copy_path(c->a[1]);

	if (ret < 0)
		return ret;
	return host(NR_openat, c->a[0], gpa_of(io), c->a[2], c->a[3], 0);
}

static int64_t sys_readlink(struct shim_call *c)
{
	int64_t ret = copy_path(c->a[0]);

	if (ret < 0)
		return ret;
	return host(NR_readlink, gpa_of(io), 0, c->a[2], 0, 0);
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

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
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
	case NR_exit:
	case NR_exit_group:
		die((int)(a[0] & 0xff));
		return 0;
	case NR_write:
		return sys_write(a[0], a[1], a[2]);
	case NR_writev:
		return sys_writev(a[0], a[1], a[2]);
	case NR_read:
		return sys_read(a[0], a[1], a[2]);
	case NR_ioctl: /* no terminals */
		return -ENOTTY;
	case NR_fstat:
		return sys_fstat(a[0], a[1]);
	case NR_newfstatat:
		return sys_newfstatat(c);
	case NR_close:
	case NR_fcntl:
	case NR_lseek:
	case NR_getdents64:
		return host(c->nr, a[0], a[1], a[2], 0, 0);
	case NR_openat:
		return sys_openat(c);
	case NR_readlink:
		return sys_readlink(c);
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
