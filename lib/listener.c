// SPDX-License-Identifier: MIT
/*
 * Listeners: the parts of a system that map guest memory elsewhere (KVM, a
 * device, an IOMMU-like table) hear of each conversion in two phases:
 * prepare (may veto) and then commit or abort. They run under the store's
 * write lock, in registration order.
 *
 * A callback may unregister a listener (itself or another) of its store.
 * The conversion is walking the list then, so the listener is only marked
 * dead: no callback of it runs again, and it is unlinked and freed at the
 * end of the commit or abort walk that follows every prepare, still under
 * the write lock. So no dead listener outlives the conversion.
 */
#include <stdlib.h>

#include "internal.h"
#include "opts.h"

int gm_listener_register(struct gm_store *store,
			 const struct gm_listener_ops *ops, void *opaque,
			 struct gm_listener **out)
{
	struct gm_listener *l, **tail;
	int ret;

	ret = gm_check_store(store, "gm_listener_register");
	if (!ret)
		ret = GM_OPTS_CHECK(ops, "gm_listener_register: ops");
	if (!ret && !out)
		ret = gm_error(-EINVAL, "gm_listener_register: out is NULL");
	if (!ret)
		ret = gm_check_reentry(store, "gm_listener_register");
	if (ret)
		return ret;
	l = calloc(1, sizeof(*l));
	if (!l)
		return gm_error(-ENOMEM, "gm_listener_register: allocation");
	l->store = store;
	gm_opts_copy(&l->ops, ops, sizeof(l->ops)); /* calloc: the rest NULL */
	l->opaque = opaque;
	pthread_rwlock_wrlock(&store->lock);
	for (tail = &store->listeners; *tail; tail = &(*tail)->next)
		;
	*tail = l;
	pthread_rwlock_unlock(&store->lock);
	*out = l;
	return 0;
}

/* Unlink and free the dead listeners; the write lock is held. */
static void reap_dead(struct gm_store *store)
{
	struct gm_listener **p = &store->listeners, *l;

	if (!store->dead_listeners)
		return;
	while ((l = *p)) {
		if (l->dead) {
			*p = l->next;
			free(l);
		} else {
			p = &l->next;
		}
	}
	store->dead_listeners = false;
}

void gm_listener_unregister(struct gm_listener *listener)
{
	struct gm_store *store;

	if (!listener)
		return;
	store = listener->store;
	if (gm_in_callback(store)) {
		/* From a callback: this thread holds the write lock. */
		listener->dead = true;
		store->dead_listeners = true;
		return;
	}
	pthread_rwlock_wrlock(&store->lock);
	listener->dead = true;
	store->dead_listeners = true;
	reap_dead(store);
	pthread_rwlock_unlock(&store->lock);
}

int gm_listeners_prepare(struct gm_store *store,
			 const struct gm_range_change *change,
			 struct gm_listener **failed)
{
	for (struct gm_listener *l = store->listeners; l; l = l->next) {
		int ret;

		if (l->dead || !l->ops.prepare)
			continue;
		ret = l->ops.prepare(l->opaque, change);
		if (ret < 0) {
			*failed = l;
			return ret;
		}
	}
	return 0;
}

void gm_listeners_commit(struct gm_store *store,
			 const struct gm_range_change *change)
{
	for (struct gm_listener *l = store->listeners; l; l = l->next)
		if (!l->dead && l->ops.commit)
			l->ops.commit(l->opaque, change);
	reap_dead(store);
}

void gm_listeners_abort(struct gm_store *store,
			const struct gm_range_change *change,
			struct gm_listener *upto)
{
	for (struct gm_listener *l = store->listeners; l != upto; l = l->next)
		if (!l->dead && l->ops.abort)
			l->ops.abort(l->opaque, change);
	reap_dead(store);
}
