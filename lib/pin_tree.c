// SPDX-License-Identifier: MIT
/*
 * The interval tree of pins (pin_tree.h): an AVL tree with parent links
 * (a removal needs no search, and rebalancing stops where nothing changed)
 * and two subtree maxima that let a query skip every subtree ending before
 * it.
 */
#include <stddef.h>
#include <stdint.h>

#include "pin_tree.h"

static int height(const struct pin_node *n)
{
	return n ? n->height : 0;
}

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

/* Recompute n's height and maxima from its children. */
static void update(struct pin_node *n)
{
	int hl = height(n->left), hr = height(n->right);

	n->height = 1 + (hl > hr ? hl : hr);
	n->max_end = max3(n->end, max_end(n->left), max_end(n->right));
	n->max_excl_end = max3(n->exclusive ? n->end : 0, max_excl_end(n->left),
			       max_excl_end(n->right));
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

static struct pin_node *rotate_right(struct pin_tree *t, struct pin_node *n)
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
	return l;
}

static struct pin_node *rotate_left(struct pin_tree *t, struct pin_node *n)
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
	return r;
}

/*
 * Recompute n from its children and restore the AVL balance there (the
 * children balanced, their heights off by <= 2). Returns the subtree's
 * new root.
 */
static struct pin_node *rebalance(struct pin_tree *t, struct pin_node *n)
{
	int bf;

	update(n);
	bf = height(n->left) - height(n->right);
	if (bf > 1) {
		if (height(n->left->left) < height(n->left->right))
			rotate_left(t, n->left);
		return rotate_right(t, n);
	}
	if (bf < -1) {
		if (height(n->right->right) < height(n->right->left))
			rotate_right(t, n->right);
		return rotate_left(t, n);
	}
	return n;
}

/*
 * Rebalance from n up to the root, stopping at the first subtree whose
 * height and maxima are as before (its ancestors do not depend on more),
 * but not below upto (a node whose fields are stale; NULL: none). An
 * insert or a removal so touches O(1) nodes on average, and reads a
 * sibling (often a cache miss) only where something changed.
 */
static void fix_up(struct pin_tree *t, struct pin_node *n,
		   const struct pin_node *upto)
{
	while (n) {
		int h = n->height;
		uint64_t m = n->max_end, mx = n->max_excl_end;
		bool may_stop = !upto || n == upto;

		if (n == upto)
			upto = NULL;
		n = rebalance(t, n);
		if (may_stop && n->height == h && n->max_end == m &&
		    n->max_excl_end == mx)
			return;
		n = n->parent;
	}
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
	fix_up(t, parent, NULL);
}

void pin_tree_remove(struct pin_tree *t, struct pin_node *n)
{
	struct pin_node *from, *next = NULL, *child;

	if (n->left && n->right) {
		/*
		 * Its successor takes its place, and its fields until fix_up
		 * gets there.
		 */
		next = n->right;
		while (next->left)
			next = next->left;
		from = next->parent == n ? next : next->parent;
		if (next != n->right) {
			next->parent->left = next->right;
			if (next->right)
				next->right->parent = next->parent;
			next->right = n->right;
			n->right->parent = next;
		}
		next->left = n->left;
		n->left->parent = next;
		next->height = n->height;
		next->max_end = n->max_end;
		next->max_excl_end = n->max_excl_end;
		replace_child(t, n->parent, n, next);
	} else {
		child = n->left ? n->left : n->right;
		from = n->parent;
		replace_child(t, n->parent, n, child);
	}
	n->left = n->right = n->parent = NULL;
	fix_up(t, from, next);
}

static uint64_t reach(const struct pin_node *n, bool exclusive_only)
{
	return exclusive_only ? max_excl_end(n) : max_end(n);
}

/*
 * Every node of a left subtree starts no later than its parent: when the
 * parent starts before end, a left subtree reaching past start holds an
 * overlapping node, and when it starts at end or later, nothing right of
 * it overlaps. So one path down finds the first overlap: O(height).
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
