// SPDX-License-Identifier: MIT
/*
 * Extent map chunks (see extent_map_int.h): the boundaries of CHUNK_PAGES
 * pages, inline, as a sorted array or as a bitmap of the pages' values;
 * reading one chunk, changing it and moving it between the forms.
 */
#include <errno.h>
#include <string.h>

#include "extent_map_int.h"

static uint16_t *chunk_offsets(struct chunk *c)
{
	return c->kind == CK_INLINE ? c->inl : c->arr;
}

void emap_chunk_missing(struct chunk *d, uint8_t val)
{
	memset(d, 0, sizeof(*d));
	d->kind = CK_INLINE;
	d->in = val;
}

/* Word w of a bitmap chunk's boundaries (bit o set: boundary at o). */
static uint64_t bits_trans(const struct chunk *c, unsigned int w)
{
	uint64_t prev = w ? c->bits[w - 1] >> 63 : c->in;

	return c->bits[w] ^ ((c->bits[w] << 1) | prev);
}

int emap_chunk_last_le(const struct chunk *c, unsigned int off)
{
	if (c->kind != CK_BITMAP) {
		unsigned int i = ub16(chunk_offsets_c(c), c->nr, off);

		return i ? chunk_offsets_c(c)[i - 1] : -1;
	}
	for (int w = off / 64; w >= 0; w--) {
		uint64_t t = bits_trans(c, w);

		if ((unsigned int)w == off / 64 && off % 64 != 63)
			t &= (2ULL << (off % 64)) - 1;
		if (t)
			return w * 64 + 63 - __builtin_clzll(t);
	}
	return -1;
}

int emap_chunk_first_gt(const struct chunk *c, int off)
{
	unsigned int from = off + 1;

	if (from >= CHUNK_PAGES)
		return -1;
	if (c->kind != CK_BITMAP) {
		unsigned int i = lb16(chunk_offsets_c(c), c->nr, from);

		return i < c->nr ? chunk_offsets_c(c)[i] : -1;
	}
	for (unsigned int w = from / 64; w < BITMAP_WORDS; w++) {
		uint64_t t = bits_trans(c, w);

		if (w == from / 64)
			t &= ~0ULL << (from % 64);
		if (t)
			return w * 64 + __builtin_ctzll(t);
	}
	return -1;
}

void emap_bits_fill(uint64_t *bits, unsigned int from, unsigned int to,
		    uint8_t v)
{
	while (from < to) {
		unsigned int w = from / 64, b = from % 64;
		unsigned int n = to - from < 64 - b ? to - from : 64 - b;
		uint64_t mask = (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << b;

		if (v)
			bits[w] |= mask;
		else
			bits[w] &= ~mask;
		from += n;
	}
}

unsigned int emap_bits_count(const struct chunk *c)
{
	unsigned int n = 0;

	for (unsigned int w = 0; w < BITMAP_WORDS; w++)
		n += __builtin_popcountll(bits_trans(c, w));
	return n;
}

/* Write the boundaries of a bitmap chunk to out (c->nr of them). */
void emap_bits_extract(const struct chunk *c, uint16_t *out)
{
	unsigned int n = 0;

	for (unsigned int w = 0; w < BITMAP_WORDS; w++) {
		uint64_t t = bits_trans(c, w);

		while (t) {
			out[n++] = w * 64 + __builtin_ctzll(t);
			t &= t - 1;
		}
	}
}

void emap_chunk_render(const struct chunk *c, uint64_t *buf)
{
	const uint16_t *a = chunk_offsets_c(c);
	unsigned int pos = 0;
	uint8_t v = c->in;

	if (c->kind == CK_BITMAP) {
		memcpy(buf, c->bits, BUF_BYTES);
		return;
	}
	for (unsigned int i = 0; i < c->nr; i++) {
		emap_bits_fill(buf, pos, a[i], v);
		v ^= 1;
		pos = a[i];
	}
	emap_bits_fill(buf, pos, CHUNK_PAGES, v);
}

void emap_chunk_release(struct emap *m, struct chunk *c)
{
	if (c->kind == CK_ARRAY)
		emap_array_free(m, c->arr, c->cap);
	else if (c->kind == CK_BITMAP)
		emap_buf_put(m, c->bits);
}

/* Turn an inline or array chunk into a bitmap (buf: BUF_BYTES). */
static void chunk_to_bitmap(struct emap *m, struct chunk *c, uint64_t *buf)
{
	emap_chunk_render(c, buf);
	if (c->kind == CK_ARRAY)
		emap_array_free(m, c->arr, c->cap);
	c->kind = CK_BITMAP;
	c->bits = buf;
}

/* Move a chunk of at most INLINE_MAX boundaries into its entry. */
static void chunk_to_inline(struct emap *m, struct chunk *c)
{
	uint16_t tmp[INLINE_MAX];

	if (c->kind == CK_BITMAP) {
		emap_bits_extract(c, tmp);
		emap_buf_put(m, c->bits);
	} else {
		memcpy(tmp, c->arr, c->nr * sizeof(uint16_t));
		emap_array_free(m, c->arr, c->cap);
	}
	c->kind = CK_INLINE;
	memcpy(c->inl, tmp, c->nr * sizeof(uint16_t));
}

/* The array capacity to trim a chunk of nr boundaries to. */
static unsigned int ideal_cap(unsigned int nr)
{
	unsigned int cap = (nr + 2 + 7) & ~7u;

	return cap < ARRAY_MAX ? cap : ARRAY_MAX;
}

bool emap_chunk_oversized(const struct chunk *c)
{
	if (c->kind == CK_BITMAP)
		return c->nr <= ARRAY_LOW;
	return c->kind == CK_ARRAY && c->cap > ideal_cap(c->nr) + 8;
}

static void bitmap_set(struct chunk *c, unsigned int lo, unsigned int hi,
		       uint8_t val, uint8_t new_in)
{
	emap_bits_fill(c->bits, lo, hi, val);
	c->in = new_in;
	c->nr = emap_bits_count(c);
}

/*
 * Set offsets [lo, hi) of chunk c to val, and the value before it to new_in
 * (which may differ from c->in only when lo == 0). hi == CHUNK_PAGES: to the
 * end of the chunk. Takes what it needs from the reserve; c->nr == 0 after
 * it means the chunk is empty (and holds nothing) and must go. The chunk may
 * be left oversized (emap_chunk_oversized()) for emap_chunk_trim() to fix.
 */
void emap_chunk_set(struct emap *m, struct chunk *c, unsigned int lo,
		    unsigned int hi, uint8_t val, uint8_t new_in)
{
	uint16_t nb[2], *a;
	unsigned int k = 0, n = c->nr, cap, i0, i1, nn;

	if (c->kind == CK_BITMAP) {
		bitmap_set(c, lo, hi, val, new_in);
		goto out;
	}
	a = chunk_offsets(c);
	cap = c->kind == CK_INLINE ? INLINE_MAX : c->cap;
	if (lo < hi) {
		uint8_t left = lo ? chunk_value(c, lo - 1) : new_in;

		if (left != val)
			nb[k++] = lo;
	}
	if (hi < CHUNK_PAGES) {
		uint8_t prev = lo < hi ? val :
			       hi      ? chunk_value(c, hi - 1) :
					 new_in;

		if (chunk_value(c, hi) != prev)
			nb[k++] = hi;
	}
	i0 = lb16(a, n, lo);
	i1 = hi < CHUNK_PAGES ? ub16(a, n, hi) : n;
	nn = n - (i1 - i0) + k;

	if (nn > ARRAY_MAX) {
		chunk_to_bitmap(m, c, emap_buf_take(m));
		bitmap_set(c, lo, hi, val, new_in);
		goto out;
	}
	if (nn > cap) {
		uint16_t *na = emap_buf_take(m);

		memcpy(na, a, i0 * sizeof(uint16_t));
		memcpy(na + i0, nb, k * sizeof(uint16_t));
		memcpy(na + i0 + k, a + i1, (n - i1) * sizeof(uint16_t));
		if (c->kind == CK_ARRAY)
			emap_array_free(m, c->arr, c->cap);
		c->kind = CK_ARRAY;
		c->arr = na;
		c->cap = ARRAY_MAX;
	} else {
		memmove(a + i0 + k, a + i1, (n - i1) * sizeof(uint16_t));
		memcpy(a + i0, nb, k * sizeof(uint16_t));
	}
	c->nr = nn;
	c->in = new_in;
out:
	if (c->nr == 0) {
		emap_chunk_release(m, c);
		c->kind = CK_INLINE;
	} else if (c->nr <= INLINE_MAX && c->kind != CK_INLINE) {
		chunk_to_inline(m, c);
	}
}

/*
 * Bring an oversized chunk back to its best form: 0, or -ENOMEM with the
 * chunk unchanged. Not for emap_set(): this allocates.
 */
int emap_chunk_trim(struct emap *m, struct chunk *c)
{
	unsigned int cap = ideal_cap(c->nr);
	uint16_t *na;

	na = cap == ARRAY_MAX ? emap_buf_alloc(m) :
				emap_mem_alloc(m, cap * sizeof(uint16_t));
	if (!na)
		return -ENOMEM;
	if (c->kind == CK_BITMAP) {
		emap_bits_extract(c, na);
		emap_buf_put(m, c->bits);
	} else {
		memcpy(na, c->arr, c->nr * sizeof(uint16_t));
		emap_array_free(m, c->arr, c->cap);
	}
	c->kind = CK_ARRAY;
	c->arr = na;
	c->cap = cap;
	return 0;
}
