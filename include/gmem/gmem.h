/* SPDX-License-Identifier: MIT */
/*
 * libgmem: guest-first memory for KVM virtual machines.
 *
 * A store is an fd-backed range of guest memory (a KVM guest_memfd or a
 * shmem memfd). Every 4 KiB page of it is either shared with the host or
 * private to the guest. Private pages are out of the host's reach: the host
 * view (the store's mapping in this process) has them PROT_NONE, and the
 * access calls (gm_read, gm_write, gm_pin) refuse them with -EFAULT.
 *
 * Conventions:
 *  - Every call returns 0 (or a documented count) or a negative errno.
 *    gm_last_error() gives a message naming what was wrong.
 *  - Offsets and lengths are bytes and must be multiples of GM_PAGE_SIZE
 *    unless said otherwise; off + len must not overflow or pass the end.
 *  - No global state; every call is thread-safe. Listener callbacks run
 *    under the store's write lock and must not call back into the same
 *    store (such calls fail with -EDEADLK), except gm_listener_unregister.
 *    Revoke callbacks run with no lock of the store held and may call any
 *    function.
 *  - Every struct passed to or filled by the library starts with a size
 *    field (sz) that the caller sets to sizeof(the struct), the rest
 *    zeroed (= { .sz = sizeof(x), ... }), so structs can grow without
 *    breaking programs built against other versions of these headers
 *    (docs/api-stability.md). Structs the library reads: a smaller sz is
 *    accepted (the missing fields take their defaults), a larger one only
 *    if every byte past the library's own struct is zero (else -E2BIG).
 *    Structs the library fills: it writes min(sz, its own size) bytes and
 *    sets sz to that count, so a caller learns which fields were filled.
 *  - Only gm_* symbols are exported; the shared library's version is
 *    GMEM_VERSION (compile time) and gm_version() (run time).
 */
#ifndef GMEM_GMEM_H
#define GMEM_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

#define GM_PAGE_SIZE 4096ULL
#define GM_PAGE_SHIFT 12

struct gm_store;
struct gm_pin;
struct gm_listener;

/* The page states. Any other value passed to the API is -EINVAL. */
enum gm_attr {
	GM_ATTR_SHARED = 0,
	GM_ATTR_PRIVATE = 1,
};

enum gm_backing {
	/* guest_memfd where the kernel offers it (with MMAP|INIT_SHARED), else memfd */
	GM_BACKING_AUTO = 0,
	/* KVM guest_memfd; fails with -EOPNOTSUPP where the kernel lacks it */
	GM_BACKING_GUEST_MEMFD,
	/* shmem memfd */
	GM_BACKING_MEMFD,
};

/*
 * The pages of the backing (gm_store_opts.pages). The granule of states,
 * conversions and pins stays GM_PAGE_SIZE whatever the backing's pages.
 * Huge backings need the memfd backing (this kernel's guest_memfd has no
 * huge pages: -EOPNOTSUPP) and a system that allows them; the library never
 * changes a system setting, it fails with -EOPNOTSUPP naming the setting.
 */
enum gm_pages {
	GM_PAGES_4K = 0,
	/*
	 * 2 MiB transparent huge pages of shmem (MADV_HUGEPAGE on every
	 * mapping); /sys/kernel/mm/transparent_hugepage/shmem_enabled must not
	 * be never or deny.
	 */
	GM_PAGES_THP_2M,
	/*
	 * hugetlb pages (MFD_HUGETLB), 2 MiB or 1 GiB: the store's size must
	 * be a multiple of the page, and that many pages must be free in the
	 * pool (/sys/kernel/mm/hugepages/hugepages-<size>kB/nr_hugepages).
	 * The host view opens a huge page only when all of it is shared.
	 */
	GM_PAGES_HUGETLB_2M,
	GM_PAGES_HUGETLB_1G,
};

/* "4k", "2m-thp", "2m-hugetlb", "1g-hugetlb" ("unknown" otherwise). */
const char *gm_pages_name(enum gm_pages pages);
/* The pages named name, as gm_pages_name() spells them; else -EINVAL. */
int gm_pages_parse(const char *name, enum gm_pages *out);

/* gm_store_opts.flags */
enum {
	/* Start with every page shared (default: every page private). */
	GM_STORE_INIT_SHARED = 1u << 0,
	/*
	 * Do not open pages in the host view when they become shared; open
	 * them on first host access instead (gm_read, gm_write, gm_pin,
	 * gm_view_open). A conversion of a range the host never touched then
	 * needs no mprotect at all.
	 */
	GM_STORE_VIEW_LAZY = 1u << 1,
};

struct gm_store_opts {
	size_t sz; /* sizeof(struct gm_store_opts) */
	uint64_t size; /* bytes, > 0, multiple of GM_PAGE_SIZE */
	enum gm_backing backing;
	/*
	 * KVM VM fd on which to create the guest_memfd. < 0: the store opens
	 * /dev/kvm and creates a VM of its own to hold the guest_memfd. 0 is
	 * fd 0, so set -1 for "own VM"; an sz that ends before this field
	 * means -1.
	 */
	int vm_fd;
	unsigned int flags; /* GM_STORE_* */
	/*
	 * Most extents (maximal runs of equal accessibility) the host view may
	 * be split into; each costs the process about one mapping (VMA) of
	 * vm.max_map_count. 0: GM_VIEW_BUDGET_DEFAULT. Shared pages that cannot
	 * be opened within the budget stay reachable through gm_read, gm_write
	 * and gm_pin. Pinned pages and hypervisor-visible ranges always stay
	 * open, so each may cost up to two extents beyond the budget.
	 */
	uint32_t view_budget;
	enum gm_pages pages; /* the backing's pages; default GM_PAGES_4K */
};

#define GM_VIEW_BUDGET_DEFAULT 16384u

/*
 * Create a store. Returns 0 and *out, or -EINVAL (bad size or options),
 * -E2BIG (opts->sz larger than this library's struct with a non-zero byte
 * past it), -EOPNOTSUPP (backing not available), -ENOMEM, or the errno of a failing
 * syscall. The store's memory is sparse: nothing is allocated until used, so
 * a 1 TiB store costs nothing up front.
 */
int gm_store_create(const struct gm_store_opts *opts, struct gm_store **out);

/*
 * Destroy a store: 0, and the store is freed. A store is destroyed only once
 * nothing refers to it: -EBUSY, with nothing freed and the store still fully
 * usable, while any pin is held (gm_unpin), any KVM memslot is bound
 * (gm_kvm_memslot_unbind) or any listener is registered
 * (gm_listener_unregister). -EDEADLK from a listener of the store. A NULL
 * store: 0, as free(NULL). Not to be called while another thread still uses
 * the store.
 */
int gm_store_destroy(struct gm_store *store);

uint64_t gm_store_size(const struct gm_store *store);

/* The backing fd (guest_memfd or memfd), owned by the store. */
int gm_store_fd(const struct gm_store *store);

/* The backing actually chosen (never GM_BACKING_AUTO). */
enum gm_backing gm_store_backing(const struct gm_store *store);

/* "auto", "guest_memfd" or "memfd" ("unknown" for any other value). */
const char *gm_backing_name(enum gm_backing backing);

/*
 * The size of the store's pages: the granule of states, conversions and
 * pins (GM_PAGE_SIZE today; huge backings may use more). 0 for NULL.
 */
size_t gm_store_page_size(const struct gm_store *store);

/*
 * The size of the backing's pages: 4096, or 2 MiB / 1 GiB for huge
 * backings (gm_store_opts.pages). 0 for NULL.
 */
size_t gm_store_backing_page_size(const struct gm_store *store);

/*
 * Make huge again what conversions split: on a GM_PAGES_THP_2M store, every
 * 2 MiB region of the host view that a conversion split and that is
 * uniform again is mapped at 2 MiB again (MADV_COLLAPSE), counted in
 * gm_stats.huge_merges. Conversions already do this for the regions they
 * make uniform; this catches what they could not (the kernel answered
 * EAGAIN, or the region was closed), and, but on GM_STORE_VIEW_LAZY
 * stores, opens (budget permitting) and maps at 2 MiB the regions all
 * shared that the view budget had left closed. Returns the number of
 * regions merged or opened; 0 on other stores. -EDEADLK from a listener.
 */
int gm_store_compact(struct gm_store *store);

/* The backing named name, as gm_backing_name() spells it; else -EINVAL. */
int gm_backing_parse(const char *name, enum gm_backing *out);

/*
 * The backing gm_store_create() gives a store asking for want on vm_fd (as
 * in struct gm_store_opts), by the same rule: GM_BACKING_AUTO resolved on
 * this machine. 0 and *out (never GM_BACKING_AUTO); -EOPNOTSUPP (want is
 * guest_memfd and the kernel lacks it), -EINVAL, or a failing syscall's.
 */
int gm_backing_resolve(enum gm_backing want, int vm_fd, enum gm_backing *out);

/* ---- attributes ---- */

/* The state of the page holding byte off (any offset < size). */
int gm_attr_get(struct gm_store *store, uint64_t off, enum gm_attr *attr);

/*
 * 1 if every page of [off, off + len) has state attr, 0 if not, -errno on
 * bad arguments. The range need not be page-aligned; len > 0.
 */
int gm_range_is(struct gm_store *store, uint64_t off, uint64_t len,
		enum gm_attr attr);

struct gm_extent {
	size_t sz; /* in: sizeof(struct gm_extent); out: bytes filled */
	uint64_t off;
	uint64_t len;
	enum gm_attr attr;
};

/*
 * The maximal run of equal state that holds byte off (set ext->sz first).
 * Iterate with off = ext.off + ext.len until off == gm_store_size().
 * -ERANGE past the end.
 */
int gm_extent_at(struct gm_store *store, uint64_t off, struct gm_extent *ext);

/* Number of extents (maximal runs of equal state) in the store. */
uint64_t gm_extent_count(struct gm_store *store);

/* ---- conversion ---- */

/* gm_convert flags */
enum {
	/* Discard the contents of the pages that change state (punch hole). */
	GM_CONVERT_DESTRUCTIVE = 1u << 0,
	/*
	 * To private: ask the holders of revocable pins on the range to unpin
	 * and wait for them up to a bounded time. A pin that is not revocable
	 * still fails the conversion with -EBUSY at once.
	 */
	GM_CONVERT_REVOKE = 1u << 1,
};

/*
 * Convert [off, off + len) to state `to`, all or nothing.
 *
 * In place (default) the contents are kept; with GM_CONVERT_DESTRUCTIVE the
 * pages that change state read back as zeroes and no old byte stays
 * readable. Pages already in state `to` are left alone (a conversion of a
 * range already in that state succeeds and changes nothing). Listeners hear
 * once per maximal sub-range that changes.
 *
 * Errors leave the store exactly as it was: -EINVAL (alignment, zero
 * length, attribute, flags), -ERANGE (past the end, or off + len
 * overflows), -EBUSY (a page to make private is pinned), a listener's veto,
 * -ENOMEM, or a failing syscall's errno; -EDEADLK from inside a listener.
 * One exception: a destructive conversion discards the changed sub-ranges
 * one after the other (punch hole, or zeroing through a transient mapping
 * where the punch fails); if both fail for one sub-range, the sub-ranges
 * before it stay discarded, with their state unchanged.
 */
int gm_convert(struct gm_store *store, uint64_t off, uint64_t len,
	       enum gm_attr to, unsigned int flags);

struct gm_convert_opts {
	size_t sz; /* sizeof(struct gm_convert_opts) */
	/*
	 * GM_CONVERT_REVOKE: how long to wait for pins to go; 0: 100 ms;
	 * UINT64_MAX: wait forever (a longer wait than the clock can hold
	 * waits forever too).
	 */
	uint64_t revoke_timeout_ns;
	/*
	 * out: on failure, the first offset that caused it (else off). Out
	 * fields that end past sz are not written.
	 */
	uint64_t error_offset;
	/* out: pages whose state changed */
	uint64_t pages_changed;
};

/*
 * gm_convert with options and results; opts may be NULL. -E2BIG if opts->sz
 * is larger than this library's struct with a non-zero byte past it.
 */
int gm_convert_ex(struct gm_store *store, uint64_t off, uint64_t len,
		  enum gm_attr to, unsigned int flags,
		  struct gm_convert_opts *opts);

/* ---- listeners ---- */

/* A callback may read a field only if it lies within sz. */
struct gm_range_change {
	size_t sz; /* the bytes of this struct the library filled */
	uint64_t off;
	uint64_t len;
	enum gm_attr from;
	enum gm_attr to;
	unsigned int flags; /* the conversion's GM_CONVERT_* flags */
};

struct gm_listener_ops {
	size_t sz; /* sizeof(struct gm_listener_ops) */
	/* Before the change; a negative errno vetoes the whole conversion. */
	int (*prepare)(void *opaque, const struct gm_range_change *change);
	/* After the change took effect. */
	void (*commit)(void *opaque, const struct gm_range_change *change);
	/* The conversion failed after this listener's prepare succeeded. */
	void (*abort)(void *opaque, const struct gm_range_change *change);
};

/*
 * Register a listener; listeners are called in registration order. Any
 * callback may be NULL, as is any that ops->sz does not cover. ops is
 * copied. The handle belongs to the caller until gm_listener_unregister;
 * the store cannot be destroyed before (see gm_store_destroy).
 */
int gm_listener_register(struct gm_store *store,
			 const struct gm_listener_ops *ops, void *opaque,
			 struct gm_listener **out);

/*
 * Unregister a listener and free its handle. listener may be NULL. Once this
 * returns, none of its callbacks is called again and its opaque is not
 * touched, so the caller may free it at once.
 *
 * From another thread, it waits for a conversion that is running. From a
 * callback of the same store (of this listener or of another one) it takes
 * effect at once, for the conversion that is running too: an unregistered
 * listener hears neither the commit nor the abort that follows its prepare,
 * nor the changes of the conversion's later sub-ranges. The return value of
 * the prepare that unregistered it still counts (a veto still vetoes). The
 * handle is freed when that conversion ends.
 */
void gm_listener_unregister(struct gm_listener *listener);

/* ---- pins ---- */

/* gm_pin flags */
enum {
	/* No other pin may hold any of these pages while this one does. */
	GM_PIN_EXCLUSIVE = 1u << 0,
};

/*
 * Called (from the thread converting with GM_CONVERT_REVOKE) to ask the
 * holder of a long-term pin to release it; the holder calls gm_unpin, now
 * or later from any thread. It may come as soon as the pin exists, before
 * gm_pin_revocable returns (*out is set by then), and while the holder
 * unpins on its own: the pin stays allocated until the callback returns,
 * and a gm_unpin of a pin already unpinned does nothing meanwhile.
 */
typedef void (*gm_revoke_fn)(struct gm_pin *pin, void *opaque);

/*
 * Pin [off, off + len) for a device or an I/O. Every page must be shared
 * (-EFAULT otherwise). While pinned, the pages cannot become private
 * (gm_convert fails with -EBUSY). -EBUSY if an exclusive pin holds any of the
 * pages, or if GM_PIN_EXCLUSIVE is asked and any other pin does.
 */
int gm_pin(struct gm_store *store, uint64_t off, uint64_t len,
	   unsigned int flags, struct gm_pin **out);

/* gm_pin for a long-term holder that can give the pages back on request. */
int gm_pin_revocable(struct gm_store *store, uint64_t off, uint64_t len,
		     unsigned int flags, gm_revoke_fn revoke, void *opaque,
		     struct gm_pin **out);

/* Release a pin. pin may be NULL. */
void gm_unpin(struct gm_pin *pin);

/* Host pointer to the pinned memory, valid until gm_unpin. */
void *gm_pin_ptr(const struct gm_pin *pin);
uint64_t gm_pin_offset(const struct gm_pin *pin);
uint64_t gm_pin_length(const struct gm_pin *pin);

/* ---- safe access ---- */

/*
 * Copy between the store and buf. Any byte offset and length. If any byte
 * of the range is private: -EFAULT and nothing is copied. A concurrent
 * conversion never lets these calls touch a private page.
 */
int gm_read(struct gm_store *store, uint64_t off, void *buf, size_t len);
int gm_write(struct gm_store *store, uint64_t off, const void *buf, size_t len);

/* ---- host view ---- */

/*
 * The base of the store's address range in this process (the host view).
 * Open pages are mapped read/write from the store's fd. Private pages are
 * not mapped from it at all (an anonymous PROT_NONE reservation: touching
 * one faults, and no forced read reaches its bytes), nor are shared pages
 * not opened yet (GM_STORE_VIEW_LAZY) or beyond the view budget.
 * Hypervisor-visible ranges are always mapped read/write. Every mapping of
 * the store is MADV_DONTDUMP and MADV_DONTFORK. With the guest_memfd
 * backing this range can serve as a KVM memslot's userspace_addr.
 */
void *gm_view_base(struct gm_store *store);

/*
 * Open [off, off + len) in the host view and hold it open, so that
 * gm_view_base() + off can be used directly until gm_view_release of the
 * same range (for example a virtio ring the VMM keeps a pointer into).
 * While held, no conversion closes these pages: conversions elsewhere
 * leave them open whatever the view budget asks (each hold may cost up to
 * two extents beyond it), and conversions of them to private fail with
 * -EBUSY, as for a pin that cannot be revoked. Holds are counted: n opens
 * of a range need n releases of it. -EFAULT if a page is private (on
 * hugetlb, any page of the range's huge pages: the view opens whole huge
 * pages that are all shared; the message says so), -ENOSPC
 * if the view budget does not allow opening the range, -EBUSY if an
 * exclusive pin holds a page. A hold counts as a pin in gm_stats and for
 * gm_store_destroy.
 */
int gm_view_open(struct gm_store *store, uint64_t off, uint64_t len);

/*
 * Release one hold of exactly [off, off + len) taken by gm_view_open.
 * -ENOENT if there is none. The pages may then be closed by conversions.
 */
int gm_view_release(struct gm_store *store, uint64_t off, uint64_t len);

/* 1 if every page of the range is accessible through the view, else 0. */
int gm_view_is_open(struct gm_store *store, uint64_t off, uint64_t len);

/* Number of extents (open and closed runs) the host view is split into. */
uint64_t gm_view_extent_count(struct gm_store *store);

/*
 * Mark [off, off + len) hypervisor-visible: mapped read/write in the host
 * view whatever its state, for memory that KVM must reach through the host
 * mapping (guest page tables, code that KVM emulates). The access calls
 * still refuse private pages there.
 */
int gm_hv_visible_add(struct gm_store *store, uint64_t off, uint64_t len);

/* 1 if any page of the range is hypervisor-visible, else 0. */
int gm_hv_visible_overlaps(struct gm_store *store, uint64_t off, uint64_t len);

/* ---- stats ---- */

struct gm_stats {
	size_t sz; /* in: sizeof(struct gm_stats); out: bytes filled */
	uint64_t to_private_requests;
	uint64_t to_shared_requests;
	uint64_t destructive_requests; /* of the above, destructive */
	uint64_t to_private_pages; /* pages that changed state */
	uint64_t to_shared_pages;
	uint64_t destructive_pages;
	uint64_t noop_requests; /* already in the requested state */
	uint64_t failed_requests; /* returned an error */
	uint64_t busy_refusals; /* of those, -EBUSY (pinned) */
	uint64_t vetoes; /* of those, vetoed by a listener */
	uint64_t convert_ns; /* time spent in successful conversions */
	uint64_t view_mprotects; /* changes of the host view's mappings */
	uint64_t pins; /* pins taken */
	uint64_t pins_active;
	uint64_t revokes; /* revoke callbacks called */
	uint64_t access_fallbacks; /* gm_read/gm_write not through the view */
	uint64_t extents; /* current extents of the attribute map */
	uint64_t view_extents; /* current extents of the host view */
	uint64_t tracking_bytes; /* heap held for attributes, view, pins */
	uint64_t private_pages; /* current */
	uint64_t shared_pages; /* current */
	/*
	 * Bytes of the store on huge pages: hugetlb, every populated byte;
	 * THP, the bytes the store's own mappings (the host view, or KVM's
	 * mapping where larger) map at 2 MiB (/proc/self/smaps
	 * ShmemPmdMapped), a lower bound of its huge folios. 0 for 4K.
	 */
	uint64_t huge_bytes;
	/*
	 * 2 MiB regions whose huge mapping in the host view a conversion split
	 * (a region made mixed; the backing's huge page itself is never split:
	 * in place, only the view changes; destructive, the changed 4 KiB
	 * pages are zeroed and only whole huge pages are punched).
	 */
	uint64_t huge_splits;
	/* split regions mapped at 2 MiB again (conversions, gm_store_compact) */
	uint64_t huge_merges;
};

/* Fill *stats (set stats->sz first). */
int gm_store_stats(struct gm_store *store, struct gm_stats *stats);

/* ---- errors ---- */

/*
 * The message of the last call that failed in this thread, naming the
 * argument, range or rule at fault. Valid until the next failing call.
 */
const char *gm_last_error(void);

/* strerror-like text for a return value of this API. */
const char *gm_strerror(int err);

/* ---- version ---- */

/* The running library's GMEM_VERSION and GMEM_VERSION_STRING. */
uint32_t gm_version(void);
const char *gm_version_string(void);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* GMEM_GMEM_H */
