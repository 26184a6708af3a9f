// SPDX-License-Identifier: MIT
/*
 * The interval tree of pins (lib/pin_tree.c) against a plain array: random
 * inserts, removals and queries (first overlap, first exclusive overlap,
 * every overlap in order), with the tree's invariants (order, parent links,
 * subtree maxima) checked after every change, and its height bounded. The seed is GM_TEST_SEED's
 * when set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pin_tree.h"
#include "test_util.h"

#define MAX_NODES 600

struct model {
	struct pin_tree tree;
	struct pin_node nodes[MAX_NODES];
	bool in[MAX_NODES]; /* nodes[i] is in the tree */
	unsigned int nr;
};

static bool node_before(const struct pin_node *a, const struct pin_node *b)
{
	return a->first != b->first ? a->first < b->first : a < b;
}

/* Check the subtree at n; returns its height, counts its nodes. */
static int check(const struct pin_node *n, const struct pin_node *parent,
		 const struct pin_node *lo, const struct pin_node *hi,
		 unsigned int *count)
{
	uint64_t max = n ? n->end : 0, maxx = n && n->exclusive ? n->end : 0;
	int hl, hr;

	if (!n)
		return 0;
	(*count)++;
	assert_ptr_equal(n->parent, parent);
	assert_true(n->first < n->end);
	if (lo)
		assert_true(node_before(lo, n));
	if (hi)
		assert_true(node_before(n, hi));
	hl = check(n->left, n, lo, n, count);
	hr = check(n->right, n, n, hi, count);
	if (n->left) {
		max = n->left->max_end > max ? n->left->max_end : max;
		maxx = n->left->max_excl_end > maxx ? n->left->max_excl_end :
						      maxx;
	}
	if (n->right) {
		max = n->right->max_end > max ? n->right->max_end : max;
		maxx = n->right->max_excl_end > maxx ? n->right->max_excl_end :
						       maxx;
	}
	assert_int_equal(n->max_end, max);
	assert_int_equal(n->max_excl_end, maxx);
	return 1 + (hl > hr ? hl : hr);
}

/* Check the whole tree; returns its height. */
static int check_tree(const struct pin_tree *t, unsigned int nr)
{
	unsigned int count = 0;
	int h = check(t->root, NULL, NULL, NULL, &count);

	assert_int_equal(count, nr);
	return h;
}

static bool overlaps(const struct pin_node *n, uint64_t s, uint64_t e)
{
	return n->first < e && s < n->end;
}

/* The reference: lowest (first, address) among overlapping nodes. */
static const struct pin_node *model_first(const struct model *m, uint64_t s,
					  uint64_t e, bool excl)
{
	const struct pin_node *best = NULL;

	for (unsigned int i = 0; i < MAX_NODES; i++) {
		const struct pin_node *n = &m->nodes[i];

		if (!m->in[i] || !overlaps(n, s, e) || (excl && !n->exclusive))
			continue;
		if (!best || node_before(n, best))
			best = n;
	}
	return best;
}

struct visit_log {
	const struct pin_node *seen[MAX_NODES];
	unsigned int nr, stop_after;
};

static int log_node(struct pin_node *n, void *arg)
{
	struct visit_log *l = arg;

	l->seen[l->nr++] = n;
	return l->nr == l->stop_after ? 7 : 0;
}

static void check_queries(const struct model *m, uint64_t s, uint64_t e,
			  uint64_t *rng)
{
	struct visit_log l = { .stop_after = 0 };
	unsigned int expect = 0;
	int ret;

	assert_ptr_equal(pin_tree_first(&m->tree, s, e, false),
			 model_first(m, s, e, false));
	assert_ptr_equal(pin_tree_first(&m->tree, s, e, true),
			 model_first(m, s, e, true));
	/* Every overlapping node once, in order. */
	assert_int_equal(pin_tree_visit(&m->tree, s, e, log_node, &l), 0);
	for (unsigned int i = 0; i < MAX_NODES; i++)
		expect += m->in[i] && overlaps(&m->nodes[i], s, e);
	assert_int_equal(l.nr, expect);
	for (unsigned int i = 0; i < l.nr; i++) {
		assert_true(overlaps(l.seen[i], s, e));
		if (i)
			assert_true(node_before(l.seen[i - 1], l.seen[i]));
	}
	/* A non-zero return stops the walk and is passed on. */
	if (expect > 1) {
		l = (struct visit_log){
			.stop_after = 1 + tu_rand(rng) % (expect - 1)
		};
		ret = pin_tree_visit(&m->tree, s, e, log_node, &l);
		assert_int_equal(ret, 7);
		assert_int_equal(l.nr, l.stop_after);
	}
}

static void run(uint64_t seed, uint64_t span, unsigned int ops)
{
	struct model *m = calloc(1, sizeof(*m));
	uint64_t rng = seed;

	assert_non_null(m);
	for (unsigned int op = 0; op < ops; op++) {
		unsigned int i = tu_rand(&rng) % MAX_NODES;
		struct pin_node *n = &m->nodes[i];
		uint64_t s = tu_rand(&rng) % span, len;

		if (tu_rand(&rng) % 4 == 0) {
			/* A query: a point, a short range or a long one. */
			len = 1 +
			      tu_rand(&rng) % (tu_rand(&rng) % 2 ? 4 : span);
			check_queries(m, s, s + len, &rng);
			continue;
		}
		if (m->in[i]) {
			pin_tree_remove(&m->tree, n);
			m->in[i] = false;
			m->nr--;
		} else {
			/* Many equal first pages, so ties are exercised. */
			len = 1 + tu_rand(&rng) % (tu_rand(&rng) % 8 ? 8 : 200);
			*n = (struct pin_node){
				.first = s,
				.end = s + len,
				.exclusive = tu_rand(&rng) % 3 == 0,
			};
			pin_tree_insert(&m->tree, n);
			m->in[i] = true;
			m->nr++;
		}
		check_tree(&m->tree, m->nr);
	}
	/* Empty it in order of index, then the tree is empty. */
	for (unsigned int i = 0; i < MAX_NODES; i++) {
		if (!m->in[i])
			continue;
		pin_tree_remove(&m->tree, &m->nodes[i]);
		m->in[i] = false;
		m->nr--;
		if (i % 16 == 0) {
			check_tree(&m->tree, m->nr);
			check_queries(m, 0, span + 300, &rng);
		}
	}
	assert_null(m->tree.root);
	assert_null(pin_tree_first(&m->tree, 0, UINT64_MAX, false));
	free(m);
}

static void test_pin_tree_random(void **state)
{
	uint64_t seed = tu_seed("test_pin_tree", 0x51ed27);

	/* Dense (heavy overlap, many ties) and sparse positions. */
	run(seed, 64, 20000);
	run(seed * 3 + 1, 1u << 20, 20000);
	run(seed * 5 + 2, UINT64_MAX / 2, 5000);
}

/*
 * Ascending and descending inserts stay balanced (a random search tree of
 * 4096 nodes is about 30 high; a list would be 4096), and so does pinning
 * and unpinning at one place again and again.
 */
static void test_pin_tree_sorted(void **state)
{
	static struct pin_node nodes[4096], again;
	struct pin_tree t = { 0 };

	for (int dir = 0; dir < 2; dir++) {
		for (unsigned int i = 0; i < 4096; i++) {
			unsigned int k = dir ? 4095 - i : i;

			nodes[k] = (struct pin_node){ .first = 2 * k,
						      .end = 2 * k + 1 };
			pin_tree_insert(&t, &nodes[k]);
		}
		assert_true(check_tree(&t, 4096) <= 48);
		assert_int_equal(t.root->max_end, 2 * 4095 + 1);
		assert_int_equal(t.root->max_excl_end, 0);
		assert_ptr_equal(pin_tree_first(&t, 101, 300, false),
				 &nodes[51]);
		assert_null(pin_tree_first(&t, 101, 102, false));
		assert_null(pin_tree_first(&t, 0, 9000, true));
		for (unsigned int i = 0; i < 1000; i++) {
			again = (struct pin_node){ .first = 4001,
						   .end = 4002,
						   .exclusive = true };
			pin_tree_insert(&t, &again);
			assert_ptr_equal(pin_tree_first(&t, 0, 9000, true),
					 &again);
			pin_tree_remove(&t, &again);
		}
		assert_true(check_tree(&t, 4096) <= 48);
		assert_null(pin_tree_first(&t, 0, 9000, true));
		for (unsigned int i = 0; i < 4096; i++)
			pin_tree_remove(&t, &nodes[i]);
		assert_null(t.root);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pin_tree_random),
		cmocka_unit_test(test_pin_tree_sorted),
	};

	return cmocka_run_group_tests_name("test_pin_tree", tests, NULL, NULL);
}
