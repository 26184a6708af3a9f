/* SPDX-License-Identifier: MIT */
/*
 * Extent map internals, shared by its files (the API is extent_map.h).
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
 *
 * The files, each using only those listed before it:
 *  - emap_mem.c:   accounted allocation and the reserve's pools;
 *  - emap_chunk.c: the chunk encodings: reading and changing one chunk;
 *  - emap_tree.c:  the B+tree of chunks, and lookups through it;
 *  - emap_dir.c:   the lookup directories and flat bitmaps of dense groups;
 *  - extent_map.c: the emap_* API of extent_map.h, on top of them.
 * The invariant checker is lib/testing/emap_testing.c, built into the tests
 * only.
 */
#ifndef GMEM_EXTENT_MAP_INT_H
#define GMEM_EXTENT_MAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	bool reserved; /* emap_reserve() succeeded since the last emap_set() */
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

/* ---- small helpers, inline for the lookup paths ---- */

/*
 * Number of keys <= key, by a branch-free binary search: lookups at random
 * positions would mispredict half of the branches of a plain one.
 */
static inline unsigned int ub32(const uint32_t *keys, unsigned int n,
				uint32_t key)
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
static inline unsigned int ub16(const uint16_t *a, unsigned int n,
				unsigned int x)
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
static inline unsigned int lb16(const uint16_t *a, unsigned int n,
				unsigned int x)
{
	return x ? ub16(a, n, x - 1) : 0;
}

/* Start loading the len bytes at p: a search then waits for one miss. */
static inline void prefetch_range(const void *p, size_t len)
{
	for (size_t off = 0; off < len; off += 64)
		__builtin_prefetch((const char *)p + off);
}

static inline const uint16_t *chunk_offsets_c(const struct chunk *c)
{
	return c->kind == CK_INLINE ? c->inl : c->arr;
}

/* The value of the chunk's last page. */
static inline uint8_t chunk_out(const struct chunk *c)
{
	return c->in ^ (c->nr & 1);
}

static inline uint8_t chunk_value(const struct chunk *c, unsigned int off)
{
	if (c->kind == CK_BITMAP)
		return (c->bits[off / 64] >> (off % 64)) & 1;
	return c->in ^ (ub16(chunk_offsets_c(c), c->nr, off) & 1);
}

static inline uint64_t chunk_base(uint32_t key)
{
	return (uint64_t)key << CHUNK_SHIFT;
}

static inline uint32_t nr_chunks(const struct emap *m)
{
	return ((m->npages - 1) >> CHUNK_SHIFT) + 1;
}

static inline void bounds_add(struct emap *m, uint32_t key, int64_t delta)
{
	m->nr_bounds += delta;
	if (m->nr_groups)
		m->groups[key >> GROUP_SHIFT].bounds += delta;
}

static inline uint32_t path_key(const struct path *p)
{
	return p->n[p->h - 1]->l.keys[p->i[p->h - 1]];
}

static inline struct chunk *path_chunk(const struct path *p)
{
	return &p->n[p->h - 1]->l.c[p->i[p->h - 1]];
}

/* ---- emap_mem.c: accounted allocation and the reserve's pools ---- */

void *emap_mem_alloc(struct emap *m, size_t size);
void emap_mem_free(struct emap *m, void *p, size_t size);
/* Nodes and buffers of the reserve; taking from an empty pool aborts. */
struct node *emap_node_take(struct emap *m);
void emap_node_put(struct emap *m, struct node *n);
void *emap_buf_take(struct emap *m);
void *emap_buf_alloc(struct emap *m);
void emap_buf_put(struct emap *m, void *buf);
void emap_array_free(struct emap *m, uint16_t *arr, unsigned int cap);
/* Fill the pools to what one emap_set() may take: 0 or -ENOMEM. */
int emap_pool_fill(struct emap *m);
void emap_pool_free(struct emap *m);
/* Print what contract was broken, then abort(). */
_Noreturn void emap_contract_broken(const char *what);

/* ---- emap_chunk.c: the chunk encodings ---- */

/* The entry standing for a missing chunk whose pages all have value val. */
void emap_chunk_missing(struct chunk *d, uint8_t val);
/* The last boundary at or before off, or -1. */
int emap_chunk_last_le(const struct chunk *c, unsigned int off);
/* The first boundary after off (off may be -1), or -1. */
int emap_chunk_first_gt(const struct chunk *c, int off);
/* Write the page values of chunk c into buf (BUF_BYTES). */
void emap_chunk_render(const struct chunk *c, uint64_t *buf);
/* Free what a chunk holds outside its entry. */
void emap_chunk_release(struct emap *m, struct chunk *c);
/* Whether a chunk holds more memory than its boundaries need. */
bool emap_chunk_oversized(const struct chunk *c);
void emap_chunk_set(struct emap *m, struct chunk *c, unsigned int lo,
		    unsigned int hi, uint8_t val, uint8_t new_in);
int emap_chunk_trim(struct emap *m, struct chunk *c);
void emap_bits_fill(uint64_t *bits, unsigned int from, unsigned int to,
		    uint8_t v);
/* Boundaries of a bitmap chunk: their number, and their offsets. */
unsigned int emap_bits_count(const struct chunk *c);
void emap_bits_extract(const struct chunk *c, uint16_t *out);

/* ---- emap_tree.c: the B+tree of chunks ---- */

bool emap_path_first(const struct emap *m, struct path *p);
bool emap_path_prev(struct path *p);
bool emap_path_next(struct path *p);
bool emap_find_le(const struct emap *m, uint32_t key, struct path *p);
struct chunk *emap_find_eq(const struct emap *m, uint32_t key, struct path *p);
uint8_t emap_tree_get(const struct emap *m, uint64_t page);
bool emap_tree_snapshot(const struct emap *m, uint32_t key, struct chunk *c);
void emap_tree_insert(struct emap *m, uint32_t key, const struct chunk *c);
void emap_tree_remove_at(struct emap *m, struct path *p);
void emap_tree_remove_between(struct emap *m, uint32_t lo, uint64_t hi);
void emap_tree_free(struct emap *m);

/* ---- emap_dir.c: directories and flat bitmaps ---- */

void emap_dir_refresh(const struct emap *m, uint32_t key);
void emap_dir_update(struct emap *m, uint32_t ka, uint32_t last, bool in_e,
		     uint8_t val);
void emap_flat_set(const struct emap *m, uint64_t start, uint64_t end,
		   uint8_t val);
void emap_flat_budget(struct emap *m);
void emap_dir_build_touched(struct emap *m);
void emap_dir_free(struct emap *m);

#endif /* GMEM_EXTENT_MAP_INT_H */
