/* SPDX-License-Identifier: MIT */
/*
 * Extent map: a small value (0..EMAP_MAX_VALUE) for every page of
 * [0, npages), stored by extents (maximal runs of equal value), so that its
 * memory follows the number of extents, not the number of pages.
 *
 * Used for the page attributes (shared/private) and the host view's
 * open/closed state. Not thread-safe: the store serialises access.
 */
#ifndef GMEM_EXTENT_MAP_H
#define GMEM_EXTENT_MAP_H

#include <stddef.h>
#include <stdint.h>

#define EMAP_MAX_VALUE 1

struct emap;

/* Create a map of npages pages (1 .. 2^40), all of value `initial`. */
int emap_create(uint64_t npages, uint8_t initial, struct emap **out);
void emap_destroy(struct emap *m);

uint64_t emap_npages(const struct emap *m);

/*
 * The value of page (page < npages). O(log extents); O(1) in a dense part of
 * the map that has a lookup directory (see emap_reserve()).
 */
uint8_t emap_get(const struct emap *m, uint64_t page);

/*
 * The extent holding page: [*start, *end) all of value *val, and maximal
 * (page *start - 1 and page *end, where they exist, differ). O(log extents).
 */
void emap_extent(const struct emap *m, uint64_t page, uint64_t *start,
		 uint64_t *end, uint8_t *val);

/*
 * Make sure the next emap_set() cannot fail: allocate ahead whatever memory
 * it may need. -ENOMEM leaves the map unchanged. Also gives the parts of
 * the map that the last set made dense their lookup directory (without
 * memory for it, lookups there just keep using the tree), and trims chunks
 * the last set left oversized.
 */
int emap_reserve(struct emap *m);

/*
 * Set pages [start, end) to val; O(log extents + extents removed).
 *
 * The contract: each emap_set() must follow its own successful
 * emap_reserve() (no other emap_set() of the map in between). Then it
 * cannot fail: it allocates nothing and always takes full effect, so a
 * caller may commit to the change (count it, tell others) before making it.
 * An emap_set() without such a reserve is a bug of the caller: it prints
 * the broken contract to stderr and aborts, rather than do nothing.
 *
 * Bad arguments are clamped (end to npages, val to EMAP_MAX_VALUE); an
 * empty range is a no-op (and still uses up the reserve).
 */
void emap_set(struct emap *m, uint64_t start, uint64_t end, uint8_t val);

/* emap_reserve() then emap_set(): 0, -EINVAL, or -ENOMEM (map unchanged). */
int emap_set_checked(struct emap *m, uint64_t start, uint64_t end, uint8_t val);

/* Number of extents (>= 1). O(1). */
uint64_t emap_nr_extents(const struct emap *m);

/* Heap bytes held by the map (nodes, leaves, reserve). O(1). */
size_t emap_bytes(const struct emap *m);

/* Testing hooks (tests/ and fuzz/ only): lib/testing/emap_testing.h. */

#endif /* GMEM_EXTENT_MAP_H */
