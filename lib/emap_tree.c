// SPDX-License-Identifier: MIT
/*
 * Extent map tree (see extent_map_int.h): a B+tree of the existing chunks
 * keyed by chunk index, with wide nodes taken from and given back to the
 * reserve; lookups through it, insertion and removal of chunks.
 */
#include <string.h>

#include "extent_map_int.h"

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
bool emap_path_prev(struct path *p)
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
bool emap_path_next(struct path *p)
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

/* The first entry; false if the tree is empty. */
bool emap_path_first(const struct emap *m, struct path *p)
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
bool emap_find_le(const struct emap *m, uint32_t key, struct path *p)
{
	path_find(m, key, p);
	if (p->i[p->h - 1] >= 0)
		return true;
	/* The leaf's keys all follow key: the entry is in an earlier leaf. */
	return emap_path_prev(p);
}

/* The entry with key exactly; NULL if there is none. */
struct chunk *emap_find_eq(const struct emap *m, uint32_t key, struct path *p)
{
	path_find(m, key, p);
	if (p->i[p->h - 1] >= 0 && path_key(p) == key)
		return path_chunk(p);
	return NULL;
}

/* Insert (key, c); key is not in the tree. Nodes come from the reserve. */
void emap_tree_insert(struct emap *m, uint32_t key, const struct chunk *c)
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
	right = emap_node_take(m);
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
		right = emap_node_take(m);
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
	right = emap_node_take(m);
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
	emap_node_put(m, r);
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
		emap_node_put(m, old);
	}
}

/* Remove leaf entries [from, to) of the leaf on path p (freeing them). */
static void leaf_remove(struct emap *m, struct path *p, unsigned int from,
			unsigned int to)
{
	struct node *leaf = p->n[p->h - 1];

	for (unsigned int i = from; i < to; i++) {
		bounds_add(m, leaf->l.keys[i], -(int64_t)leaf->l.c[i].nr);
		emap_chunk_release(m, &leaf->l.c[i]);
	}
	memmove(&leaf->l.keys[from], &leaf->l.keys[to],
		(leaf->nr - to) * sizeof(uint32_t));
	memmove(&leaf->l.c[from], &leaf->l.c[to],
		(leaf->nr - to) * sizeof(struct chunk));
	leaf->nr -= to - from;
	rebalance(m, p);
}

/* Remove the entry at p (freeing it). */
void emap_tree_remove_at(struct emap *m, struct path *p)
{
	leaf_remove(m, p, p->i[p->h - 1], p->i[p->h - 1] + 1);
}

/* Remove the chunks with keys in (lo, hi): a leaf's run at a time. */
void emap_tree_remove_between(struct emap *m, uint32_t lo, uint64_t hi)
{
	struct path p;

	for (;;) {
		unsigned int from, to;
		struct node *leaf;

		if (!emap_find_le(m, lo, &p)) {
			/* No entry <= lo: start from the first one. */
			if (!emap_path_first(m, &p))
				return;
		} else if (!emap_path_next(&p)) {
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

/* The value of page from the tree alone (page < npages). */
uint8_t emap_tree_get(const struct emap *m, uint64_t page)
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
		if (!emap_find_le(m, key, &p))
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

/* A copy of the chunk of key, or the entry standing for it if it is missing. */
bool emap_tree_snapshot(const struct emap *m, uint32_t key, struct chunk *c)
{
	struct path p;

	if (emap_find_le(m, key, &p) && path_key(&p) == key) {
		*c = *path_chunk(&p);
		return true;
	}
	emap_chunk_missing(c, emap_tree_get(m, chunk_base(key)));
	return false;
}

static void node_destroy(struct emap *m, struct node *n)
{
	if (n->leaf) {
		for (unsigned int i = 0; i < n->nr; i++)
			emap_chunk_release(m, &n->l.c[i]);
	} else {
		for (unsigned int i = 0; i < n->nr; i++)
			node_destroy(m, n->i.child[i]);
	}
	emap_mem_free(m, n, sizeof(struct node));
}

void emap_tree_free(struct emap *m)
{
	node_destroy(m, m->root);
	m->root = NULL;
}
