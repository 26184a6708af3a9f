// SPDX-License-Identifier: MIT
/*
 * Extent map (see extent_map.h).
 *
 * The map is kept as its set of boundaries: page b (0 < b < npages) is a
 * boundary when its value differs from page b - 1's. The value of page 0 is
 * m->v0; EMAP_MAX_VALUE is 1, so a page's value is v0 flipped once per
 * boundary at or before it.
 *
 * The pages are cut into chunks of CHUNK_PAGES aligned pages, and only the
 * chunks that hold at least one boundary exist. A chunk is one of:
 *  - CK_INLINE: up to INLINE_MAX boundary offsets stored in the entry itself;
 *  - CK_ARRAY:  a sorted array of 16-bit boundary offsets (up to ARRAY_MAX);
 *  - CK_BITMAP: a bitmap of the chunk's page values (BUF_BYTES), used when
 *               the chunk holds too many boundaries for an array.
 * Each chunk also records `in`, the value of the page just before it (for
 * chunk 0, the value of page 0), so that a chunk can be read on its own:
 * value(off) = in ^ (number of boundaries <= off) & 1. A page in a missing
 * chunk has the value at the end of the closest chunk before it (or v0).
 *
 * The chunks are the entries of a B+tree keyed by chunk index (32 bits: at
 * most 2^40 / 2^12 = 2^28 chunks), with wide nodes (NODE_BYTES) and packed
 * keys for a shallow, cache-friendly descent. So memory follows the number
 * of extents (about 20 bytes per chunk in the tree, 2 bytes per boundary in
 * arrays), capped per chunk by the bitmap form (1 bit per page).
 *
 * emap_set() changes at most two chunks (those of the range's first page and
 * of the page after it: boundaries can only appear there) and deletes the
 * chunks in between. It never allocates: what it needs comes from a reserve
 * filled by emap_reserve() (tree nodes for two insertions split up to the
 * root, and two bitmap-sized buffers to grow or convert the two chunks). A
 * buffer taken from the reserve may be larger than the chunk needs, and a
 * chunk may shrink below its form; such chunks are noted as pending and
 * trimmed to size by the next emap_reserve() (at most two are ever pending).
 *
 * Dense groups get a directory for O(1) lookups. The chunks are grouped by
 * GROUP_CHUNKS (a group covers 4 GiB of 4 KiB pages); a group whose chunks
 * hold at least DIR_BUILD boundaries gets a directory page: one struct chunk
 * per chunk of the group, a copy of the tree's entry (sharing its array or
 * bitmap) or, for a missing chunk, an empty entry whose `in` is the value of
 * all its pages. A lookup there is one load of the slot and one of the data,
 * like a bitmap's one load, instead of a descent of the tree. The tree stays
 * the truth: emap_set() refreshes the slots of the chunks it changed and
 * fills those of the chunks it removed; emap_reserve() builds the pages of
 * the groups the last set made dense (never emap_set(): it must not
 * allocate), and a page goes when its group falls below DIR_DROP
 * boundaries, so a page costs at most 8 bytes per boundary. A group so dense
 * that its pages average one boundary in 16 (FLAT_BUILD) also gets a flat
 * bitmap of its pages (128 KiB, at most 4 bytes per boundary until it goes
 * at FLAT_DROP), which emap_set() updates bit by bit: a lookup there is a
 * bitmap's single load. Flat bitmaps double the memory of what they cover,
 * so the map keeps them only while it holds at most a bitmap's worth of
 * memory in all (npages / 8 bytes: with the bench's 1 TiB map, 32 MiB): the
 * memory bound never depends on them. Only maps of up to DIR_MAX_PAGES pages
 * have directories (the group table is then at most 24 KiB).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "extent_map.h"

#define MAX_PAGES (1ULL << 40)

#define CHUNK_SHIFT 12
#define CHUNK_PAGES (1u << CHUNK_SHIFT)
#define CHUNK_MASK (CHUNK_PAGES - 1)
#define BITMAP_WORDS (CHUNK_PAGES / 64)
#define BUF_BYTES (CHUNK_PAGES / 8)
/* An array never takes more room than a bitmap. */
#define ARRAY_MAX (BUF_BYTES / sizeof(uint16_t))
/* A bitmap chunk goes back to an array at this many boundaries or fewer. */
#define ARRAY_LOW (ARRAY_MAX / 2)
#define INLINE_MAX 4

#define GROUP_SHIFT 8
#define GROUP_CHUNKS (1u << GROUP_SHIFT)
#define GROUP_MASK (GROUP_CHUNKS - 1)
#define DIR_BYTES (GROUP_CHUNKS * sizeof(struct chunk))
#define DIR_BUILD 1024
#define DIR_DROP (DIR_BYTES / 8)
#define DIR_MAX_PAGES (1ULL << 30)
#define GROUP_PAGES (GROUP_CHUNKS * CHUNK_PAGES)
#define FLAT_BYTES (GROUP_PAGES / 8)
#define FLAT_BUILD (GROUP_PAGES / 16)
#define FLAT_DROP (FLAT_BUILD / 2)
/* What one emap_reserve() may allocate besides a flat bitmap. */
#define FLAT_MARGIN                                                 \
	(POOL_NODES * sizeof(struct node) + POOL_BUFS * BUF_BYTES + \
	 2 * DIR_BYTES)

enum { CK_INLINE, CK_ARRAY, CK_BITMAP };

struct chunk {
	uint16_t nr; /* boundaries in the chunk, >= 1 in the tree */
	uint16_t cap; /* CK_ARRAY: capacity of arr */
	uint8_t in; /* value of the page before the chunk */
	uint8_t kind; /* CK_* */
	uint16_t unused;
	union {
		uint16_t inl[INLINE_MAX];
		uint16_t *arr;
		uint64_t *bits;
	};
};

#define NODE_BYTES 1024
#define LEAF_CAP 50
#define INNER_CAP 84 /* children */
#define LEAF_MIN (LEAF_CAP / 2)
#define INNER_MIN (INNER_CAP / 2)
/*
 * Height bound: at most 2^28 chunks, leaves at least half full and inner
 * nodes with at least INNER_MIN children give 1 + ceil(log42(2^28 / 25)) = 6.
 */
#define MAX_HEIGHT 8
/* Two insertions, each splitting up to the root, the first adding a level. */
#define POOL_NODES (2 * MAX_HEIGHT + 3)
#define POOL_BUFS 2
#define MAX_PENDING 2

struct node {
	uint16_t nr; /* entries (leaf) or children (inner) */
	uint8_t leaf;
	union {
		struct {
			uint32_t keys[LEAF_CAP];
			struct chunk c[LEAF_CAP];
		} l;
		struct {
			uint32_t keys[INNER_CAP -
				      1]; /* keys[i]: first key of child i+1 */
			struct node *child[INNER_CAP];
		} i;
	};
};

_Static_assert(sizeof(struct chunk) == 16, "chunk entry size");
_Static_assert(sizeof(struct node) <= NODE_BYTES, "node size");
_Static_assert(ARRAY_MAX <= UINT16_MAX && CHUNK_PAGES <= UINT16_MAX,
	       "16-bit offsets and counts");

/* A group of GROUP_CHUNKS chunks. */
struct group {
	struct chunk *dir; /* the directory page, or NULL */
	uint64_t *flat; /* a bitmap of the group's pages, or NULL */
	uint32_t bounds; /* boundaries in the group's chunks */
};

struct emap {
	uint64_t npages;
	uint64_t nr_bounds; /* boundaries in all chunks */
	uint32_t nr_groups; /* 0 when npages > DIR_MAX_PAGES */
	uint32_t nr_flats; /* groups with a flat bitmap */
	/* Groups the last emap_set() added boundaries to. */
	unsigned int nr_touched;
	uint32_t touched[2];
	size_t bytes; /* heap held, this struct included */
	struct node *root;
	unsigned int height; /* levels, 1 for a lone leaf */
	uint8_t v0; /* value of page 0 */

	/* The reserve: what the next emap_set() may need. */
	unsigned int nr_spare_nodes, nr_spare_bufs;
	struct node *spare_nodes[POOL_NODES];
	void *spare_bufs[POOL_BUFS];
	/* Chunks to trim at the next reserve. */
	unsigned int nr_pending;
	uint32_t pending[MAX_PENDING];

	/* Testing: allocations made, and injected allocation failures. */
	uint64_t nr_allocs;
	int64_t fail_after; /* < 0: never */

	/* In the map's own allocation: a lookup loads no pointer to it. */
	struct group groups[];
};

/* A position in the tree: the node and index taken at each level. */
struct path {
	struct node *n[MAX_HEIGHT];
	int i[MAX_HEIGHT];
	unsigned int h;
};

/* ---- allocation ---- */

static void *mem_alloc(struct emap *m, size_t size)
{
	void *p;

	if (m->fail_after == 0)
		return NULL;
	if (m->fail_after > 0)
		m->fail_after--;
	p = malloc(size);
	if (p) {
		m->nr_allocs++;
		m->bytes += size;
	}
	return p;
}

static void mem_free(struct emap *m, void *p, size_t size)
{
	if (!p)
		return;
	free(p);
	m->bytes -= size;
}

static unsigned int nodes_needed(const struct emap *m)
{
	return 2 * m->height + 3;
}

/* A node from the reserve (emap_reserve() made sure there is one). */
static struct node *node_take(struct emap *m)
{
	if (m->nr_spare_nodes)
		return m->spare_nodes[--m->nr_spare_nodes];
	/* Unreachable: emap_set() only runs with a full reserve. */
	return mem_alloc(m, sizeof(struct node));
}

static void node_put(struct emap *m, struct node *n)
{
	if (m->nr_spare_nodes < nodes_needed(m) &&
	    m->nr_spare_nodes < POOL_NODES)
		m->spare_nodes[m->nr_spare_nodes++] = n;
	else
		mem_free(m, n, sizeof(struct node));
}

static void *buf_take(struct emap *m)
{
	if (m->nr_spare_bufs)
		return m->spare_bufs[--m->nr_spare_bufs];
	return mem_alloc(m, BUF_BYTES); /* unreachable, as for nodes */
}

static void buf_put(struct emap *m, void *buf)
{
	if (m->nr_spare_bufs < POOL_BUFS)
		m->spare_bufs[m->nr_spare_bufs++] = buf;
	else
		mem_free(m, buf, BUF_BYTES);
}

static void array_free(struct emap *m, uint16_t *arr, unsigned int cap)
{
	if (cap == ARRAY_MAX)
		buf_put(m, arr);
	else
		mem_free(m, arr, cap * sizeof(uint16_t));
}

/* Free what a chunk holds outside its entry. */
static void chunk_release(struct emap *m, struct chunk *c)
{
	if (c->kind == CK_ARRAY)
		array_free(m, c->arr, c->cap);
	else if (c->kind == CK_BITMAP)
		buf_put(m, c->bits);
}

static void bounds_add(struct emap *m, uint32_t key, int64_t delta)
{
	m->nr_bounds += delta;
	if (m->nr_groups)
		m->groups[key >> GROUP_SHIFT].bounds += delta;
}

static void mark_pending(struct emap *m, uint32_t key)
{
	for (unsigned int i = 0; i < m->nr_pending; i++)
		if (m->pending[i] == key)
			return;
	if (m->nr_pending < MAX_PENDING)
		m->pending[m->nr_pending++] = key;
}

/* ---- searches ---- */

/*
 * Number of keys <= key, by a branch-free binary search: lookups at random
 * positions would mispredict half of the branches of a plain one.
 */
static unsigned int ub32(const uint32_t *keys, unsigned int n, uint32_t key)
{
	const uint32_t *base = keys;

	if (!n)
		return 0;
	while (n > 1) {
		unsigned int half = n / 2;

		base = __builtin_expect_with_probability(base[half] <= key, 1,
							 0.5) ?
			       base + half :
			       base;
		n -= half;
	}
	return base - keys + (*base <= key);
}

/* Number of offsets <= x, the same way. */
static unsigned int ub16(const uint16_t *a, unsigned int n, unsigned int x)
{
	const uint16_t *base = a;

	if (!n)
		return 0;
	while (n > 1) {
		unsigned int half = n / 2;

		base = __builtin_expect_with_probability(base[half] <= x, 1,
							 0.5) ?
			       base + half :
			       base;
		n -= half;
	}
	return base - a + (*base <= x);
}

/* Number of offsets < x. */
static unsigned int lb16(const uint16_t *a, unsigned int n, unsigned int x)
{
	return x ? ub16(a, n, x - 1) : 0;
}

/* ---- chunks ---- */

static uint16_t *chunk_offsets(struct chunk *c)
{
	return c->kind == CK_INLINE ? c->inl : c->arr;
}

static const uint16_t *chunk_offsets_c(const struct chunk *c)
{
	return c->kind == CK_INLINE ? c->inl : c->arr;
}

/* The value of the chunk's last page. */
static uint8_t chunk_out(const struct chunk *c)
{
	return c->in ^ (c->nr & 1);
}

static inline uint8_t chunk_value(const struct chunk *c, unsigned int off)
{
	if (c->kind == CK_BITMAP)
		return (c->bits[off / 64] >> (off % 64)) & 1;
	return c->in ^ (ub16(chunk_offsets_c(c), c->nr, off) & 1);
}

/* Word w of a bitmap chunk's boundaries (bit o set: boundary at o). */
static uint64_t bits_trans(const struct chunk *c, unsigned int w)
{
	uint64_t prev = w ? c->bits[w - 1] >> 63 : c->in;

	return c->bits[w] ^ ((c->bits[w] << 1) | prev);
}

/* The last boundary at or before off, or -1. */
static int chunk_last_le(const struct chunk *c, unsigned int off)
{
	if (c->kind != CK_BITMAP) {
		unsigned int i = ub16(chunk_offsets_c(c), c->nr, off);

		return i ? chunk_offsets_c(c)[i - 1] : -1;
	}
	for (int w = off / 64; w >= 0; w--) {
		uint64_t t = bits_trans(c, w);

		if ((unsigned int)w == off / 64 && off % 64 != 63)
			t &= (2ULL << (off % 64)) - 1;
		if (t)
			return w * 64 + 63 - __builtin_clzll(t);
	}
	return -1;
}

/* The first boundary after off (off may be -1), or -1. */
static int chunk_first_gt(const struct chunk *c, int off)
{
	unsigned int from = off + 1;

	if (from >= CHUNK_PAGES)
		return -1;
	if (c->kind != CK_BITMAP) {
		unsigned int i = lb16(chunk_offsets_c(c), c->nr, from);

		return i < c->nr ? chunk_offsets_c(c)[i] : -1;
	}
	for (unsigned int w = from / 64; w < BITMAP_WORDS; w++) {
		uint64_t t = bits_trans(c, w);

		if (w == from / 64)
			t &= ~0ULL << (from % 64);
		if (t)
			return w * 64 + __builtin_ctzll(t);
	}
	return -1;
}

static void bits_fill(uint64_t *bits, unsigned int from, unsigned int to,
		      uint8_t v)
{
	while (from < to) {
		unsigned int w = from / 64, b = from % 64;
		unsigned int n = to - from < 64 - b ? to - from : 64 - b;
		uint64_t mask = (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << b;

		if (v)
			bits[w] |= mask;
		else
			bits[w] &= ~mask;
		from += n;
	}
}

static unsigned int bits_count(const struct chunk *c)
{
	unsigned int n = 0;

	for (unsigned int w = 0; w < BITMAP_WORDS; w++)
		n += __builtin_popcountll(bits_trans(c, w));
	return n;
}

/* Write the boundaries of a bitmap chunk to out (c->nr of them). */
static void bits_extract(const struct chunk *c, uint16_t *out)
{
	unsigned int n = 0;

	for (unsigned int w = 0; w < BITMAP_WORDS; w++) {
		uint64_t t = bits_trans(c, w);

		while (t) {
			out[n++] = w * 64 + __builtin_ctzll(t);
			t &= t - 1;
		}
	}
}

/* Write the page values of chunk c into buf (BUF_BYTES). */
static void chunk_render(const struct chunk *c, uint64_t *buf)
{
	const uint16_t *a = chunk_offsets_c(c);
	unsigned int pos = 0;
	uint8_t v = c->in;

	if (c->kind == CK_BITMAP) {
		memcpy(buf, c->bits, BUF_BYTES);
		return;
	}
	for (unsigned int i = 0; i < c->nr; i++) {
		bits_fill(buf, pos, a[i], v);
		v ^= 1;
		pos = a[i];
	}
	bits_fill(buf, pos, CHUNK_PAGES, v);
}

/* Turn an inline or array chunk into a bitmap (buf: BUF_BYTES). */
static void chunk_to_bitmap(struct emap *m, struct chunk *c, uint64_t *buf)
{
	chunk_render(c, buf);
	if (c->kind == CK_ARRAY)
		array_free(m, c->arr, c->cap);
	c->kind = CK_BITMAP;
	c->bits = buf;
}

/* Move a chunk of at most INLINE_MAX boundaries into its entry. */
static void chunk_to_inline(struct emap *m, struct chunk *c)
{
	uint16_t tmp[INLINE_MAX];

	if (c->kind == CK_BITMAP) {
		bits_extract(c, tmp);
		buf_put(m, c->bits);
	} else {
		memcpy(tmp, c->arr, c->nr * sizeof(uint16_t));
		array_free(m, c->arr, c->cap);
	}
	c->kind = CK_INLINE;
	memcpy(c->inl, tmp, c->nr * sizeof(uint16_t));
}

/* The array capacity to trim a chunk of nr boundaries to. */
static unsigned int ideal_cap(unsigned int nr)
{
	unsigned int cap = (nr + 2 + 7) & ~7u;

	return cap < ARRAY_MAX ? cap : ARRAY_MAX;
}

static bool chunk_oversized(const struct chunk *c)
{
	if (c->kind == CK_BITMAP)
		return c->nr <= ARRAY_LOW;
	return c->kind == CK_ARRAY && c->cap > ideal_cap(c->nr) + 8;
}

static void bitmap_set(struct chunk *c, unsigned int lo, unsigned int hi,
		       uint8_t val, uint8_t new_in)
{
	bits_fill(c->bits, lo, hi, val);
	c->in = new_in;
	c->nr = bits_count(c);
}

/*
 * Set offsets [lo, hi) of chunk c to val, and the value before it to new_in
 * (which may differ from c->in only when lo == 0). hi == CHUNK_PAGES: to the
 * end of the chunk. Takes what it needs from the reserve; c->nr == 0 after
 * it means the chunk is empty (and holds nothing) and must go.
 */
static void chunk_set(struct emap *m, uint32_t key, struct chunk *c,
		      unsigned int lo, unsigned int hi, uint8_t val,
		      uint8_t new_in)
{
	uint16_t nb[2], *a;
	unsigned int k = 0, n = c->nr, cap, i0, i1, nn;

	if (c->kind == CK_BITMAP) {
		bitmap_set(c, lo, hi, val, new_in);
		goto out;
	}
	a = chunk_offsets(c);
	cap = c->kind == CK_INLINE ? INLINE_MAX : c->cap;
	if (lo < hi) {
		uint8_t left = lo ? chunk_value(c, lo - 1) : new_in;

		if (left != val)
			nb[k++] = lo;
	}
	if (hi < CHUNK_PAGES) {
		uint8_t prev = lo < hi ? val :
			       hi      ? chunk_value(c, hi - 1) :
					 new_in;

		if (chunk_value(c, hi) != prev)
			nb[k++] = hi;
	}
	i0 = lb16(a, n, lo);
	i1 = hi < CHUNK_PAGES ? ub16(a, n, hi) : n;
	nn = n - (i1 - i0) + k;

	if (nn > ARRAY_MAX) {
		chunk_to_bitmap(m, c, buf_take(m));
		bitmap_set(c, lo, hi, val, new_in);
		goto out;
	}
	if (nn > cap) {
		uint16_t *na = buf_take(m);

		memcpy(na, a, i0 * sizeof(uint16_t));
		memcpy(na + i0, nb, k * sizeof(uint16_t));
		memcpy(na + i0 + k, a + i1, (n - i1) * sizeof(uint16_t));
		if (c->kind == CK_ARRAY)
			array_free(m, c->arr, c->cap);
		c->kind = CK_ARRAY;
		c->arr = na;
		c->cap = ARRAY_MAX;
	} else {
		memmove(a + i0 + k, a + i1, (n - i1) * sizeof(uint16_t));
		memcpy(a + i0, nb, k * sizeof(uint16_t));
	}
	c->nr = nn;
	c->in = new_in;
out:
	if (c->nr == 0) {
		chunk_release(m, c);
		c->kind = CK_INLINE;
	} else if (c->nr <= INLINE_MAX && c->kind != CK_INLINE) {
		chunk_to_inline(m, c);
	} else if (chunk_oversized(c)) {
		mark_pending(m, key);
	}
}

/* ---- the tree ---- */

/* Descend to the leaf for key; p->i[leaf] is the entry <= key, or -1. */
static void path_find(const struct emap *m, uint32_t key, struct path *p)
{
	struct node *n = m->root;
	unsigned int lvl = 0;

	while (!n->leaf) {
		unsigned int ci = ub32(n->i.keys, n->nr - 1, key);

		p->n[lvl] = n;
		p->i[lvl++] = ci;
		n = n->i.child[ci];
	}
	p->n[lvl] = n;
	p->i[lvl] = (int)ub32(n->l.keys, n->nr, key) - 1;
	p->h = lvl + 1;
}

/* Step to the previous entry; false at the first. */
static bool path_prev(struct path *p)
{
	unsigned int leaf = p->h - 1, lvl = leaf;

	if (p->i[leaf] > 0) {
		p->i[leaf]--;
		return true;
	}
	while (lvl > 0 && p->i[lvl - 1] == 0)
		lvl--;
	if (lvl == 0)
		return false;
	p->i[lvl - 1]--;
	for (; lvl <= leaf; lvl++) {
		struct node *n = p->n[lvl - 1]->i.child[p->i[lvl - 1]];

		p->n[lvl] = n;
		p->i[lvl] = n->nr - 1;
	}
	return p->i[leaf] >= 0;
}

/* Step to the next entry; false past the last. */
static bool path_next(struct path *p)
{
	unsigned int leaf = p->h - 1, lvl = leaf;

	if (p->i[leaf] + 1 < p->n[leaf]->nr) {
		p->i[leaf]++;
		return true;
	}
	while (lvl > 0 && p->i[lvl - 1] + 1 >= p->n[lvl - 1]->nr)
		lvl--;
	if (lvl == 0)
		return false;
	p->i[lvl - 1]++;
	for (; lvl <= leaf; lvl++) {
		struct node *n = p->n[lvl - 1]->i.child[p->i[lvl - 1]];

		p->n[lvl] = n;
		p->i[lvl] = 0;
	}
	return p->n[leaf]->nr > 0;
}

static uint32_t path_key(const struct path *p)
{
	return p->n[p->h - 1]->l.keys[p->i[p->h - 1]];
}

static struct chunk *path_chunk(const struct path *p)
{
	return &p->n[p->h - 1]->l.c[p->i[p->h - 1]];
}

/* The first entry; false if the tree is empty. */
static bool path_first(const struct emap *m, struct path *p)
{
	struct node *n = m->root;
	unsigned int lvl = 0;

	while (!n->leaf) {
		p->n[lvl] = n;
		p->i[lvl++] = 0;
		n = n->i.child[0];
	}
	p->n[lvl] = n;
	p->i[lvl] = 0;
	p->h = lvl + 1;
	return n->nr > 0;
}

/* The entry with the greatest key <= key; false if there is none. */
static bool find_le(const struct emap *m, uint32_t key, struct path *p)
{
	path_find(m, key, p);
	if (p->i[p->h - 1] >= 0)
		return true;
	/* The leaf's keys all follow key: the entry is in an earlier leaf. */
	return path_prev(p);
}

/* The entry with key exactly; NULL if there is none. */
static struct chunk *find_eq(const struct emap *m, uint32_t key, struct path *p)
{
	path_find(m, key, p);
	if (p->i[p->h - 1] >= 0 && path_key(p) == key)
		return path_chunk(p);
	return NULL;
}

/* Insert (key, c); key is not in the tree. Nodes come from the reserve. */
static void tree_insert(struct emap *m, uint32_t key, const struct chunk *c)
{
	struct node *leaf, *right, *child;
	uint32_t keys[INNER_CAP + 1], sep;
	struct chunk ents[LEAF_CAP + 1];
	struct node *kids[INNER_CAP + 1];
	struct path p;
	unsigned int pos, lvl, nl, total;

	path_find(m, key, &p);
	lvl = p.h - 1;
	leaf = p.n[lvl];
	pos = p.i[lvl] + 1;
	if (leaf->nr < LEAF_CAP) {
		memmove(&leaf->l.keys[pos + 1], &leaf->l.keys[pos],
			(leaf->nr - pos) * sizeof(uint32_t));
		memmove(&leaf->l.c[pos + 1], &leaf->l.c[pos],
			(leaf->nr - pos) * sizeof(struct chunk));
		leaf->l.keys[pos] = key;
		leaf->l.c[pos] = *c;
		leaf->nr++;
		return;
	}
	/* Split the leaf. */
	total = LEAF_CAP + 1;
	memcpy(keys, leaf->l.keys, pos * sizeof(uint32_t));
	memcpy(ents, leaf->l.c, pos * sizeof(struct chunk));
	keys[pos] = key;
	ents[pos] = *c;
	memcpy(&keys[pos + 1], &leaf->l.keys[pos],
	       (LEAF_CAP - pos) * sizeof(uint32_t));
	memcpy(&ents[pos + 1], &leaf->l.c[pos],
	       (LEAF_CAP - pos) * sizeof(struct chunk));
	nl = total / 2;
	right = node_take(m);
	right->leaf = 1;
	right->nr = total - nl;
	memcpy(right->l.keys, &keys[nl], right->nr * sizeof(uint32_t));
	memcpy(right->l.c, &ents[nl], right->nr * sizeof(struct chunk));
	leaf->nr = nl;
	memcpy(leaf->l.keys, keys, nl * sizeof(uint32_t));
	memcpy(leaf->l.c, ents, nl * sizeof(struct chunk));
	sep = right->l.keys[0];
	child = right;

	/* Add (sep, child) after child index p.i[lvl] of each parent. */
	while (lvl > 0) {
		struct node *n = p.n[--lvl];

		pos = p.i[lvl] + 1; /* child index of the new node */
		if (n->nr < INNER_CAP) {
			memmove(&n->i.keys[pos], &n->i.keys[pos - 1],
				(n->nr - pos) * sizeof(uint32_t));
			memmove(&n->i.child[pos + 1], &n->i.child[pos],
				(n->nr - pos) * sizeof(struct node *));
			n->i.keys[pos - 1] = sep;
			n->i.child[pos] = child;
			n->nr++;
			return;
		}
		/* Split the inner node: INNER_CAP + 1 children. */
		total = INNER_CAP + 1;
		memcpy(kids, n->i.child, pos * sizeof(struct node *));
		kids[pos] = child;
		memcpy(&kids[pos + 1], &n->i.child[pos],
		       (INNER_CAP - pos) * sizeof(struct node *));
		memcpy(keys, n->i.keys, (pos - 1) * sizeof(uint32_t));
		keys[pos - 1] = sep;
		memcpy(&keys[pos], &n->i.keys[pos - 1],
		       (INNER_CAP - pos) * sizeof(uint32_t));
		nl = total / 2;
		right = node_take(m);
		right->leaf = 0;
		right->nr = total - nl;
		memcpy(right->i.child, &kids[nl],
		       right->nr * sizeof(struct node *));
		memcpy(right->i.keys, &keys[nl],
		       (right->nr - 1) * sizeof(uint32_t));
		n->nr = nl;
		memcpy(n->i.child, kids, nl * sizeof(struct node *));
		memcpy(n->i.keys, keys, (nl - 1) * sizeof(uint32_t));
		sep = keys[nl - 1];
		child = right;
	}
	/* The root split: grow a level. */
	right = node_take(m);
	right->leaf = 0;
	right->nr = 2;
	right->i.child[0] = m->root;
	right->i.child[1] = child;
	right->i.keys[0] = sep;
	m->root = right;
	m->height++;
}

/*
 * Merge or even out the two children l and r = l + 1 of parent (at child
 * index li). Returns true if they were merged (r is gone).
 */
static bool rebalance_pair(struct emap *m, struct node *parent, unsigned int li)
{
	struct node *l = parent->i.child[li], *r = parent->i.child[li + 1];
	uint32_t sep = parent->i.keys[li];
	unsigned int total = l->nr + r->nr, nl;

	if (l->leaf) {
		uint32_t keys[2 * LEAF_CAP];
		struct chunk ents[2 * LEAF_CAP];

		if (total <= LEAF_CAP) {
			memcpy(&l->l.keys[l->nr], r->l.keys,
			       r->nr * sizeof(uint32_t));
			memcpy(&l->l.c[l->nr], r->l.c,
			       r->nr * sizeof(struct chunk));
			l->nr = total;
			goto merged;
		}
		memcpy(keys, l->l.keys, l->nr * sizeof(uint32_t));
		memcpy(&keys[l->nr], r->l.keys, r->nr * sizeof(uint32_t));
		memcpy(ents, l->l.c, l->nr * sizeof(struct chunk));
		memcpy(&ents[l->nr], r->l.c, r->nr * sizeof(struct chunk));
		nl = total / 2;
		l->nr = nl;
		r->nr = total - nl;
		memcpy(l->l.keys, keys, nl * sizeof(uint32_t));
		memcpy(l->l.c, ents, nl * sizeof(struct chunk));
		memcpy(r->l.keys, &keys[nl], r->nr * sizeof(uint32_t));
		memcpy(r->l.c, &ents[nl], r->nr * sizeof(struct chunk));
		parent->i.keys[li] = r->l.keys[0];
		return false;
	} else {
		uint32_t keys[2 * INNER_CAP];
		struct node *kids[2 * INNER_CAP];

		memcpy(keys, l->i.keys, (l->nr - 1) * sizeof(uint32_t));
		keys[l->nr - 1] = sep;
		memcpy(&keys[l->nr], r->i.keys, (r->nr - 1) * sizeof(uint32_t));
		memcpy(kids, l->i.child, l->nr * sizeof(struct node *));
		memcpy(&kids[l->nr], r->i.child, r->nr * sizeof(struct node *));
		if (total <= INNER_CAP) {
			memcpy(l->i.keys, keys, (total - 1) * sizeof(uint32_t));
			memcpy(l->i.child, kids, total * sizeof(struct node *));
			l->nr = total;
			goto merged;
		}
		nl = total / 2;
		l->nr = nl;
		r->nr = total - nl;
		memcpy(l->i.keys, keys, (nl - 1) * sizeof(uint32_t));
		memcpy(l->i.child, kids, nl * sizeof(struct node *));
		memcpy(r->i.keys, &keys[nl], (r->nr - 1) * sizeof(uint32_t));
		memcpy(r->i.child, &kids[nl], r->nr * sizeof(struct node *));
		parent->i.keys[li] = keys[nl - 1];
		return false;
	}
merged:
	memmove(&parent->i.keys[li], &parent->i.keys[li + 1],
		(parent->nr - li - 2) * sizeof(uint32_t));
	memmove(&parent->i.child[li + 1], &parent->i.child[li + 2],
		(parent->nr - li - 2) * sizeof(struct node *));
	parent->nr--;
	node_put(m, r);
	return true;
}

/* Restore the fill of the nodes on path p, from its leaf up. */
static void rebalance(struct emap *m, struct path *p)
{
	for (unsigned int lvl = p->h - 1; lvl > 0; lvl--) {
		struct node *n = p->n[lvl], *parent = p->n[lvl - 1];
		unsigned int ci = p->i[lvl - 1];

		if (n->nr >= (n->leaf ? LEAF_MIN : INNER_MIN))
			break;
		if (!rebalance_pair(m, parent, ci > 0 ? ci - 1 : ci))
			break;
	}
	while (!m->root->leaf && m->root->nr == 1) {
		struct node *old = m->root;

		m->root = old->i.child[0];
		m->height--;
		node_put(m, old);
	}
}

/* Remove leaf entries [from, to) of the leaf on path p (freeing them). */
static void leaf_remove(struct emap *m, struct path *p, unsigned int from,
			unsigned int to)
{
	struct node *leaf = p->n[p->h - 1];

	for (unsigned int i = from; i < to; i++) {
		bounds_add(m, leaf->l.keys[i], -(int64_t)leaf->l.c[i].nr);
		chunk_release(m, &leaf->l.c[i]);
	}
	memmove(&leaf->l.keys[from], &leaf->l.keys[to],
		(leaf->nr - to) * sizeof(uint32_t));
	memmove(&leaf->l.c[from], &leaf->l.c[to],
		(leaf->nr - to) * sizeof(struct chunk));
	leaf->nr -= to - from;
	rebalance(m, p);
}

/* Remove the chunks with keys in (lo, hi): a leaf's run at a time. */
static void tree_remove_between(struct emap *m, uint32_t lo, uint64_t hi)
{
	struct path p;

	for (;;) {
		unsigned int from, to;
		struct node *leaf;

		if (!find_le(m, lo, &p)) {
			/* No entry <= lo: start from the first one. */
			if (!path_first(m, &p))
				return;
		} else if (!path_next(&p)) {
			return;
		}
		if (path_key(&p) <= lo || path_key(&p) >= hi)
			return;
		leaf = p.n[p.h - 1];
		from = p.i[p.h - 1];
		for (to = from; to < leaf->nr && leaf->l.keys[to] < hi; to++)
			;
		leaf_remove(m, &p, from, to);
	}
}

/* ---- reads ---- */

static uint64_t page_clamp(const struct emap *m, uint64_t page)
{
	return page < m->npages ? page : m->npages - 1;
}

uint64_t emap_npages(const struct emap *m)
{
	return m ? m->npages : 0;
}

/* Start loading the len bytes at p: a search then waits for one miss. */
static inline void prefetch_range(const void *p, size_t len)
{
	for (size_t off = 0; off < len; off += 64)
		__builtin_prefetch((const char *)p + off);
}

/* The value of page from the tree alone (page < npages). */
static uint8_t tree_get(const struct emap *m, uint64_t page)
{
	const struct chunk *c;
	const struct node *n;
	uint32_t key = page >> CHUNK_SHIFT;
	struct path p;
	int i;

	n = m->root;
	while (!n->leaf) {
		prefetch_range(n->i.keys, (n->nr - 1) * sizeof(uint32_t));
		n = n->i.child[ub32(n->i.keys, n->nr - 1, key)];
	}
	if (n->nr && n->l.keys[n->nr - 1] - n->l.keys[0] == n->nr - 1u) {
		/* Consecutive keys (a dense map): no search needed. */
		if (key < n->l.keys[0])
			i = -1;
		else if (key - n->l.keys[0] < n->nr)
			i = key - n->l.keys[0];
		else
			i = n->nr - 1;
	} else {
		prefetch_range(n->l.keys, n->nr * sizeof(uint32_t));
		i = (int)ub32(n->l.keys, n->nr, key) - 1;
	}
	if (i < 0) {
		/* Rare: the entry before key is in an earlier leaf. */
		if (!find_le(m, key, &p))
			return m->v0;
		return chunk_out(path_chunk(&p));
	}
	c = &n->l.c[i];
	if (n->l.keys[i] != key)
		return chunk_out(c);
	if (c->kind == CK_ARRAY)
		prefetch_range(c->arr, c->nr * sizeof(uint16_t));
	return chunk_value(c, page & CHUNK_MASK);
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
		return tree_get(m, m->npages - 1);
	key = page >> CHUNK_SHIFT;
	if (!m->nr_groups)
		return tree_get(m, page);
	gr = &m->groups[key >> GROUP_SHIFT];
	if (gr->flat) {
		uint64_t off = page % GROUP_PAGES;

		return (gr->flat[off / 64] >> (off % 64)) & 1;
	}
	dir = gr->dir;
	if (!dir)
		return tree_get(m, page);
	c = &dir[key & GROUP_MASK];
	if (c->kind == CK_ARRAY)
		prefetch_range(c->arr, c->nr * sizeof(uint16_t));
	return chunk_value(c, page & CHUNK_MASK);
}

static uint64_t chunk_base(uint32_t key)
{
	return (uint64_t)key << CHUNK_SHIFT;
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
	page = page_clamp(m, page);
	key = page >> CHUNK_SHIFT;
	e = m->npages;
	if (!find_le(m, key, &p)) {
		/* Before every chunk: from page 0 to the first boundary. */
		v = m->v0;
		if (path_first(m, &p)) {
			c = path_chunk(&p);
			e = chunk_base(path_key(&p)) + chunk_first_gt(c, -1);
		}
		goto out;
	}
	c = path_chunk(&p);
	q = p;
	if (path_key(&p) != key) {
		/* In a gap after chunk c. */
		v = chunk_out(c);
		s = chunk_base(path_key(&p)) + chunk_last_le(c, CHUNK_MASK);
	} else {
		unsigned int off = page & CHUNK_MASK;

		v = chunk_value(c, off);
		b = chunk_last_le(c, off);
		if (b >= 0) {
			s = chunk_base(key) + b;
		} else if (path_prev(&q)) {
			s = chunk_base(path_key(&q)) +
			    chunk_last_le(path_chunk(&q), CHUNK_MASK);
		}
		b = chunk_first_gt(c, off);
		if (b >= 0) {
			e = chunk_base(key) + b;
			goto out;
		}
	}
	if (path_next(&p))
		e = chunk_base(path_key(&p)) +
		    chunk_first_gt(path_chunk(&p), -1);
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

/* ---- directory ---- */

static uint32_t nr_chunks(const struct emap *m)
{
	return ((m->npages - 1) >> CHUNK_SHIFT) + 1;
}

/* The entry standing for a missing chunk whose pages all have value val. */
static void slot_missing(struct chunk *d, uint8_t val)
{
	memset(d, 0, sizeof(*d));
	d->kind = CK_INLINE;
	d->in = val;
}

/* A copy of the chunk of key, or the entry standing for it if it is missing. */
static bool chunk_snapshot(const struct emap *m, uint32_t key, struct chunk *c)
{
	struct path p;

	if (find_le(m, key, &p) && path_key(&p) == key) {
		*c = *path_chunk(&p);
		return true;
	}
	slot_missing(c, tree_get(m, chunk_base(key)));
	return false;
}

static struct chunk *dir_of(const struct emap *m, uint32_t key)
{
	return m->nr_groups ? m->groups[key >> GROUP_SHIFT].dir : NULL;
}

/* Bring key's slot, if its group has a directory, in line with the tree. */
static void dir_refresh(const struct emap *m, uint32_t key)
{
	struct chunk *dir = dir_of(m, key);

	if (dir)
		chunk_snapshot(m, key, &dir[key & GROUP_MASK]);
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
			slot_missing(&dir[j & GROUP_MASK], val);
	}
}

static void flat_drop(struct emap *m, struct group *gr)
{
	mem_free(m, gr->flat, FLAT_BYTES);
	gr->flat = NULL;
	m->nr_flats--;
}

/* Free the pages of the groups of chunks [lo, hi] that became sparse. */
static void dir_settle(struct emap *m, uint32_t lo, uint32_t hi)
{
	for (uint32_t g = lo >> GROUP_SHIFT; g <= hi >> GROUP_SHIFT; g++) {
		struct group *gr = &m->groups[g];

		if (gr->dir && gr->bounds < DIR_DROP) {
			mem_free(m, gr->dir, DIR_BYTES);
			gr->dir = NULL;
		}
		if (gr->flat && gr->bounds < FLAT_DROP)
			flat_drop(m, gr);
	}
}

/* Give group g a directory page; without memory it keeps using the tree. */
static void dir_build(struct emap *m, uint32_t g)
{
	struct chunk *dir = mem_alloc(m, DIR_BYTES);
	uint32_t k0 = g << GROUP_SHIFT;
	uint8_t v = m->v0;
	struct path p;
	bool more;

	if (!dir)
		return;
	if (!find_le(m, k0, &p)) {
		more = path_first(m, &p);
	} else if (path_key(&p) == k0) {
		more = true;
	} else {
		v = chunk_out(path_chunk(&p));
		more = path_next(&p);
	}
	for (uint32_t i = 0; i < GROUP_CHUNKS; i++) {
		if (more && path_key(&p) == k0 + i) {
			dir[i] = *path_chunk(&p);
			v = chunk_out(&dir[i]);
			more = path_next(&p);
		} else {
			slot_missing(&dir[i], v);
		}
	}
	m->groups[g].dir = dir;
}

/* Give group g, which has a directory, a flat bitmap too (if memory allows). */
static void flat_build(struct emap *m, uint32_t g)
{
	const struct chunk *dir = m->groups[g].dir;
	uint64_t *flat = mem_alloc(m, FLAT_BYTES);

	if (!flat)
		return;
	for (uint32_t i = 0; i < GROUP_CHUNKS; i++)
		chunk_render(&dir[i], flat + i * BITMAP_WORDS);
	m->groups[g].flat = flat;
	m->nr_flats++;
}

/* Flat bitmaps only while the map holds at most npages / 8 bytes. */
static bool flat_affordable(const struct emap *m, size_t more)
{
	return m->bytes + more + FLAT_MARGIN <= m->npages / 8;
}

/* Pages [start, end) now have value val: so do the flat bitmaps' bits. */
static void flat_set(const struct emap *m, uint64_t start, uint64_t end,
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
			bits_fill(gr->flat, p % GROUP_PAGES,
				  to - p / GROUP_PAGES * GROUP_PAGES, val);
	}
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
	m->root = mem_alloc(m, sizeof(struct node));
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

static void node_destroy(struct emap *m, struct node *n)
{
	if (n->leaf) {
		for (unsigned int i = 0; i < n->nr; i++)
			chunk_release(m, &n->l.c[i]);
	} else {
		for (unsigned int i = 0; i < n->nr; i++)
			node_destroy(m, n->i.child[i]);
	}
	mem_free(m, n, sizeof(struct node));
}

void emap_destroy(struct emap *m)
{
	if (!m)
		return;
	/* Buffers released by the leaves land in the pool: free it last. */
	node_destroy(m, m->root);
	while (m->nr_spare_nodes)
		mem_free(m, m->spare_nodes[--m->nr_spare_nodes],
			 sizeof(struct node));
	while (m->nr_spare_bufs)
		mem_free(m, m->spare_bufs[--m->nr_spare_bufs], BUF_BYTES);
	for (uint32_t g = 0; g < m->nr_groups; g++) {
		mem_free(m, m->groups[g].dir, DIR_BYTES);
		mem_free(m, m->groups[g].flat, FLAT_BYTES);
	}
	free(m);
}

/* Bring a chunk noted by emap_set() back to its best form, if memory allows. */
static void trim(struct emap *m, uint32_t key)
{
	struct chunk *c;
	struct path p;
	unsigned int cap;
	uint16_t *na;

	c = find_eq(m, key, &p);
	if (!c || !chunk_oversized(c))
		return;
	cap = ideal_cap(c->nr);
	na = cap == ARRAY_MAX ? buf_take(m) :
				mem_alloc(m, cap * sizeof(uint16_t));
	if (!na)
		return;
	if (c->kind == CK_BITMAP) {
		bits_extract(c, na);
		buf_put(m, c->bits);
	} else {
		memcpy(na, c->arr, c->nr * sizeof(uint16_t));
		array_free(m, c->arr, c->cap);
	}
	c->kind = CK_ARRAY;
	c->arr = na;
	c->cap = cap;
	dir_refresh(m, key);
}

int emap_reserve(struct emap *m)
{
	if (!m)
		return -EINVAL;
	/* First, so that whatever follows cannot pass the flat budget. */
	for (uint32_t g = 0; m->nr_flats && !flat_affordable(m, 0); g++)
		if (m->groups[g].flat)
			flat_drop(m, &m->groups[g]);
	for (unsigned int i = 0; i < m->nr_pending; i++)
		trim(m, m->pending[i]);
	m->nr_pending = 0;
	/* The tree may have got lower: drop what it no longer needs. */
	while (m->nr_spare_nodes > nodes_needed(m))
		mem_free(m, m->spare_nodes[--m->nr_spare_nodes],
			 sizeof(struct node));
	while (m->nr_spare_nodes < nodes_needed(m)) {
		struct node *n = mem_alloc(m, sizeof(struct node));

		if (!n)
			return -ENOMEM;
		m->spare_nodes[m->nr_spare_nodes++] = n;
	}
	while (m->nr_spare_bufs < POOL_BUFS) {
		void *b = mem_alloc(m, BUF_BYTES);

		if (!b)
			return -ENOMEM;
		m->spare_bufs[m->nr_spare_bufs++] = b;
	}
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
	return 0;
}

/* ---- set ---- */

/*
 * After a set whose first chunk is ka and last last: the chunks between
 * were removed (their pages are val), ka and, if in_e, last changed.
 */
static void dir_update(struct emap *m, uint32_t ka, uint32_t last, bool in_e,
		       uint8_t val)
{
	dir_fill(m, ka, in_e ? last : (uint64_t)last + 1, val);
	dir_refresh(m, ka);
	if (in_e)
		dir_refresh(m, last);
	dir_settle(m, ka, last);
	/* Only these two chunks can have gained boundaries. */
	m->touched[0] = ka >> GROUP_SHIFT;
	m->touched[1] = last >> GROUP_SHIFT;
	m->nr_touched = 2;
}

/* Apply chunk_set() to the chunk of key, creating or deleting it. */
static void modify(struct emap *m, uint32_t key, bool exists,
		   struct chunk *snap, unsigned int lo, unsigned int hi,
		   uint8_t val, uint8_t new_in)
{
	struct chunk *c = snap;
	struct path p;

	if (exists)
		c = find_eq(m, key, &p);
	bounds_add(m, key, -(int64_t)c->nr);
	chunk_set(m, key, c, lo, hi, val, new_in);
	bounds_add(m, key, c->nr);
	if (exists && c->nr == 0)
		leaf_remove(m, &p, p.i[p.h - 1], p.i[p.h - 1] + 1);
	else if (!exists && c->nr)
		tree_insert(m, key, c);
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
	if (end > m->npages)
		end = m->npages;
	if (start >= end)
		return;
	if (val > EMAP_MAX_VALUE)
		val = EMAP_MAX_VALUE;
	/*
	 * A no-op after a successful emap_reserve(). Without one, running out
	 * of memory leaves the map unchanged (emap_set_checked() reports it).
	 */
	if (emap_reserve(m))
		return;

	/* Chunk ka holds start; chunk ke holds end, if it is another one. */
	ka = start >> CHUNK_SHIFT;
	base_a = chunk_base(ka);
	if (end < m->npages && (end >> CHUNK_SHIFT) != ka) {
		in_e = true;
		ke = end >> CHUNK_SHIFT;
		base_e = chunk_base(ke);
	}
	/* The states before the change, for chunks that do not exist yet. */
	has_a = chunk_snapshot(m, ka, &ca);
	if (in_e)
		has_e = chunk_snapshot(m, ke, &ce);

	/* Every chunk in between lies inside [start, end). */
	tree_remove_between(m, ka,
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
		flat_set(m, start, end, val);
		dir_update(m, ka,
			   in_e		   ? ke :
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

/* ---- testing hooks (extent_map.h) ---- */

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
		if (bits_count(c) != c->nr || c->nr <= INLINE_MAX)
			return -3;
		bits_extract(c, tmp);
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
		chunk_render(&gr->dir[i], buf);
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
			chunk_snapshot(m, key, &want);
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
	return 0;
}
