/* SPDX-License-Identifier: MIT */
/*
 * The attribute patterns of the benchmarks, as a base value plus a list of
 * range assignments applied in order (pages; 0 = shared, 1 = private).
 */
#ifndef GMEM_BENCH_PATTERNS_H
#define GMEM_BENCH_PATTERNS_H

#include <stdint.h>

struct pat_op {
	uint64_t s, e; /* pages [s, e) */
	uint8_t v;
};

struct pattern {
	const char *name; /* "ranges", "random1pct", "alternating" */
	const char *what;
	uint64_t npages; /* store size in pages */
	uint64_t region; /* pages [0, region) where the pattern lives */
	uint8_t base;
	struct pat_op *ops;
	uint64_t nr_ops;
};

enum { PAT_RANGES, PAT_RANDOM1PCT, PAT_ALTERNATING, PAT_NR };

/*
 * Build pattern `which` over a store of npages pages:
 *  ranges:      all private, then 1,000 shared ranges at random positions,
 *               sizes log-uniform from 4 KiB to 64 MiB;
 *  random1pct:  all shared, then 1 % of the pages made private, each at a
 *               random position;
 *  alternating: all shared, then every other 4 KiB page of the first
 *               min(4 GiB, store) made private.
 */
void pattern_build(struct pattern *p, int which, uint64_t npages,
		   uint64_t seed);
void pattern_free(struct pattern *p);

#endif
