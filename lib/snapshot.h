/* SPDX-License-Identifier: MIT */
/*
 * The snapshot stream of gm_store_export/gm_store_import (docs/snapshot.md):
 * its records, little-endian, and the keys, nonces and MACs that protect
 * them (snapshot_crypto.c).
 */
#ifndef GMEM_SNAPSHOT_INT_H
#define GMEM_SNAPSHOT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <gmem/snapshot.h>

#define SNAP_MAGIC "GMEMSNAP"
#define SNAP_VERSION 1u
#define SNAP_ID_SIZE 16
#define SNAP_MAC_SIZE 32 /* HMAC-SHA256 */
#define SNAP_TAG_SIZE 16 /* AES-GCM */
#define SNAP_NONCE_SIZE 12

/* Record 0. mac: HMAC of the header's bytes before it, under the MAC key. */
struct snap_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size; /* sizeof(struct snap_header) */
	uint64_t store_size;
	uint32_t page_size;
	uint32_t flags; /* 0 */
	uint8_t export_id[SNAP_ID_SIZE]; /* random per export */
	uint64_t generation; /* the caller's label */
	uint64_t nr_extents;
	uint8_t mac[SNAP_MAC_SIZE];
};
_Static_assert(sizeof(struct snap_header) == 96, "snapshot header layout");

/* Records 1 .. nr_extents: the attribute map, maximal runs, in order. */
struct snap_extent {
	uint64_t off;
	uint64_t len;
	uint32_t attr;
	uint32_t pad; /* 0 */
};
_Static_assert(sizeof(struct snap_extent) == 24, "snapshot extent layout");

enum { SNAP_REC_PAGE = 1, SNAP_REC_END = 2 };

/*
 * Every later record: a page (payload: the page in clear if shared, else
 * its ciphertext and GCM tag), ascending offsets, or the end (index: the
 * number of page records; off: the stream's bytes before the end record;
 * payload: the MAC of every byte before it, this record's header included).
 */
struct snap_record {
	uint32_t type;
	uint32_t attr;
	uint64_t index; /* the record's number in the stream */
	uint64_t off;
	uint64_t len; /* payload bytes */
};
_Static_assert(sizeof(struct snap_record) == 32, "snapshot record layout");

/*
 * The records as they are in the stream (little-endian) from host order
 * and back; the MAC and the sealing see the stream's bytes.
 */
void snap_header_swap(struct snap_header *h);
void snap_extent_swap(struct snap_extent *e);
void snap_record_swap(struct snap_record *r);

struct snap_crypto;

/*
 * Keys of one export, derived from the caller's key and the export id:
 * HMAC-SHA256(key, label || export_id), one label for sealing, one for the
 * MAC. NULL (and errno) on failure.
 */
struct snap_crypto *snap_crypto_new(const uint8_t *key,
				    const uint8_t export_id[SNAP_ID_SIZE]);
void snap_crypto_free(struct snap_crypto *c);

/* The header's MAC (of its bytes before the mac field). */
int snap_header_mac(struct snap_crypto *c, const struct snap_header *h,
		    uint8_t mac[SNAP_MAC_SIZE]);

/* The running MAC over the stream. */
int snap_mac_update(struct snap_crypto *c, const void *buf, size_t len);
int snap_mac_final(struct snap_crypto *c, uint8_t mac[SNAP_MAC_SIZE]);

/*
 * Seal the page at rec->off (h and rec as in the stream, little-endian):
 * out gets its ciphertext then its tag. The
 * nonce is the page number; the authenticated data is the header's export
 * id and generation and the record's header, so a page cannot move, change
 * state, change place in the stream or come from another export.
 */
int snap_seal_page(struct snap_crypto *c, const struct snap_header *h,
		   const struct snap_record *rec, const void *page,
		   uint8_t *out);
/* Open a sealed page into out: 0, or -EBADMSG if its tag does not match. */
int snap_open_page(struct snap_crypto *c, const struct snap_header *h,
		   const struct snap_record *rec, const uint8_t *in, void *out);

/* Constant-time comparison of MACs. */
bool snap_mac_equal(const uint8_t *a, const uint8_t *b);

/* The key and flags of gm_export_opts / gm_import_opts: 0 or -EINVAL. */
int snap_check_key_flags(const void *key, size_t key_len, unsigned int flags,
			 const char *what);

#endif /* GMEM_SNAPSHOT_INT_H */
