/* SPDX-License-Identifier: MIT */
/*
 * An interval tree of pinned page ranges: a treap (pin_tree.c) ordered by
 * first page (ties broken by address), each node knowing the largest end in
 * its subtree and the largest end of an exclusive node in it. The nodes are
 * embedded in the pins; the tree allocates nothing. Not thread-safe (pin.c
 * holds pin_lock). Costs are expected ones: the depth is about 2 ln n.
 */
#ifndef GMEM_PIN_TREE_H
#define GMEM_PIN_TREE_H

#include <stdbool.h>
#include <stdint.h>

/* What a search reads first, so that 64 bytes hold a node. */
struct pin_node {
	struct pin_node *left, *right;
	uint64_t first, end; /* pages [first, end), first < end */
	/* maintained by the tree */
	uint64_t max_end; /* largest end in this subtree */
	uint64_t max_excl_end; /* largest end of an exclusive node, or 0 */
	struct pin_node *parent;
	bool exclusive;
};

struct pin_tree {
	struct pin_node *root; /* NULL: empty (a zeroed tree is empty) */
};

/*
 * Insert n (first, end and exclusive set by the caller): O(log n) to find
 * its place, O(1) rotations.
 */
void pin_tree_insert(struct pin_tree *t, struct pin_node *n);
/* Remove n, which must be in t: no search, O(1) rotations. */
void pin_tree_remove(struct pin_tree *t, struct pin_node *n);

/*
 * The node overlapping [start, end) with the lowest first page (only among
 * exclusive nodes if exclusive_only), or NULL. O(log n).
 */
struct pin_node *pin_tree_first(const struct pin_tree *t, uint64_t start,
				uint64_t end, bool exclusive_only);

/*
 * Call fn on every node overlapping [start, end), by increasing first page,
 * until fn returns non-zero; returns that value, or 0. fn must not change
 * the tree. The nodes visited lie on the root paths to the k nodes reported
 * and to one more (or are their children): O(log n + k) when the reported
 * nodes are neighbours in the tree (ranges that do not nest), O(k log n) at
 * worst.
 */
int pin_tree_visit(const struct pin_tree *t, uint64_t start, uint64_t end,
		   int (*fn)(struct pin_node *n, void *arg), void *arg);

#endif /* GMEM_PIN_TREE_H */
