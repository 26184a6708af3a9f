// SPDX-License-Identifier: MIT
/* Counters of a store, and the gauges computed when asked. */
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "opts.h"

/* Every field of struct gm_stats after sz is a uint64_t. */
#define FIRST_COUNTER to_private_requests
#define NR_COUNTERS                                   \
	((sizeof(struct gm_stats) -                   \
	  offsetof(struct gm_stats, FIRST_COUNTER)) / \
	 sizeof(uint64_t))

static uint64_t load(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

int gm_store_stats(struct gm_store *store, struct gm_stats *stats)
{
	struct gm_stats full, *out = &full;
	int ret;

	ret = gm_check_store(store, "gm_store_stats");
	if (!ret)
		ret = gm_out_check(stats, "gm_store_stats: stats");
	if (!ret)
		ret = gm_read_lock(store, "gm_store_stats");
	if (ret)
		return ret;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < NR_COUNTERS; i++)
		(&out->FIRST_COUNTER)[i] =
			load(&(&store->stats.FIRST_COUNTER)[i]);

	out->extents = emap_nr_extents(store->attrs);
	out->private_pages = store->nr_private;
	out->shared_pages = store->npages - out->private_pages;
	pthread_rwlock_rdlock(&store->view_lock);
	out->view_extents = emap_nr_extents(store->view_map);
	out->tracking_bytes = emap_bytes(store->attrs) +
			      emap_bytes(store->view_map) +
			      store->nr_hv * sizeof(struct gm_range);
	pthread_rwlock_unlock(&store->view_lock);
	pthread_mutex_lock(&store->pin_lock);
	out->pins_active = store->nr_pins;
	out->tracking_bytes += store->nr_pins * sizeof(struct gm_pin);
	pthread_mutex_unlock(&store->pin_lock);
	out->huge_bytes = gm_huge_bytes(store);
	gm_read_unlock(store);
	gm_out_copy(stats, out, sizeof(*out));
	return 0;
}
