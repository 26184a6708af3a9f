/* SPDX-License-Identifier: MIT */
/*
 * An in-memory stream for gm_store_export / gm_store_import in tests and
 * fuzzers: the write callback appends, the read callback consumes, at most
 * max_read bytes a call when set (to exercise short reads).
 */
#ifndef GMEM_TESTING_MEM_STREAM_H
#define GMEM_TESTING_MEM_STREAM_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

struct stream {
	uint8_t *p;
	size_t len, cap;
	size_t pos; /* read position */
	size_t max_read; /* short reads: at most this many bytes (0: any) */
};

static inline int stream_write(void *opaque, const void *buf, size_t len)
{
	struct stream *s = opaque;

	if (s->len + len > s->cap) {
		size_t cap = (s->len + len) * 2;
		uint8_t *p = realloc(s->p, cap);

		if (!p)
			return -ENOMEM;
		s->p = p;
		s->cap = cap;
	}
	memcpy(s->p + s->len, buf, len);
	s->len += len;
	return 0;
}

static inline ssize_t stream_read(void *opaque, void *buf, size_t len)
{
	struct stream *s = opaque;
	size_t n = s->len - s->pos;

	n = n < len ? n : len;
	if (s->max_read && n > s->max_read)
		n = s->max_read;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	return (ssize_t)n;
}

#endif /* GMEM_TESTING_MEM_STREAM_H */
