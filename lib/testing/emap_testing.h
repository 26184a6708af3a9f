/* SPDX-License-Identifier: MIT */
/*
 * Extent map testing hooks, for tests/ and fuzz/ only: defined in
 * lib/testing/emap_testing.c, which only the tests and fuzz targets that
 * need them compile (never the library).
 */
#ifndef GMEM_EMAP_TESTING_H
#define GMEM_EMAP_TESTING_H

#include <stdint.h>

#include "extent_map.h"

/* Allocations made by the map since its creation. */
uint64_t emap_test_nr_allocs(const struct emap *m);
/* Let the next n allocations succeed and fail the ones after (n < 0: none). */
void emap_test_fail_after(struct emap *m, int64_t n);
/* Check the map's invariants: 0, or a negative code naming the failure. */
int emap_test_check(const struct emap *m);
/* Directory pages the map holds, and flat bitmaps (flats != NULL). */
uint64_t emap_test_nr_dirs(const struct emap *m, uint64_t *flats);

#endif /* GMEM_EMAP_TESTING_H */
