// SPDX-License-Identifier: MIT
/*
 * Extent map testing hooks (emap_testing.h): the invariant checker and
 * counters, built into tests/ and fuzz/ only, never into the library.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "extent_map_int.h"
#include "testing/emap_testing.h"

/* Directory pages the map holds, and flat bitmaps (flats != NULL). */
uint64_t emap_test_nr_dirs(const struct emap *m, uint64_t *flats)
{
	uint64_t n = 0;

	if (flats)
		*flats = 0;
	for (uint32_t g = 0; g < m->nr_groups; g++) {
		n += m->groups[g].dir != NULL;
		if (flats)
			*flats += m->groups[g].flat != NULL;
	}
	return n;
}

/* Allocations made by the map since its creation. */
uint64_t emap_test_nr_allocs(const struct emap *m)
{
	return m->nr_allocs;
}

/* Let the next n allocations succeed and fail the ones after (n < 0: none). */
void emap_test_fail_after(struct emap *m, int64_t n)
{
	m->fail_after = n;
}

struct check {
	const struct emap *m;
	uint64_t bounds, bytes;
	bool have_prev;
	uint32_t prev_key;
	uint8_t prev_out;
	unsigned int leaf_depth;
	uint64_t *group_bounds;
};

static int check_chunk(struct check *k, uint32_t key, const struct chunk *c)
{
	uint16_t tmp[CHUNK_PAGES];
	const uint16_t *a = chunk_offsets_c(c);

	if (c->nr == 0 || key > (k->m->npages - 1) >> CHUNK_SHIFT)
		return -1;
	if (c->in != (k->have_prev ? k->prev_out : k->m->v0))
		return -2;
	switch (c->kind) {
	case CK_INLINE:
		if (c->nr > INLINE_MAX)
			return -3;
		break;
	case CK_ARRAY:
		if (c->nr > c->cap || c->cap > ARRAY_MAX || c->nr <= INLINE_MAX)
			return -3;
		k->bytes += c->cap == ARRAY_MAX ? BUF_BYTES :
						  c->cap * sizeof(uint16_t);
		break;
	case CK_BITMAP:
		if (emap_bits_count(c) != c->nr || c->nr <= INLINE_MAX)
			return -3;
		emap_bits_extract(c, tmp);
		a = tmp;
		k->bytes += BUF_BYTES;
		break;
	default:
		return -3;
	}
	for (unsigned int i = 0; i < c->nr; i++) {
		if (i && a[i] <= a[i - 1])
			return -4;
		if (a[i] >= CHUNK_PAGES ||
		    chunk_base(key) + a[i] >= k->m->npages ||
		    (key == 0 && a[i] == 0))
			return -4;
	}
	k->bounds += c->nr;
	if (k->group_bounds)
		k->group_bounds[key >> GROUP_SHIFT] += c->nr;
	k->have_prev = true;
	k->prev_key = key;
	k->prev_out = chunk_out(c);
	return 0;
}

static int check_node(struct check *k, const struct node *n, unsigned int depth,
		      uint64_t lo, uint64_t hi)
{
	int ret;

	k->bytes += sizeof(struct node);
	if (n != k->m->root && n->nr < (n->leaf ? LEAF_MIN : INNER_MIN))
		return -10;
	if (n->leaf) {
		if (n->nr > LEAF_CAP)
			return -11;
		if (k->leaf_depth && k->leaf_depth != depth)
			return -12;
		k->leaf_depth = depth;
		for (unsigned int i = 0; i < n->nr; i++) {
			if (n->l.keys[i] < lo || n->l.keys[i] >= hi)
				return -13;
			if (k->have_prev && n->l.keys[i] <= k->prev_key)
				return -14;
			ret = check_chunk(k, n->l.keys[i], &n->l.c[i]);
			if (ret)
				return ret;
		}
		return 0;
	}
	if (n->nr < 2 || n->nr > INNER_CAP)
		return -15;
	for (unsigned int i = 0; i < n->nr; i++) {
		uint64_t clo = i ? n->i.keys[i - 1] : lo;
		uint64_t chi = i + 1 < n->nr ? n->i.keys[i] : hi;

		if (clo > chi)
			return -16;
		ret = check_node(k, n->i.child[i], depth + 1, clo, chi);
		if (ret)
			return ret;
	}
	return 0;
}

static bool same_chunk(const struct chunk *a, const struct chunk *b)
{
	if (a->nr != b->nr || a->in != b->in || a->kind != b->kind)
		return false;
	if (a->kind == CK_INLINE)
		return !memcmp(a->inl, b->inl, a->nr * sizeof(uint16_t));
	if (a->kind == CK_ARRAY && a->cap != b->cap)
		return false;
	return a->arr == b->arr;
}

/* A group's flat bitmap against its directory slots. */
static int check_flat(struct check *k, uint32_t g)
{
	const struct emap *m = k->m;
	const struct group *gr = &m->groups[g];
	uint64_t buf[BITMAP_WORDS];

	if (!gr->flat)
		return 0;
	k->bytes += FLAT_BYTES;
	if (gr->bounds < FLAT_DROP)
		return -33;
	for (uint32_t i = 0; i < GROUP_CHUNKS; i++) {
		if ((g << GROUP_SHIFT) + i >= nr_chunks(m))
			break;
		emap_chunk_render(&gr->dir[i], buf);
		if (memcmp(buf, gr->flat + i * BITMAP_WORDS, BUF_BYTES))
			return -34;
	}
	return 0;
}

/* Every directory slot against the tree, and the groups' counts. */
static int check_groups(struct check *k)
{
	const struct emap *m = k->m;
	int ret;

	for (uint32_t g = 0; g < m->nr_groups; g++) {
		const struct chunk *dir = m->groups[g].dir;

		if (m->groups[g].bounds != k->group_bounds[g])
			return -30;
		if (!dir) {
			if (m->groups[g].flat)
				return -35;
			continue;
		}
		k->bytes += DIR_BYTES;
		if (m->groups[g].bounds < DIR_DROP)
			return -31;
		ret = check_flat(k, g);
		if (ret)
			return ret;
		for (uint32_t i = 0; i < GROUP_CHUNKS; i++) {
			uint32_t key = (g << GROUP_SHIFT) + i;
			struct chunk want;

			if (key >= nr_chunks(m))
				break;
			emap_tree_snapshot(m, key, &want);
			if (!same_chunk(&dir[i], &want))
				return -32;
		}
	}
	return 0;
}

/* Check the map's invariants: 0, or a negative code naming the failure. */
int emap_test_check(const struct emap *m)
{
	struct check k = { .m = m };
	int ret;

	if (m->nr_groups) {
		k.group_bounds = calloc(m->nr_groups, sizeof(uint64_t));
		if (!k.group_bounds)
			return -ENOMEM;
	}
	ret = check_node(&k, m->root, 1, 0, (uint64_t)UINT32_MAX + 1);
	if (!ret && m->nr_groups) {
		k.bytes += m->nr_groups * sizeof(struct group);
		ret = check_groups(&k);
	}
	if (!ret && m->nr_flats && m->bytes > m->npages / 8)
		ret = -36;
	if (!ret && m->nr_groups) {
		uint64_t flats;

		emap_test_nr_dirs(m, &flats);
		if (flats != m->nr_flats)
			ret = -37;
	}
	free(k.group_bounds);
	if (ret)
		return ret;
	if (k.leaf_depth != m->height)
		return -20;
	if (k.bounds != m->nr_bounds)
		return -21;
	k.bytes += sizeof(*m) + m->nr_spare_nodes * sizeof(struct node) +
		   m->nr_spare_bufs * BUF_BYTES;
	if (k.bytes != m->bytes)
		return -22;
	if (m->nr_spare_nodes > POOL_NODES || m->nr_spare_bufs > POOL_BUFS)
		return -23;
	/* A reserve promised to the next emap_set() must hold what it needs. */
	if (m->reserved && (m->nr_spare_nodes < 2 * m->height + 3 ||
			    m->nr_spare_bufs < POOL_BUFS))
		return -24;
	return 0;
}
