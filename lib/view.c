// SPDX-License-Identifier: MIT
/*
 * The host view: the store's address range in this process. An open page
 * is mapped read/write from the store's fd; a closed page (every private
 * page, and shared pages not opened yet) is not mapped from the fd at all:
 * an anonymous PROT_NONE reservation holds its place, so neither a stray
 * pointer nor a forced read (/proc/<pid>/mem, ptrace) nor a core dump
 * reaches its bytes. Each run of equal state costs the process a mapping
 * (VMA), so the number of runs is kept under a budget: a shared page that
 * cannot be opened within it stays closed and is reached through a
 * transient mapping instead (gm_window_copy, pins).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

static void *page_addr(struct gm_store *store, uint64_t page)
{
	return store->view + (page << GM_PAGE_SHIFT);
}

/* An anonymous PROT_NONE reservation over [at, at + len): no store byte. */
static void *reserve(void *at, uint64_t len)
{
	return gm_reserve(at, len, 0);
}

static uint64_t round_down(uint64_t page, uint64_t granule)
{
	return page & ~(granule - 1);
}

static uint64_t round_up(uint64_t page, uint64_t granule)
{
	return (page + granule - 1) & ~(granule - 1);
}

int gm_view_init(struct gm_store *store)
{
	bool open = (store->flags & GM_STORE_INIT_SHARED) &&
		    !(store->flags & GM_STORE_VIEW_LAZY);
	void *view;
	int ret;

	/* Aligned to the backing's page, so that huge pages map huge. */
	view = gm_reserve(NULL, store->size, store->huge_size);
	if (!view)
		return gm_error(-errno, "host view: reserving %llu bytes",
				(unsigned long long)store->size);
	store->view = view;
	if (open && !gm_map_store(store, view, 0, store->size))
		return gm_error(-errno, "host view: mmap of %llu bytes",
				(unsigned long long)store->size);
	ret = emap_create(store->npages, open ? VIEW_OPEN : VIEW_CLOSED,
			  &store->view_map);
	if (ret)
		return gm_error(ret, "host view: extent map");
	return 0;
}

void gm_view_fini(struct gm_store *store)
{
	if (store->view != MAP_FAILED)
		munmap(store->view, store->size);
	if (store->view_map)
		emap_destroy(store->view_map);
	free(store->hv);
}

/*
 * How the number of view extents changes if [s, e), a part of the extent
 * [S, E), takes the other value: a cut side adds an extent, an uncut side
 * with a neighbour merges into it.
 */
static int64_t extent_delta(struct gm_store *store, uint64_t s, uint64_t e,
			    uint64_t S, uint64_t E)
{
	int64_t delta = 0;

	delta += s > S ? 1 : (S > 0 ? -1 : 0);
	delta += e < E ? 1 : (E < store->npages ? -1 : 0);
	return delta;
}

static bool within_budget(struct gm_store *store, int64_t delta)
{
	return (int64_t)emap_nr_extents(store->view_map) + delta <=
	       (int64_t)store->view_budget;
}

/*
 * The view could not be put back after a failed change: a mapping of the
 * store's fd may remain where the view map says closed, or the range may
 * be a hole another mapping could take. Either would let a later private
 * page be reached, so stop here, loudly.
 */
static void view_broken(void *at, uint64_t len, int err)
{
	fprintf(stderr,
		"libgmem: the host view at %p (+%llu bytes) could not be "
		"restored after a failed mmap (%s); aborting rather than "
		"leaving guest memory mapped where it must not be\n",
		at, (unsigned long long)len, strerror(-err));
	abort();
}

/*
 * Open [s, e): map it from the fd. Close it: put the reservation back. An
 * open that fails puts the reservation back, so that no failure leaves a
 * page mapped from the fd.
 */
static int remap(struct gm_store *store, uint64_t s, uint64_t e, bool open)
{
	uint64_t len = (e - s) << GM_PAGE_SHIFT;
	void *at = page_addr(store, s);
	int err;

	gm_stat_add(&store->stats.view_mprotects, 1);
	if (!open)
		return reserve(at, len) ? 0 : -errno;
	if (gm_map_store(store, at, s << GM_PAGE_SHIFT, len))
		return 0;
	err = -errno;
	if (!reserve(at, len))
		view_broken(at, len, -errno);
	return err;
}

/* Open [s, e), all closed; 0 or a negative errno with the view unchanged. */
static int open_piece(struct gm_store *store, uint64_t s, uint64_t e)
{
	int ret = gm_fault(store, GM_FAULT_VIEW_OPEN);

	if (!ret)
		ret = emap_reserve(store->view_map);
	if (!ret)
		ret = remap(store, s, e, true);
	if (ret)
		return ret;
	emap_set(store->view_map, s, e, VIEW_OPEN);
	gm_huge_view_changed(store, s, e, false);
	return 0;
}

/* Open what is closed of [start, end) within the budget; view_lock held. */
static uint64_t open_pages(struct gm_store *store, uint64_t start, uint64_t end)
{
	uint64_t left = 0, S, E, s, e;
	uint8_t v;

	for (s = start; s < end; s = e) {
		emap_extent(store->view_map, s, &S, &E, &v);
		e = E < end ? E : end;
		if (v == VIEW_OPEN)
			continue;
		if (!within_budget(store, extent_delta(store, s, e, S, E)) ||
		    open_piece(store, s, e))
			left += e - s;
	}
	return left;
}

static bool pages_open_locked(struct gm_store *store, uint64_t start,
			      uint64_t end)
{
	uint64_t S, E;
	uint8_t v = VIEW_OPEN;

	for (; start < end && v == VIEW_OPEN; start = E)
		emap_extent(store->view_map, start, &S, &E, &v);
	return v == VIEW_OPEN;
}

/*
 * On hugetlb the view changes by whole huge pages: one opens only when all
 * of it is shared. The pages of [start, end) in the others stay closed.
 */
static uint64_t open_locked(struct gm_store *store, uint64_t start,
			    uint64_t end)
{
	uint64_t g = store->granule, left = 0, gs, s, e;

	if (g == 1)
		return open_pages(store, start, end);
	for (gs = round_down(start, g); gs < end; gs += g) {
		s = gs > start ? gs : start;
		e = gs + g < end ? gs + g : end;
		if (pages_open_locked(store, s, e))
			continue;
		if (gm_attr_find_not(store, gs, gs + g, GM_ATTR_SHARED) <
			    gs + g ||
		    open_pages(store, gs, gs + g))
			left += e - s;
	}
	return left;
}

uint64_t gm_view_open_pages(struct gm_store *store, uint64_t start,
			    uint64_t end)
{
	uint64_t left;

	/* Pages already open (the common case) need no exclusive lock. */
	if (gm_view_pages_open(store, start, end))
		return 0;
	pthread_rwlock_wrlock(&store->view_lock);
	left = open_locked(store, start, end);
	pthread_rwlock_unlock(&store->view_lock);
	return left;
}

int gm_view_open_all(struct gm_store *store, uint64_t start, uint64_t end)
{
	uint64_t left;

	pthread_rwlock_wrlock(&store->view_lock);
	left = open_locked(store, start, end);
	pthread_rwlock_unlock(&store->view_lock);
	return left ? -ENOSPC : 0;
}

bool gm_view_pages_open(struct gm_store *store, uint64_t start, uint64_t end)
{
	bool open;

	pthread_rwlock_rdlock(&store->view_lock);
	open = pages_open_locked(store, start, end);
	pthread_rwlock_unlock(&store->view_lock);
	return open;
}

/*
 * The holds of the view are the pins that hold it (view_held): pins.c
 * links them in store->pins, which the view reads under pin_lock.
 */
static int found_hold(struct pin_node *n, void *arg)
{
	if (!gm_pin_of(n)->view_held)
		return 0;
	*(bool *)arg = true;
	return 1;
}

bool gm_view_held(struct gm_store *store, uint64_t start, uint64_t end)
{
	bool held = false;

	pthread_mutex_lock(&store->pin_lock);
	pin_tree_visit(&store->pins, start, end, found_hold, &held);
	pthread_mutex_unlock(&store->pin_lock);
	return held;
}

static int log_add(struct gm_view_log *log, uint64_t s, uint64_t e)
{
	if (log->nr == log->cap) {
		size_t cap = log->cap ? log->cap * 2 : 16;
		struct gm_range *r = realloc(log->r, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		log->r = r;
		log->cap = cap;
	}
	log->r[log->nr++] = (struct gm_range){ s, e };
	return 0;
}

/*
 * Close [s, e), all open; 0 or a negative errno with the view unchanged.
 * Undo steps pass inject = false: only forward steps are fault sites.
 */
static int close_one(struct gm_store *store, uint64_t s, uint64_t e,
		     bool inject)
{
	int ret = inject ? gm_fault(store, GM_FAULT_VIEW_CLOSE) : 0;

	if (!ret)
		ret = emap_reserve(store->view_map);
	if (!ret)
		ret = remap(store, s, e, false);
	if (ret)
		return ret;
	emap_set(store->view_map, s, e, VIEW_CLOSED);
	gm_huge_view_changed(store, s, e, true);
	return 0;
}

static int close_piece(struct gm_store *store, uint64_t s, uint64_t e,
		       struct gm_view_log *log)
{
	int ret = log_add(log, s, e);

	if (ret)
		return ret;
	ret = close_one(store, s, e, true);
	if (ret)
		log->nr--;
	return ret;
}

static int cmp_range(const void *a, const void *b)
{
	const struct gm_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Close the open pages of [s, e) except those in keep (sorted by start),
 * which must stay open: hypervisor-visible ranges and pinned pages.
 */
static int close_except(struct gm_store *store, uint64_t s, uint64_t e,
			const struct gm_range *keep, unsigned int nr_keep,
			struct gm_view_log *log)
{
	uint64_t S, E, ps, pe;
	unsigned int i = 0;
	uint8_t v;
	int ret;

	while (s < e) {
		while (i < nr_keep && keep[i].end <= s)
			i++;
		if (i < nr_keep && keep[i].start <= s) {
			s = keep[i].end;
			continue;
		}
		pe = i < nr_keep && keep[i].start < e ? keep[i].start : e;
		for (ps = s; ps < pe; ps = E) {
			emap_extent(store->view_map, ps, &S, &E, &v);
			if (v != VIEW_OPEN)
				continue;
			ret = close_piece(store, ps, E < pe ? E : pe, log);
			if (ret)
				return ret;
		}
		s = pe;
	}
	return 0;
}

/* Ranges to keep open, and the range [s, e) in which no hold counts. */
struct keep_list {
	struct gm_range *r;
	unsigned int nr;
	uint64_t s, e;
	uint64_t granule;
};

static int count_hold(struct pin_node *n, void *arg)
{
	*(unsigned int *)arg += gm_pin_of(n)->view_held;
	return 0;
}

/*
 * A hold's pages outside [k->s, k->e): at most two pieces, widened to the
 * view's granule (which the hold opened whole).
 */
static int keep_hold(struct pin_node *n, void *arg)
{
	struct keep_list *k = arg;
	struct pin_node w = { .first = round_down(n->first, k->granule),
			      .end = round_up(n->end, k->granule) };

	if (!gm_pin_of(n)->view_held)
		return 0;
	n = &w;
	if (n->first < k->s)
		k->r[k->nr++] =
			(struct gm_range){ n->first,
					   n->end < k->s ? n->end : k->s };
	if (n->end > k->e)
		k->r[k->nr++] =
			(struct gm_range){ n->first > k->e ? n->first : k->e,
					   n->end };
	return 0;
}

/*
 * Closing the middle of an open run costs extents; past the budget, close
 * the whole run [S, E) instead, which never costs any, but for the pages
 * that must stay open: hypervisor-visible ranges, and outside [s, e) held
 * pages (pins, gm_view_open). Inside [s, e), the pages becoming private, no
 * hold keeps a page open, whatever the tree holds.
 */
static int close_run(struct gm_store *store, uint64_t s, uint64_t e, uint64_t S,
		     uint64_t E, struct gm_view_log *log)
{
	struct keep_list keep = { .s = s, .e = e, .granule = store->granule };
	unsigned int nr_holds = 0;
	int ret;

	if (within_budget(store, extent_delta(store, s, e, S, E)))
		return close_except(store, s, e, store->hv, store->nr_hv, log);

	/* lock order: lock, view_lock, pin_lock */
	pthread_mutex_lock(&store->pin_lock);
	pin_tree_visit(&store->pins, S, E, count_hold, &nr_holds);
	keep.r = malloc((store->nr_hv + 2 * nr_holds + 1) * sizeof(*keep.r));
	if (keep.r) {
		if (store->nr_hv)
			memcpy(keep.r, store->hv,
			       store->nr_hv * sizeof(*keep.r));
		keep.nr = store->nr_hv;
		pin_tree_visit(&store->pins, S, E, keep_hold, &keep);
	}
	pthread_mutex_unlock(&store->pin_lock);
	if (!keep.r)
		return -ENOMEM;
	qsort(keep.r, keep.nr, sizeof(*keep.r), cmp_range);
	ret = close_except(store, S, E, keep.r, keep.nr, log);
	free(keep.r);
	return ret;
}

/* Reopen what log closed; reopening merges runs back, needing no VMA. */
static void undo_locked(struct gm_store *store, struct gm_view_log *log)
{
	while (log->nr) {
		struct gm_range *r = &log->r[--log->nr];

		if (!emap_reserve(store->view_map) &&
		    !remap(store, r->start, r->end, true))
			emap_set(store->view_map, r->start, r->end, VIEW_OPEN);
	}
}

void gm_view_log_free(struct gm_view_log *log)
{
	free(log->r);
	*log = (struct gm_view_log){ 0 };
}

void gm_view_undo_close(struct gm_store *store, struct gm_view_log *log)
{
	pthread_rwlock_wrlock(&store->view_lock);
	undo_locked(store, log);
	pthread_rwlock_unlock(&store->view_lock);
	gm_view_log_free(log);
}

int gm_view_close_pages(struct gm_store *store, uint64_t start, uint64_t end,
			struct gm_view_log *log)
{
	uint64_t S, E, s, e;
	uint8_t v;
	int ret = 0;

	/* hugetlb: a huge page with one private page closes whole. */
	start = round_down(start, store->granule);
	end = round_up(end, store->granule);
	pthread_rwlock_wrlock(&store->view_lock);
	for (s = start; s < end && !ret; s = e) {
		emap_extent(store->view_map, s, &S, &E, &v);
		e = E < end ? E : end;
		if (v == VIEW_OPEN)
			ret = close_run(store, s, e, S, E, log);
	}
	if (ret)
		undo_locked(store, log);
	pthread_rwlock_unlock(&store->view_lock);
	if (ret)
		gm_view_log_free(log);
	return ret;
}

int gm_view_copy(struct gm_store *store, uint64_t off, void *buf, size_t len,
		 bool write)
{
	uint64_t end = off + len, p0 = off >> GM_PAGE_SHIFT;
	uint64_t p1 = (end + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT;
	uint64_t S, E, chunk_end;
	uint8_t *b = buf, v;
	int ret;

	/*
	 * A page the host touches is worth opening, budget permitting. Only
	 * conversions close pages, and the caller's lock keeps them out: an
	 * open page stays open while we copy.
	 */
	if (gm_view_open_pages(store, p0, p1) == 0) {
		if (write)
			memcpy(store->view + off, buf, len);
		else
			memcpy(buf, store->view + off, len);
		return 0;
	}
	while (off < end) {
		pthread_rwlock_rdlock(&store->view_lock);
		emap_extent(store->view_map, off >> GM_PAGE_SHIFT, &S, &E, &v);
		pthread_rwlock_unlock(&store->view_lock);
		chunk_end = E << GM_PAGE_SHIFT;
		if (chunk_end > end)
			chunk_end = end;
		if (v == VIEW_OPEN) {
			if (write)
				memcpy(store->view + off, b, chunk_end - off);
			else
				memcpy(b, store->view + off, chunk_end - off);
		} else {
			ret = gm_window_copy(store, off, b, chunk_end - off,
					     write);
			if (ret)
				return ret;
		}
		b += chunk_end - off;
		off = chunk_end;
	}
	return 0;
}

void *gm_view_base(struct gm_store *store)
{
	return store ? store->view : NULL;
}

int gm_view_is_open(struct gm_store *store, uint64_t off, uint64_t len)
{
	int ret = gm_check_range(store, off, len, "gm_view_is_open");

	if (!ret)
		ret = gm_read_lock(store, "gm_view_is_open");
	if (ret)
		return ret;
	ret = gm_view_pages_open(store, off >> GM_PAGE_SHIFT,
				 (off + len) >> GM_PAGE_SHIFT);
	gm_read_unlock(store);
	return ret;
}

uint64_t gm_view_extent_count(struct gm_store *store)
{
	uint64_t n;

	if (!store || gm_read_lock(store, "gm_view_extent_count"))
		return 0;
	pthread_rwlock_rdlock(&store->view_lock);
	n = emap_nr_extents(store->view_map);
	pthread_rwlock_unlock(&store->view_lock);
	gm_read_unlock(store);
	return n;
}

static bool hv_overlaps(struct gm_store *store, uint64_t s, uint64_t e)
{
	for (unsigned int i = 0; i < store->nr_hv; i++)
		if (store->hv[i].start < e && s < store->hv[i].end)
			return true;
	return false;
}

int gm_hv_visible_overlaps(struct gm_store *store, uint64_t off, uint64_t len)
{
	int ret = gm_check_store(store, "gm_hv_visible_overlaps");

	if (!ret && len == 0)
		ret = gm_error(-EINVAL, "gm_hv_visible_overlaps: length is 0");
	if (!ret)
		ret = gm_check_bytes(store, off, len, "gm_hv_visible_overlaps");
	if (!ret)
		ret = gm_read_lock(store, "gm_hv_visible_overlaps");
	if (ret)
		return ret;
	ret = hv_overlaps(store, off >> GM_PAGE_SHIFT,
			  (off + len + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT);
	gm_read_unlock(store);
	return ret;
}

/*
 * Insert [s, e) into the sorted hv list, merging what it touches. The list
 * has room for one more entry (hv_reserve).
 */
static void hv_insert(struct gm_store *store, uint64_t s, uint64_t e)
{
	struct gm_range *hv = store->hv;
	unsigned int i, j, n = store->nr_hv;

	for (i = 0; i < n && hv[i].end < s; i++)
		;
	for (j = i; j < n && hv[j].start <= e; j++) {
		s = hv[j].start < s ? hv[j].start : s;
		e = hv[j].end > e ? hv[j].end : e;
	}
	/* hv[i, j) merge into one entry at i */
	memmove(&hv[i + 1], &hv[j], (n - j) * sizeof(*hv));
	hv[i] = (struct gm_range){ s, e };
	store->nr_hv = n + 1 - (j - i);
}

static int hv_reserve(struct gm_store *store)
{
	struct gm_range *hv;

	hv = realloc(store->hv, (store->nr_hv + 1) * sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	store->hv = hv;
	return 0;
}

/*
 * Open the closed pages of [s, e) whatever the budget; on failure close
 * again what this opened, so the view is as before. view_lock held.
 */
static int open_all(struct gm_store *store, uint64_t s, uint64_t e)
{
	struct gm_view_log opened = { 0 };
	uint64_t S, E, p, pe;
	uint8_t v;
	int ret = 0;

	for (p = s; p < e && !ret; p = pe) {
		emap_extent(store->view_map, p, &S, &E, &v);
		pe = E < e ? E : e;
		if (v == VIEW_OPEN)
			continue;
		ret = log_add(&opened, p, pe);
		if (!ret) {
			ret = open_piece(store, p, pe);
			if (ret)
				opened.nr--;
		}
	}
	while (ret && opened.nr) {
		struct gm_range *r = &opened.r[--opened.nr];

		if (close_one(store, r->start, r->end, false))
			view_broken(page_addr(store, r->start),
				    (r->end - r->start) << GM_PAGE_SHIFT, -EIO);
	}
	gm_view_log_free(&opened);
	return ret;
}

int gm_hv_visible_add(struct gm_store *store, uint64_t off, uint64_t len)
{
	uint64_t s, e;
	int ret;

	ret = gm_check_range(store, off, len, "gm_hv_visible_add");
	if (!ret)
		ret = gm_check_reentry(store, "gm_hv_visible_add");
	if (ret)
		return ret;
	/* hugetlb: the view maps whole huge pages (README, threat model) */
	s = round_down(off >> GM_PAGE_SHIFT, store->granule);
	e = round_up((off + len) >> GM_PAGE_SHIFT, store->granule);
	pthread_rwlock_wrlock(&store->lock);
	pthread_rwlock_wrlock(&store->view_lock);
	ret = hv_reserve(store);
	if (ret)
		ret = gm_error(ret, "gm_hv_visible_add: tracking memory");
	if (!ret) {
		ret = open_all(store, s, e);
		if (ret)
			gm_error(ret,
				 "gm_hv_visible_add: mapping [0x%llx, "
				 "0x%llx)",
				 (unsigned long long)off,
				 (unsigned long long)(off + len));
	}
	if (!ret)
		hv_insert(store, s, e);
	pthread_rwlock_unlock(&store->view_lock);
	pthread_rwlock_unlock(&store->lock);
	return ret;
}
