// SPDX-License-Identifier: MIT
/*
 * fuzz_import: the snapshot import decoder (lib/import.c) on untrusted
 * streams, into an 8-page memfd store under a fixed key. The first input
 * byte chooses how the rest is fed:
 *  - bit 0: put the right MAC into the header (so that the attribute
 *    extents and the page records behind it get decoded, not just refused
 *    at the header); bit 1: put the right stream MAC into the last 32
 *    bytes (so that streams with any extents and pages can be accepted);
 *  - bits 2-7: the largest read the stream answers with (0: any), to
 *    drive short reads.
 * Checked after each import:
 *  - a rejected stream leaves the store all private and zero, and a
 *    message that names the record;
 *  - an accepted one is a store that exports and imports again into the
 *    same states and bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmem/snapshot.h>

#include "fuzz_common.h"
#include "snapshot.h"
#include "testing/mem_stream.h"

#define PG 4096u
#define NP 8u

static const uint8_t key[GM_SNAPSHOT_KEY_SIZE] = {
	0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
	0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
	0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
};

static struct gm_store *new_store(void)
{
	struct gm_store_opts o = { .sz = sizeof(o),
				   .size = NP * PG,
				   .backing = GM_BACKING_MEMFD,
				   .vm_fd = -1 };
	struct gm_store *s;

	FZ_CHECK(!gm_store_create(&o, &s), "gm_store_create: %s",
		 gm_last_error());
	return s;
}

/* The MACs the key gives, put where bits 0 and 1 of mode ask. */
static void fix_macs(uint8_t *p, size_t len, unsigned int mode)
{
	struct snap_header *h = (struct snap_header *)p;
	struct snap_crypto *c;

	if (!(mode & 3) || len < sizeof(*h))
		return;
	c = snap_crypto_new(key, h->export_id);
	FZ_CHECK(c, "snap_crypto_new");
	if (mode & 1)
		FZ_CHECK(!snap_header_mac(c, h, h->mac), "snap_header_mac");
	if ((mode & 2) && len >= sizeof(*h) + SNAP_MAC_SIZE) {
		FZ_CHECK(!snap_mac_update(c, p, len - SNAP_MAC_SIZE),
			 "snap_mac_update");
		FZ_CHECK(!snap_mac_final(c, p + len - SNAP_MAC_SIZE),
			 "snap_mac_final");
	}
	snap_crypto_free(c);
}

static int import(struct gm_store *dst, struct stream *in,
		  struct gm_import_opts *o)
{
	*o = (struct gm_import_opts){ .sz = sizeof(*o),
				      .key = key,
				      .key_len = sizeof(key) };
	return gm_store_import(dst, o, stream_read, in);
}

static void read_all(struct gm_store *s, uint8_t *bytes, uint8_t *attrs)
{
	FZ_CHECK(pread(gm_store_fd(s), bytes, NP * PG, 0) == NP * PG, "pread");
	for (unsigned int i = 0; i < NP; i++) {
		enum gm_attr a;

		FZ_CHECK(!gm_attr_get(s, i * PG, &a), "gm_attr_get");
		attrs[i] = a;
	}
}

static void check_round_trip(struct gm_store *dst)
{
	static uint8_t bytes[NP * PG], again[NP * PG];
	uint8_t attrs[NP], attrs2[NP];
	struct gm_export_opts e = { .sz = sizeof(e),
				    .key = key,
				    .key_len = sizeof(key) };
	struct stream out = { 0 };
	struct gm_import_opts o;
	struct gm_store *copy = new_store();
	int ret;

	read_all(dst, bytes, attrs);
	FZ_CHECK(!gm_store_export(dst, &e, stream_write, &out),
		 "export of an imported store: %s", gm_last_error());
	ret = import(copy, &out, &o);
	FZ_CHECK(!ret, "import of its export: %d %s", ret, gm_last_error());
	read_all(copy, again, attrs2);
	FZ_CHECK(!memcmp(attrs, attrs2, NP), "states differ after a re-import");
	FZ_CHECK(!memcmp(bytes, again, sizeof(bytes)),
		 "bytes differ after a re-import");
	free(out.p);
	FZ_CHECK(!gm_store_destroy(copy), "gm_store_destroy");
}

static void check_wiped(struct gm_store *dst)
{
	static uint8_t bytes[NP * PG];

	FZ_CHECK(gm_range_is(dst, 0, NP * PG, GM_ATTR_PRIVATE) == 1,
		 "a rejected import left shared pages");
	FZ_CHECK(pread(gm_store_fd(dst), bytes, sizeof(bytes), 0) ==
			 (ssize_t)sizeof(bytes),
		 "pread");
	for (size_t i = 0; i < sizeof(bytes); i++)
		FZ_CHECK(!bytes[i], "a rejected import left byte %zu", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gm_store *dst;
	struct stream in = { 0 };
	struct gm_import_opts o;
	unsigned int mode;
	int ret;

	if (!size)
		return 0;
	if (!dst)
		dst = new_store();
	mode = data[0];
	in.len = size - 1;
	in.p = malloc(in.len + 1);
	FZ_CHECK(in.p, "malloc");
	memcpy(in.p, data + 1, in.len);
	in.max_read = mode >> 2;
	fix_macs(in.p, in.len, mode);
	ret = import(dst, &in, &o);
	if (ret) {
		FZ_CHECK(ret < 0, "import returned %d", ret);
		FZ_CHECK(strstr(gm_last_error(), "gm_store_import"),
			 "import failed without a message: %s",
			 gm_last_error());
		check_wiped(dst);
	} else {
		FZ_CHECK(o.pages <= NP && o.bytes <= in.len,
			 "%llu pages, %llu bytes of %zu",
			 (unsigned long long)o.pages,
			 (unsigned long long)o.bytes, in.len);
		check_round_trip(dst);
	}
	free(in.p);
	return 0;
}
