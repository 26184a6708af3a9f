// SPDX-License-Identifier: MIT
/*
 * Extent map (see extent_map.h): the emap_* API, on the chunks, the tree and
 * the directories of the other emap_*.c files (extent_map_int.h tells how
 * the map is kept).
 */
#include <errno.h>
#include <stdlib.h>

#include "extent_map_int.h"

/* ---- reads ---- */

uint64_t emap_npages(const struct emap *m)
{
	return m ? m->npages : 0;
}

uint8_t emap_get(const struct emap *m, uint64_t page)
{
	const struct chunk *dir, *c;
	const struct group *gr;
	uint32_t key;

	if (!m)
		return 0;
	/* Clamped off the fast path, so that no load of npages delays it. */
	if (__builtin_expect(page >= m->npages, 0))
		return emap_tree_get(m, m->npages - 1);
	key = page >> CHUNK_SHIFT;
	if (!m->nr_groups)
		return emap_tree_get(m, page);
	gr = &m->groups[key >> GROUP_SHIFT];
	if (gr->flat) {
		uint64_t off = page % GROUP_PAGES;

		return (gr->flat[off / 64] >> (off % 64)) & 1;
	}
	dir = gr->dir;
	if (!dir)
		return emap_tree_get(m, page);
	c = &dir[key & GROUP_MASK];
	if (c->kind == CK_ARRAY)
		prefetch_range(c->arr, c->nr * sizeof(uint16_t));
	return chunk_value(c, page & CHUNK_MASK);
}

void emap_extent(const struct emap *m, uint64_t page, uint64_t *start,
		 uint64_t *end, uint8_t *val)
{
	const struct chunk *c;
	uint64_t s = 0, e;
	uint32_t key;
	struct path p, q;
	uint8_t v;
	int b;

	if (!m)
		return;
	page = page < m->npages ? page : m->npages - 1;
	key = page >> CHUNK_SHIFT;
	e = m->npages;
	if (!emap_find_le(m, key, &p)) {
		/* Before every chunk: from page 0 to the first boundary. */
		v = m->v0;
		if (emap_path_first(m, &p)) {
			c = path_chunk(&p);
			e = chunk_base(path_key(&p)) +
			    emap_chunk_first_gt(c, -1);
		}
		goto out;
	}
	c = path_chunk(&p);
	q = p;
	if (path_key(&p) != key) {
		/* In a gap after chunk c. */
		v = chunk_out(c);
		s = chunk_base(path_key(&p)) +
		    emap_chunk_last_le(c, CHUNK_MASK);
	} else {
		unsigned int off = page & CHUNK_MASK;

		v = chunk_value(c, off);
		b = emap_chunk_last_le(c, off);
		if (b >= 0) {
			s = chunk_base(key) + b;
		} else if (emap_path_prev(&q)) {
			s = chunk_base(path_key(&q)) +
			    emap_chunk_last_le(path_chunk(&q), CHUNK_MASK);
		}
		b = emap_chunk_first_gt(c, off);
		if (b >= 0) {
			e = chunk_base(key) + b;
			goto out;
		}
	}
	if (emap_path_next(&p))
		e = chunk_base(path_key(&p)) +
		    emap_chunk_first_gt(path_chunk(&p), -1);
out:
	if (start)
		*start = s;
	if (end)
		*end = e;
	if (val)
		*val = v;
}

uint64_t emap_nr_extents(const struct emap *m)
{
	return m ? m->nr_bounds + 1 : 0;
}

size_t emap_bytes(const struct emap *m)
{
	return m ? m->bytes : 0;
}

/* ---- create, destroy, reserve ---- */

int emap_create(uint64_t npages, uint8_t initial, struct emap **out)
{
	uint32_t groups = 0;
	struct emap *m;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (npages == 0 || npages > MAX_PAGES || initial > EMAP_MAX_VALUE)
		return -EINVAL;
	if (npages <= DIR_MAX_PAGES)
		groups = ((npages - 1) >> (CHUNK_SHIFT + GROUP_SHIFT)) + 1;
	m = calloc(1, sizeof(*m) + groups * sizeof(struct group));
	if (!m)
		return -ENOMEM;
	m->npages = npages;
	m->nr_groups = groups;
	m->v0 = initial;
	m->fail_after = -1;
	m->bytes = sizeof(*m) + groups * sizeof(struct group);
	m->nr_allocs = 1;
	m->root = emap_mem_alloc(m, sizeof(struct node));
	if (!m->root) {
		free(m);
		return -ENOMEM;
	}
	m->root->leaf = 1;
	m->root->nr = 0;
	m->height = 1;
	*out = m;
	return 0;
}

void emap_destroy(struct emap *m)
{
	if (!m)
		return;
	/* Buffers released by the leaves land in the pool: free it last. */
	emap_tree_free(m);
	emap_pool_free(m);
	emap_dir_free(m);
	free(m);
}

static void mark_pending(struct emap *m, uint32_t key)
{
	for (unsigned int i = 0; i < m->nr_pending; i++)
		if (m->pending[i] == key)
			return;
	if (m->nr_pending < MAX_PENDING)
		m->pending[m->nr_pending++] = key;
}

/* Bring a chunk noted by emap_set() back to its best form, if memory allows. */
static void trim(struct emap *m, uint32_t key)
{
	struct chunk *c;
	struct path p;

	c = emap_find_eq(m, key, &p);
	if (c && emap_chunk_oversized(c) && !emap_chunk_trim(m, c))
		emap_dir_refresh(m, key);
}

int emap_reserve(struct emap *m)
{
	int ret;

	if (!m)
		return -EINVAL;
	m->reserved = false;
	/* First, so that whatever follows cannot pass the flat budget. */
	emap_flat_budget(m);
	for (unsigned int i = 0; i < m->nr_pending; i++)
		trim(m, m->pending[i]);
	m->nr_pending = 0;
	ret = emap_pool_fill(m);
	if (ret)
		return ret;
	emap_dir_build_touched(m);
	m->reserved = true;
	return 0;
}

/* ---- set ---- */

/* Apply emap_chunk_set() to the chunk of key, creating or deleting it. */
static void modify(struct emap *m, uint32_t key, bool exists,
		   struct chunk *snap, unsigned int lo, unsigned int hi,
		   uint8_t val, uint8_t new_in)
{
	struct chunk *c = snap;
	struct path p;

	if (exists)
		c = emap_find_eq(m, key, &p);
	bounds_add(m, key, -(int64_t)c->nr);
	emap_chunk_set(m, c, lo, hi, val, new_in);
	bounds_add(m, key, c->nr);
	if (emap_chunk_oversized(c))
		mark_pending(m, key);
	if (exists && c->nr == 0)
		emap_tree_remove_at(m, &p);
	else if (!exists && c->nr)
		emap_tree_insert(m, key, c);
}

void emap_set(struct emap *m, uint64_t start, uint64_t end, uint8_t val)
{
	uint32_t ka, ke = 0;
	uint64_t base_a, base_e = 0;
	struct chunk ca, ce;
	bool has_a, has_e = false, in_e = false;
	unsigned int hi;

	if (!m)
		return;
	if (!m->reserved)
		emap_contract_broken(
			"emap_set() called without a successful emap_reserve() "
			"since the previous emap_set(): the change could not "
			"be guaranteed (broken contract of extent_map.h)");
	m->reserved = false;
	if (end > m->npages)
		end = m->npages;
	if (start >= end)
		return;
	if (val > EMAP_MAX_VALUE)
		val = EMAP_MAX_VALUE;

	/* Chunk ka holds start; chunk ke holds end, if it is another one. */
	ka = start >> CHUNK_SHIFT;
	base_a = chunk_base(ka);
	if (end < m->npages && (end >> CHUNK_SHIFT) != ka) {
		in_e = true;
		ke = end >> CHUNK_SHIFT;
		base_e = chunk_base(ke);
	}
	/* The states before the change, for chunks that do not exist yet. */
	has_a = emap_tree_snapshot(m, ka, &ca);
	if (in_e)
		has_e = emap_tree_snapshot(m, ke, &ce);

	/* Every chunk in between lies inside [start, end). */
	emap_tree_remove_between(m, ka,
				 end < m->npages ? end >> CHUNK_SHIFT :
						   (uint64_t)UINT32_MAX + 1);

	if (start == 0)
		m->v0 = val;
	hi = end - base_a >= CHUNK_PAGES || end == m->npages ? CHUNK_PAGES :
							       end - base_a;
	modify(m, ka, has_a, &ca, start - base_a, hi, val,
	       start == 0 ? val : ca.in);
	if (in_e)
		modify(m, ke, has_e, &ce, 0, end - base_e, val, val);
	if (m->nr_groups) {
		emap_flat_set(m, start, end, val);
		emap_dir_update(m, ka,
				in_e		? ke :
				end < m->npages ? ka :
						  nr_chunks(m) - 1,
				in_e, val);
	}
}

int emap_set_checked(struct emap *m, uint64_t start, uint64_t end, uint8_t val)
{
	int ret;

	if (!m || start >= end || end > m->npages || val > EMAP_MAX_VALUE)
		return -EINVAL;
	ret = emap_reserve(m);
	if (ret)
		return ret;
	emap_set(m, start, end, val);
	return 0;
}
