// SPDX-License-Identifier: MIT
/*
 * The interval tree of pins (pin_tree.h): a treap (a search tree by first
 * page that is also a heap by a priority hashed from each node's address,
 * so of expected depth about 2 ln n whatever the order of the changes) with
 * parent links and two subtree maxima that let a query skip every subtree
 * ending before it. An insert or a removal at the same place again and
 * again (a pin taken and released) costs the search and O(1) expected
 * rotations, with no walk back to the root as an AVL tree would need.
 */
#include <stddef.h>
#include <stdint.h>

#include "pin_tree.h"

static uint64_t max_end(const struct pin_node *n)
{
	return n ? n->max_end : 0;
}

static uint64_t max_excl_end(const struct pin_node *n)
{
	return n ? n->max_excl_end : 0;
}

static uint64_t max3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t m = a > b ? a : b;

	return m > c ? m : c;
}

/* Recompute n's maxima from its children. */
static void update(struct pin_node *n)
{
	n->max_end = max3(n->end, max_end(n->left), max_end(n->right));
	n->max_excl_end = max3(n->exclusive ? n->end : 0, max_excl_end(n->left),
			       max_excl_end(n->right));
}

/*
 * A node's heap priority: its address, mixed (splitmix64's finalizer), so
 * no state, no lock and no caller can skew the shape.
 */
static uint64_t prio(const struct pin_node *n)
{
	uint64_t x = (uintptr_t)n;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Whether a goes before b: by first page, then by address. */
static bool before(const struct pin_node *a, const struct pin_node *b)
{
	if (a->first != b->first)
		return a->first < b->first;
	return (uintptr_t)a < (uintptr_t)b;
}

/* Put new where old was under parent (NULL: the root). */
static void replace_child(struct pin_tree *t, struct pin_node *parent,
			  struct pin_node *old, struct pin_node *new)
{
	if (!parent)
		t->root = new;
	else if (parent->left == old)
		parent->left = new;
	else
		parent->right = new;
	if (new)
		new->parent = parent;
}

/*
 * Rotations keep the set of nodes of the subtree, so its maxima and its
 * ancestors' stay; only the two nodes turned are recomputed.
 */
static void rotate_right(struct pin_tree *t, struct pin_node *n)
{
	struct pin_node *l = n->left;

	n->left = l->right;
	if (l->right)
		l->right->parent = n;
	replace_child(t, n->parent, n, l);
	l->right = n;
	n->parent = l;
	update(n);
	update(l);
}

static void rotate_left(struct pin_tree *t, struct pin_node *n)
{
	struct pin_node *r = n->right;

	n->right = r->left;
	if (r->left)
		r->left->parent = n;
	replace_child(t, n->parent, n, r);
	r->left = n;
	n->parent = r;
	update(n);
	update(r);
}

void pin_tree_insert(struct pin_tree *t, struct pin_node *n)
{
	struct pin_node *parent = NULL, **link = &t->root;

	n->left = n->right = NULL;
	update(n);
	while (*link) {
		parent = *link;
		/* Maxima only grow on insert: set them on the way down. */
		if (n->max_end > parent->max_end)
			parent->max_end = n->max_end;
		if (n->max_excl_end > parent->max_excl_end)
			parent->max_excl_end = n->max_excl_end;
		link = before(n, parent) ? &parent->left : &parent->right;
	}
	*link = n;
	n->parent = parent;
	/* Up to its place in the heap: fewer than 2 rotations expected. */
	while (n->parent && prio(n) > prio(n->parent)) {
		if (n->parent->left == n)
			rotate_right(t, n->parent);
		else
			rotate_left(t, n->parent);
	}
}

void pin_tree_remove(struct pin_tree *t, struct pin_node *n)
{
	struct pin_node *child, *p;

	/* Down, under its child of higher priority, until it has one child. */
	while (n->left && n->right) {
		if (prio(n->left) > prio(n->right))
			rotate_right(t, n);
		else
			rotate_left(t, n);
	}
	child = n->left ? n->left : n->right;
	p = n->parent;
	replace_child(t, p, n, child);
	n->left = n->right = n->parent = NULL;
	/* The maxima change only up to the first ancestor that had others. */
	for (; p; p = p->parent) {
		uint64_t m = p->max_end, mx = p->max_excl_end;

		update(p);
		if (p->max_end == m && p->max_excl_end == mx)
			break;
	}
}

static uint64_t reach(const struct pin_node *n, bool exclusive_only)
{
	return exclusive_only ? max_excl_end(n) : max_end(n);
}

/*
 * Every node of a left subtree starts no later than its parent: when the
 * parent starts before end, a left subtree reaching past start holds an
 * overlapping node, and when it starts at end or later, nothing right of
 * it overlaps. So one path down finds the first overlap: O(depth).
 */
struct pin_node *pin_tree_first(const struct pin_tree *t, uint64_t start,
				uint64_t end, bool exclusive_only)
{
	struct pin_node *n = t->root;

	while (n && reach(n, exclusive_only) > start) {
		if (n->left && reach(n->left, exclusive_only) > start) {
			n = n->left;
			continue;
		}
		if (n->first >= end)
			return NULL;
		if (n->end > start && (n->exclusive || !exclusive_only))
			return n;
		n = n->right;
	}
	return NULL;
}

static int visit(struct pin_node *n, uint64_t start, uint64_t end,
		 int (*fn)(struct pin_node *n, void *arg), void *arg)
{
	int ret;

	if (!n || n->max_end <= start)
		return 0;
	ret = visit(n->left, start, end, fn, arg);
	if (ret || n->first >= end)
		return ret;
	if (n->end > start) {
		ret = fn(n, arg);
		if (ret)
			return ret;
	}
	return visit(n->right, start, end, fn, arg);
}

int pin_tree_visit(const struct pin_tree *t, uint64_t start, uint64_t end,
		   int (*fn)(struct pin_node *n, void *arg), void *arg)
{
	return visit(t->root, start, end, fn, arg);
}
