// SPDX-License-Identifier: MIT
/*
 * Pins: a device or an I/O holds shared pages; while it does, they cannot
 * become private. Bookkeeping is a list of the pins themselves, so it grows
 * with what is pinned, not with the store.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "internal.h"

static bool overlaps(const struct gm_pin *p, uint64_t start, uint64_t end)
{
	return p->first < end && start < p->end;
}

/* Drop a reference; pin_lock held. Returns true if the pin is to be freed. */
static bool put_locked(struct gm_pin *pin)
{
	return --pin->refs == 0;
}

/* Byte offset of the first page of pin p inside [start, end). */
static uint64_t pin_at(const struct gm_pin *p, uint64_t start)
{
	return (p->first > start ? p->first : start) << GM_PAGE_SHIFT;
}

static int pin_conflict(struct gm_store *store, uint64_t start, uint64_t end,
			unsigned int flags, uint64_t *where)
{
	for (struct gm_pin *p = store->pins; p; p = p->next) {
		if (!overlaps(p, start, end))
			continue;
		if ((p->flags | flags) & GM_PIN_EXCLUSIVE) {
			*where = pin_at(p, start);
			return -EBUSY;
		}
	}
	return 0;
}

static void unlink_locked(struct gm_store *store, struct gm_pin *pin)
{
	if (pin->prev)
		pin->prev->next = pin->next;
	else
		store->pins = pin->next;
	if (pin->next)
		pin->next->prev = pin->prev;
	pin->unpinned = true;
	store->nr_pins--;
	pthread_cond_broadcast(&store->pin_released);
}

int gm_pin_revocable(struct gm_store *store, uint64_t off, uint64_t len,
		     unsigned int flags, gm_revoke_fn revoke, void *opaque,
		     struct gm_pin **out)
{
	uint64_t start, end, bad, where = 0;
	struct gm_pin *pin;
	int ret;

	ret = gm_check_range(store, off, len, "gm_pin");
	if (!ret && (flags & ~GM_PIN_EXCLUSIVE))
		ret = gm_error(-EINVAL, "gm_pin: unknown flags 0x%x",
			       flags & ~GM_PIN_EXCLUSIVE);
	if (!ret && !out)
		ret = gm_error(-EINVAL, "gm_pin: out is NULL");
	if (!ret)
		ret = gm_read_lock(store, "gm_pin");
	if (ret)
		return ret;
	start = off >> GM_PAGE_SHIFT;
	end = (off + len) >> GM_PAGE_SHIFT;
	bad = gm_attr_find_not(store, start, end, GM_ATTR_SHARED);
	if (bad < end) {
		ret = gm_error(-EFAULT, "gm_pin: page at 0x%llx is private",
			       (unsigned long long)(bad << GM_PAGE_SHIFT));
		goto out;
	}
	pin = calloc(1, sizeof(*pin));
	if (!pin) {
		ret = gm_error(-ENOMEM, "gm_pin: allocating the pin");
		goto out;
	}
	*pin = (struct gm_pin){ .store = store,
				.first = start,
				.end = end,
				.flags = flags,
				.revoke = revoke,
				.opaque = opaque,
				.refs = 1 };

	pthread_mutex_lock(&store->pin_lock);
	ret = pin_conflict(store, start, end, flags, &where);
	if (!ret) {
		pin->next = store->pins;
		if (store->pins)
			store->pins->prev = pin;
		store->pins = pin;
		store->nr_pins++;
	}
	pthread_mutex_unlock(&store->pin_lock);
	if (ret) {
		free(pin);
		ret = gm_error(ret, "gm_pin: page at 0x%llx is pinned %s",
			       (unsigned long long)where,
			       (flags & GM_PIN_EXCLUSIVE) ? "already" :
							    "exclusively");
		goto out;
	}

	/*
	 * The pinned pages cannot be closed in the view while pinned, so a
	 * view pointer stays valid; past the view budget, a mapping of its
	 * own.
	 */
	if (gm_view_open_pages(store, start, end) == 0) {
		pin->ptr = store->view + off;
	} else {
		pin->own_map = gm_map_window(store, off, len);
		if (!pin->own_map) {
			ret = gm_error(-errno, "gm_pin: mapping the pin");
			pthread_mutex_lock(&store->pin_lock);
			unlink_locked(store, pin);
			pthread_mutex_unlock(&store->pin_lock);
			free(pin);
			goto out;
		}
		pin->ptr = pin->own_map;
	}
	gm_stat_add(&store->stats.pins, 1);
	*out = pin;
out:
	gm_read_unlock(store);
	return ret;
}

int gm_pin(struct gm_store *store, uint64_t off, uint64_t len,
	   unsigned int flags, struct gm_pin **out)
{
	return gm_pin_revocable(store, off, len, flags, NULL, NULL, out);
}

void gm_unpin(struct gm_pin *pin)
{
	struct gm_store *store;
	bool last = false;

	if (!pin)
		return;
	store = pin->store;
	if (pin->own_map) {
		munmap(pin->own_map, (pin->end - pin->first) << GM_PAGE_SHIFT);
		pin->own_map = NULL;
	}
	pthread_mutex_lock(&store->pin_lock);
	if (!pin->unpinned) {
		unlink_locked(store, pin);
		last = put_locked(pin);
	}
	pthread_mutex_unlock(&store->pin_lock);
	if (last)
		free(pin);
}

void *gm_pin_ptr(const struct gm_pin *pin)
{
	return pin ? pin->ptr : NULL;
}

uint64_t gm_pin_offset(const struct gm_pin *pin)
{
	return pin ? pin->first << GM_PAGE_SHIFT : 0;
}

uint64_t gm_pin_length(const struct gm_pin *pin)
{
	return pin ? (pin->end - pin->first) << GM_PAGE_SHIFT : 0;
}

/* The byte offset of the first pinned page of [start, end), or UINT64_MAX. */
static uint64_t first_overlap_locked(struct gm_store *store, uint64_t start,
				     uint64_t end)
{
	uint64_t first = UINT64_MAX;

	for (struct gm_pin *p = store->pins; p; p = p->next)
		if (overlaps(p, start, end) && pin_at(p, start) < first)
			first = pin_at(p, start);
	return first;
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

int gm_pins_ranges(struct gm_store *store, uint64_t start, uint64_t end,
		   struct gm_range **out, unsigned int *nr)
{
	struct gm_range *r = NULL;
	unsigned int n = 0;
	int ret = 0;

	pthread_mutex_lock(&store->pin_lock);
	if (store->nr_pins) {
		r = malloc(store->nr_pins * sizeof(*r));
		if (!r)
			ret = -ENOMEM;
	}
	for (struct gm_pin *p = store->pins; p && r; p = p->next)
		if (overlaps(p, start, end))
			r[n++] = (struct gm_range){ p->first, p->end };
	pthread_mutex_unlock(&store->pin_lock);
	*out = r;
	*nr = n;
	return ret;
}

int gm_pins_revoke(struct gm_store *store, uint64_t start, uint64_t end,
		   uint64_t timeout_ns, uint64_t *error_offset)
{
	struct gm_pin **asked = NULL;
	unsigned int nr = 0, i;
	uint64_t deadline_ns = gm_now_ns() + timeout_ns, at;
	struct timespec deadline;
	int ret = 0;

	deadline.tv_sec = deadline_ns / 1000000000ull;
	deadline.tv_nsec = deadline_ns % 1000000000ull;

	/*
	 * Ask each revocable holder present now, once, without locks held. A
	 * holder that cannot be asked fails the conversion at once.
	 */
	pthread_mutex_lock(&store->pin_lock);
	for (struct gm_pin *p = store->pins; p && !ret; p = p->next) {
		if (overlaps(p, start, end) && !p->revoke) {
			*error_offset = pin_at(p, start);
			ret = -EBUSY;
		}
	}
	if (!ret && store->nr_pins) {
		asked = malloc(store->nr_pins * sizeof(*asked));
		if (!asked)
			ret = -ENOMEM;
	}
	for (struct gm_pin *p = store->pins; p && asked; p = p->next) {
		if (overlaps(p, start, end)) {
			p->refs++;
			asked[nr++] = p;
		}
	}
	pthread_mutex_unlock(&store->pin_lock);
	if (ret)
		return ret;
	for (i = 0; i < nr; i++) {
		gm_stat_add(&store->stats.revokes, 1);
		asked[i]->revoke(asked[i], asked[i]->opaque);
	}

	pthread_mutex_lock(&store->pin_lock);
	for (i = 0; i < nr; i++) {
		if (put_locked(asked[i]))
			free(asked[i]);
	}
	/* The offset is taken under the lock: a pin still there at the end. */
	while (!ret &&
	       (at = first_overlap_locked(store, start, end)) != UINT64_MAX) {
		if (pthread_cond_timedwait(&store->pin_released,
					   &store->pin_lock,
					   &deadline) == ETIMEDOUT) {
			*error_offset = at;
			ret = -EBUSY;
		}
	}
	pthread_mutex_unlock(&store->pin_lock);
	free(asked);
	return ret;
}
