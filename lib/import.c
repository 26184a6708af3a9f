// SPDX-License-Identifier: MIT
/*
 * gm_store_import: a snapshot stream (snapshot.h, docs/snapshot.md) into a
 * store of the same size. Every record is untrusted input:
 *   1. the destination is wiped: all private, every page discarded;
 *   2. the header is checked (magic, version, its MAC under the key: a
 *      wrong key fails here), then the size and the attribute extents,
 *      which must tile the store as maximal runs;
 *   3. each page record must be the next record, at a higher offset than
 *      the one before, in the state the map gives it; a sealed page is
 *      opened into a scratch page and written only once its tag matched;
 *      pages are written through transient windows of the fd while every
 *      page is private, so none is visible to the host view;
 *   4. the end record's MAC over the whole stream must match: only then
 *      does the attribute map take effect (gm_convert, in place).
 * Any failure wipes the destination again (step 1), so that nothing of a
 * rejected stream stays in it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "opts.h"
#include "snapshot.h"

#define WINDOW_PAGES 256u
/* An opened page, then room for a sealed page's payload (page and tag). */
#define SCRATCH_PAGES 3u

struct importer {
	struct gm_store *dst;
	gm_read_fn read;
	void *opaque;
	struct snap_crypto *crypto;
	struct snap_header hdr; /* as in the stream */
	struct snap_extent *ext; /* host order */
	uint64_t nr_ext;
	uint64_t bytes; /* consumed from the stream */
	uint64_t record; /* the record being read */
	uint64_t pages;
	uint8_t *payload; /* a page record's payload, as read */
	uint8_t *scratch; /* an opened private page until it is written */
	uint8_t *win; /* a window of dst: pages [win_start, +WINDOW_PAGES) */
	uint64_t win_start, win_pages;
};

/* A rejected stream: -EBADMSG (or err) with a message naming the record. */
static __attribute__((format(printf, 3, 4))) int
bad(struct importer *im, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return gm_error(err,
			"gm_store_import: record %llu (stream byte %llu): %s",
			(unsigned long long)im->record,
			(unsigned long long)im->bytes, msg);
}

/* Read exactly len bytes of the stream, into the running MAC if mac. */
static int take(struct importer *im, void *buf, size_t len, bool mac)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n =
			im->read(im->opaque, (uint8_t *)buf + got, len - got);

		if (n == 0)
			return bad(im, -EBADMSG,
				   "the stream ends %zu bytes into a %zu-byte "
				   "read: truncated",
				   got, len);
		if (n < 0)
			return bad(im, (int)n, "read failed");
		if ((size_t)n > len - got)
			return bad(im, -EIO,
				   "read returned %zd bytes for %zu asked", n,
				   len - got);
		got += n;
	}
	im->bytes += len;
	if (mac && snap_mac_update(im->crypto, buf, len))
		return bad(im, -EIO, "MAC");
	return 0;
}

static int take_header(struct importer *im, const uint8_t *key)
{
	struct snap_header *raw = &im->hdr, h;
	uint8_t mac[SNAP_MAC_SIZE];
	struct gm_store *dst = im->dst;
	int ret;

	ret = take(im, raw, sizeof(*raw), false);
	if (ret)
		return ret;
	h = *raw;
	snap_header_swap(&h);
	if (memcmp(h.magic, SNAP_MAGIC, sizeof(h.magic)))
		return bad(im, -EBADMSG, "not a gmem snapshot (bad magic)");
	if (h.version != SNAP_VERSION)
		return bad(im, -EPROTONOSUPPORT,
			   "format version %u; this libgmem reads version %u",
			   h.version, SNAP_VERSION);
	if (h.header_size != sizeof(h))
		return bad(im, -EBADMSG, "header size %u, expected %zu",
			   h.header_size, sizeof(h));
	im->crypto = snap_crypto_new(key, h.export_id);
	if (!im->crypto)
		return bad(im, -ENOMEM, "allocating the keys");
	ret = snap_header_mac(im->crypto, raw, mac);
	if (ret)
		return bad(im, ret, "header MAC");
	if (!snap_mac_equal(mac, raw->mac))
		return bad(im, -EBADMSG,
			   "the header's MAC does not match: a wrong key, or "
			   "a changed header");
	if (snap_mac_update(im->crypto, raw, sizeof(*raw)))
		return bad(im, -EIO, "MAC");
	if (h.store_size != dst->size)
		return bad(im, -EINVAL,
			   "a snapshot of a %llu-byte store, the destination "
			   "has %llu bytes",
			   (unsigned long long)h.store_size,
			   (unsigned long long)dst->size);
	if (h.page_size != GM_PAGE_SIZE)
		return bad(im, -EINVAL,
			   "page size %u, the destination's is %llu",
			   h.page_size, GM_PAGE_SIZE);
	if (h.flags)
		return bad(im, -EBADMSG, "unknown header flags 0x%x", h.flags);
	if (h.nr_extents == 0 || h.nr_extents > dst->npages)
		return bad(im, -EBADMSG,
			   "%llu attribute extents for %llu pages",
			   (unsigned long long)h.nr_extents,
			   (unsigned long long)dst->npages);
	im->nr_ext = h.nr_extents;
	return 0;
}

static int take_extents(struct importer *im)
{
	uint64_t pos = 0, size = im->dst->size;
	size_t cap = 0;
	int ret;

	for (uint64_t i = 0; i < im->nr_ext; i++) {
		struct snap_extent e;

		im->record = 1 + i;
		ret = take(im, &e, sizeof(e), true);
		if (ret)
			return ret;
		snap_extent_swap(&e);
		if (e.off != pos || e.len == 0 || e.len > size - pos ||
		    (e.len & (GM_PAGE_SIZE - 1)))
			return bad(
				im, -EBADMSG,
				"attribute extent [0x%llx, +0x%llx) does not "
				"follow at 0x%llx within the store",
				(unsigned long long)e.off,
				(unsigned long long)e.len,
				(unsigned long long)pos);
		if ((e.attr != GM_ATTR_SHARED && e.attr != GM_ATTR_PRIVATE) ||
		    e.pad)
			return bad(im, -EBADMSG,
				   "attribute extent at 0x%llx: attribute %u, "
				   "padding %u",
				   (unsigned long long)e.off, e.attr, e.pad);
		if (i && e.attr == im->ext[i - 1].attr)
			return bad(im, -EBADMSG,
				   "attribute extent at 0x%llx has the state "
				   "of the one before (not maximal)",
				   (unsigned long long)e.off);
		if (i == cap) {
			struct snap_extent *n;

			cap = cap ? cap * 2 : 64;
			n = realloc(im->ext, cap * sizeof(*n));
			if (!n)
				return bad(im, -ENOMEM, "allocating extents");
			im->ext = n;
		}
		im->ext[i] = e;
		pos += e.len;
	}
	if (pos != size)
		return bad(im, -EBADMSG,
			   "the attribute extents end at 0x%llx, the store at "
			   "0x%llx",
			   (unsigned long long)pos, (unsigned long long)size);
	return 0;
}

/* The state the map gives page offset off; *cur moves forward only. */
static uint32_t map_attr(struct importer *im, uint64_t off, uint64_t *cur)
{
	while (off >= im->ext[*cur].off + im->ext[*cur].len)
		(*cur)++;
	return im->ext[*cur].attr;
}

/* hugetlb: the window is whole huge pages, which gm_unmap_window knows. */
static void unmap_win(struct importer *im)
{
	gm_unmap_window(im->dst, im->win, im->win_start << GM_PAGE_SHIFT,
			im->win_pages << GM_PAGE_SHIFT);
	im->win = NULL;
}

/* Where page `page` of dst is, in a transient window. */
static int window(struct importer *im, uint64_t page, uint8_t **p)
{
	struct gm_store *dst = im->dst;

	if (!im->win || page < im->win_start ||
	    page >= im->win_start + im->win_pages) {
		if (im->win)
			unmap_win(im);
		im->win_start = page;
		im->win_pages = dst->npages - page < WINDOW_PAGES ?
					dst->npages - page :
					WINDOW_PAGES;
		im->win = gm_map_window(dst, page << GM_PAGE_SHIFT,
					im->win_pages << GM_PAGE_SHIFT);
		if (!im->win)
			return bad(im, -errno, "mapping the destination");
	}
	*p = im->win + ((page - im->win_start) << GM_PAGE_SHIFT);
	return 0;
}

static int take_page(struct importer *im, const struct snap_record *raw,
		     const struct snap_record *r, uint64_t *cur)
{
	bool priv = r->attr == GM_ATTR_PRIVATE;
	uint64_t want_len = GM_PAGE_SIZE + (priv ? SNAP_TAG_SIZE : 0);
	uint8_t *to = NULL;
	int ret;

	if (r->attr != map_attr(im, r->off, cur))
		return bad(im, -EBADMSG,
			   "page 0x%llx is %s, the attribute map says %s",
			   (unsigned long long)r->off,
			   priv ? "private" : "shared",
			   priv ? "shared" : "private");
	if (r->len != want_len)
		return bad(im, -EBADMSG, "page 0x%llx: %llu payload bytes",
			   (unsigned long long)r->off,
			   (unsigned long long)r->len);
	ret = take(im, im->payload, want_len, true);
	if (!ret)
		ret = window(im, r->off >> GM_PAGE_SHIFT, &to);
	if (ret)
		return ret;
	if (!priv) {
		memcpy(to, im->payload, GM_PAGE_SIZE);
		return 0;
	}
	ret = snap_open_page(im->crypto, &im->hdr, raw, im->payload,
			     im->scratch);
	if (ret == -EBADMSG)
		return bad(im, ret,
			   "private page 0x%llx: its seal does not verify "
			   "(changed, moved, from another export, or a wrong "
			   "key)",
			   (unsigned long long)r->off);
	if (ret)
		return bad(im, ret, "private page 0x%llx: opening",
			   (unsigned long long)r->off);
	memcpy(to, im->scratch, GM_PAGE_SIZE);
	return 0;
}

static int take_end(struct importer *im, const struct snap_record *r,
		    uint64_t start)
{
	uint8_t mac[SNAP_MAC_SIZE], want[SNAP_MAC_SIZE];
	int ret;

	if (r->off != start || r->len != SNAP_MAC_SIZE || r->attr)
		return bad(im, -EBADMSG,
			   "end record: offset %llu, length %llu, attribute "
			   "%u; expected offset %llu",
			   (unsigned long long)r->off,
			   (unsigned long long)r->len, r->attr,
			   (unsigned long long)start);
	if (snap_mac_final(im->crypto, want))
		return bad(im, -EIO, "MAC");
	ret = take(im, mac, sizeof(mac), false);
	if (ret)
		return ret;
	if (!snap_mac_equal(mac, want))
		return bad(im, -EBADMSG,
			   "the stream's MAC does not match: a record was "
			   "changed, removed, added or moved");
	return 0;
}

static int take_records(struct importer *im)
{
	uint64_t cur = 0, next_off = 0;
	int ret;

	for (im->record = 1 + im->nr_ext;; im->record++) {
		uint64_t start = im->bytes;
		struct snap_record raw, r;

		ret = take(im, &raw, sizeof(raw), true);
		if (ret)
			return ret;
		r = raw;
		snap_record_swap(&r);
		if (r.index != im->record)
			return bad(im, -EBADMSG,
				   "numbered %llu: a record is missing, "
				   "repeated or out of order",
				   (unsigned long long)r.index);
		if (r.type == SNAP_REC_END)
			return take_end(im, &r, start);
		if (r.type != SNAP_REC_PAGE)
			return bad(im, -EBADMSG, "unknown record type %u",
				   r.type);
		if ((r.off & (GM_PAGE_SIZE - 1)) || r.off >= im->dst->size ||
		    r.off < next_off)
			return bad(im, -EBADMSG,
				   "page 0x%llx is not a page of the store "
				   "after the last one (0x%llx on)",
				   (unsigned long long)r.off,
				   (unsigned long long)next_off);
		ret = take_page(im, &raw, &r, &cur);
		if (ret)
			return ret;
		next_off = r.off + GM_PAGE_SIZE;
		im->pages++;
	}
}

/* Every page private and discarded: the state a failed import leaves. */
static int wipe(struct gm_store *dst)
{
	int ret = gm_convert(dst, 0, dst->size, GM_ATTR_PRIVATE,
			     GM_CONVERT_DESTRUCTIVE);

	if (ret)
		return ret;
	if (fallocate(dst->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      dst->size))
		return gm_error(-errno, "punching every page");
	return 0;
}

/* Fail with err, keeping its message, once dst is wiped. */
static int fail(struct importer *im, int err)
{
	char msg[256], suffix[128];
	size_t n, k;

	snprintf(msg, sizeof(msg), "%s", gm_last_error());
	/* gm_error appends the errno's text: take it off to put it back. */
	snprintf(suffix, sizeof(suffix), " (%s)", strerror(-err));
	n = strlen(msg);
	k = strlen(suffix);
	if (n >= k && !strcmp(msg + n - k, suffix))
		msg[n - k] = 0;
	if (wipe(im->dst))
		return gm_error(err,
				"%s; and wiping the destination failed too: %s",
				msg, gm_last_error());
	return gm_error(err, "%s", msg);
}

static int apply_map(struct importer *im)
{
	int ret;

	for (uint64_t i = 0; i < im->nr_ext; i++) {
		if (im->ext[i].attr != GM_ATTR_SHARED)
			continue;
		ret = gm_convert(im->dst, im->ext[i].off, im->ext[i].len,
				 GM_ATTR_SHARED, 0);
		if (ret)
			return gm_error(ret,
					"gm_store_import: applying the "
					"attribute map: %s",
					gm_last_error());
	}
	return 0;
}

static int check_args(struct gm_store *dst, struct gm_import_opts *opts,
		      gm_read_fn read)
{
	int ret = gm_check_store(dst, "gm_store_import");

	if (!ret)
		ret = GM_OPTS_CHECK(opts, "gm_store_import: opts");
	if (ret)
		return ret;
	if (!read)
		return gm_error(-EINVAL, "gm_store_import: read is NULL");
	return snap_check_key_flags(
		GM_OPTS_HAS(opts, key_len) ? opts->key : NULL,
		GM_OPTS_GET(opts, key_len, 0), GM_OPTS_GET(opts, flags, 0),
		"gm_store_import");
}

static int map_scratch(struct importer *im)
{
	size_t len = SCRATCH_PAGES * GM_PAGE_SIZE;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	/* The opened page: out of core dumps, forks and swap. */
	madvise(p, GM_PAGE_SIZE, MADV_DONTDUMP);
	madvise(p, GM_PAGE_SIZE, MADV_DONTFORK);
	mlock(p, GM_PAGE_SIZE);
	im->scratch = p;
	im->payload = p + GM_PAGE_SIZE;
	return 0;
}

static void unmap_scratch(struct importer *im)
{
	if (!im->scratch)
		return;
	OPENSSL_cleanse(im->scratch, GM_PAGE_SIZE);
	munmap(im->scratch, SCRATCH_PAGES * GM_PAGE_SIZE);
}

int gm_store_import(struct gm_store *dst, struct gm_import_opts *opts,
		    gm_read_fn read, void *opaque)
{
	struct importer im = { .dst = dst, .read = read, .opaque = opaque };
	int ret = check_args(dst, opts, read);

	if (ret)
		return ret;
	if (GM_OPTS_HAS(opts, error_record))
		opts->error_record = UINT64_MAX;
	ret = wipe(dst);
	if (ret)
		return gm_error(ret,
				"gm_store_import: emptying the "
				"destination: %s",
				gm_last_error());
	ret = map_scratch(&im);
	if (ret) {
		gm_error(ret, "gm_store_import: scratch page");
		goto out;
	}
	ret = take_header(&im, opts->key);
	if (!ret)
		ret = take_extents(&im);
	if (!ret)
		ret = take_records(&im);
	if (ret && GM_OPTS_HAS(opts, error_record))
		opts->error_record = im.record;
	if (im.win)
		unmap_win(&im);
	if (!ret)
		ret = apply_map(&im);
out:
	unmap_scratch(&im);
	snap_crypto_free(im.crypto);
	free(im.ext);
	if (ret)
		return fail(&im, ret);
	if (GM_OPTS_HAS(opts, generation))
		opts->generation = le64toh(im.hdr.generation);
	if (GM_OPTS_HAS(opts, bytes))
		opts->bytes = im.bytes;
	if (GM_OPTS_HAS(opts, pages))
		opts->pages = im.pages;
	return 0;
}
