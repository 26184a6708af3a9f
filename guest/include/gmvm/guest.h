/* SPDX-License-Identifier: MIT */
/*
 * The gmem-vm guest runtime: a freestanding C runtime for small guest
 * programs. A guest defines `int main(unsigned int vcpu)`; every vCPU runs
 * it. vCPU 0's return value is the exit code of the VM (and of gmem-vm);
 * other vCPUs just stop when main returns.
 */
#ifndef GMVM_GUEST_H
#define GMVM_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmm/abi.h>

#define PAGE_SIZE 4096ull
#define GMVM_MAX_VCPUS_GUEST 16

int main(unsigned int vcpu);

/* The VMM's boot information (read-only). */
extern const struct gmvm_boot_info *boot;

/* ---- requests ---- */

/* One request: `in` on port with the op and arguments in registers. */
static inline int32_t gmvm_call(uint16_t port, uint64_t op, uint64_t a0,
				uint64_t a1, uint64_t a2, uint64_t a3,
				uint64_t a4)
{
	register uint64_t r8 __asm__("r8") = a2;
	register uint64_t r9 __asm__("r9") = a3;
	register uint64_t r10 __asm__("r10") = a4;
	uint32_t ret;

	__asm__ volatile("inl %%dx, %%eax"
			 : "=a"(ret)
			 : "d"(port), "D"(op), "S"(a0), "c"(a1), "r"(r8),
			   "r"(r9), "r"(r10)
			 : "memory");
	return (int32_t)ret;
}

static inline void outl(uint16_t port, uint32_t val)
{
	__asm__ volatile("outl %%eax, %%dx" : : "a"(val), "d"(port) : "memory");
}

static inline void outb(uint16_t port, uint8_t val)
{
	__asm__ volatile("outb %%al, %%dx" : : "a"(val), "d"(port) : "memory");
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %%dx, %%eax" : "=a"(v) : "d"(port) : "memory");
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* The TSC rate in kHz (memctl INFO TSC_KHZ), 0 if the VMM does not know. */
uint64_t gmvm_tsc_khz(void);
/* Microseconds from TSC ticks (0 if the VMM did not tell the rate). */
uint64_t tsc_to_us(uint64_t ticks);

/* A bare exit and resume (the nop port): the floor of every request. */
static inline void gmvm_nop(void)
{
	(void)inl(GMVM_PORT_NOP);
}

__attribute__((noreturn)) void exit(int code);

/* ---- console ---- */
void putchar_raw(char c);
int puts(const char *s); /* no newline added */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- memory ---- */

/* Make [gpa, gpa + len) shared/private in the VMM's default mode. */
int share(uint64_t gpa, uint64_t len);
int unshare(uint64_t gpa, uint64_t len);
/* to: GMVM_SHARED or GMVM_PRIVATE; destructive: discard contents. */
int convert(uint64_t gpa, uint64_t len, int to, bool destructive);
/* GMVM_SHARED, GMVM_PRIVATE or an error. */
int query(uint64_t gpa);

/* Pages from the data area (the heap), never given back. NULL if full. */
void *alloc_pages(uint64_t n);

/* ---- devices ---- */
int dev_checksum(const void *buf, uint64_t len, uint64_t *out);
int dev_fill(void *buf, uint64_t len, uint64_t seed);
int dev_hold(const void *buf, uint64_t len, bool revocable);
int dev_release(int handle);
int dev_held(int handle);
/*
 * The launch digest (memctl MEASUREMENT) into digest: GMVM_DIGEST_SIZE or an
 * error. The VMM writes it into a heap page this makes shared on first use
 * (vCPU 0 only, or one vCPU at a time).
 */
int launch_digest(uint8_t digest[GMVM_DIGEST_SIZE]);
/* Ask the VMM to read [gpa, gpa+len) through the library; see abi.h. */
int peek(const void *buf, uint64_t len);

/* ---- helpers ---- */
void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
uint64_t fnv1a64(const void *buf, size_t len);
const char *status_name(int status);
/* the pattern dev_fill writes: byte i = seed + 7 * i */
static inline uint8_t fill_byte(uint64_t seed, uint64_t i)
{
	return (uint8_t)(seed + i * 7);
}

static inline uint64_t gpa_of(const void *p)
{
	return (uint64_t)(uintptr_t)p; /* identity map */
}

/* xorshift64* */
static inline uint64_t rand64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Report a failed check with its line and exit with code 1. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                          \
	do {                                                                    \
		long long _a = (long long)(a), _b = (long long)(b);             \
		if (_a != _b) {                                                 \
			printf("FAIL %s:%d: %s == %lld (%s), want %lld (%s)\n", \
			       __FILE__, __LINE__, #a, _a,                      \
			       status_name((int)_a), _b,                        \
			       status_name((int)_b));                           \
			exit(1);                                                \
		}                                                               \
	} while (0)

#endif /* GMVM_GUEST_H */
