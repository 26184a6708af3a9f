/* SPDX-License-Identifier: MIT */
/*
 * Export and import of a store: a snapshot of its attribute map and of its
 * populated pages, as one byte stream (format: docs/snapshot.md).
 *
 * Private pages leave the store only sealed, AES-256-GCM under a key the
 * caller passes (never written out); shared pages travel in the clear. The
 * attribute map, the store's size and every shared byte are in the clear
 * but authenticated: a keyed MAC over the whole stream detects any change,
 * truncation, reordering, duplication or removal of records.
 */
#ifndef GMEM_SNAPSHOT_H
#define GMEM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gmem/gmem.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* The key of gm_export_opts and gm_import_opts: exactly this many bytes. */
#define GM_SNAPSHOT_KEY_SIZE 32

/*
 * Where an export goes: write all len bytes of buf, return 0 or a negative
 * errno (which fails the export with it).
 */
typedef int (*gm_write_fn)(void *opaque, const void *buf, size_t len);

/*
 * Where an import comes from: read up to len bytes into buf and return how
 * many (short reads are fine), 0 at the end of the stream, or a negative
 * errno.
 */
typedef ssize_t (*gm_read_fn)(void *opaque, void *buf, size_t len);

struct gm_export_opts {
	size_t sz; /* sizeof(struct gm_export_opts) */
	const void *key; /* GM_SNAPSHOT_KEY_SIZE bytes; never written out */
	size_t key_len;
	/*
	 * A label of the caller's (a snapshot sequence number, say), written
	 * in the header and authenticated; gm_import_opts.generation gives it
	 * back. Each export also draws a random 128-bit export id of its own
	 * (getrandom), which nonces and keys are derived from, so two exports
	 * never share a nonce whatever the label.
	 */
	uint64_t generation;
	unsigned int flags; /* none yet: 0 */
	/* out (each written only if within sz): */
	uint64_t bytes; /* bytes of the stream */
	uint64_t pages; /* page records (populated pages) */
};

/*
 * Stream the store out through write: its attribute map, then every
 * populated page (holes are skipped, so the stream's size follows the
 * memory in use, not the store's size), private pages sealed.
 *
 * The export holds the store's lock for reading from start to end: no
 * conversion runs meanwhile, so the attribute map and the pages' states are
 * one consistent image. Contents are read as they are: pause whatever
 * writes guest memory (vCPUs, devices) for a consistent image of them too.
 * write is called under that lock and must not call into this store.
 *
 * 0, or -EINVAL (arguments, key length, flags), -E2BIG (opts->sz), -ENOMEM,
 * a failing syscall's errno or write's; -EDEADLK from a listener of the
 * store. A failed export may have written part of a stream: an import
 * rejects any stream that does not end in a valid trailer.
 */
int gm_store_export(struct gm_store *store, struct gm_export_opts *opts,
		    gm_write_fn write, void *opaque);

struct gm_import_opts {
	size_t sz; /* sizeof(struct gm_import_opts) */
	const void *key; /* GM_SNAPSHOT_KEY_SIZE bytes, as exported */
	size_t key_len;
	unsigned int flags; /* none yet: 0 */
	/* out (each written only if within sz): */
	uint64_t generation; /* the exporter's label */
	uint64_t bytes; /* bytes of the stream consumed */
	uint64_t pages; /* page records imported */
	/*
	 * The record at fault when the stream is rejected (0 is the header,
	 * then the attribute extents, the pages and the trailer), else
	 * UINT64_MAX.
	 */
	uint64_t error_record;
};

/*
 * Replace the contents and attribute map of dst, a store of the exported
 * size, by those of the stream read through read. dst's own pages are
 * discarded first (it becomes all private and zero), so it need not be
 * fresh, but nothing may use it during the import: no pins or view holds,
 * no running guest.
 *
 * Nothing of the stream becomes shared before all of it is verified: pages
 * are written while every page of dst is private, each sealed page's tag
 * is checked before the page is written, and the attribute map is applied
 * (gm_convert, in place) only once the trailer's MAC over the whole stream
 * matched. The stream is consumed exactly up to its trailer; bytes after it
 * are not read.
 *
 * On an error of the arguments, or -EBUSY (dst is pinned) from the first
 * wipe, dst is unchanged. On any other error, dst is left as an
 * all-private store whose pages are all discarded (read back as zeroes):
 * nothing imported remains, as if dst had just been created private.
 * Errors: -EBADMSG (the stream is not a valid
 * snapshot for this key: a tampered, missing, reordered or duplicated
 * record, a wrong key, a truncated stream; the message names the record,
 * and error_record gives its number), -EPROTONOSUPPORT (another format
 * version), -EINVAL (arguments, a store of another size or page size),
 * -E2BIG (opts->sz), -EBUSY (dst is pinned), -ENOMEM, read's errno, a
 * failing syscall's; -EDEADLK from a listener of dst.
 */
int gm_store_import(struct gm_store *dst, struct gm_import_opts *opts,
		    gm_read_fn read, void *opaque);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* GMEM_SNAPSHOT_H */
