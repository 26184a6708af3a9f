/* SPDX-License-Identifier: MIT */
/* libgmem internals shared by the files of lib/. */
#ifndef GMEM_INTERNAL_H
#define GMEM_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/gmem.h>

#include "extent_map.h"
#include "pin_tree.h"
#include "testing.h"

/* Values of the host view's extent map. */
enum { VIEW_CLOSED = 0, VIEW_OPEN = 1 };

struct gm_range {
	uint64_t start; /* first page */
	uint64_t end; /* page after the last */
};

/*
 * A pin is linked into store->pins only once fully built, and freed by
 * whoever drops its last reference (see lib/pin.c).
 */
/* pin.c: a pin that is gm_view_open's hold of the view (no own mapping) */
#define PIN_VIEW_ONLY (1u << 31)

#define gm_pin_of(n) \
	((struct gm_pin *)((char *)(n)-offsetof(struct gm_pin, node)))

struct gm_pin {
	struct pin_node node; /* pages [first, end), in store->pins */
	/* the pointer is into the view, held open while linked (set once) */
	bool view_held;
	bool view_only; /* gm_view_open's: released by gm_view_release */
	struct gm_store *store;
	gm_revoke_fn revoke;
	void *opaque;
	void *ptr; /* what gm_pin_ptr returns */
	void *own_map; /* a mapping of its own, when the view was closed */
	/* under pin_lock: */
	uint64_t serial; /* store->pin_serial when linked */
	bool unpinning; /* gm_unpin claimed it */
	unsigned int refs; /* holder, creator until it returns, revokers */
};

struct gm_listener {
	struct gm_store *store;
	struct gm_listener *next;
	struct gm_listener_ops ops;
	void *opaque;
	bool dead; /* unregistered from a callback; freed when it returns */
};

/* A KVM memslot bound to the store (gm_kvm_memslot_bind). */
struct gm_kvm_slot {
	struct gm_kvm_slot *next;
	/*
	 * The store's own duplicate of the caller's VM fd: the VM cannot go
	 * while KVM may use the store's memory, and a caller's fd number
	 * reused for another VM is told apart (kcmp).
	 */
	int vm_fd;
	uint32_t slot;
	bool guest_memfd; /* KVM_SET_USER_MEMORY_REGION2 with the store's fd */
	void *kvm_map; /* memfd backing: KVM's own mapping, else NULL */
	uint64_t off; /* of the store, where kvm_map starts */
	uint64_t len;
};

struct gm_store {
	uint64_t size;
	uint64_t npages;
	enum gm_backing backing;
	int fd;
	int own_vm_fd; /* VM created to hold the guest_memfd, or -1 */
	int own_kvm_fd; /* /dev/kvm opened for it, or -1 */
	unsigned int flags;
	uint32_t view_budget;
	enum gm_pages pages;
	uint64_t huge_size; /* bytes of a backing page: 4096, 2 MiB, 1 GiB */
	/*
	 * Pages of the view's granule: 1, or a whole huge page on hugetlb,
	 * whose mappings change only by whole huge pages.
	 */
	uint64_t granule;
	gm_fault_fn fault_inject; /* testing.h */
	void *fault_opaque;

	/*
	 * Lock order: lock, then view_lock, then pin_lock. Conversions hold
	 * lock for writing; attribute queries, accesses and pins hold it for
	 * reading, so they never see a conversion half done.
	 */
	pthread_rwlock_t lock;
	struct emap *attrs; /* GM_ATTR_* per page, under lock */
	uint64_t nr_private; /* pages, under lock */
	pthread_t writer; /* the converting thread, while it holds lock */
	bool writing;

	/*
	 * The view map: read-locked to look (gm_read of open pages takes no
	 * exclusive lock), write-locked to change it under a read lock of
	 * `lock` (opening pages) or a write lock (conversions).
	 */
	pthread_rwlock_t view_lock;
	uint8_t *view;
	struct emap *view_map; /* VIEW_OPEN / VIEW_CLOSED per page */
	struct gm_range *hv; /* hypervisor-visible ranges, sorted */
	unsigned int nr_hv;
	/*
	 * GM_PAGES_THP_2M: one bit per 2 MiB region of the view, set while a
	 * view change left it mixed (its 2 MiB mapping lost); under view_lock.
	 */
	uint8_t *thp_split;

	pthread_mutex_t pin_lock;
	pthread_cond_t pin_released;
	struct pin_tree pins; /* of gm_pin.node, under pin_lock */
	uint64_t nr_pins;
	uint64_t pin_serial; /* pins ever linked, under pin_lock */

	struct gm_listener *listeners; /* changed only under lock (write) */
	bool dead_listeners; /* some listener is dead, under lock (write) */
	struct gm_kvm_slot *kvm_slots; /* under lock (write) */

	struct gm_stats stats; /* counters updated with __atomic */
};

/* error.c: record a message for gm_last_error() and return err (< 0). */
int gm_error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Argument checks shared by the entry points. Return 0 or a negative errno
 * with a message naming `what`.
 */
int gm_check_store(const struct gm_store *store, const char *what);
int gm_check_range(const struct gm_store *store, uint64_t off, uint64_t len,
		   const char *what);
int gm_check_bytes(const struct gm_store *store, uint64_t off, uint64_t len,
		   const char *what);
int gm_check_attr(int attr, const char *what);

/* Whether the calling thread is inside a listener of this store. */
bool gm_in_callback(struct gm_store *store);
/* -EDEADLK if the calling thread is inside a listener of this store. */
int gm_check_reentry(struct gm_store *store, const char *what);

/* Read lock for queries and accesses; returns 0 or -EDEADLK. */
int gm_read_lock(struct gm_store *store, const char *what);
void gm_read_unlock(struct gm_store *store);

/*
 * testing.c: call the store's fault-injection hook for site; 0 or a
 * negative errno.
 */
int gm_fault(struct gm_store *store, enum gm_fault_site site);

static inline void gm_stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

/* attr.c: first page of [start, end) whose attribute is not attr, or end. */
uint64_t gm_attr_find_not(struct gm_store *store, uint64_t start, uint64_t end,
			  uint8_t attr);

/* view.c */
int gm_view_init(struct gm_store *store);
void gm_view_fini(struct gm_store *store);
/*
 * Open the closed pages of [start, end) within the budget, best effort.
 * Caller holds lock (read or write). Returns the number of pages left closed.
 */
uint64_t gm_view_open_pages(struct gm_store *store, uint64_t start,
			    uint64_t end);
/* The pieces of the view one close changed, so that it can be undone. */
struct gm_view_log {
	struct gm_range *r;
	size_t nr, cap;
};
/*
 * Close every open page of [start, end) that is not hypervisor-visible.
 * Caller holds lock for writing. On failure the view is as before; on
 * success log tells what was closed (gm_view_undo_close reopens exactly
 * that, gm_view_log_free forgets it).
 */
int gm_view_close_pages(struct gm_store *store, uint64_t start, uint64_t end,
			struct gm_view_log *log);
void gm_view_undo_close(struct gm_store *store, struct gm_view_log *log);
void gm_view_log_free(struct gm_view_log *log);
/*
 * Open every page of [start, end), or none of what was closed: 0, or
 * -ENOSPC if the budget does not allow it. A pin that then links itself
 * with view_held set holds them open: no conversion closes pages of a
 * view_held pin (but a conversion of them to private, which pins refuse).
 */
int gm_view_open_all(struct gm_store *store, uint64_t start, uint64_t end);
/* Whether every page of [start, end) is open. Caller holds lock. */
bool gm_view_pages_open(struct gm_store *store, uint64_t start, uint64_t end);
/* Whether a hold (gm_view_open, pins) covers a page of [start, end). */
bool gm_view_held(struct gm_store *store, uint64_t start, uint64_t end);
/* Copy between buf and pages known to be shared; caller holds lock. */
int gm_view_copy(struct gm_store *store, uint64_t off, void *buf, size_t len,
		 bool write);

/*
 * window.c: mappings of the store's fd, read/write, MADV_DONTDUMP and
 * MADV_DONTFORK. gm_map_store maps at `at` (MAP_FIXED) or anywhere (NULL);
 * NULL and errno on failure (at `at`, the range may then be unmapped).
 */
void *gm_map_store(struct gm_store *store, void *at, uint64_t off,
		   uint64_t len);
/*
 * An anonymous PROT_NONE reservation of len bytes at `at` (MAP_FIXED) or
 * anywhere aligned to align (a power of two); NULL and errno.
 */
void *gm_reserve(void *at, uint64_t len, uint64_t align);
/*
 * A transient mapping of [off, off + len) of its own, returning the address
 * of byte off; NULL and errno. On hugetlb it maps the whole huge pages
 * holding the range. Unmap with gm_unmap_window and the same off, len.
 */
void *gm_map_window(struct gm_store *store, uint64_t off, uint64_t len);
void gm_unmap_window(struct gm_store *store, void *p, uint64_t off,
		     uint64_t len);
/* Copy through a transient mapping, for shared pages the view keeps closed. */
int gm_window_copy(struct gm_store *store, uint64_t off, void *buf, size_t len,
		   bool write);

/*
 * huge.c: huge backings. gm_huge_setup checks the options and sets the
 * store's page sizes; gm_huge_memfd creates the backing memfd for
 * store->pages (checking the system allows it), or -errno with a message.
 */
int gm_huge_setup(struct gm_store *store, enum gm_backing backing,
		  enum gm_pages pages);
int gm_huge_memfd(struct gm_store *store);
/*
 * After the view changed [s, e) (view_lock held for writing): track which
 * THP regions are mixed, re-collapse those that became uniformly open.
 */
void gm_huge_view_changed(struct gm_store *store, uint64_t s, uint64_t e,
			  bool closed);
uint64_t gm_huge_bytes(struct gm_store *store);

/* pin.c: first pinned byte offset overlapping [start, end), or UINT64_MAX */
uint64_t gm_pins_first_overlap(struct gm_store *store, uint64_t start,
			       uint64_t end);
/* Ask revocable pins over [start, end) to go and wait up to timeout_ns. */
int gm_pins_revoke(struct gm_store *store, uint64_t start, uint64_t end,
		   uint64_t timeout_ns, uint64_t *error_offset);

/* listener.c */
int gm_listeners_prepare(struct gm_store *store,
			 const struct gm_range_change *change,
			 struct gm_listener **failed);
void gm_listeners_commit(struct gm_store *store,
			 const struct gm_range_change *change);
/* Abort for every listener before `upto` (NULL: all). */
void gm_listeners_abort(struct gm_store *store,
			const struct gm_range_change *change,
			struct gm_listener *upto);

uint64_t gm_now_ns(void);

#endif /* GMEM_INTERNAL_H */
