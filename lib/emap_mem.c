// SPDX-License-Identifier: MIT
/*
 * Extent map memory (see extent_map_int.h): every allocation goes through
 * here, counted in m->bytes, and the reserve's pools of tree nodes and
 * bitmap-sized buffers from which emap_set() takes what it needs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "extent_map_int.h"

void *emap_mem_alloc(struct emap *m, size_t size)
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

void emap_mem_free(struct emap *m, void *p, size_t size)
{
	if (!p)
		return;
	free(p);
	m->bytes -= size;
}

_Noreturn void emap_contract_broken(const char *what)
{
	fprintf(stderr, "libgmem: extent map: %s\n", what);
	abort();
}

static unsigned int nodes_needed(const struct emap *m)
{
	return 2 * m->height + 3;
}

/* A node from the reserve (emap_set() runs only with a full one). */
struct node *emap_node_take(struct emap *m)
{
	if (!m->nr_spare_nodes)
		emap_contract_broken("emap_set() ran out of reserved tree "
				     "nodes (bug: the reserve is too small)");
	return m->spare_nodes[--m->nr_spare_nodes];
}

void emap_node_put(struct emap *m, struct node *n)
{
	if (m->nr_spare_nodes < nodes_needed(m) &&
	    m->nr_spare_nodes < POOL_NODES)
		m->spare_nodes[m->nr_spare_nodes++] = n;
	else
		emap_mem_free(m, n, sizeof(struct node));
}

void *emap_buf_take(struct emap *m)
{
	if (!m->nr_spare_bufs)
		emap_contract_broken("emap_set() ran out of reserved buffers "
				     "(bug: the reserve is too small)");
	return m->spare_bufs[--m->nr_spare_bufs];
}

/* A buffer outside emap_set(): from the pool, else allocated (may fail). */
void *emap_buf_alloc(struct emap *m)
{
	if (m->nr_spare_bufs)
		return m->spare_bufs[--m->nr_spare_bufs];
	return emap_mem_alloc(m, BUF_BYTES);
}

void emap_buf_put(struct emap *m, void *buf)
{
	if (m->nr_spare_bufs < POOL_BUFS)
		m->spare_bufs[m->nr_spare_bufs++] = buf;
	else
		emap_mem_free(m, buf, BUF_BYTES);
}

void emap_array_free(struct emap *m, uint16_t *arr, unsigned int cap)
{
	if (cap == ARRAY_MAX)
		emap_buf_put(m, arr);
	else
		emap_mem_free(m, arr, cap * sizeof(uint16_t));
}

int emap_pool_fill(struct emap *m)
{
	/* The tree may have got lower: drop what it no longer needs. */
	while (m->nr_spare_nodes > nodes_needed(m))
		emap_mem_free(m, m->spare_nodes[--m->nr_spare_nodes],
			      sizeof(struct node));
	while (m->nr_spare_nodes < nodes_needed(m)) {
		struct node *n = emap_mem_alloc(m, sizeof(struct node));

		if (!n)
			return -ENOMEM;
		m->spare_nodes[m->nr_spare_nodes++] = n;
	}
	while (m->nr_spare_bufs < POOL_BUFS) {
		void *b = emap_mem_alloc(m, BUF_BYTES);

		if (!b)
			return -ENOMEM;
		m->spare_bufs[m->nr_spare_bufs++] = b;
	}
	return 0;
}

void emap_pool_free(struct emap *m)
{
	while (m->nr_spare_nodes)
		emap_mem_free(m, m->spare_nodes[--m->nr_spare_nodes],
			      sizeof(struct node));
	while (m->nr_spare_bufs)
		emap_mem_free(m, m->spare_bufs[--m->nr_spare_bufs], BUF_BYTES);
}
