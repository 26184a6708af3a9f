// SPDX-License-Identifier: MIT
/*
 * Attribute queries: the state of pages and the extents of equal state,
 * read from the store's attribute map under its read lock.
 */
#include "internal.h"
#include "opts.h"

uint64_t gm_attr_find_not(struct gm_store *store, uint64_t start, uint64_t end,
			  uint8_t attr)
{
	uint64_t s, e;
	uint8_t v;

	while (start < end) {
		emap_extent(store->attrs, start, &s, &e, &v);
		if (v != attr)
			return start;
		start = e;
	}
	return end;
}

int gm_attr_get(struct gm_store *store, uint64_t off, enum gm_attr *attr)
{
	int ret = gm_check_bytes(store, off, 1, "gm_attr_get");

	if (ret)
		return ret;
	if (!attr)
		return gm_error(-EINVAL, "gm_attr_get: attr is NULL");
	ret = gm_read_lock(store, "gm_attr_get");
	if (ret)
		return ret;
	*attr = emap_get(store->attrs, off >> GM_PAGE_SHIFT);
	gm_read_unlock(store);
	return 0;
}

int gm_range_is(struct gm_store *store, uint64_t off, uint64_t len,
		enum gm_attr attr)
{
	uint64_t start, end;
	int ret;

	ret = gm_check_store(store, "gm_range_is");
	if (!ret && len == 0)
		ret = gm_error(-EINVAL, "gm_range_is: length is 0");
	if (!ret)
		ret = gm_check_bytes(store, off, len, "gm_range_is");
	if (!ret)
		ret = gm_check_attr(attr, "gm_range_is");
	if (!ret)
		ret = gm_read_lock(store, "gm_range_is");
	if (ret)
		return ret;
	start = off >> GM_PAGE_SHIFT;
	end = (off + len + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT;
	ret = gm_attr_find_not(store, start, end, attr) == end;
	gm_read_unlock(store);
	return ret;
}

int gm_extent_at(struct gm_store *store, uint64_t off, struct gm_extent *ext)
{
	struct gm_extent full = { 0 };
	uint64_t s, e;
	uint8_t v;
	int ret;

	ret = gm_check_bytes(store, off, 1, "gm_extent_at");
	if (!ret)
		ret = gm_out_check(ext, "gm_extent_at: ext");
	if (!ret)
		ret = gm_read_lock(store, "gm_extent_at");
	if (ret)
		return ret;
	emap_extent(store->attrs, off >> GM_PAGE_SHIFT, &s, &e, &v);
	gm_read_unlock(store);
	full.off = s << GM_PAGE_SHIFT;
	full.len = (e - s) << GM_PAGE_SHIFT;
	full.attr = v;
	gm_out_copy(ext, &full, sizeof(full));
	return 0;
}

uint64_t gm_extent_count(struct gm_store *store)
{
	uint64_t n;

	if (!store || gm_read_lock(store, "gm_extent_count"))
		return 0;
	n = emap_nr_extents(store->attrs);
	gm_read_unlock(store);
	return n;
}
