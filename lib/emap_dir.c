// SPDX-License-Identifier: MIT
/*
 * Extent map directories (see extent_map_int.h): for a dense group of
 * chunks, a page of copies of its chunk entries and maybe a flat bitmap of
 * its pages, so that a lookup there needs no descent of the tree. The tree
 * stays the truth: emap_set() keeps them in step, emap_reserve() builds
 * them (they are never needed, so without memory the tree serves).
 */
#include <string.h>

#include "extent_map_int.h"

static struct chunk *dir_of(const struct emap *m, uint32_t key)
{
	return m->nr_groups ? m->groups[key >> GROUP_SHIFT].dir : NULL;
}

/* Bring key's slot, if its group has a directory, in line with the tree. */
void emap_dir_refresh(const struct emap *m, uint32_t key)
{
	struct chunk *dir = dir_of(m, key);

	if (dir)
		emap_tree_snapshot(m, key, &dir[key & GROUP_MASK]);
}

/* The chunks in (lo, hi) were removed, all their pages set to val. */
static void dir_fill(const struct emap *m, uint64_t lo, uint64_t hi,
		     uint8_t val)
{
	for (uint64_t k = lo + 1, to; k < hi; k = to) {
		struct chunk *dir = dir_of(m, k);

		to = (k | GROUP_MASK) + 1;
		if (to > hi)
			to = hi;
		for (uint64_t j = k; dir && j < to; j++)
			emap_chunk_missing(&dir[j & GROUP_MASK], val);
	}
}

static void flat_drop(struct emap *m, struct group *gr)
{
	emap_mem_free(m, gr->flat, FLAT_BYTES);
	gr->flat = NULL;
	m->nr_flats--;
}

/* Free the pages of the groups of chunks [lo, hi] that became sparse. */
static void dir_settle(struct emap *m, uint32_t lo, uint32_t hi)
{
	for (uint32_t g = lo >> GROUP_SHIFT; g <= hi >> GROUP_SHIFT; g++) {
		struct group *gr = &m->groups[g];

		if (gr->dir && gr->bounds < DIR_DROP) {
			emap_mem_free(m, gr->dir, DIR_BYTES);
			gr->dir = NULL;
		}
		if (gr->flat && gr->bounds < FLAT_DROP)
			flat_drop(m, gr);
	}
}

/* Give group g a directory page; without memory it keeps using the tree. */
static void dir_build(struct emap *m, uint32_t g)
{
	struct chunk *dir = emap_mem_alloc(m, DIR_BYTES);
	uint32_t k0 = g << GROUP_SHIFT;
	uint8_t v = m->v0;
	struct path p;
	bool more;

	if (!dir)
		return;
	if (!emap_find_le(m, k0, &p)) {
		more = emap_path_first(m, &p);
	} else if (path_key(&p) == k0) {
		more = true;
	} else {
		v = chunk_out(path_chunk(&p));
		more = emap_path_next(&p);
	}
	for (uint32_t i = 0; i < GROUP_CHUNKS; i++) {
		if (more && path_key(&p) == k0 + i) {
			dir[i] = *path_chunk(&p);
			v = chunk_out(&dir[i]);
			more = emap_path_next(&p);
		} else {
			emap_chunk_missing(&dir[i], v);
		}
	}
	m->groups[g].dir = dir;
}

/* Give group g, which has a directory, a flat bitmap too (if memory allows). */
static void flat_build(struct emap *m, uint32_t g)
{
	const struct chunk *dir = m->groups[g].dir;
	uint64_t *flat = emap_mem_alloc(m, FLAT_BYTES);

	if (!flat)
		return;
	for (uint32_t i = 0; i < GROUP_CHUNKS; i++)
		emap_chunk_render(&dir[i], flat + i * BITMAP_WORDS);
	m->groups[g].flat = flat;
	m->nr_flats++;
}

/* Flat bitmaps only while the map holds at most npages / 8 bytes. */
static bool flat_affordable(const struct emap *m, size_t more)
{
	return m->bytes + more + FLAT_MARGIN <= m->npages / 8;
}

/* Pages [start, end) now have value val: so do the flat bitmaps' bits. */
void emap_flat_set(const struct emap *m, uint64_t start, uint64_t end,
		   uint8_t val)
{
	if (!m->nr_flats)
		return;
	/* Past the end, a chunk keeps its last page's value: so does flat. */
	if (end == m->npages)
		end = ((uint64_t)m->nr_groups) * GROUP_PAGES;
	for (uint64_t p = start, to; p < end; p = to) {
		const struct group *gr = &m->groups[p / GROUP_PAGES];

		to = (p / GROUP_PAGES + 1) * GROUP_PAGES;
		if (to > end)
			to = end;
		if (gr->flat)
			emap_bits_fill(gr->flat, p % GROUP_PAGES,
				       to - p / GROUP_PAGES * GROUP_PAGES, val);
	}
}

/*
 * After a set whose first chunk is ka and last last: the chunks between
 * were removed (their pages are val), ka and, if in_e, last changed.
 */
void emap_dir_update(struct emap *m, uint32_t ka, uint32_t last, bool in_e,
		     uint8_t val)
{
	dir_fill(m, ka, in_e ? last : (uint64_t)last + 1, val);
	emap_dir_refresh(m, ka);
	if (in_e)
		emap_dir_refresh(m, last);
	dir_settle(m, ka, last);
	/* Only these two chunks can have gained boundaries. */
	m->touched[0] = ka >> GROUP_SHIFT;
	m->touched[1] = last >> GROUP_SHIFT;
	m->nr_touched = 2;
}

/* Drop flat bitmaps until the map is back within their budget. */
void emap_flat_budget(struct emap *m)
{
	for (uint32_t g = 0; m->nr_flats && !flat_affordable(m, 0); g++)
		if (m->groups[g].flat)
			flat_drop(m, &m->groups[g]);
}

/* Build what the groups the last emap_set() touched now deserve. */
void emap_dir_build_touched(struct emap *m)
{
	for (unsigned int i = 0; i < m->nr_touched; i++) {
		uint32_t g = m->touched[i];

		if (!m->groups[g].dir && m->groups[g].bounds >= DIR_BUILD)
			dir_build(m, g);
		if (m->groups[g].dir && !m->groups[g].flat &&
		    m->groups[g].bounds >= FLAT_BUILD &&
		    flat_affordable(m, FLAT_BYTES))
			flat_build(m, g);
	}
	m->nr_touched = 0;
}

void emap_dir_free(struct emap *m)
{
	for (uint32_t g = 0; g < m->nr_groups; g++) {
		emap_mem_free(m, m->groups[g].dir, DIR_BYTES);
		emap_mem_free(m, m->groups[g].flat, FLAT_BYTES);
	}
}
