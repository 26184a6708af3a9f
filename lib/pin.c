// SPDX-License-Identifier: MIT
/*
 * Pins: a device or an I/O holds shared pages; while it does, they cannot
 * become private. The pins are kept in an interval tree (pin_tree.c), so the
 * bookkeeping grows with what is pinned, not with the store, and the pins
 * over a range are found in O(log n).
 *
 * Lifetime: a pin is linked into the tree only once fully built (pointer and
 * mapping set), and is counted (refs, under pin_lock): one reference for the
 * holder, one for its creator until gm_pin_revocable returns, one for each
 * revoker calling its callback. Every free is the drop of the last one, so a
 * revoke callback that unpins at once, even before gm_pin_revocable
 * returns, frees nothing under anyone's feet.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "internal.h"

static uint64_t pin_bytes(const struct gm_pin *pin)
{
	return (pin->node.end - pin->node.first) << GM_PAGE_SHIFT;
}

/* Byte offset of the first page of pin p inside [start, end). */
static uint64_t pin_at(const struct gm_pin *p, uint64_t start)
{
	return (p->node.first > start ? p->node.first : start) << GM_PAGE_SHIFT;
}

/*
 * Drop a reference; pin_lock held. Returns true if it was the last: the
 * caller then frees the pin with pin_free, after unlocking.
 */
static bool put_locked(struct gm_pin *pin)
{
	return --pin->refs == 0;
}

/* Give up the pin's own mapping, if it has one (a view hold ends at unlink). */
static void drop_access(struct gm_pin *pin)
{
	if (pin->own_map) {
		gm_unmap_window(pin->store, pin->own_map,
				pin->node.first << GM_PAGE_SHIFT,
				pin_bytes(pin));
		pin->own_map = NULL;
	}
}

static void pin_free(struct gm_pin *pin)
{
	/* Only a pin never linked still has its access (gm_unpin drops it). */
	drop_access(pin);
	free(pin);
}

static void put(struct gm_pin *pin)
{
	struct gm_store *store = pin->store;
	bool last;

	pthread_mutex_lock(&store->pin_lock);
	last = put_locked(pin);
	pthread_mutex_unlock(&store->pin_lock);
	if (last)
		pin_free(pin);
}

/* -EBUSY and *where if a pin with flags cannot hold [start, end) now. */
static int pin_conflict(struct gm_store *store, uint64_t start, uint64_t end,
			unsigned int flags, uint64_t *where)
{
	struct pin_node *n;

	/* Exclusive: no pin at all may overlap; else no exclusive one. */
	n = pin_tree_first(&store->pins, start, end,
			   !(flags & GM_PIN_EXCLUSIVE));
	if (!n)
		return 0;
	*where = pin_at(gm_pin_of(n), start);
	return -EBUSY;
}

static void link_locked(struct gm_store *store, struct gm_pin *pin)
{
	pin->refs++; /* the holder's */
	pin->serial = ++store->pin_serial;
	pin_tree_insert(&store->pins, &pin->node);
	store->nr_pins++;
}

static void unlink_locked(struct gm_store *store, struct gm_pin *pin)
{
	pin_tree_remove(&store->pins, &pin->node);
	store->nr_pins--;
	pthread_cond_broadcast(&store->pin_released);
}

/*
 * hugetlb: the view opens only whole huge pages that are all shared, so a
 * hold of shared pages fails where their huge page holds private ones;
 * -EFAULT saying so, or 0 if [start, end)'s huge pages are all shared.
 * Caller holds lock.
 */
static int mixed_huge_page(struct gm_store *store, uint64_t start, uint64_t end,
			   const char *what)
{
	uint64_t g = store->granule, s = start / g * g,
		 e = (end + g - 1) / g * g;
	uint64_t priv;

	if (g == 1)
		return 0;
	priv = gm_attr_find_not(store, s, e, GM_ATTR_SHARED);
	if (priv == e)
		return 0;
	s = priv / g * g;
	return gm_error(-EFAULT,
			"%s: [0x%llx, 0x%llx) is shared, but its huge page "
			"[0x%llx, 0x%llx) holds private pages (the first at "
			"0x%llx): on hugetlb the view opens only whole shared "
			"huge pages; gm_read, gm_write and gm_pin reach the "
			"shared ones",
			what, (unsigned long long)start << GM_PAGE_SHIFT,
			(unsigned long long)end << GM_PAGE_SHIFT,
			(unsigned long long)s << GM_PAGE_SHIFT,
			(unsigned long long)(s + g) << GM_PAGE_SHIFT,
			(unsigned long long)priv << GM_PAGE_SHIFT);
}

/*
 * A pin of [off, off + len) with its pointer, not linked yet: one
 * reference, the creator's. Caller holds lock (read).
 */
static int pin_build(struct gm_store *store, uint64_t off, uint64_t len,
		     unsigned int flags, gm_revoke_fn revoke, void *opaque,
		     const char *what, struct gm_pin **out)
{
	uint64_t start = off >> GM_PAGE_SHIFT,
		 end = (off + len) >> GM_PAGE_SHIFT;
	struct gm_pin *pin;
	int ret;

	pin = calloc(1, sizeof(*pin));
	if (!pin)
		return gm_error(-ENOMEM, "%s: allocating the pin", what);
	*pin = (struct gm_pin){ .node = { .first = start,
					  .end = end,
					  .exclusive =
						  flags & GM_PIN_EXCLUSIVE },
				.store = store,
				.revoke = revoke,
				.opaque = opaque,
				.view_only = flags & PIN_VIEW_ONLY,
				.refs = 1 };
	/*
	 * A hold of the view keeps the pages open (no conversion closes held
	 * pages), so a view pointer stays valid; past the view budget, a
	 * mapping of its own, unless the pin is a hold of the view only. On
	 * hugetlb pins take no hold, which would keep the whole huge page's
	 * neighbours from becoming private.
	 */
	if ((store->granule == 1 || pin->view_only) &&
	    !gm_view_open_all(store, start, end)) {
		pin->view_held = true;
		pin->ptr = store->view + off;
	} else if (pin->view_only) {
		put(pin);
		ret = mixed_huge_page(store, start, end, what);
		if (ret)
			return ret;
		return gm_error(-ENOSPC,
				"%s: [0x%llx, 0x%llx) cannot be opened within "
				"the view budget of %u extents",
				what, (unsigned long long)off,
				(unsigned long long)(off + len),
				store->view_budget);
	} else {
		pin->own_map = gm_map_window(store, off, len);
		if (!pin->own_map) {
			ret = gm_error(-errno, "%s: mapping the pin", what);
			put(pin);
			return ret;
		}
		pin->ptr = pin->own_map;
	}
	*out = pin;
	return 0;
}

/*
 * A pin, or with PIN_VIEW_ONLY a hold of the view (gm_view_open). Checked
 * arguments; `what` names the entry point in messages.
 */
static int pin_make(struct gm_store *store, uint64_t off, uint64_t len,
		    unsigned int flags, gm_revoke_fn revoke, void *opaque,
		    const char *what, struct gm_pin **out)
{
	uint64_t start, end, bad, where = 0;
	struct gm_pin *pin = NULL;
	int ret;

	ret = gm_read_lock(store, what);
	if (ret)
		return ret;
	start = off >> GM_PAGE_SHIFT;
	end = (off + len) >> GM_PAGE_SHIFT;
	bad = gm_attr_find_not(store, start, end, GM_ATTR_SHARED);
	if (bad < end) {
		ret = gm_error(-EFAULT, "%s: page at 0x%llx is private", what,
			       (unsigned long long)(bad << GM_PAGE_SHIFT));
		goto out;
	}
	ret = pin_build(store, off, len, flags, revoke, opaque, what, &pin);
	if (ret)
		goto out;

	/*
	 * The conflict check and the link, in one hold of pin_lock. From
	 * the link on, a revoker may call the callback (with *out set) and the
	 * holder may unpin; the creator's reference keeps the pin until here.
	 */
	pthread_mutex_lock(&store->pin_lock);
	ret = pin_conflict(store, start, end, flags, &where);
	if (!ret) {
		*out = pin;
		link_locked(store, pin);
	}
	pthread_mutex_unlock(&store->pin_lock);
	if (!ret)
		gm_stat_add(&store->stats.pins, 1);
	put(pin);
	if (ret)
		ret = gm_error(ret, "%s: page at 0x%llx is pinned %s", what,
			       (unsigned long long)where,
			       (flags & GM_PIN_EXCLUSIVE) ? "already" :
							    "exclusively");
out:
	gm_read_unlock(store);
	return ret;
}

int gm_pin_revocable(struct gm_store *store, uint64_t off, uint64_t len,
		     unsigned int flags, gm_revoke_fn revoke, void *opaque,
		     struct gm_pin **out)
{
	int ret;

	ret = gm_check_range(store, off, len, "gm_pin");
	if (!ret && (flags & ~GM_PIN_EXCLUSIVE))
		ret = gm_error(-EINVAL, "gm_pin: unknown flags 0x%x",
			       flags & ~GM_PIN_EXCLUSIVE);
	if (!ret && !out)
		ret = gm_error(-EINVAL, "gm_pin: out is NULL");
	if (ret)
		return ret;
	return pin_make(store, off, len, flags, revoke, opaque, "gm_pin", out);
}

int gm_pin(struct gm_store *store, uint64_t off, uint64_t len,
	   unsigned int flags, struct gm_pin **out)
{
	return gm_pin_revocable(store, off, len, flags, NULL, NULL, out);
}

/* The rest of gm_unpin, once the caller has claimed the pin. */
static void unpin_claimed(struct gm_pin *pin)
{
	struct gm_store *store = pin->store;
	bool last;

	/*
	 * The pin's way into the store goes while the pin still holds its
	 * pages: once unlinked, they may become private at once.
	 */
	drop_access(pin);
	pthread_mutex_lock(&store->pin_lock);
	unlink_locked(store, pin);
	last = put_locked(pin);
	pthread_mutex_unlock(&store->pin_lock);
	if (last)
		pin_free(pin);
}

void gm_unpin(struct gm_pin *pin)
{
	struct gm_store *store;
	bool claimed;

	if (!pin)
		return;
	store = pin->store;
	/* One caller unpins; another (a revoke callback late) does nothing. */
	pthread_mutex_lock(&store->pin_lock);
	claimed = !pin->unpinning;
	pin->unpinning = true;
	pthread_mutex_unlock(&store->pin_lock);
	if (claimed)
		unpin_claimed(pin);
}

void *gm_pin_ptr(const struct gm_pin *pin)
{
	return pin ? pin->ptr : NULL;
}

uint64_t gm_pin_offset(const struct gm_pin *pin)
{
	return pin ? pin->node.first << GM_PAGE_SHIFT : 0;
}

uint64_t gm_pin_length(const struct gm_pin *pin)
{
	return pin ? pin_bytes(pin) : 0;
}

/* The byte offset of the first pinned page of [start, end), or UINT64_MAX. */
static uint64_t first_overlap_locked(struct gm_store *store, uint64_t start,
				     uint64_t end)
{
	struct pin_node *n = pin_tree_first(&store->pins, start, end, false);

	return n ? pin_at(gm_pin_of(n), start) : UINT64_MAX;
}

uint64_t gm_pins_first_overlap(struct gm_store *store, uint64_t start,
			       uint64_t end)
{
	uint64_t first;

	pthread_mutex_lock(&store->pin_lock);
	first = first_overlap_locked(store, start, end);
	pthread_mutex_unlock(&store->pin_lock);
	return first;
}

/* The pins of one round of gm_pins_revoke. */
struct revoke_round {
	uint64_t start; /* page */
	uint64_t seen; /* pins with a serial above are new to this conversion */
	struct gm_pin **asked; /* NULL: count only */
	unsigned int nr;
	uint64_t busy_at; /* byte offset of a pin that cannot be asked */
};

static int collect(struct pin_node *n, void *arg)
{
	struct revoke_round *r = arg;
	struct gm_pin *p = gm_pin_of(n);

	/* Asked already, or going anyway. */
	if (p->serial <= r->seen || p->unpinning)
		return 0;
	if (!p->revoke) {
		r->busy_at = pin_at(p, r->start);
		return 1;
	}
	if (r->asked) {
		p->refs++;
		r->asked[r->nr] = p;
	}
	r->nr++;
	return 0;
}

/*
 * The revocable pins over [start, end) linked since the last round, each
 * with a reference taken, in r->asked (NULL if none); -EBUSY (and
 * *error_offset) if one of them is not revocable. pin_lock held.
 */
static int collect_new_locked(struct gm_store *store, uint64_t start,
			      uint64_t end, struct revoke_round *r,
			      uint64_t *error_offset)
{
	r->asked = NULL;
	r->nr = 0;
	r->busy_at = UINT64_MAX;
	pin_tree_visit(&store->pins, start, end, collect, r);
	if (r->busy_at != UINT64_MAX) {
		*error_offset = r->busy_at;
		return -EBUSY;
	}
	if (r->nr) {
		r->asked = malloc(r->nr * sizeof(*r->asked));
		if (!r->asked)
			return -ENOMEM;
		r->nr = 0;
		pin_tree_visit(&store->pins, start, end, collect, r);
	}
	r->seen = store->pin_serial;
	return 0;
}

/* Call the callbacks with no lock held, then drop the references. */
static void ask(struct gm_store *store, struct revoke_round *r)
{
	unsigned int i, nr_free = 0;

	for (i = 0; i < r->nr; i++) {
		gm_stat_add(&store->stats.revokes, 1);
		r->asked[i]->revoke(r->asked[i], r->asked[i]->opaque);
	}
	pthread_mutex_lock(&store->pin_lock);
	for (i = 0; i < r->nr; i++)
		if (put_locked(r->asked[i]))
			r->asked[nr_free++] = r->asked[i];
	pthread_mutex_unlock(&store->pin_lock);
	for (i = 0; i < nr_free; i++)
		pin_free(r->asked[i]);
	free(r->asked);
	r->asked = NULL;
}

/* now + timeout_ns on CLOCK_MONOTONIC, saturated rather than wrapped. */
static uint64_t deadline_after(uint64_t timeout_ns)
{
	uint64_t now = gm_now_ns();

	return timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
}

int gm_pins_revoke(struct gm_store *store, uint64_t start, uint64_t end,
		   uint64_t timeout_ns, uint64_t *error_offset)
{
	struct revoke_round r = { .start = start };
	const bool forever = timeout_ns == UINT64_MAX;
	const uint64_t deadline_ns = deadline_after(timeout_ns);
	const struct timespec deadline = {
		.tv_sec = deadline_ns / 1000000000ull,
		.tv_nsec = deadline_ns % 1000000000ull,
	};
	uint64_t at;
	int ret;

	/*
	 * Ask each revocable holder over the range once, without locks held,
	 * then wait for the pins to go. Pins linked meanwhile are asked in
	 * turn (so even holders that pin again at once cannot keep a
	 * conversion past its deadline). A holder that cannot be asked fails
	 * the conversion at once.
	 */
	pthread_mutex_lock(&store->pin_lock);
	for (;;) {
		ret = collect_new_locked(store, start, end, &r, error_offset);
		if (ret)
			break;
		if (r.nr) {
			pthread_mutex_unlock(&store->pin_lock);
			ask(store, &r);
			pthread_mutex_lock(&store->pin_lock);
		}
		/* The offset is taken under the lock: a pin still there. */
		at = first_overlap_locked(store, start, end);
		if (at == UINT64_MAX)
			break;
		if (!forever && gm_now_ns() >= deadline_ns) {
			*error_offset = at;
			ret = -EBUSY;
			break;
		}
		/* Callbacks ran: look for pins linked meanwhile first. */
		if (r.nr)
			continue;
		if (forever)
			pthread_cond_wait(&store->pin_released,
					  &store->pin_lock);
		else
			pthread_cond_timedwait(&store->pin_released,
					       &store->pin_lock, &deadline);
	}
	pthread_mutex_unlock(&store->pin_lock);
	return ret;
}

/* ---- holds of the host view: gm_view_open, gm_view_release ---- */

int gm_view_open(struct gm_store *store, uint64_t off, uint64_t len)
{
	struct gm_pin *pin;
	int ret = gm_check_range(store, off, len, "gm_view_open");

	if (ret)
		return ret;
	return pin_make(store, off, len, PIN_VIEW_ONLY, NULL, NULL,
			"gm_view_open", &pin);
}

struct hold_search {
	uint64_t start, end;
	struct gm_pin *found;
};

static int match_hold(struct pin_node *n, void *arg)
{
	struct hold_search *h = arg;
	struct gm_pin *p = gm_pin_of(n);

	if (!p->view_only || p->unpinning || n->first != h->start ||
	    n->end != h->end)
		return 0;
	h->found = p;
	p->unpinning = true; /* claimed, under pin_lock */
	return 1;
}

int gm_view_release(struct gm_store *store, uint64_t off, uint64_t len)
{
	struct hold_search h;
	int ret = gm_check_range(store, off, len, "gm_view_release");

	if (ret)
		return ret;
	h = (struct hold_search){ .start = off >> GM_PAGE_SHIFT,
				  .end = (off + len) >> GM_PAGE_SHIFT };
	pthread_mutex_lock(&store->pin_lock);
	pin_tree_visit(&store->pins, h.start, h.end, match_hold, &h);
	pthread_mutex_unlock(&store->pin_lock);
	if (!h.found)
		return gm_error(-ENOENT,
				"gm_view_release: no gm_view_open holds "
				"exactly [0x%llx, 0x%llx)",
				(unsigned long long)off,
				(unsigned long long)(off + len));
	unpin_claimed(h.found);
	return 0;
}
