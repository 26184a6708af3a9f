// SPDX-License-Identifier: MIT
/*
 * The launch digest: SHA-256 (libcrypto EVP) over, in this order, all
 * integers little-endian (docs/abi.md, "Launch digest"):
 *
 *   tag      "GMVM-LAUNCH\0" (12 bytes), u32 version (1)
 *   pages    u64 count; per loaded page in gpa order:
 *            u64 gpa, u64 length (4096), u32 attribute (0 shared,
 *            1 private), u32 0, the page's 4096 bytes
 *   extents  u64 count; per extent of the attribute map in gpa order:
 *            u64 gpa, u64 length, u32 attribute, u32 0
 *   ranges   u64 count; per hypervisor-visible range in gpa order:
 *            u64 gpa, u64 length
 *   vCPUs    u64 count; per vCPU in index order: u32 index, u32 0,
 *            18 x u64 (rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags),
 *            7 segments (cs ds es fs gs ss tr) of u64 base, u32 limit,
 *            u16 selector, u8 type, present, dpl, db, s, l, g, avl, 2 x u8 0,
 *            gdt and idt as u64 base, u16 limit, 6 x u8 0,
 *            u64 cr0, cr3, cr4, efer
 *
 * Sections come in that order, each once; anything else is -EINVAL.
 * Population writes each region while it is shared and then converts it
 * with gm_convert, the call a guest's CONVERT request ends in: there is no
 * separate pre-launch path into private memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "measure.h"

/* Hash and copy in chunks, so that each page is hashed while cache-hot. */
#define POPULATE_CHUNK (256ull << 10)

enum stage { ST_PAGES, ST_EXTENTS, ST_RANGES, ST_VCPUS, ST_DONE };

struct launch_measure {
	EVP_MD_CTX *ctx;
	enum stage next;
};

/* A little-endian record being put together. */
struct rec {
	uint8_t b[64];
	size_t n;
};

static void put(struct rec *r, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		r->b[r->n++] = (uint8_t)(v >> (8 * i));
}

static int update(struct launch_measure *m, const void *p, size_t len)
{
	if (EVP_DigestUpdate(m->ctx, p, len) != 1) {
		fprintf(stderr, "launch digest: EVP_DigestUpdate failed\n");
		return -EIO;
	}
	return 0;
}

static int update_rec(struct launch_measure *m, const struct rec *r)
{
	return update(m, r->b, r->n);
}

/* Enter section `s` with `count` records: it must be the next one. */
static int section(struct launch_measure *m, enum stage s, uint64_t count)
{
	struct rec r = { .n = 0 };

	if (!m || m->next != s) {
		fprintf(stderr, "launch digest: section %d out of order\n", s);
		return -EINVAL;
	}
	m->next = s + 1;
	put(&r, count, 8);
	return update_rec(m, &r);
}

int launch_measure_begin(struct launch_measure **out)
{
	static const char tag[12] = "GMVM-LAUNCH";
	struct launch_measure *m = calloc(1, sizeof(*m));
	struct rec r = { .n = 0 };

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->ctx = EVP_MD_CTX_new();
	if (!m->ctx || EVP_DigestInit_ex(m->ctx, EVP_sha256(), NULL) != 1) {
		fprintf(stderr, "launch digest: no SHA-256 in libcrypto\n");
		launch_measure_abort(m);
		return -EIO;
	}
	memcpy(r.b, tag, sizeof(tag));
	r.n = sizeof(tag);
	put(&r, LAUNCH_DIGEST_VERSION, 4);
	if (update_rec(m, &r)) {
		launch_measure_abort(m);
		return -EIO;
	}
	*out = m;
	return 0;
}

void launch_measure_abort(struct launch_measure *m)
{
	if (!m)
		return;
	EVP_MD_CTX_free(m->ctx);
	free(m);
}

int launch_measure_end(struct launch_measure *m,
		       uint8_t digest[LAUNCH_DIGEST_SIZE])
{
	unsigned int len = 0;
	int ret = 0;

	if (!m || m->next != ST_DONE) {
		fprintf(stderr, "launch digest: ended before every section\n");
		ret = -EINVAL;
	} else if (EVP_DigestFinal_ex(m->ctx, digest, &len) != 1 ||
		   len != LAUNCH_DIGEST_SIZE) {
		fprintf(stderr, "launch digest: EVP_DigestFinal_ex failed\n");
		ret = -EIO;
	}
	launch_measure_abort(m);
	return ret;
}

static uint32_t attr_code(enum gm_attr a)
{
	return a == GM_ATTR_PRIVATE ? 1 : 0;
}

static int cmp_region(const void *a, const void *b)
{
	const struct launch_region *x = a, *y = b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static int write_and_hash(struct launch_measure *m, struct gm_store *store,
			  const struct launch_region *r)
{
	const uint8_t *data = r->data;

	for (uint64_t off = 0; off < r->len; off += POPULATE_CHUNK) {
		uint64_t n = r->len - off < POPULATE_CHUNK ? r->len - off :
							     POPULATE_CHUNK;
		int ret = gm_write(store, r->gpa + off, data + off, n);

		if (ret < 0) {
			fprintf(stderr,
				"launch: writing gpa 0x%llx (%llu bytes): %s\n",
				(unsigned long long)(r->gpa + off),
				(unsigned long long)n, gm_last_error());
			return ret;
		}
		for (uint64_t p = 0; p < n; p += GM_PAGE_SIZE) {
			struct rec h = { .n = 0 };

			put(&h, r->gpa + off + p, 8);
			put(&h, GM_PAGE_SIZE, 8);
			put(&h, attr_code(r->attr), 4);
			put(&h, 0, 4);
			ret = update_rec(m, &h);
			if (!ret)
				ret = update(m, data + off + p, GM_PAGE_SIZE);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int convert(struct gm_store *store, const struct launch_region *r,
		   enum gm_attr to)
{
	int ret = gm_convert(store, r->gpa, r->len, to, 0);

	if (ret)
		fprintf(stderr,
			"launch: converting gpa 0x%llx (%llu bytes) to %s: "
			"%s\n",
			(unsigned long long)r->gpa, (unsigned long long)r->len,
			to == GM_ATTR_PRIVATE ? "private" : "shared",
			gm_last_error());
	return ret;
}

int launch_populate(struct launch_measure *m, struct gm_store *store,
		    struct launch_region *regions, unsigned int nr)
{
	uint64_t pages = 0;
	int ret;

	if (!store || (nr && !regions))
		return -EINVAL;
	qsort(regions, nr, sizeof(*regions), cmp_region);
	for (unsigned int i = 0; i < nr; i++) {
		const struct launch_region *r = &regions[i];

		if (!r->len || !r->data || (r->gpa | r->len) % GM_PAGE_SIZE ||
		    r->gpa + r->len < r->gpa ||
		    (r->attr != GM_ATTR_SHARED && r->attr != GM_ATTR_PRIVATE) ||
		    (i && regions[i - 1].gpa + regions[i - 1].len > r->gpa)) {
			fprintf(stderr,
				"launch: bad or overlapping region at gpa "
				"0x%llx (%llu bytes)\n",
				(unsigned long long)r->gpa,
				(unsigned long long)r->len);
			return -EINVAL;
		}
		pages += r->len / GM_PAGE_SIZE;
	}
	ret = section(m, ST_PAGES, pages);
	for (unsigned int i = 0; !ret && i < nr; i++) {
		ret = convert(store, &regions[i], GM_ATTR_SHARED);
		if (!ret)
			ret = write_and_hash(m, store, &regions[i]);
		if (!ret && regions[i].attr != GM_ATTR_SHARED)
			ret = convert(store, &regions[i], regions[i].attr);
	}
	return ret;
}

int launch_measure_attr_map(struct launch_measure *m, struct gm_store *store)
{
	uint64_t size = gm_store_size(store), off = 0;
	int ret = section(m, ST_EXTENTS, gm_extent_count(store));

	while (!ret && off < size) {
		struct gm_extent e = { .sz = sizeof(e) };
		struct rec r = { .n = 0 };

		ret = gm_extent_at(store, off, &e);
		if (ret || !e.len) {
			fprintf(stderr, "launch digest: extent at 0x%llx: %s\n",
				(unsigned long long)off, gm_last_error());
			return ret ? ret : -EIO;
		}
		put(&r, e.off, 8);
		put(&r, e.len, 8);
		put(&r, attr_code(e.attr), 4);
		put(&r, 0, 4);
		ret = update_rec(m, &r);
		off = e.off + e.len;
	}
	return ret;
}

static int cmp_range(const void *a, const void *b)
{
	const struct launch_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int launch_measure_ranges(struct launch_measure *m, struct launch_range *rs,
			  unsigned int nr)
{
	int ret = section(m, ST_RANGES, nr);

	if (nr)
		qsort(rs, nr, sizeof(*rs), cmp_range);
	for (unsigned int i = 0; !ret && i < nr; i++) {
		struct rec r = { .n = 0 };

		put(&r, rs[i].start, 8);
		put(&r, rs[i].end - rs[i].start, 8);
		ret = update_rec(m, &r);
	}
	return ret;
}

static void put_segment(struct rec *r, const struct kvm_segment *s)
{
	put(r, s->base, 8);
	put(r, s->limit, 4);
	put(r, s->selector, 2);
	put(r, s->type, 1);
	put(r, s->present, 1);
	put(r, s->dpl, 1);
	put(r, s->db, 1);
	put(r, s->s, 1);
	put(r, s->l, 1);
	put(r, s->g, 1);
	put(r, s->avl, 1);
	put(r, 0, 2);
}

static void put_dtable(struct rec *r, const struct kvm_dtable *d)
{
	put(r, d->base, 8);
	put(r, d->limit, 2);
	put(r, 0, 6);
}

static int measure_vcpu(struct launch_measure *m, unsigned int index,
			const struct launch_vcpu *v)
{
	const struct kvm_regs *g = &v->regs;
	const uint64_t gprs[18] = {
		g->rax, g->rbx, g->rcx, g->rdx, g->rsi, g->rdi,
		g->rsp, g->rbp, g->r8,	g->r9,	g->r10, g->r11,
		g->r12, g->r13, g->r14, g->r15, g->rip, g->rflags,
	};
	const struct kvm_segment *segs[7] = { &v->cs, &v->ds, &v->es, &v->fs,
					      &v->gs, &v->ss, &v->tr };
	struct rec r = { .n = 0 };
	int ret;

	put(&r, index, 4);
	put(&r, 0, 4);
	for (unsigned int i = 0; i < 18; i++) {
		put(&r, gprs[i], 8);
		if (r.n > sizeof(r.b) - 8) {
			ret = update_rec(m, &r);
			if (ret)
				return ret;
			r.n = 0;
		}
	}
	ret = update_rec(m, &r);
	for (unsigned int i = 0; !ret && i < 7; i++) {
		r.n = 0;
		put_segment(&r, segs[i]);
		ret = update_rec(m, &r);
	}
	if (ret)
		return ret;
	r.n = 0;
	put_dtable(&r, &v->gdt);
	put_dtable(&r, &v->idt);
	put(&r, v->cr0, 8);
	put(&r, v->cr3, 8);
	put(&r, v->cr4, 8);
	put(&r, v->efer, 8);
	return update_rec(m, &r);
}

int launch_measure_vcpus(struct launch_measure *m,
			 const struct launch_vcpu *vcpus, unsigned int nr)
{
	int ret = section(m, ST_VCPUS, nr);

	for (unsigned int i = 0; !ret && i < nr; i++)
		ret = measure_vcpu(m, i, &vcpus[i]);
	return ret;
}

void launch_digest_hex(const uint8_t digest[LAUNCH_DIGEST_SIZE],
		       char out[2 * LAUNCH_DIGEST_SIZE + 1])
{
	for (unsigned int i = 0; i < LAUNCH_DIGEST_SIZE; i++) {
		out[2 * i] = "0123456789abcdef"[digest[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[digest[i] & 15];
	}
	out[2 * LAUNCH_DIGEST_SIZE] = 0;
}
