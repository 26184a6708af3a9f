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

void *gm_map_store(struct gm_store *store, void *at, uint64_t off, uint64_t len)
{
	int flags = MAP_SHARED | (at ? MAP_FIXED : 0);
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, flags, store->fd, off);
	int err;

	if (p == MAP_FAILED)
		return NULL;
	if (!madvise(p, len, MADV_DONTDUMP) && !madvise(p, len, MADV_DONTFORK))
		return p;
	err = errno;
	if (!at)
		munmap(p, len);
	errno = err;
	return NULL;
}

void *gm_map_window(struct gm_store *store, uint64_t off, uint64_t len)
{
	return gm_map_store(store, NULL, off, len);
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
	munmap(w, span);
	return 0;
}
