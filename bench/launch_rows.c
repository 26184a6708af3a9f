// SPDX-License-Identifier: MIT
/*
 * Measured launch: gmem-vm's launch_populate (vmm/measure.c, the same code
 * the loader runs) puts a 256 MiB image into a fresh store, private, and
 * takes the launch digest: the region made shared, written with gm_write,
 * converted in place to private with gm_convert, every page hashed with its
 * (gpa, length, attribute) header, then the attribute map. Floor for the
 * same work, in the same run: memcpy of the same bytes into a direct mapping
 * of a fresh store's fd of the same size and backing (the pages must be
 * allocated either way; the library is bypassed) plus SHA-256 of them in
 * one call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <gmem/gmem.h>

#include "bench.h"
#include "measure.h"

#define IMAGE (256 * MiB)

static double ours_ms(const uint8_t *src)
{
	struct gm_store *s = bench_store(IMAGE, GM_STORE_VIEW_LAZY);
	struct launch_region r = {
		.gpa = 0, .len = IMAGE, .attr = GM_ATTR_PRIVATE, .data = src
	};
	uint8_t digest[LAUNCH_DIGEST_SIZE];
	struct launch_measure *m;
	uint64_t t0 = now_ns();

	if (launch_measure_begin(&m) || launch_populate(m, s, &r, 1) ||
	    launch_measure_attr_map(m, s) ||
	    launch_measure_ranges(m, NULL, 0) ||
	    launch_measure_vcpus(m, NULL, 0) || launch_measure_end(m, digest))
		die("launch_populate of %llu MiB failed",
		    (unsigned long long)(IMAGE >> 20));
	t0 = now_ns() - t0;
	if (gm_range_is(s, 0, IMAGE, GM_ATTR_PRIVATE) != 1)
		die("the populated image is not private");
	gm_store_destroy(s);
	return t0 / 1e6;
}

static double floor_ms(const uint8_t *src, double *copy_ms)
{
	struct gm_store *s = bench_store(IMAGE, GM_STORE_INIT_SHARED);
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int len;
	uint64_t t0, t1;
	uint8_t *dst;

	dst = mmap(NULL, IMAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   gm_store_fd(s), 0);
	if (dst == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	t0 = now_ns();
	memcpy(dst, src, IMAGE);
	t1 = now_ns();
	if (EVP_Digest(src, IMAGE, digest, &len, EVP_sha256(), NULL) != 1)
		die("EVP_Digest failed");
	t1 = now_ns() - t1;
	t0 = now_ns() - t0;
	*copy_ms = (t0 - t1) / 1e6;
	munmap(dst, IMAGE);
	gm_store_destroy(s);
	return t0 / 1e6;
}

void bench_launch(void)
{
	int reps = cfg.reps < 3 ? 3 : cfg.reps;
	double ours[reps], fl[reps], copy[reps];
	uint64_t seed = cfg.seed;
	uint8_t *src;
	struct row r;

	src = mmap(NULL, IMAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	for (uint64_t i = 0; i < IMAGE; i += 8) {
		uint64_t v = rnd(&seed);

		memcpy(src + i, &v, 8);
	}
	for (int i = 0; i < reps; i++) {
		/* alternate which goes first */
		if (i % 2) {
			fl[i] = floor_ms(src, &copy[i]);
			ours[i] = ours_ms(src);
		} else {
			ours[i] = ours_ms(src);
			fl[i] = floor_ms(src, &copy[i]);
		}
	}
	munmap(src, IMAGE);
	r = (struct row){
		.id = "launch.populate256m",
		.what = "populate + measure a 256 MiB image, private",
		.unit = "ms",
		.ours = median(ours, reps),
		.floor_what = "memcpy into a fresh fd, same backing, + SHA-256",
		.floor = median(fl, reps)
	};
	row_extra(&r, "memcpy_ms", median(copy, reps));
	row_extra(&r, "runs", reps);
	row_add(&r);
}
