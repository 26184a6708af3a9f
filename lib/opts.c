// SPDX-License-Identifier: MIT
/* Sized structs: libbpf's rule for what the library reads, a prefix copy
 * for what it fills (opts.h). */
#include <string.h>

#include "internal.h"
#include "opts.h"

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

int gm_opts_check(const void *opts, size_t sz, size_t lib_sz, const char *what)
{
	const unsigned char *p = opts;

	if (!opts)
		return gm_error(-EINVAL, "%s is NULL", what);
	if (sz < sizeof(size_t))
		return gm_error(-EINVAL,
				"%s: sz %zu does not cover the sz field itself",
				what, sz);
	for (size_t i = lib_sz; i < sz; i++)
		if (p[i])
			return gm_error(-E2BIG,
					"%s: sz %zu is larger than this "
					"libgmem's struct (%zu) and byte %zu "
					"past it is not zero: a field this "
					"version does not know",
					what, sz, lib_sz, i);
	return 0;
}

void gm_opts_copy(void *full, const void *opts, size_t lib_sz)
{
	size_t sz;

	memcpy(&sz, opts, sizeof(sz));
	memcpy(full, opts, min_size(sz, lib_sz));
}

int gm_out_check(const void *out, const char *what)
{
	size_t sz;

	if (!out)
		return gm_error(-EINVAL, "%s is NULL", what);
	memcpy(&sz, out, sizeof(sz));
	if (sz < sizeof(size_t))
		return gm_error(-EINVAL,
				"%s: sz %zu does not cover the sz field itself",
				what, sz);
	return 0;
}

void gm_out_copy(void *out, void *full, size_t lib_sz)
{
	size_t sz;

	memcpy(&sz, out, sizeof(sz));
	sz = min_size(sz, lib_sz);
	memcpy(full, &sz, sizeof(sz));
	memcpy(out, full, sz);
}
