// SPDX-License-Identifier: MIT
/*
 * The cryptography of the snapshot stream (snapshot.h): per-export keys
 * derived from the caller's, AES-256-GCM per private page, HMAC-SHA256
 * over the header and over the whole stream. libcrypto (OpenSSL 3).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "internal.h"
#include "snapshot.h"

struct snap_crypto {
	EVP_CIPHER_CTX *gcm; /* keyed once; a nonce per page */
	EVP_MAC *hmac;
	EVP_MAC_CTX *stream_mac;
	uint8_t mac_key[SNAP_MAC_SIZE];
};

void snap_header_swap(struct snap_header *h)
{
	h->version = htole32(h->version);
	h->header_size = htole32(h->header_size);
	h->store_size = htole64(h->store_size);
	h->page_size = htole32(h->page_size);
	h->flags = htole32(h->flags);
	h->generation = htole64(h->generation);
	h->nr_extents = htole64(h->nr_extents);
}

void snap_extent_swap(struct snap_extent *e)
{
	e->off = htole64(e->off);
	e->len = htole64(e->len);
	e->attr = htole32(e->attr);
	e->pad = htole32(e->pad);
}

void snap_record_swap(struct snap_record *r)
{
	r->type = htole32(r->type);
	r->attr = htole32(r->attr);
	r->index = htole64(r->index);
	r->off = htole64(r->off);
	r->len = htole64(r->len);
}

static int derive(const uint8_t *key, const char *label,
		  const uint8_t export_id[SNAP_ID_SIZE],
		  uint8_t out[SNAP_MAC_SIZE])
{
	uint8_t msg[32 + SNAP_ID_SIZE];
	size_t n = strlen(label);
	unsigned int len = 0;

	memcpy(msg, label, n);
	memcpy(msg + n, export_id, SNAP_ID_SIZE);
	if (!HMAC(EVP_sha256(), key, GM_SNAPSHOT_KEY_SIZE, msg,
		  n + SNAP_ID_SIZE, out, &len) ||
	    len != SNAP_MAC_SIZE)
		return -EIO;
	return 0;
}

static EVP_MAC_CTX *hmac_ctx(EVP_MAC *hmac, const uint8_t *key)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac);

	if (ctx && EVP_MAC_init(ctx, key, SNAP_MAC_SIZE, params))
		return ctx;
	EVP_MAC_CTX_free(ctx);
	return NULL;
}

struct snap_crypto *snap_crypto_new(const uint8_t *key,
				    const uint8_t export_id[SNAP_ID_SIZE])
{
	struct snap_crypto *c = calloc(1, sizeof(*c));
	uint8_t enc_key[SNAP_MAC_SIZE];
	bool ok;

	if (!c)
		return NULL;
	ok = !derive(key, "gmem snapshot v1 seal", export_id, enc_key) &&
	     !derive(key, "gmem snapshot v1 mac", export_id, c->mac_key);
	c->gcm = EVP_CIPHER_CTX_new();
	c->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ok = ok && c->gcm && c->hmac &&
	     EVP_CipherInit_ex(c->gcm, EVP_aes_256_gcm(), NULL, enc_key, NULL,
			       1) &&
	     EVP_CIPHER_CTX_ctrl(c->gcm, EVP_CTRL_GCM_SET_IVLEN,
				 SNAP_NONCE_SIZE, NULL);
	if (ok)
		c->stream_mac = hmac_ctx(c->hmac, c->mac_key);
	OPENSSL_cleanse(enc_key, sizeof(enc_key));
	if (c->stream_mac)
		return c;
	snap_crypto_free(c);
	errno = ENOMEM;
	return NULL;
}

void snap_crypto_free(struct snap_crypto *c)
{
	if (!c)
		return;
	EVP_CIPHER_CTX_free(c->gcm);
	EVP_MAC_CTX_free(c->stream_mac);
	EVP_MAC_free(c->hmac);
	OPENSSL_cleanse(c->mac_key, sizeof(c->mac_key));
	free(c);
}

int snap_header_mac(struct snap_crypto *c, const struct snap_header *h,
		    uint8_t mac[SNAP_MAC_SIZE])
{
	EVP_MAC_CTX *ctx = hmac_ctx(c->hmac, c->mac_key);
	size_t len = 0;
	bool ok;

	ok = ctx &&
	     EVP_MAC_update(ctx, (const void *)h,
			    offsetof(struct snap_header, mac)) &&
	     EVP_MAC_final(ctx, mac, &len, SNAP_MAC_SIZE) &&
	     len == SNAP_MAC_SIZE;
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int snap_mac_update(struct snap_crypto *c, const void *buf, size_t len)
{
	return EVP_MAC_update(c->stream_mac, buf, len) ? 0 : -EIO;
}

int snap_mac_final(struct snap_crypto *c, uint8_t mac[SNAP_MAC_SIZE])
{
	size_t len = 0;

	return EVP_MAC_final(c->stream_mac, mac, &len, SNAP_MAC_SIZE) &&
			       len == SNAP_MAC_SIZE ?
		       0 :
		       -EIO;
}

/* Nonce and authenticated data of the page of rec, set on c->gcm. */
static int page_start(struct snap_crypto *c, const struct snap_header *h,
		      const struct snap_record *rec, int enc)
{
	uint8_t nonce[SNAP_NONCE_SIZE] = { 0 };
	uint64_t page = htole64(le64toh(rec->off) >> GM_PAGE_SHIFT);
	int outl;

	/* Unique per page of one export; the keys are per export. */
	memcpy(nonce, &page, sizeof(page));
	return EVP_CipherInit_ex(c->gcm, NULL, NULL, NULL, nonce, enc) &&
			       EVP_CipherUpdate(c->gcm, NULL, &outl,
						h->export_id, SNAP_ID_SIZE) &&
			       EVP_CipherUpdate(c->gcm, NULL, &outl,
						(const void *)&h->generation,
						sizeof(h->generation)) &&
			       EVP_CipherUpdate(c->gcm, NULL, &outl,
						(const void *)rec,
						sizeof(*rec)) ?
		       0 :
		       -EIO;
}

int snap_seal_page(struct snap_crypto *c, const struct snap_header *h,
		   const struct snap_record *rec, const void *page,
		   uint8_t *out)
{
	int outl = 0, fin = 0;

	if (page_start(c, h, rec, 1) ||
	    !EVP_CipherUpdate(c->gcm, out, &outl, page, GM_PAGE_SIZE) ||
	    !EVP_CipherFinal_ex(c->gcm, out + outl, &fin) ||
	    outl + fin != (int)GM_PAGE_SIZE ||
	    !EVP_CIPHER_CTX_ctrl(c->gcm, EVP_CTRL_GCM_GET_TAG, SNAP_TAG_SIZE,
				 out + GM_PAGE_SIZE))
		return -EIO;
	return 0;
}

int snap_open_page(struct snap_crypto *c, const struct snap_header *h,
		   const struct snap_record *rec, const uint8_t *in, void *out)
{
	int outl = 0, fin = 0;

	if (page_start(c, h, rec, 0) ||
	    !EVP_CipherUpdate(c->gcm, out, &outl, in, GM_PAGE_SIZE) ||
	    !EVP_CIPHER_CTX_ctrl(c->gcm, EVP_CTRL_GCM_SET_TAG, SNAP_TAG_SIZE,
				 (void *)(in + GM_PAGE_SIZE)))
		return -EIO;
	if (EVP_CipherFinal_ex(c->gcm, (uint8_t *)out + outl, &fin) <= 0)
		return -EBADMSG;
	return 0;
}

bool snap_mac_equal(const uint8_t *a, const uint8_t *b)
{
	return !CRYPTO_memcmp(a, b, SNAP_MAC_SIZE);
}

int snap_check_key_flags(const void *key, size_t key_len, unsigned int flags,
			 const char *what)
{
	if (!key || key_len != GM_SNAPSHOT_KEY_SIZE)
		return gm_error(-EINVAL, "%s: the key must be %d bytes", what,
				GM_SNAPSHOT_KEY_SIZE);
	if (flags)
		return gm_error(-EINVAL, "%s: unknown flags 0x%x", what, flags);
	return 0;
}
