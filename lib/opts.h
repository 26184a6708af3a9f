/* SPDX-License-Identifier: MIT */
/*
 * Sized structs across the ABI (docs/api-stability.md). Every public struct
 * starts with size_t sz, set by the caller to the size it was compiled with.
 *
 * Structs the library reads follow libbpf's rule: a smaller sz is accepted
 * and the fields it does not cover take their defaults; a larger one is
 * accepted only if every byte past the library's size is zero.
 *
 * Structs the library fills: it fills a full struct of its own, then copies
 * min(sz, its size) bytes out, with sz set to that count.
 */
#ifndef GMEM_OPTS_H
#define GMEM_OPTS_H

#include <stddef.h>

/*
 * Check a struct the library reads: opts non-NULL, sz covers the sz field
 * itself (else -EINVAL), every byte in [lib_sz, sz) zero (else -E2BIG).
 * 0 or a negative errno with a message naming `what`.
 */
int gm_opts_check(const void *opts, size_t sz, size_t lib_sz, const char *what);
#define GM_OPTS_CHECK(opts, what) \
	gm_opts_check((opts), (opts) ? (opts)->sz : 0, sizeof(*(opts)), what)

/* Whether field of *opts lies within opts->sz. */
#define GM_OPTS_HAS(opts, field) \
	((opts)->sz >=           \
	 offsetof(__typeof__(*(opts)), field) + sizeof((opts)->field))
/* field of *opts if within opts->sz, else fallback. */
#define GM_OPTS_GET(opts, field, fallback) \
	(GM_OPTS_HAS(opts, field) ? (opts)->field : (fallback))

/*
 * Copy a struct the library reads into *full (the library's size lib_sz,
 * already holding the defaults): the caller's first min(sz, lib_sz) bytes
 * replace them. Call after gm_opts_check().
 */
void gm_opts_copy(void *full, const void *opts, size_t lib_sz);

/*
 * Check a struct the library fills: out non-NULL and its sz covering the sz
 * field (else -EINVAL, naming `what`). Larger sizes are fine.
 */
int gm_out_check(const void *out, const char *what);
/*
 * Copy *full (lib_sz bytes, filled by the library) to the caller's *out:
 * min(out->sz, lib_sz) bytes, with sz set to that count. Nothing past it is
 * written. Call after gm_out_check().
 */
void gm_out_copy(void *out, void *full, size_t lib_sz);

#endif /* GMEM_OPTS_H */
