// SPDX-License-Identifier: MIT
/*
 * Mappings of the store's fd. Every one of them, the host view's open
 * pieces, pins that live past the view budget, KVM's mapping of a memfd
 * store and the transient windows of gm_read/gm_write, is kept out of core
 * dumps (MADV_DONTDUMP) and out of forked children (MADV_DONTFORK): a child
 * would otherwise keep a mapping of pages that the parent later makes
 * private.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

void *gm_reserve(void *at, uint64_t len, uint64_t align)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
		    (at ? MAP_FIXED : 0);
	uint8_t *p, *aligned;
	uint64_t extra = at || align <= GM_PAGE_SIZE ? 0 : align;

	p = mmap(at, len + extra, PROT_NONE, flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (!extra)
		return p;
	/* Trim the over-allocation to an aligned range of len bytes. */
	aligned = (uint8_t *)(((uintptr_t)p + align - 1) & ~(align - 1));
	if (aligned > p)
		munmap(p, aligned - p);
	munmap(aligned + len, p + extra - aligned);
	return aligned;
}

/*
 * THP: the kernel gives a mapping 2 MiB folios only where it asks for them
 * and where it is 2 MiB-aligned (the callers align), on every mapping.
 */
void *gm_map_store(struct gm_store *store, void *at, uint64_t off, uint64_t len)
{
	int flags = MAP_SHARED | (at ? MAP_FIXED : 0);
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, flags, store->fd, off);
	int err;

	if (p == MAP_FAILED)
		return NULL;
	if (!madvise(p, len, MADV_DONTDUMP) &&
	    !madvise(p, len, MADV_DONTFORK) &&
	    (store->pages != GM_PAGES_THP_2M ||
	     !madvise(p, len, MADV_HUGEPAGE)))
		return p;
	err = errno;
	if (!at)
		munmap(p, len);
	errno = err;
	return NULL;
}

/* The huge pages (hugetlb) or pages holding [off, off + len). */
static void window_span(struct gm_store *store, uint64_t *off, uint64_t *len)
{
	uint64_t g = store->granule << GM_PAGE_SHIFT;
	uint64_t end = (*off + *len + g - 1) & ~(g - 1);

	*off &= ~(g - 1);
	*len = end - *off;
}

void *gm_map_window(struct gm_store *store, uint64_t off, uint64_t len)
{
	uint64_t woff = off, wlen = len;
	uint8_t *at, *p;
	int err;

	window_span(store, &woff, &wlen);
	if (store->huge_size == GM_PAGE_SIZE)
		return gm_map_store(store, NULL, woff, wlen);
	at = gm_reserve(NULL, wlen, store->huge_size);
	if (!at)
		return NULL;
	p = gm_map_store(store, at, woff, wlen);
	if (!p) {
		err = errno;
		munmap(at, wlen);
		errno = err;
		return NULL;
	}
	return p + (off - woff);
}

void gm_unmap_window(struct gm_store *store, void *p, uint64_t off,
		     uint64_t len)
{
	uint64_t woff = off, wlen = len;

	window_span(store, &woff, &wlen);
	munmap((uint8_t *)p - (off - woff), wlen);
}

int gm_window_copy(struct gm_store *store, uint64_t off, void *buf, size_t len,
		   bool write)
{
	uint64_t base = off & ~(GM_PAGE_SIZE - 1);
	uint64_t span =
		(off + len - base + GM_PAGE_SIZE - 1) & ~(GM_PAGE_SIZE - 1);
	uint8_t *w = gm_map_window(store, base, span);

	if (!w)
		return -errno;
	gm_stat_add(&store->stats.access_fallbacks, 1);
	if (write)
		memcpy(w + (off - base), buf, len);
	else
		memcpy(buf, w + (off - base), len);
	gm_unmap_window(store, w, base, span);
	return 0;
}
