// SPDX-License-Identifier: MIT
/* Counters of a store, and the gauges computed when asked. */
#include <string.h>

#include "internal.h"

static uint64_t load(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

int gm_store_stats(struct gm_store *store, struct gm_stats *out)
{
	const uint64_t *src;
	uint64_t *dst;
	int ret;

	ret = gm_check_store(store, "gm_store_stats");
	if (!ret && !out)
		ret = gm_error(-EINVAL, "gm_store_stats: stats is NULL");
	if (!ret)
		ret = gm_read_lock(store, "gm_store_stats");
	if (ret)
		return ret;
	src = (const uint64_t *)&store->stats;
	dst = (uint64_t *)out;
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = load(&src[i]);

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
	gm_read_unlock(store);
	return 0;
}
