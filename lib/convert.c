// SPDX-License-Identifier: MIT
/*
 * Conversion between shared and private, in place or destructive, all or
 * nothing. The steps, under the store's write lock:
 *   1. nothing to change: done;
 *   2. to private: no page of the range may be pinned (-EBUSY);
 *   3. listeners prepare each changed sub-range (a veto aborts);
 *   4. tracking memory is reserved, so that the state flip cannot fail;
 *   5. to private: the host view closes the changed pages;
 *   6. destructive: the changed pages are discarded (punched);
 *   7. the state flips (cannot fail), the view opens new shared pages
 *      (unless lazy; best effort), listeners commit.
 * A failure at steps 2-6 undoes the steps before it. Only discarded
 * contents cannot come back: step 6 punches sub-range after sub-range, so
 * if discarding sub-range k fails, sub-ranges before k stay discarded (their
 * state does not change). A failing punch is first retried by zeroing the
 * pages through a transient mapping.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "opts.h"

#define DEFAULT_REVOKE_TIMEOUT_NS (100ull * 1000 * 1000)

struct conversion {
	struct gm_store *store;
	uint64_t p0, p1; /* pages */
	uint8_t from, to;
	unsigned int flags;
	/* the maximal sub-ranges whose state changes, in pages */
	struct gm_range *chg;
	size_t nr_chg;
	struct gm_range inline_chg[8];
};

static struct gm_range_change change_of(const struct conversion *c, size_t i)
{
	return (struct gm_range_change){
		.sz = sizeof(struct gm_range_change),
		.off = c->chg[i].start << GM_PAGE_SHIFT,
		.len = (c->chg[i].end - c->chg[i].start) << GM_PAGE_SHIFT,
		.from = c->from,
		.to = c->to,
		.flags = c->flags,
	};
}

/* Collect the changed sub-ranges: the extents of state `from` in range. */
static int find_changes(struct conversion *c)
{
	size_t cap = sizeof(c->inline_chg) / sizeof(c->inline_chg[0]);
	uint64_t pos = c->p0, S, E;
	uint8_t v;

	c->chg = c->inline_chg;
	c->nr_chg = 0;
	while (pos < c->p1) {
		emap_extent(c->store->attrs, pos, &S, &E, &v);
		S = S > pos ? S : pos;
		E = E < c->p1 ? E : c->p1;
		pos = E;
		if (v != c->from)
			continue;
		if (c->nr_chg == cap) {
			struct gm_range *r;

			cap *= 4;
			r = c->chg == c->inline_chg ?
				    malloc(cap * sizeof(*r)) :
				    realloc(c->chg, cap * sizeof(*r));
			if (!r)
				return -ENOMEM;
			if (c->chg == c->inline_chg)
				memcpy(r, c->inline_chg, sizeof(c->inline_chg));
			c->chg = r;
		}
		c->chg[c->nr_chg++] = (struct gm_range){ S, E };
	}
	return 0;
}

/* Abort the first n changes, which every listener prepared. */
static void abort_prepared(const struct conversion *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct gm_range_change ch = change_of(c, i);

		gm_listeners_abort(c->store, &ch, NULL);
	}
}

static int prepare_listeners(const struct conversion *c, uint64_t *err_off)
{
	struct gm_store *store = c->store;
	struct gm_listener *failed;
	int ret;

	if (!store->listeners)
		return 0;
	for (size_t i = 0; i < c->nr_chg; i++) {
		struct gm_range_change ch = change_of(c, i);

		ret = gm_listeners_prepare(store, &ch, &failed);
		if (ret) {
			gm_listeners_abort(store, &ch, failed);
			abort_prepared(c, i);
			*err_off = ch.off;
			gm_stat_add(&store->stats.vetoes, 1);
			return gm_error(ret,
					"gm_convert: a listener vetoed the "
					"change of [0x%llx, 0x%llx)",
					(unsigned long long)ch.off,
					(unsigned long long)(ch.off + ch.len));
		}
	}
	return 0;
}

/* Whether [off, off + len) of the backing holds no page at all. */
static bool is_hole(struct gm_store *store, uint64_t off, uint64_t len)
{
	off_t data = lseek(store->fd, (off_t)off, SEEK_DATA);

	return (data < 0 && errno == ENXIO) ||
	       (data >= 0 && (uint64_t)data >= off + len);
}

/*
 * Write zeroes over [off, off + len) of a memfd that is not hugetlb: no
 * mapping at all, and a THP folio is written in place, not split. -1 and
 * errno on failure (the caller then zeroes through a window).
 */
static int write_zeroes(struct gm_store *store, uint64_t off, uint64_t len)
{
	static const uint8_t zeroes[64 * 1024];

	while (len) {
		size_t n = len < sizeof(zeroes) ? len : sizeof(zeroes);
		ssize_t w = pwrite(store->fd, zeroes, n, (off_t)off);

		if (w <= 0)
			return -1;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

static int zero_pages(struct gm_store *store, uint64_t off, uint64_t len)
{
	int ret = gm_fault(store, GM_FAULT_ZERO_WINDOW);
	void *w;

	if (ret)
		return ret;
	if (is_hole(store, off, len))
		return 0;
	/* guest_memfd and hugetlbfs take no write(): a window there */
	if (store->backing == GM_BACKING_MEMFD &&
	    store->pages != GM_PAGES_HUGETLB_2M &&
	    store->pages != GM_PAGES_HUGETLB_1G &&
	    !write_zeroes(store, off, len))
		return 0;
	w = gm_map_window(store, off, len);
	if (!w)
		return -errno;
	memset(w, 0, len);
	gm_unmap_window(store, w, off, len);
	return 0;
}

/* Punch [off, off + len), whole backing pages; zero it if that fails. */
static int punch(struct gm_store *store, uint64_t off, uint64_t len)
{
	int ret = gm_fault(store, GM_FAULT_PUNCH);

	if (!ret &&
	    fallocate(store->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      off, len))
		ret = -errno;
	return ret ? zero_pages(store, off, len) : 0;
}

/*
 * Discard [off, off + len): the whole huge pages in it are punched; the
 * 4 KiB pages of a huge page partly in it are zeroed instead, so that the
 * backing's huge page is never split (THP) or cannot be (hugetlb).
 */
static int discard_range(struct gm_store *store, uint64_t off, uint64_t len)
{
	uint64_t h = store->huge_size, end = off + len;
	uint64_t head = (off + h - 1) & ~(h - 1), tail = end & ~(h - 1);
	int ret;

	if (head >= tail)
		return h == GM_PAGE_SIZE ? punch(store, off, len) :
					   zero_pages(store, off, len);
	ret = head > off ? zero_pages(store, off, head - off) : 0;
	if (!ret)
		ret = punch(store, head, tail - head);
	if (!ret && end > tail)
		ret = zero_pages(store, tail, end - tail);
	return ret;
}

static int discard(const struct conversion *c, uint64_t *err_off)
{
	struct gm_store *store = c->store;
	int ret;

	for (size_t i = 0; i < c->nr_chg; i++) {
		struct gm_range_change ch = change_of(c, i);

		ret = discard_range(store, ch.off, ch.len);
		if (ret) {
			*err_off = ch.off;
			return gm_error(ret,
					"gm_convert: discarding [0x%llx, "
					"0x%llx) failed",
					(unsigned long long)ch.off,
					(unsigned long long)(ch.off + ch.len));
		}
	}
	return 0;
}

static uint64_t changed_pages(const struct conversion *c)
{
	uint64_t n = 0;

	for (size_t i = 0; i < c->nr_chg; i++)
		n += c->chg[i].end - c->chg[i].start;
	return n;
}

/* Flip the state (cannot fail after the reserve), then tell the others. */
static void commit(const struct conversion *c)
{
	struct gm_store *store = c->store;
	bool open =
		c->to == GM_ATTR_SHARED && !(store->flags & GM_STORE_VIEW_LAZY);

	emap_set(store->attrs, c->p0, c->p1, c->to);
	if (c->to == GM_ATTR_PRIVATE)
		store->nr_private += changed_pages(c);
	else
		store->nr_private -= changed_pages(c);
	for (size_t i = 0; i < c->nr_chg; i++) {
		struct gm_range_change ch = change_of(c, i);

		if (open)
			gm_view_open_pages(store, c->chg[i].start,
					   c->chg[i].end);
		gm_listeners_commit(store, &ch);
	}
}

static void count(struct gm_store *store, const struct conversion *c,
		  uint64_t changed, uint64_t t0)
{
	struct gm_stats *s = &store->stats;

	if (c->to == GM_ATTR_PRIVATE) {
		gm_stat_add(&s->to_private_requests, 1);
		gm_stat_add(&s->to_private_pages, changed);
	} else {
		gm_stat_add(&s->to_shared_requests, 1);
		gm_stat_add(&s->to_shared_pages, changed);
	}
	if (c->flags & GM_CONVERT_DESTRUCTIVE) {
		gm_stat_add(&s->destructive_requests, 1);
		gm_stat_add(&s->destructive_pages, changed);
	}
	if (!changed)
		gm_stat_add(&s->noop_requests, 1);
	gm_stat_add(&s->convert_ns, gm_now_ns() - t0);
}

static int check_args(struct gm_store *store, uint64_t off, uint64_t len,
		      enum gm_attr to, unsigned int flags,
		      const struct gm_convert_opts *opts)
{
	const unsigned int known = GM_CONVERT_DESTRUCTIVE | GM_CONVERT_REVOKE;
	int ret;

	ret = gm_check_range(store, off, len, "gm_convert");
	if (!ret)
		ret = gm_check_attr(to, "gm_convert");
	if (!ret && (flags & ~known))
		ret = gm_error(-EINVAL, "gm_convert: unknown flags 0x%x",
			       flags & ~known);
	if (!ret && opts)
		ret = GM_OPTS_CHECK(opts, "gm_convert: opts");
	if (!ret)
		ret = gm_check_reentry(store, "gm_convert");
	return ret;
}

/*
 * hugetlb: the view closes whole huge pages, so a hold of the view keeps
 * every page of its huge pages from becoming private.
 */
static bool held_huge_page(struct gm_store *store, uint64_t p0, uint64_t p1,
			   uint64_t *err_off)
{
	uint64_t g = store->granule;

	if (g == 1 ||
	    !gm_view_held(store, p0 & ~(g - 1), (p1 + g - 1) & ~(g - 1)))
		return false;
	*err_off = (p0 & ~(g - 1)) << GM_PAGE_SHIFT;
	return true;
}

/* Steps 1-7 of the header comment; the write lock is held. */
static int convert_locked(struct conversion *c, uint64_t *err_off)
{
	struct gm_view_log closed = { 0 };
	struct gm_store *store = c->store;
	uint64_t pinned;
	int ret;

	if (gm_attr_find_not(store, c->p0, c->p1, c->to) == c->p1)
		return 0;
	if (c->to == GM_ATTR_PRIVATE) {
		pinned = gm_pins_first_overlap(store, c->p0, c->p1);
		if (pinned != UINT64_MAX) {
			*err_off = pinned;
			return gm_error(-EBUSY,
					"gm_convert: page at 0x%llx is pinned",
					(unsigned long long)pinned);
		}
		if (held_huge_page(store, c->p0, c->p1, err_off))
			return gm_error(-EBUSY,
					"gm_convert: the huge page at 0x%llx "
					"is held open by gm_view_open; on "
					"hugetlb none of its pages can "
					"become private meanwhile",
					(unsigned long long)*err_off);
	}
	ret = gm_fault(store, GM_FAULT_ALLOC);
	if (!ret)
		ret = find_changes(c);
	if (ret)
		return gm_error(ret, "gm_convert: listing the changes");
	ret = prepare_listeners(c, err_off);
	if (ret)
		return ret;
	ret = gm_fault(store, GM_FAULT_ALLOC);
	if (!ret)
		ret = emap_reserve(store->attrs);
	if (ret) {
		gm_error(ret, "gm_convert: reserving tracking memory");
		goto abort;
	}
	if (c->to == GM_ATTR_PRIVATE) {
		ret = gm_view_close_pages(store, c->p0, c->p1, &closed);
		if (ret) {
			gm_error(ret,
				 "gm_convert: closing the host view of "
				 "[0x%llx, 0x%llx)",
				 (unsigned long long)(c->p0 << GM_PAGE_SHIFT),
				 (unsigned long long)(c->p1 << GM_PAGE_SHIFT));
			goto abort;
		}
	}
	if (c->flags & GM_CONVERT_DESTRUCTIVE) {
		ret = discard(c, err_off);
		if (ret)
			goto reopen;
	}
	gm_view_log_free(&closed);
	commit(c);
	return 0;

reopen:
	gm_view_undo_close(store, &closed);
abort:
	abort_prepared(c, c->nr_chg);
	return ret;
}

/* The out fields of opts, those within opts->sz. */
static void report(struct gm_convert_opts *opts, uint64_t error_offset,
		   uint64_t pages_changed)
{
	if (GM_OPTS_HAS(opts, error_offset))
		opts->error_offset = error_offset;
	if (GM_OPTS_HAS(opts, pages_changed))
		opts->pages_changed = pages_changed;
}

int gm_convert_ex(struct gm_store *store, uint64_t off, uint64_t len,
		  enum gm_attr to, unsigned int flags,
		  struct gm_convert_opts *opts)
{
	struct conversion c = {
		.store = store, .to = to, .from = !to, .flags = flags
	};
	uint64_t err_off = off, changed = 0, t0 = gm_now_ns();
	uint64_t timeout;
	int ret;

	ret = check_args(store, off, len, to, flags, opts);
	if (ret) {
		if (store)
			gm_stat_add(&store->stats.failed_requests, 1);
		if (opts)
			report(opts, off, 0);
		return ret;
	}
	c.p0 = off >> GM_PAGE_SHIFT;
	c.p1 = (off + len) >> GM_PAGE_SHIFT;
	timeout = opts ? GM_OPTS_GET(opts, revoke_timeout_ns, 0) : 0;
	if (!timeout)
		timeout = DEFAULT_REVOKE_TIMEOUT_NS;

	if (to == GM_ATTR_PRIVATE && (flags & GM_CONVERT_REVOKE)) {
		ret = gm_pins_revoke(store, c.p0, c.p1, timeout, &err_off);
		if (ret)
			ret = gm_error(ret,
				       "gm_convert: pins on [0x%llx, 0x%llx) "
				       "were not revoked (first at 0x%llx)",
				       (unsigned long long)off,
				       (unsigned long long)(off + len),
				       (unsigned long long)err_off);
	}
	if (!ret) {
		pthread_rwlock_wrlock(&store->lock);
		__atomic_store_n(&store->writer, pthread_self(),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&store->writing, true, __ATOMIC_RELEASE);
		ret = convert_locked(&c, &err_off);
		if (!ret)
			changed = changed_pages(&c);
		__atomic_store_n(&store->writing, false, __ATOMIC_RELEASE);
		pthread_rwlock_unlock(&store->lock);
	}

	if (ret) {
		gm_stat_add(&store->stats.failed_requests, 1);
		if (ret == -EBUSY)
			gm_stat_add(&store->stats.busy_refusals, 1);
	} else {
		count(store, &c, changed, t0);
	}
	if (c.chg != c.inline_chg)
		free(c.chg);
	if (opts)
		report(opts, ret ? err_off : off, changed);
	return ret;
}

int gm_convert(struct gm_store *store, uint64_t off, uint64_t len,
	       enum gm_attr to, unsigned int flags)
{
	return gm_convert_ex(store, off, len, to, flags, NULL);
}
