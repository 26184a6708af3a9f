// SPDX-License-Identifier: MIT
/*
 * Hot paths of the host, through the public API:
 *  - pin10k: gm_pin + gm_unpin of one 4 KiB page on a store where 10,000
 *            other pins (non-overlapping, spread over the store) are held,
 *            against the same on a store where 1 pin is held: what the
 *            pins cost a new one (a list scan made this grow with n);
 *  - read64: gm_read of 64 bytes of a shared page already open in the
 *            view, against a plain memcpy of 64 bytes plus one
 *            gm_attr_get: what the safe access costs beyond a lookup.
 * Short batches (well under a scheduler's time slice, as these machines
 * are shared) alternate ours and the baseline, many of them; medians are
 * reported.
 */
#define _GNU_SOURCE
#include <string.h>

#include <gmem/gmem.h>

#include "bench.h"

#define PIN_STORE (4 * GiB)
#define HELD 10000
#define BATCHES 41

static void must(int ret, const char *what)
{
	if (ret < 0)
		die("%s: %s (%s)", what, gm_strerror(ret), gm_last_error());
}

/* ns per gm_pin + gm_unpin of the page at off. */
static double t_pin_unpin(struct gm_store *s, uint64_t off, unsigned int n)
{
	uint64_t t0 = now_ns();
	struct gm_pin *p;

	for (unsigned int i = 0; i < n; i++) {
		must(gm_pin(s, off, 4096, 0, &p), "gm_pin");
		gm_unpin(p);
	}
	return (double)(now_ns() - t0) / n;
}

static void pin10k(void)
{
	const uint64_t stride = (PIN_STORE >> 12) / HELD; /* pages */
	/* Between two held pins, half way through the store. */
	const uint64_t off = (HELD / 2 * stride + stride / 2) << 12;
	const unsigned int n = 2000;
	static struct gm_pin *held[HELD];
	double ours[BATCHES], base[BATCHES];
	struct gm_store *many, *one;
	struct gm_pin *lone;
	struct row r;

	many = bench_store(PIN_STORE, GM_STORE_INIT_SHARED);
	one = bench_store(PIN_STORE, GM_STORE_INIT_SHARED);
	for (unsigned int i = 0; i < HELD; i++)
		must(gm_pin(many, i * stride << 12, 4096, 0, &held[i]),
		     "gm_pin");
	must(gm_pin(one, 0, 4096, 0, &lone), "gm_pin");
	t_pin_unpin(many, off, n);
	t_pin_unpin(one, off, n);
	for (int k = 0; k < BATCHES; k++) {
		ours[k] = t_pin_unpin(many, off, n);
		base[k] = t_pin_unpin(one, off, n);
	}
	r = (struct row){
		.id = "pins.pin_unpin_10k",
		.what = "pin+unpin 4 KiB, 10,000 pins held",
		.unit = "ns",
		.ours = median(ours, BATCHES),
		.floor_what = "the same, 1 pin held",
		.floor = median(base, BATCHES),
	};
	row_extra(&r, "pins_held", HELD);
	row_add(&r);
	for (unsigned int i = 0; i < HELD; i++)
		gm_unpin(held[i]);
	gm_unpin(lone);
	gm_store_destroy(many);
	gm_store_destroy(one);
}

/* Keep the compiler from dropping or merging the copies into buf. */
static void clobber(void *buf)
{
	__asm__ volatile("" : : "r"(buf) : "memory");
}

static double t_read(struct gm_store *s, uint64_t off, unsigned int n)
{
	uint64_t t0 = now_ns();
	char buf[64];

	for (unsigned int i = 0; i < n; i++) {
		must(gm_read(s, off, buf, sizeof(buf)), "gm_read");
		clobber(buf);
	}
	return (double)(now_ns() - t0) / n;
}

static double t_memcpy_attr(struct gm_store *s, uint64_t off, unsigned int n)
{
	const char *src = (const char *)gm_view_base(s) + off;
	uint64_t t0 = now_ns();
	enum gm_attr a;
	char buf[64];

	for (unsigned int i = 0; i < n; i++) {
		must(gm_attr_get(s, off, &a), "gm_attr_get");
		clobber((void *)src);
		memcpy(buf, src, sizeof(buf));
		clobber(buf);
	}
	return (double)(now_ns() - t0) / n;
}

static void read64(void)
{
	const unsigned int n = 10000;
	const uint64_t off = 5 * 4096 + 128;
	double ours[BATCHES], base[BATCHES];
	struct gm_store *s;
	char buf[64] = { 1 };
	struct row r;

	s = bench_store(64 * 4096, GM_STORE_INIT_SHARED);
	must(gm_write(s, off, buf, sizeof(buf)), "gm_write");
	must(gm_view_open(s, off & ~4095ull, 4096), "gm_view_open");
	t_read(s, off, n);
	t_memcpy_attr(s, off, n);
	for (int k = 0; k < BATCHES; k++) {
		ours[k] = t_read(s, off, n);
		base[k] = t_memcpy_attr(s, off, n);
	}
	r = (struct row){
		.id = "pins.read64",
		.what = "gm_read 64 B of an open shared page",
		.unit = "ns",
		.ours = median(ours, BATCHES),
		.floor_what = "memcpy 64 B + gm_attr_get",
		.floor = median(base, BATCHES),
	};
	row_add(&r);
	gm_store_destroy(s);
}

void bench_pins(void)
{
	pin10k();
	read64();
}
