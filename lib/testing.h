/* SPDX-License-Identifier: MIT */
/*
 * Test-only entry points of libgmem: not part of the public API and not
 * exported from libgmem.so. Tests and fuzzers reach them by linking the
 * internal static library (gmem_internal) built from the same sources.
 */
#ifndef GMEM_TESTING_H
#define GMEM_TESTING_H

#include <gmem/gmem.h>

/* The fallible steps of a conversion, for fault injection in tests. */
enum gm_fault_site {
	GM_FAULT_ALLOC = 1, /* allocation of tracking memory */
	GM_FAULT_VIEW_CLOSE, /* mprotect(PROT_NONE) of the host view */
	GM_FAULT_VIEW_OPEN, /* mprotect(READ|WRITE) of the host view */
	GM_FAULT_PUNCH, /* fallocate(PUNCH_HOLE) of a destructive conversion */
	GM_FAULT_ZERO_WINDOW, /* mapping of the zeroing window, destructive */
	GM_FAULT_NR,
};

/*
 * Called before each fallible step of a conversion; a negative return makes
 * that step fail with that errno.
 */
typedef int (*gm_fault_fn)(void *opaque, enum gm_fault_site site);

/*
 * Set (or with NULL clear) the store's fault-injection hook. Set it right
 * after gm_store_create, before the store's first conversion: the hook is
 * read without a lock. 0 or -EINVAL (NULL store).
 */
int gm_test_set_fault_inject(struct gm_store *store, gm_fault_fn fn,
			     void *opaque);

#endif /* GMEM_TESTING_H */
