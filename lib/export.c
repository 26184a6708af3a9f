// SPDX-License-Identifier: MIT
/*
 * gm_store_export: the store as a snapshot stream (snapshot.h,
 * docs/snapshot.md). Under the store's read lock, so that no conversion
 * runs: the header, the attribute map's extents, a record per populated
 * page (found with SEEK_DATA/SEEK_HOLE, or cachestat where the backing has
 * no SEEK_DATA), the end record with the MAC of the whole stream.
 *
 * Pages are read through transient windows of the fd (never the view,
 * which has private pages closed): a private page's plaintext exists only
 * there, and is sealed from the window straight into the output buffer.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "opts.h"
#include "snapshot.h"

#define OUT_BUF_SIZE (256u << 10)
/* Pages mapped at once to read them. */
#define WINDOW_PAGES 256u

/* How the populated pages of the fd are found. */
enum data_probe {
	PROBE_SEEK_DATA, /* memfd: lseek(SEEK_DATA/SEEK_HOLE) */
	PROBE_CACHESTAT, /* guest_memfd (no SEEK_DATA; never swapped out) */
	PROBE_NONE, /* neither: every page counts as populated */
};

struct exporter {
	struct gm_store *store;
	struct snap_crypto *crypto;
	struct snap_header hdr; /* as in the stream */
	gm_write_fn write;
	void *opaque;
	uint8_t *buf;
	size_t used;
	uint64_t bytes; /* written to the stream so far (and buffered) */
	uint64_t record; /* the next record's number */
	uint64_t pages;
	enum data_probe probe;
};

static int flush(struct exporter *x)
{
	int ret;

	if (!x->used)
		return 0;
	ret = x->write(x->opaque, x->buf, x->used);
	x->used = 0;
	if (ret > 0)
		ret = -EIO;
	return ret ? gm_error(ret, "gm_store_export: write failed") : 0;
}

/* Room for len more bytes in the output buffer. */
static int reserve(struct exporter *x, size_t len, uint8_t **p)
{
	int ret = 0;

	if (x->used + len > OUT_BUF_SIZE)
		ret = flush(x);
	*p = x->buf + x->used;
	return ret;
}

/* The len bytes at the reserved place are the stream's next. */
static int commit(struct exporter *x, size_t len)
{
	int ret = snap_mac_update(x->crypto, x->buf + x->used, len);

	x->used += len;
	x->bytes += len;
	return ret ? gm_error(ret, "gm_store_export: MAC") : 0;
}

static int put(struct exporter *x, const void *data, size_t len)
{
	uint8_t *p;
	int ret = reserve(x, len, &p);

	if (ret)
		return ret;
	memcpy(p, data, len);
	return commit(x, len);
}

static int put_header(struct exporter *x)
{
	struct gm_store *store = x->store;
	struct snap_header *h = &x->hdr;
	int ret;

	memcpy(h->magic, SNAP_MAGIC, sizeof(h->magic));
	h->version = SNAP_VERSION;
	h->header_size = sizeof(*h);
	h->store_size = store->size;
	h->page_size = GM_PAGE_SIZE;
	h->nr_extents = emap_nr_extents(store->attrs);
	snap_header_swap(h);
	ret = snap_header_mac(x->crypto, h, h->mac);
	if (ret)
		return gm_error(ret, "gm_store_export: header MAC");
	x->record = 1;
	return put(x, h, sizeof(*h));
}

static int put_extents(struct exporter *x)
{
	uint64_t pos = 0, s, e;
	uint8_t v;
	int ret;

	while (pos < x->store->npages) {
		struct snap_extent ext = { 0 };

		emap_extent(x->store->attrs, pos, &s, &e, &v);
		ext.off = s << GM_PAGE_SHIFT;
		ext.len = (e - s) << GM_PAGE_SHIFT;
		ext.attr = v;
		snap_extent_swap(&ext);
		ret = put(x, &ext, sizeof(ext));
		if (ret)
			return ret;
		x->record++;
		pos = e;
	}
	return 0;
}

/* cachestat(2) (Linux 6.5), which the system headers may lack. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct gm_cachestat_range {
	uint64_t off, len;
};
struct gm_cachestat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted,
		nr_recently_evicted;
};

/* Pages of [s, e) in the fd's page cache, or a negative errno. */
static int64_t cached_pages(struct gm_store *store, uint64_t s, uint64_t e)
{
	struct gm_cachestat_range r = { s << GM_PAGE_SHIFT,
					(e - s) << GM_PAGE_SHIFT };
	struct gm_cachestat cs;

	if (syscall(__NR_cachestat, store->fd, &r, &cs, 0))
		return -errno;
	return (int64_t)cs.nr_cache;
}

static enum data_probe choose_probe(struct gm_store *store)
{
	if (lseek(store->fd, 0, SEEK_DATA) >= 0 || errno == ENXIO)
		return PROBE_SEEK_DATA;
	if (cached_pages(store, 0, store->npages) >= 0)
		return PROBE_CACHESTAT;
	return PROBE_NONE;
}

/*
 * The populated run at or after page pos with cachestat: bisect for its
 * first page, then for the first hole after it.
 */
static int cachestat_run(struct gm_store *store, uint64_t pos, uint64_t *s,
			 uint64_t *e)
{
	uint64_t lo = pos, hi = store->npages;
	int64_t n = cached_pages(store, lo, hi);

	if (n <= 0)
		return n < 0 ? (int)n : 0;
	while (hi - lo > 1) { /* [lo, hi) holds a populated page */
		uint64_t mid = lo + (hi - lo) / 2;

		n = cached_pages(store, lo, mid);
		if (n < 0)
			return (int)n;
		if (n)
			hi = mid;
		else
			lo = mid;
	}
	*s = lo;
	hi = store->npages;
	while (hi - lo >
	       1) { /* [*s, lo + 1) all populated; hi: a hole or end */
		uint64_t mid = lo + (hi - lo) / 2;

		n = cached_pages(store, *s, mid + 1);
		if (n < 0)
			return (int)n;
		if ((uint64_t)n == mid + 1 - *s)
			lo = mid;
		else
			hi = mid;
	}
	*e = hi;
	return 0;
}

/*
 * The populated run of pages at or after page pos: [*s, *e), or *s == *e
 * == npages if there is none.
 */
static int next_data(struct exporter *x, uint64_t pos, uint64_t *s, uint64_t *e)
{
	struct gm_store *store = x->store;
	uint64_t np = store->npages;
	off_t d, h;

	*s = *e = np;
	switch (x->probe) {
	case PROBE_NONE:
		*s = pos;
		return 0;
	case PROBE_CACHESTAT:
		return cachestat_run(store, pos, s, e);
	case PROBE_SEEK_DATA:
		break;
	}
	d = lseek(store->fd, pos << GM_PAGE_SHIFT, SEEK_DATA);
	if (d < 0)
		return errno == ENXIO ? 0 : -errno;
	h = lseek(store->fd, d, SEEK_HOLE);
	if (h < 0)
		return -errno;
	*s = (uint64_t)d >> GM_PAGE_SHIFT;
	*e = ((uint64_t)h + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT;
	*e = *e < np ? *e : np;
	return 0;
}

static int put_page(struct exporter *x, uint64_t page, const uint8_t *src)
{
	bool priv = emap_get(x->store->attrs, page) == GM_ATTR_PRIVATE;
	struct snap_record rec = {
		.type = SNAP_REC_PAGE,
		.attr = priv ? GM_ATTR_PRIVATE : GM_ATTR_SHARED,
		.index = x->record,
		.off = page << GM_PAGE_SHIFT,
		.len = GM_PAGE_SIZE + (priv ? SNAP_TAG_SIZE : 0),
	};
	size_t payload = rec.len;
	uint8_t *p;
	int ret;

	snap_record_swap(&rec);
	ret = put(x, &rec, sizeof(rec));
	if (!ret)
		ret = reserve(x, payload, &p);
	if (ret)
		return ret;
	if (priv) {
		ret = snap_seal_page(x->crypto, &x->hdr, &rec, src, p);
		if (ret)
			return gm_error(
				ret, "gm_store_export: sealing page 0x%llx",
				(unsigned long long)(page << GM_PAGE_SHIFT));
	} else {
		memcpy(p, src, GM_PAGE_SIZE);
	}
	x->record++;
	x->pages++;
	return commit(x, payload);
}

static int put_pages(struct exporter *x)
{
	struct gm_store *store = x->store;
	uint64_t pos = 0, s, e;
	int ret;

	for (;;) {
		ret = next_data(x, pos, &s, &e);
		if (ret)
			return gm_error(
				ret,
				"gm_store_export: finding the "
				"populated pages after 0x%llx",
				(unsigned long long)(pos << GM_PAGE_SHIFT));
		if (s >= e)
			return 0;
		for (uint64_t w = s; w < e; w += WINDOW_PAGES) {
			uint64_t n =
				e - w < WINDOW_PAGES ? e - w : WINDOW_PAGES;
			uint8_t *map = gm_map_window(store, w << GM_PAGE_SHIFT,
						     n << GM_PAGE_SHIFT);

			if (!map)
				return gm_error(
					-errno,
					"gm_store_export: mapping "
					"[0x%llx, +0x%llx)",
					(unsigned long long)(w
							     << GM_PAGE_SHIFT),
					(unsigned long long)(n
							     << GM_PAGE_SHIFT));
			for (uint64_t i = 0; i < n && !ret; i++)
				ret = put_page(x, w + i,
					       map + (i << GM_PAGE_SHIFT));
			/* hugetlb: the window is whole huge pages */
			gm_unmap_window(store, map, w << GM_PAGE_SHIFT,
					n << GM_PAGE_SHIFT);
			if (ret)
				return ret;
		}
		pos = e;
	}
}

static int put_end(struct exporter *x)
{
	struct snap_record rec = {
		.type = SNAP_REC_END,
		.index = x->record,
		.off = x->bytes,
		.len = SNAP_MAC_SIZE,
	};
	uint8_t *p;
	int ret;

	snap_record_swap(&rec);
	ret = put(x, &rec, sizeof(rec));
	if (!ret)
		ret = reserve(x, SNAP_MAC_SIZE, &p);
	if (ret)
		return ret;
	/* The MAC of everything before it, so not part of its own input. */
	ret = snap_mac_final(x->crypto, p);
	if (ret)
		return gm_error(ret, "gm_store_export: MAC");
	x->used += SNAP_MAC_SIZE;
	x->bytes += SNAP_MAC_SIZE;
	return flush(x);
}

static int check_args(struct gm_store *store, struct gm_export_opts *opts,
		      gm_write_fn write)
{
	int ret = gm_check_store(store, "gm_store_export");

	if (!ret)
		ret = GM_OPTS_CHECK(opts, "gm_store_export: opts");
	if (ret)
		return ret;
	if (!write)
		return gm_error(-EINVAL, "gm_store_export: write is NULL");
	return snap_check_key_flags(
		GM_OPTS_HAS(opts, key_len) ? opts->key : NULL,
		GM_OPTS_GET(opts, key_len, 0), GM_OPTS_GET(opts, flags, 0),
		"gm_store_export");
}

int gm_store_export(struct gm_store *store, struct gm_export_opts *opts,
		    gm_write_fn write, void *opaque)
{
	struct exporter x = { .store = store,
			      .write = write,
			      .opaque = opaque };
	int ret = check_args(store, opts, write);

	if (ret)
		return ret;
	x.hdr.generation = GM_OPTS_GET(opts, generation, 0);
	if (getrandom(x.hdr.export_id, sizeof(x.hdr.export_id), 0) !=
	    sizeof(x.hdr.export_id))
		return gm_error(-EIO, "gm_store_export: getrandom");
	x.buf = malloc(OUT_BUF_SIZE);
	x.crypto = snap_crypto_new(opts->key, x.hdr.export_id);
	if (!x.buf || !x.crypto) {
		ret = gm_error(-ENOMEM, "gm_store_export: allocating");
		goto out;
	}
	x.probe = choose_probe(store);
	ret = gm_read_lock(store, "gm_store_export");
	if (ret)
		goto out;
	ret = put_header(&x);
	if (!ret)
		ret = put_extents(&x);
	if (!ret)
		ret = put_pages(&x);
	if (!ret)
		ret = put_end(&x);
	gm_read_unlock(store);
	if (!ret && GM_OPTS_HAS(opts, bytes))
		opts->bytes = x.bytes;
	if (!ret && GM_OPTS_HAS(opts, pages))
		opts->pages = x.pages;
out:
	snap_crypto_free(x.crypto);
	free(x.buf);
	return ret;
}
