// SPDX-License-Identifier: MIT
/*
 * Export and import (include/gmem/snapshot.h, docs/snapshot.md): round
 * trips of random stores, sparse exports, no private byte in the clear, and
 * the import's rejection of every changed, truncated, reordered, duplicated,
 * replayed or foreign stream, leaving the destination wiped.
 *
 * With GM_SNAPSHOT_SEEDS=DIR in the environment, it also writes the fuzz
 * corpus seeds of fuzz/fuzz_import.c there (small exports under its key).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmem/snapshot.h>

#include "snapshot.h" /* lib/: the MACs, for streams re-MACed by a key holder */
#include "test_util.h"
#include "testing/mem_stream.h"

/* The layout of docs/snapshot.md, to find records in a stream. */
#define HDR_SIZE 96
#define HDR_VERSION 8
#define HDR_NR_EXTENTS 56
#define EXT_SIZE 24
#define REC_SIZE 32
#define REC_LEN 24

static uint8_t key[GM_SNAPSHOT_KEY_SIZE], other_key[GM_SNAPSHOT_KEY_SIZE];
static uint64_t rng;

static void fill_random(void *buf, size_t len)
{
	uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)tu_rand(&rng);
}

static int setup(void **state)
{
	rng = tu_seed("test_snapshot", 0x5eed5a4ull);
	fill_random(key, sizeof(key));
	fill_random(other_key, sizeof(other_key));
	return 0;
}

static struct stream export_of(struct gm_store *s, const uint8_t *k,
			       uint64_t generation, uint64_t *pages)
{
	struct gm_export_opts o = { .sz = sizeof(o),
				    .key = k,
				    .key_len = GM_SNAPSHOT_KEY_SIZE,
				    .generation = generation };
	struct stream out = { 0 };

	assert_int_equal(gm_store_export(s, &o, stream_write, &out), 0);
	assert_int_equal(o.bytes, out.len);
	if (pages)
		*pages = o.pages;
	return out;
}

static int import_of(struct gm_store *dst, const uint8_t *k,
		     const uint8_t *data, size_t len,
		     struct gm_import_opts *out)
{
	struct gm_import_opts o = { .sz = sizeof(o),
				    .key = k,
				    .key_len = GM_SNAPSHOT_KEY_SIZE };
	struct stream in = { .p = (uint8_t *)data, .len = len };
	int ret = gm_store_import(dst, &o, stream_read, &in);

	if (out)
		*out = o;
	return ret;
}

/* A store whose pages are random: a hole, or random bytes; either state. */
struct model {
	uint64_t np;
	uint8_t *attr;
	uint8_t *data; /* zero for holes */
	uint64_t populated;
};

static struct gm_store *random_store(uint64_t np, struct model *m)
{
	struct gm_store *s = tu_store(np * PG, GM_STORE_INIT_SHARED);

	m->np = np;
	m->attr = calloc(np, 1);
	m->data = calloc(np, PG);
	m->populated = 0;
	assert_non_null(m->attr);
	assert_non_null(m->data);
	for (uint64_t i = 0; i < np; i++) {
		uint64_t r = tu_rand(&rng);

		m->attr[i] = r & 1 ? GM_ATTR_PRIVATE : GM_ATTR_SHARED;
		if (r & 6) {
			fill_random(m->data + i * PG, PG);
			assert_int_equal(
				gm_write(s, i * PG, m->data + i * PG, PG), 0);
			m->populated++;
		}
	}
	tu_apply(s, m->attr, np);
	return s;
}

static void model_free(struct model *m)
{
	free(m->attr);
	free(m->data);
}

/* dst holds exactly the model: states and every byte. */
static void expect_model(struct gm_store *dst, const struct model *m)
{
	uint8_t *raw;

	tu_expect_attrs(dst, m->attr, m->np);
	raw = tu_raw_map(dst);
	for (uint64_t i = 0; i < m->np; i++)
		if (memcmp(raw + i * PG, m->data + i * PG, PG))
			fail_msg("page %llu differs", (unsigned long long)i);
	tu_raw_unmap(dst, raw);
}

/* A failed import left dst all private and zero. */
static void expect_wiped(struct gm_store *dst, bool check_bytes)
{
	uint8_t *raw;

	assert_int_equal(
		gm_range_is(dst, 0, gm_store_size(dst), GM_ATTR_PRIVATE), 1);
	if (!check_bytes)
		return;
	raw = tu_raw_map(dst);
	assert_int_equal(tu_zero_check(raw, gm_store_size(dst)),
			 gm_store_size(dst));
	tu_raw_unmap(dst, raw);
}

static void test_round_trip(void **state)
{
	for (int round = 0; round < 4; round++) {
		uint64_t np = 1 + tu_rand(&rng) % 96, pages;
		struct model m;
		struct gm_store *src = random_store(np, &m);
		struct gm_store *dst = tu_store(np * PG, 0);
		struct stream st = export_of(src, key, 7 + round, &pages);
		struct gm_import_opts o = { .sz = sizeof(o),
					    .key = key,
					    .key_len = sizeof(key) };

		assert_int_equal(pages, m.populated);
		/* Short reads of odd sizes. */
		st.max_read = 1 + tu_rand(&rng) % 5000;
		assert_int_equal(gm_store_import(dst, &o, stream_read, &st), 0);
		assert_int_equal(o.bytes, st.len);
		assert_int_equal(o.pages, m.populated);
		assert_int_equal(o.generation, 7 + round);
		assert_int_equal(o.error_record, UINT64_MAX);
		expect_model(dst, &m);
		free(st.p);
		assert_int_equal(gm_store_destroy(src), 0);
		assert_int_equal(gm_store_destroy(dst), 0);
		model_free(&m);
	}
}

/* An import replaces whatever the destination held. */
static void test_import_replaces(void **state)
{
	struct model m;
	struct gm_store *src = random_store(32, &m);
	struct gm_store *dst = tu_store(32 * PG, GM_STORE_INIT_SHARED);
	struct stream st = export_of(src, key, 0, NULL);

	tu_write_pattern(dst, 0, 32 * PG, 9);
	assert_int_equal(import_of(dst, key, st.p, st.len, NULL), 0);
	expect_model(dst, &m);
	free(st.p);
	assert_int_equal(gm_store_destroy(src), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
	model_free(&m);
}

/* A sparse store (1 TiB; 256 GiB under TSan) with 4 MiB in use exports about 4 MiB. */
static void test_sparse(void **state)
{
	const uint64_t size = TU_SPARSE_STORE_SIZE, run = 256 * 1024;
	struct gm_store *src = tu_store(size, GM_STORE_INIT_SHARED), *dst;
	uint64_t used = 0, pages;
	struct stream st;

	for (int i = 0; i < 16; i++) {
		uint64_t off = (size / 16) * i + (uint64_t)i * 3 * PG;

		tu_write_pattern(src, off, run, i + 1);
		if (i & 1)
			assert_int_equal(
				gm_convert(src, off, run, GM_ATTR_PRIVATE, 0),
				0);
		used += run;
	}
	st = export_of(src, key, 0, &pages);
	assert_int_equal(pages, used / PG);
	fprintf(stderr, "sparse store, %llu bytes used: export of %zu bytes\n",
		(unsigned long long)used, st.len);
	assert_true(st.len >= used);
	assert_true(st.len <= used + used / 100 + 4096);

	dst = tu_store(size, 0);
	assert_int_equal(import_of(dst, key, st.p, st.len, NULL), 0);
	for (int i = 0; i < 16; i++) {
		uint64_t off = (size / 16) * i + (uint64_t)i * 3 * PG;

		assert_int_equal(
			gm_range_is(dst, off, run,
				    i & 1 ? GM_ATTR_PRIVATE : GM_ATTR_SHARED),
			1);
		if (i & 1)
			assert_int_equal(
				gm_convert(dst, off, run, GM_ATTR_SHARED, 0),
				0);
		tu_expect_pattern(dst, off, run, i + 1);
	}
	free(st.p);
	assert_int_equal(gm_store_destroy(src), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

static void test_no_private_byte_in_clear(void **state)
{
	const uint64_t np = 48;
	struct gm_store *s = tu_store(np * PG, GM_STORE_INIT_SHARED), *dst;
	uint8_t secret[32], page[PG];
	struct stream st;

	fill_random(secret, sizeof(secret));
	for (size_t i = 0; i < PG; i += sizeof(secret))
		memcpy(page + i, secret, sizeof(secret));
	for (uint64_t i = 0; i < np; i++)
		if (i % 3 == 0)
			assert_int_equal(gm_write(s, i * PG, page, PG), 0);
		else
			tu_write_pattern(s, i * PG, PG, 3);
	for (uint64_t i = 0; i < np; i += 3)
		assert_int_equal(gm_convert(s, i * PG, PG, GM_ATTR_PRIVATE, 0),
				 0);
	st = export_of(s, key, 0, NULL);
	/* Neither the secret nor any 8 bytes of it. */
	for (size_t i = 0; i + 8 <= sizeof(secret); i++)
		assert_null(memmem(st.p, st.len, secret + i, 8));
	/* And the shared pages are there in the clear. */
	tu_pat_fill(page, PG, PG, 3);
	assert_non_null(memmem(st.p, st.len, page, PG));

	dst = tu_store(np * PG, 0);
	assert_int_equal(import_of(dst, key, st.p, st.len, NULL), 0);
	assert_int_equal(gm_convert(dst, 0, np * PG, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_read(dst, 0, page, PG), 0);
	assert_memory_equal(page, secret, sizeof(secret));
	free(st.p);
	assert_int_equal(gm_store_destroy(s), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

/* A small export: a private page, a shared page, holes, both states. */
static struct gm_store *small_store(void)
{
	struct gm_store *s = tu_store(6 * PG, GM_STORE_INIT_SHARED);

	tu_write_pattern(s, 1 * PG, PG, 11);
	tu_write_pattern(s, 3 * PG, PG, 12);
	tu_write_pattern(s, 4 * PG, PG, 13);
	assert_int_equal(gm_convert(s, 3 * PG, 2 * PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_PRIVATE, 0), 0);
	return s;
}

static void test_every_byte_flip_fails(void **state)
{
	struct gm_store *s = small_store(), *dst = tu_store(6 * PG, 0);
	struct stream st = export_of(s, key, 0, NULL);
	struct gm_import_opts o;

	for (size_t i = 0; i < st.len; i++) {
		uint8_t mask = (uint8_t)(1 + tu_rand(&rng) % 255);
		int ret;

		st.p[i] ^= mask;
		ret = import_of(dst, key, st.p, st.len, &o);
		st.p[i] ^= mask;
		if (ret >= 0)
			fail_msg("byte %zu ^ 0x%02x: import succeeded", i,
				 mask);
		assert_non_null(strstr(gm_last_error(), "record "));
		assert_int_not_equal(o.error_record, UINT64_MAX);
		expect_wiped(dst, i % 1024 == 0);
	}
	/* The stream itself still imports. */
	assert_int_equal(import_of(dst, key, st.p, st.len, NULL), 0);
	free(st.p);
	assert_int_equal(gm_store_destroy(s), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

static void test_every_truncation_fails(void **state)
{
	struct gm_store *s = small_store(), *dst = tu_store(6 * PG, 0);
	struct stream st = export_of(s, key, 0, NULL);

	for (size_t len = 0; len < st.len; len++) {
		int ret = import_of(dst, key, st.p, len, NULL);

		if (ret != -EBADMSG)
			fail_msg("import of the first %zu of %zu bytes: %d",
				 len, st.len, ret);
		expect_wiped(dst, len % 1024 == 0);
	}
	free(st.p);
	assert_int_equal(gm_store_destroy(s), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

static uint64_t le64_at(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Where each record starts: header, extents, pages, end; and its end. */
struct layout {
	size_t start[64], end[64];
	size_t n, first_page, end_record;
};

static struct layout layout_of(const struct stream *st)
{
	struct layout l = { .n = 0 };
	uint64_t ne = le64_at(st->p + HDR_NR_EXTENTS);
	size_t pos = HDR_SIZE;

	l.start[0] = 0;
	l.end[l.n++] = HDR_SIZE;
	for (uint64_t i = 0; i < ne; i++, pos += EXT_SIZE) {
		l.start[l.n] = pos;
		l.end[l.n++] = pos + EXT_SIZE;
	}
	l.first_page = l.n;
	while (pos < st->len) {
		assert_true(l.n < 64);
		l.start[l.n] = pos;
		pos += REC_SIZE + le64_at(st->p + pos + REC_LEN);
		l.end[l.n++] = pos;
	}
	assert_int_equal(pos, st->len);
	l.end_record = l.n - 1;
	return l;
}

/* The stream with records a and b (of equal size) exchanged. */
static void swap_records(struct stream *st, const struct layout *l, size_t a,
			 size_t b)
{
	size_t len = l->end[a] - l->start[a];
	uint8_t *tmp = malloc(len);

	assert_int_equal(len, l->end[b] - l->start[b]);
	memcpy(tmp, st->p + l->start[a], len);
	memcpy(st->p + l->start[a], st->p + l->start[b], len);
	memcpy(st->p + l->start[b], tmp, len);
	free(tmp);
}

/* Import of a stream built from st by edit(): fails with -EBADMSG. */
static void expect_rejected(struct gm_store *dst, const uint8_t *p, size_t len,
			    const char *what)
{
	struct gm_import_opts o;
	int ret = import_of(dst, key, p, len, &o);

	fprintf(stderr, "%s: %d, record %llu: %s\n", what, ret,
		(unsigned long long)o.error_record, gm_last_error());
	assert_int_equal(ret, -EBADMSG);
	assert_int_not_equal(o.error_record, UINT64_MAX);
	expect_wiped(dst, true);
}

static void test_reordered_duplicated_missing(void **state)
{
	struct gm_store *s = small_store(), *dst = tu_store(6 * PG, 0);
	struct stream st = export_of(s, key, 0, NULL);
	struct layout l = layout_of(&st);
	size_t p = l.first_page, plen;
	uint8_t *copy = malloc(st.len + 8192);

	/* Pages 1 (shared), 3 and 4 (private): swap the two private ones. */
	assert_int_equal(l.end_record - p, 3);
	swap_records(&st, &l, p + 1, p + 2);
	expect_rejected(dst, st.p, st.len, "private pages swapped");
	swap_records(&st, &l, p + 1, p + 2);

	/* Swap two extents of equal size. */
	swap_records(&st, &l, 1, 2);
	expect_rejected(dst, st.p, st.len, "extents swapped");
	swap_records(&st, &l, 1, 2);

	/* Page record p + 1 twice (in place of p + 2). */
	memcpy(copy, st.p, st.len);
	plen = l.end[p + 1] - l.start[p + 1];
	memcpy(copy + l.start[p + 2], st.p + l.start[p + 1], plen);
	expect_rejected(dst, copy, st.len, "private page duplicated");

	/* Page record p + 1 repeated, the rest shifted. */
	memcpy(copy, st.p, l.end[p + 1]);
	memcpy(copy + l.end[p + 1], st.p + l.start[p + 1],
	       st.len - l.start[p + 1]);
	expect_rejected(dst, copy, st.len + plen, "private page repeated");

	/* Page record p + 1 left out. */
	memcpy(copy, st.p, l.start[p + 1]);
	memcpy(copy + l.start[p + 1], st.p + l.end[p + 1],
	       st.len - l.end[p + 1]);
	expect_rejected(dst, copy, st.len - plen, "private page missing");

	/* Page 3's sealed payload under page 4's record header. */
	memcpy(copy, st.p, st.len);
	memcpy(copy + l.start[p + 2] + REC_SIZE,
	       st.p + l.start[p + 1] + REC_SIZE, plen - REC_SIZE);
	expect_rejected(dst, copy, st.len, "private payload moved");
	assert_non_null(strstr(gm_last_error(), "seal does not verify"));

	/* The end record left out. */
	expect_rejected(dst, st.p, l.start[l.end_record], "end missing");

	assert_int_equal(import_of(dst, key, st.p, st.len, NULL), 0);
	free(copy);
	free(st.p);
	assert_int_equal(gm_store_destroy(s), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

/* The stream's MACs made right again under key, as a key holder could. */
static void remac(struct stream *st)
{
	struct snap_header *h = (struct snap_header *)st->p;
	struct snap_crypto *c = snap_crypto_new(key, h->export_id);

	assert_non_null(c);
	assert_int_equal(snap_header_mac(c, h, h->mac), 0);
	assert_int_equal(snap_mac_update(c, st->p, st->len - SNAP_MAC_SIZE), 0);
	assert_int_equal(snap_mac_final(c, st->p + st->len - SNAP_MAC_SIZE), 0);
	snap_crypto_free(c);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Malformed streams whose MACs are right (written by a faulty exporter
 * that holds the key): the record checks still refuse them.
 */
static void test_malformed_with_valid_macs(void **state)
{
	struct gm_store *s = small_store(), *dst = tu_store(6 * PG, 0);
	struct stream st = export_of(s, key, 0, NULL);
	struct layout l = layout_of(&st);
	size_t p = l.first_page;
	uint8_t *orig = malloc(st.len);

	memcpy(orig, st.p, st.len);
	/* The same page twice (the offset comes before the seal). */
	put_le64(st.p + l.start[p + 2] + 16, 3 * PG);
	remac(&st);
	expect_rejected(dst, st.p, st.len, "page offset repeated");
	assert_non_null(strstr(gm_last_error(), "after the last one"));

	/* Two records swapped with their numbers. */
	memcpy(st.p, orig, st.len);
	swap_records(&st, &l, p + 1, p + 2);
	remac(&st);
	expect_rejected(dst, st.p, st.len, "records renumbered");
	assert_non_null(strstr(gm_last_error(), "out of order"));

	/* The shared page at 0x1000 claimed private. */
	memcpy(st.p, orig, st.len);
	st.p[l.start[p] + 4] = GM_ATTR_PRIVATE;
	remac(&st);
	expect_rejected(dst, st.p, st.len, "state against the map");
	assert_non_null(strstr(gm_last_error(), "attribute map says"));

	/* Untouched but re-MACed: still a good stream. */
	memcpy(st.p, orig, st.len);
	remac(&st);
	assert_int_equal(import_of(dst, key, st.p, st.len, NULL), 0);
	free(orig);
	free(st.p);
	assert_int_equal(gm_store_destroy(s), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

static void test_wrong_key(void **state)
{
	struct gm_store *s = small_store(), *dst = tu_store(6 * PG, 0);
	struct stream st = export_of(s, key, 0, NULL);
	struct gm_import_opts o;

	assert_int_equal(import_of(dst, other_key, st.p, st.len, &o), -EBADMSG);
	assert_non_null(strstr(gm_last_error(), "wrong key"));
	assert_int_equal(o.error_record, 0);
	expect_wiped(dst, true);
	free(st.p);
	assert_int_equal(gm_store_destroy(s), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

/* A page record of one export spliced into another of the same store. */
static void test_replay_from_other_export(void **state)
{
	struct gm_store *s = small_store(), *dst = tu_store(6 * PG, 0);
	struct stream a = export_of(s, key, 1, NULL);
	struct stream b = export_of(s, key, 2, NULL);
	struct layout la = layout_of(&a), lb = layout_of(&b);
	size_t p = la.first_page + 1; /* the private page at 3 */
	struct gm_import_opts o;

	assert_int_equal(a.len, b.len);
	/* Same layout, other export id: every private payload differs. */
	assert_memory_not_equal(a.p + la.start[p] + REC_SIZE,
				b.p + lb.start[p] + REC_SIZE, PG);
	memcpy(a.p + la.start[p], b.p + lb.start[p], la.end[p] - la.start[p]);
	assert_int_equal(import_of(dst, key, a.p, a.len, &o), -EBADMSG);
	assert_int_equal(o.error_record, p);
	assert_non_null(strstr(gm_last_error(), "seal does not verify"));
	expect_wiped(dst, true);
	assert_int_equal(import_of(dst, key, b.p, b.len, &o), 0);
	assert_int_equal(o.generation, 2);
	free(a.p);
	free(b.p);
	assert_int_equal(gm_store_destroy(s), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

static void test_other_size_or_version(void **state)
{
	struct gm_store *s = small_store(), *dst = tu_store(8 * PG, 0);
	struct stream st = export_of(s, key, 0, NULL);

	assert_int_equal(import_of(dst, key, st.p, st.len, NULL), -EINVAL);
	assert_non_null(strstr(gm_last_error(), "24576-byte store"));
	expect_wiped(dst, true);
	assert_int_equal(gm_store_destroy(dst), 0);

	dst = tu_store(6 * PG, 0);
	st.p[HDR_VERSION] = 2;
	assert_int_equal(import_of(dst, key, st.p, st.len, NULL),
			 -EPROTONOSUPPORT);
	assert_non_null(strstr(gm_last_error(), "format version 2"));
	free(st.p);
	assert_int_equal(gm_store_destroy(s), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

/* A failed import leaves nothing of what the destination held. */
static void test_failure_wipes_destination(void **state)
{
	struct gm_store *s = small_store();
	struct gm_store *dst = tu_store(6 * PG, GM_STORE_INIT_SHARED);
	struct stream st = export_of(s, key, 0, NULL);

	tu_write_pattern(dst, 0, 6 * PG, 5);
	st.p[st.len - 1] ^= 1; /* the end's MAC */
	assert_int_equal(import_of(dst, key, st.p, st.len, NULL), -EBADMSG);
	assert_non_null(strstr(gm_last_error(), "stream's MAC"));
	expect_wiped(dst, true);
	free(st.p);
	assert_int_equal(gm_store_destroy(s), 0);
	assert_int_equal(gm_store_destroy(dst), 0);
}

static void test_bad_arguments(void **state)
{
	struct gm_store *s = small_store();
	struct stream st = { 0 };
	struct gm_export_opts e = { .sz = sizeof(e),
				    .key = key,
				    .key_len = 16 };
	struct gm_import_opts i = { .sz = sizeof(i),
				    .key = key,
				    .key_len = GM_SNAPSHOT_KEY_SIZE };
	struct {
		struct gm_export_opts o;
		uint64_t extra;
	} big = { .o = { .sz = sizeof(big),
			 .key = key,
			 .key_len = GM_SNAPSHOT_KEY_SIZE },
		  .extra = 1 };

	assert_int_equal(gm_store_export(s, &e, stream_write, &st), -EINVAL);
	e.key_len = GM_SNAPSHOT_KEY_SIZE;
	e.flags = 1;
	assert_int_equal(gm_store_export(s, &e, stream_write, &st), -EINVAL);
	e.flags = 0;
	assert_int_equal(gm_store_export(s, &e, NULL, &st), -EINVAL);
	assert_int_equal(gm_store_export(NULL, &e, stream_write, &st), -EINVAL);
	assert_int_equal(gm_store_export(s, NULL, stream_write, &st), -EINVAL);
	assert_int_equal(gm_store_export(s, &big.o, stream_write, &st), -E2BIG);
	assert_int_equal(st.len, 0);
	assert_int_equal(gm_store_import(s, &i, NULL, &st), -EINVAL);
	i.key = NULL;
	assert_int_equal(gm_store_import(s, &i, stream_read, &st), -EINVAL);
	/* Argument errors leave the store as it was. */
	assert_int_equal(gm_range_is(s, PG, PG, GM_ATTR_SHARED), 1);
	tu_expect_pattern(s, PG, PG, 11);
	assert_int_equal(gm_store_destroy(s), 0);
}

static int failing_write(void *opaque, const void *buf, size_t len)
{
	int *calls = opaque;

	return ++*calls == 2 ? -ENOSPC : 0;
}

static void test_write_error(void **state)
{
	struct model m;
	struct gm_store *s = random_store(128, &m);
	struct gm_export_opts o = { .sz = sizeof(o),
				    .key = key,
				    .key_len = GM_SNAPSHOT_KEY_SIZE };
	int calls = 0;

	assert_int_equal(gm_store_export(s, &o, failing_write, &calls),
			 -ENOSPC);
	assert_non_null(strstr(gm_last_error(), "write"));
	assert_int_equal(gm_store_destroy(s), 0);
	model_free(&m);
}

/* Conversions wait for the export to end. */
struct held {
	struct gm_store *s;
	pthread_t t;
	bool started;
	int converted; /* 1 once gm_convert returned */
};

static void *convert_thread(void *arg)
{
	struct held *h = arg;

	assert_int_equal(gm_convert(h->s, 0, PG, GM_ATTR_SHARED, 0), 0);
	__atomic_store_n(&h->converted, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static int held_write(void *opaque, const void *buf, size_t len)
{
	struct held *h = opaque;

	if (!h->started) {
		h->started = true;
		assert_int_equal(pthread_create(&h->t, NULL, convert_thread, h),
				 0);
		usleep(100 * 1000);
		assert_int_equal(
			__atomic_load_n(&h->converted, __ATOMIC_SEQ_CST), 0);
	}
	return 0;
}

static void test_export_holds_off_conversions(void **state)
{
	struct held h = { .s = small_store() };
	struct gm_export_opts o = { .sz = sizeof(o),
				    .key = key,
				    .key_len = GM_SNAPSHOT_KEY_SIZE };

	assert_int_equal(gm_store_export(h.s, &o, held_write, &h), 0);
	assert_true(h.started);
	pthread_join(h.t, NULL);
	assert_int_equal(h.converted, 1);
	assert_int_equal(gm_store_destroy(h.s), 0);
}

/* fuzz/fuzz_import.c's key and store size. */
static void write_seed(const char *dir, const char *name, uint8_t mode,
		       const struct stream *st)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(&mode, 1, 1, f), 1);
	assert_int_equal(fwrite(st->p, 1, st->len, f), st->len);
	assert_int_equal(fclose(f), 0);
}

static void test_fuzz_seeds(void **state)
{
	const char *dir = getenv("GM_SNAPSHOT_SEEDS");
	uint8_t fuzz_key[GM_SNAPSHOT_KEY_SIZE];
	struct gm_store *s;
	struct stream st;

	if (!dir)
		skip();
	memset(fuzz_key, 0x5a, sizeof(fuzz_key));
	s = tu_store(8 * PG, GM_STORE_INIT_SHARED);
	st = export_of(s, fuzz_key, 0, NULL);
	write_seed(dir, "seed-empty-shared", 0, &st);
	free(st.p);
	tu_write_pattern(s, PG, PG, 1);
	tu_write_pattern(s, 5 * PG, 2 * PG, 2);
	assert_int_equal(gm_convert(s, 5 * PG, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_PRIVATE, 0), 0);
	st = export_of(s, fuzz_key, 3, NULL);
	write_seed(dir, "seed-mixed", 0, &st);
	write_seed(dir, "seed-mixed-fixup", 3, &st);
	free(st.p);
	assert_int_equal(gm_store_destroy(s), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_import_replaces),
		cmocka_unit_test(test_sparse),
		cmocka_unit_test(test_no_private_byte_in_clear),
		cmocka_unit_test(test_every_byte_flip_fails),
		cmocka_unit_test(test_every_truncation_fails),
		cmocka_unit_test(test_reordered_duplicated_missing),
		cmocka_unit_test(test_malformed_with_valid_macs),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_replay_from_other_export),
		cmocka_unit_test(test_other_size_or_version),
		cmocka_unit_test(test_failure_wipes_destination),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_export_holds_off_conversions),
		cmocka_unit_test(test_fuzz_seeds),
	};

	tu_init(argc, argv, "test_snapshot");
	return cmocka_run_group_tests_name(tu_group("test_snapshot"), tests,
					   setup, NULL);
}
