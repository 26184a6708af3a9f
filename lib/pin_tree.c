// SPDX-License-Identifier: MIT
/*
 * The interval tree of pins (pin_tree.h): an AVL tree, recursive (its
 * height is below 1.45 log2(n), 45 levels for 2^31 pins), with two
 * subtree maxima that let a query skip every subtree ending before it.
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

static struct pin_node *rotate_right(struct pin_node *n)
{
	struct pin_node *l = n->left;

	n->left = l->right;
	l->right = n;
	update(n);
	update(l);
	return l;
}

static struct pin_node *rotate_left(struct pin_node *n)
{
	struct pin_node *r = n->right;

	n->right = r->left;
	r->left = n;
	update(n);
	update(r);
	return r;
}

/* Restore the AVL balance at n (children balanced, heights off by <= 2). */
static struct pin_node *balance(struct pin_node *n)
{
	int bf;

	update(n);
	bf = height(n->left) - height(n->right);
	if (bf > 1) {
		if (height(n->left->left) < height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (bf < -1) {
		if (height(n->right->right) < height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	return n;
}

static struct pin_node *insert_node(struct pin_node *at, struct pin_node *n)
{
	if (!at)
		return n;
	if (before(n, at))
		at->left = insert_node(at->left, n);
	else
		at->right = insert_node(at->right, n);
	return balance(at);
}

void pin_tree_insert(struct pin_tree *t, struct pin_node *n)
{
	n->left = n->right = NULL;
	update(n);
	t->root = insert_node(t->root, n);
}

/* Take the first node of the subtree at out of it into *min. */
static struct pin_node *remove_min(struct pin_node *at, struct pin_node **min)
{
	if (!at->left) {
		*min = at;
		return at->right;
	}
	at->left = remove_min(at->left, min);
	return balance(at);
}

static struct pin_node *remove_node(struct pin_node *at, struct pin_node *n)
{
	struct pin_node *next, *right;

	if (!at)
		return NULL;
	if (at == n) {
		if (!n->right)
			return n->left;
		right = remove_min(n->right, &next);
		next->left = n->left;
		next->right = right;
		return balance(next);
	}
	if (before(n, at))
		at->left = remove_node(at->left, n);
	else
		at->right = remove_node(at->right, n);
	return balance(at);
}

void pin_tree_remove(struct pin_tree *t, struct pin_node *n)
{
	t->root = remove_node(t->root, n);
	n->left = n->right = NULL;
}

static uint64_t reach(const struct pin_node *n, bool exclusive_only)
{
	return exclusive_only ? max_excl_end(n) : max_end(n);
}

/*
 * Every node of a left subtree starts no later than its parent: when the
 * parent starts before end, a left subtree reaching past start holds an
 * overlapping node, so a failed search never branches and this is
 * O(height).
 */
static struct pin_node *first_in(struct pin_node *n, uint64_t start,
				 uint64_t end, bool exclusive_only)
{
	struct pin_node *hit;

	if (!n || reach(n, exclusive_only) <= start)
		return NULL;
	hit = first_in(n->left, start, end, exclusive_only);
	if (hit || n->first >= end)
		return hit;
	if (n->end > start && (n->exclusive || !exclusive_only))
		return n;
	return first_in(n->right, start, end, exclusive_only);
}

struct pin_node *pin_tree_first(const struct pin_tree *t, uint64_t start,
				uint64_t end, bool exclusive_only)
{
	return first_in(t->root, start, end, exclusive_only);
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
