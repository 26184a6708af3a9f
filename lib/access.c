// SPDX-License-Identifier: MIT
/*
 * Safe access for host code that must touch guest memory (device
 * emulation, loaders): a clean -EFAULT on a private page, never garbage and
 * never a fault. The read lock keeps conversions out while bytes move.
 */
#include "internal.h"

static int access_range(struct gm_store *store, uint64_t off, void *buf,
			size_t len, bool write)
{
	const char *what = write ? "gm_write" : "gm_read";
	uint64_t start, end, bad;
	int ret;

	ret = gm_check_store(store, what);
	if (ret)
		return ret;
	if (len == 0)
		return off <= store->size ?
			       0 :
			       gm_error(-ERANGE,
					"%s: offset 0x%llx is past "
					"the end of the store",
					what, (unsigned long long)off);
	if (!buf)
		return gm_error(-EINVAL, "%s: buffer is NULL", what);
	ret = gm_check_bytes(store, off, len, what);
	if (!ret)
		ret = gm_read_lock(store, what);
	if (ret)
		return ret;
	start = off >> GM_PAGE_SHIFT;
	end = (off + len + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT;
	bad = gm_attr_find_not(store, start, end, GM_ATTR_SHARED);
	if (bad < end)
		ret = gm_error(-EFAULT,
			       "%s: [0x%llx, 0x%llx) includes the private page "
			       "at 0x%llx; nothing was copied",
			       what, (unsigned long long)off,
			       (unsigned long long)(off + len),
			       (unsigned long long)(bad << GM_PAGE_SHIFT));
	else
		ret = gm_view_copy(store, off, buf, len, write);
	gm_read_unlock(store);
	if (ret && ret != -EFAULT)
		gm_error(ret, "%s: copying [0x%llx, 0x%llx)", what,
			 (unsigned long long)off,
			 (unsigned long long)(off + len));
	return ret;
}

int gm_read(struct gm_store *store, uint64_t off, void *buf, size_t len)
{
	return access_range(store, off, buf, len, false);
}

int gm_write(struct gm_store *store, uint64_t off, const void *buf, size_t len)
{
	return access_range(store, off, (void *)buf, len, true);
}
