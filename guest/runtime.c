// SPDX-License-Identifier: MIT
/* The gmem-vm guest runtime: start-up, console, requests, helpers. */
#include <gmvm/guest.h>

const struct gmvm_boot_info *boot;
static uint64_t heap_next; /* atomic */

__attribute__((noreturn)) void gmvm_start(unsigned int vcpu,
					  const struct gmvm_boot_info *bi);

__attribute__((noreturn)) void exit(int code)
{
	for (;;)
		outl(GMVM_PORT_EXIT, (uint32_t)code);
}

__attribute__((noreturn)) void gmvm_start(unsigned int vcpu,
					  const struct gmvm_boot_info *bi)
{
	int ret;

	__atomic_store_n(&boot, bi, __ATOMIC_RELEASE);
	if (bi->magic != GMVM_BOOT_MAGIC || bi->version != GMVM_ABI_VERSION)
		exit(125);
	ret = main(vcpu);
	if (vcpu == 0)
		exit(ret);
	for (;;)
		outl(GMVM_PORT_VCPU_DONE, (uint32_t)ret);
}

uint64_t gmvm_tsc_khz(void)
{
	static uint64_t khz; /* atomic; 0 until asked */
	uint64_t v = __atomic_load_n(&khz, __ATOMIC_RELAXED);
	int32_t ret;

	if (v)
		return v;
	ret = gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_INFO, GMVM_INFO_TSC_KHZ,
			0, 0, 0, 0);
	v = ret > 0 ? (uint64_t)ret : 0;
	__atomic_store_n(&khz, v, __ATOMIC_RELAXED);
	return v;
}

uint64_t tsc_to_us(uint64_t ticks)
{
	uint64_t khz = gmvm_tsc_khz();

	return khz ? ticks * 1000 / khz : 0;
}

/* ---- console ---- */

void putchar_raw(char c)
{
	outb(GMVM_PORT_CONSOLE_CHAR, (uint8_t)c);
}

static int console_write(const char *s, size_t len)
{
	int ret;

	if (!len)
		return 0;
	ret = gmvm_call(GMVM_PORT_CONSOLE, GMVM_CONSOLE_WRITE, gpa_of(s), len,
			0, 0, 0);
	if (ret < 0) /* e.g. a string in private memory: one char at a time */
		for (size_t i = 0; i < len; i++)
			putchar_raw(s[i]);
	return (int)len;
}

int puts(const char *s)
{
	return console_write(s, strlen(s));
}

int printf(const char *fmt, ...)
{
	char buf[512]; /* on the stack: shared and hypervisor-visible */
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	return console_write(buf, (size_t)n);
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

struct out {
	char *buf;
	size_t size, n;
};

static void emit(struct out *o, char c)
{
	if (o->n + 1 < o->size)
		o->buf[o->n] = c;
	o->n++;
}

static void emit_num(struct out *o, uint64_t v, unsigned int base, bool neg,
		     int width, char pad)
{
	char tmp[24];
	int i = 0;

	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[i++] = '-';
	for (; width > i; width--)
		emit(o, pad);
	while (i)
		emit(o, tmp[--i]);
}

/* %d %i %u %x %p %s %c %%, with l/ll/z and a width ("%08llx"). */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { .buf = buf, .size = size };

	for (; *fmt; fmt++) {
		int lng = 0, width = 0;
		char pad = ' ';
		uint64_t u;
		int64_t s;
		const char *str;

		if (*fmt != '%') {
			emit(&o, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i':
			s = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			emit_num(&o, s < 0 ? (uint64_t)-s : (uint64_t)s, 10,
				 s < 0, width, pad);
			break;
		case 'u':
		case 'x':
			u = lng ? va_arg(ap, uint64_t) :
				  va_arg(ap, unsigned int);
			emit_num(&o, u, *fmt == 'u' ? 10 : 16, false, width,
				 pad);
			break;
		case 'p':
			emit(&o, '0');
			emit(&o, 'x');
			emit_num(&o, (uint64_t)(uintptr_t)va_arg(ap, void *),
				 16, false, width, pad);
			break;
		case 's':
			str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			for (int len = (int)strlen(str); width > len; width--)
				emit(&o, ' ');
			while (*str)
				emit(&o, *str++);
			break;
		case 'c':
			emit(&o, (char)va_arg(ap, int));
			break;
		case '%':
			emit(&o, '%');
			break;
		default:
			emit(&o, '%');
			if (!*fmt)
				goto done;
			emit(&o, *fmt);
		}
	}
done:
	if (size)
		buf[o.n < size ? o.n : size - 1] = 0;
	return (int)o.n;
}

/* ---- memory ---- */

int convert(uint64_t gpa, uint64_t len, int to, bool destructive)
{
	return gmvm_call(
		GMVM_PORT_MEMCTL, GMVM_MEMCTL_CONVERT, gpa, len, (uint64_t)to,
		destructive ? GMVM_CONV_DESTRUCTIVE : GMVM_CONV_INPLACE, 0);
}

int share(uint64_t gpa, uint64_t len)
{
	return gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_CONVERT, gpa, len,
			 GMVM_SHARED, 0, 0);
}

int unshare(uint64_t gpa, uint64_t len)
{
	return gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_CONVERT, gpa, len,
			 GMVM_PRIVATE, 0, 0);
}

int query(uint64_t gpa)
{
	return gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_QUERY, gpa, 0, 0, 0, 0);
}

void *alloc_pages(uint64_t n)
{
	uint64_t start, bytes = n * PAGE_SIZE;
	uint64_t cur = __atomic_load_n(&heap_next, __ATOMIC_RELAXED);

	do {
		start = cur ? cur : boot->heap_start;
		if (bytes > boot->heap_end - start)
			return NULL;
	} while (!__atomic_compare_exchange_n(&heap_next, &cur, start + bytes,
					      false, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return (void *)(uintptr_t)start;
}

/* ---- devices ---- */

int dev_checksum(const void *buf, uint64_t len, uint64_t *out)
{
	return gmvm_call(GMVM_PORT_CHKDEV, GMVM_CHK_CHECKSUM, gpa_of(buf), len,
			 gpa_of(out), 0, 0);
}

int dev_fill(void *buf, uint64_t len, uint64_t seed)
{
	return gmvm_call(GMVM_PORT_CHKDEV, GMVM_CHK_FILL, gpa_of(buf), len,
			 seed, 0, 0);
}

int dev_hold(const void *buf, uint64_t len, bool revocable)
{
	return gmvm_call(GMVM_PORT_CHKDEV, GMVM_CHK_HOLD, gpa_of(buf), len,
			 revocable ? GMVM_HOLD_REVOCABLE : 0, 0, 0);
}

int dev_release(int handle)
{
	return gmvm_call(GMVM_PORT_CHKDEV, GMVM_CHK_RELEASE, (uint64_t)handle,
			 0, 0, 0, 0);
}

int dev_held(int handle)
{
	return gmvm_call(GMVM_PORT_CHKDEV, GMVM_CHK_HELD, (uint64_t)handle, 0,
			 0, 0, 0);
}

int launch_digest(uint8_t digest[GMVM_DIGEST_SIZE])
{
	static uint8_t *page; /* one shared heap page, kept */
	int ret;

	if (!page) {
		uint8_t *p = alloc_pages(1);

		if (!p)
			return GMVM_ENOMEM;
		ret = query(gpa_of(p)) == GMVM_SHARED ?
			      0 :
			      share(gpa_of(p), PAGE_SIZE);
		if (ret < 0)
			return ret;
		page = p;
	}
	ret = gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_MEASUREMENT, gpa_of(page),
			GMVM_DIGEST_SIZE, 0, 0, 0);
	if (ret >= 0)
		memcpy(digest, page, GMVM_DIGEST_SIZE);
	return ret;
}

int peek(const void *buf, uint64_t len)
{
	return gmvm_call(GMVM_PORT_DEBUG, GMVM_DEBUG_PEEK, gpa_of(buf), len, 0,
			 0, 0);
}

/* ---- helpers ---- */

uint64_t fnv1a64(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

const char *status_name(int status)
{
	switch (status) {
	case GMVM_OK:
		return "OK";
	case GMVM_EPERM:
		return "EPERM";
	case GMVM_ENOENT:
		return "ENOENT";
	case GMVM_E2BIG:
		return "E2BIG";
	case GMVM_ENOMEM:
		return "ENOMEM";
	case GMVM_EFAULT:
		return "EFAULT";
	case GMVM_EBUSY:
		return "EBUSY";
	case GMVM_EINVAL:
		return "EINVAL";
	case GMVM_ERANGE:
		return "ERANGE";
	case GMVM_ENOSYS:
		return "ENOSYS";
	case GMVM_EOVERFLOW:
		return "EOVERFLOW";
	case GMVM_EOPNOTSUPP:
		return "EOPNOTSUPP";
	case GMVM_ECANCELED:
		return "ECANCELED";
	default:
		return status < 0 ? "error" : "value";
	}
}
