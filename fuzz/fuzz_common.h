/* SPDX-License-Identifier: MIT */
/* Helpers shared by the fuzz targets: an input reader and a failure call. */
#ifndef GMEM_FUZZ_COMMON_H
#define GMEM_FUZZ_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the input as a stream of little-endian integers; zeros past it. */
struct reader {
	const uint8_t *p;
	size_t n, i;
};

static inline uint64_t rd(struct reader *r, int bytes)
{
	uint64_t v = 0;

	for (int k = 0; k < bytes; k++, r->i++)
		if (r->i < r->n)
			v |= (uint64_t)r->p[r->i] << (8 * k);
	return v;
}

static inline int rd_more(const struct reader *r)
{
	return r->i < r->n;
}

/* An invariant broke: say which and abort (the fuzzer keeps the input). */
static inline __attribute__((noreturn, format(printf, 1, 2))) void
fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FUZZ INVARIANT FAILED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define FZ_CHECK(cond, ...)                   \
	do {                                  \
		if (!(cond))                  \
			fz_fail(__VA_ARGS__); \
	} while (0)

#endif
