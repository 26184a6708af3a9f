// SPDX-License-Identifier: MIT
/*
 * Huge backings: 2 MiB transparent huge pages of a shmem memfd, and hugetlb
 * memfds of 2 MiB or 1 GiB pages. The conversion granule stays 4 KiB; what
 * changes is how the host view maps the fd (lib/view.c), how destructive
 * conversions discard (lib/convert.c), and here: the system checks (the
 * library never changes a setting), the tracking of THP regions whose 2 MiB
 * mapping a conversion split, their re-collapse, and the huge-page figures.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#define GM_MFD_HUGE_SHIFT 26

#define THP_SIZE (2ULL << 20)
#define THP_PAGES (THP_SIZE >> GM_PAGE_SHIFT)

static const char *const thp_knob =
	"/sys/kernel/mm/transparent_hugepage/shmem_enabled";
static const char *const thp_knob_2m =
	"/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled";

const char *gm_pages_name(enum gm_pages pages)
{
	switch (pages) {
	case GM_PAGES_4K:
		return "4k";
	case GM_PAGES_THP_2M:
		return "2m-thp";
	case GM_PAGES_HUGETLB_2M:
		return "2m-hugetlb";
	case GM_PAGES_HUGETLB_1G:
		return "1g-hugetlb";
	}
	return "unknown";
}

int gm_pages_parse(const char *name, enum gm_pages *out)
{
	static const enum gm_pages all[] = { GM_PAGES_4K, GM_PAGES_THP_2M,
					     GM_PAGES_HUGETLB_2M,
					     GM_PAGES_HUGETLB_1G };

	if (!name || !out)
		return gm_error(-EINVAL, "gm_pages_parse: %s is NULL",
				name ? "out" : "name");
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcmp(name, gm_pages_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	return gm_error(-EINVAL,
			"gm_pages_parse: unknown page size '%s' (4k, 2m-thp, "
			"2m-hugetlb or 1g-hugetlb)",
			name);
}

/* The bracketed word of a sysfs mode file into out; false if unreadable. */
static bool read_mode(const char *path, char *out, size_t len)
{
	char buf[256], *lb, *rb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	lb = strchr(buf, '[');
	rb = lb ? strchr(lb, ']') : NULL;
	if (!rb || (size_t)(rb - lb - 1) >= len)
		return false;
	memcpy(out, lb + 1, rb - lb - 1);
	out[rb - lb - 1] = '\0';
	return true;
}

/* Whether shmem may get 2 MiB folios where MADV_HUGEPAGE asks. */
static int check_thp(void)
{
	char mode[32] = "", mode_2m[32] = "";
	const char *knob = thp_knob;

	if (read_mode(thp_knob_2m, mode_2m, sizeof(mode_2m)) &&
	    strcmp(mode_2m, "inherit")) {
		knob = thp_knob_2m;
		strcpy(mode, mode_2m);
	} else if (!read_mode(thp_knob, mode, sizeof(mode))) {
		return gm_error(-EOPNOTSUPP,
				"gm_store_create: 2m-thp: %s is unreadable: "
				"this kernel has no THP for shmem",
				thp_knob);
	}
	if (!strcmp(mode, "never") || !strcmp(mode, "deny"))
		return gm_error(-EOPNOTSUPP,
				"gm_store_create: 2m-thp: %s is '%s'; it must "
				"be advise, within_size, always or force",
				knob, mode);
	return 0;
}

static int read_u64(const char *path, uint64_t *val)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	*val = strtoull(buf, NULL, 10);
	return 0;
}

/* Whether the pool has size bytes of free, unreserved pages of store's. */
static int check_hugetlb(struct gm_store *store, uint64_t size)
{
	char dir[96], path[160];
	uint64_t free_pages = 0, resv = 0, want = size / store->huge_size;

	snprintf(dir, sizeof(dir), "/sys/kernel/mm/hugepages/hugepages-%llukB",
		 (unsigned long long)(store->huge_size >> 10));
	snprintf(path, sizeof(path), "%s/free_hugepages", dir);
	if (read_u64(path, &free_pages))
		return gm_error(-EOPNOTSUPP,
				"gm_store_create: %s: %s is unreadable: this "
				"kernel has no hugetlb pages of that size",
				gm_pages_name(store->pages), path);
	snprintf(path, sizeof(path), "%s/resv_hugepages", dir);
	read_u64(path, &resv);
	if (free_pages < resv || free_pages - resv < want)
		return gm_error(-EOPNOTSUPP,
				"gm_store_create: %s: %llu pages needed, %llu "
				"free and unreserved: raise %s/nr_hugepages",
				gm_pages_name(store->pages),
				(unsigned long long)want,
				(unsigned long long)(free_pages > resv ?
							     free_pages - resv :
							     0),
				dir);
	return 0;
}

int gm_huge_setup(struct gm_store *store, enum gm_backing backing,
		  enum gm_pages pages)
{
	store->pages = pages;
	store->huge_size = GM_PAGE_SIZE;
	store->granule = 1;
	switch (pages) {
	case GM_PAGES_4K:
		return 0;
	case GM_PAGES_THP_2M:
		store->huge_size = THP_SIZE;
		break;
	case GM_PAGES_HUGETLB_2M:
		store->huge_size = THP_SIZE;
		store->granule = THP_PAGES;
		break;
	case GM_PAGES_HUGETLB_1G:
		store->huge_size = 1ULL << 30;
		store->granule = store->huge_size >> GM_PAGE_SHIFT;
		break;
	default:
		return gm_error(-EINVAL, "gm_store_create: unknown pages %d",
				(int)pages);
	}
	if (backing == GM_BACKING_GUEST_MEMFD)
		return gm_error(-EOPNOTSUPP,
				"gm_store_create: %s needs the memfd backing: "
				"this kernel's guest_memfd has no huge pages "
				"(no capability or flag offers them)",
				gm_pages_name(pages));
	if (pages == GM_PAGES_THP_2M)
		return check_thp();
	if (store->size % store->huge_size)
		return gm_error(-EINVAL,
				"gm_store_create: size %llu is not a multiple "
				"of the %s page",
				(unsigned long long)store->size,
				gm_pages_name(pages));
	return check_hugetlb(store, store->size);
}

int gm_huge_memfd(struct gm_store *store)
{
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd;

	if (store->granule > 1)
		flags |= MFD_HUGETLB |
			 ((unsigned int)__builtin_ctzll(store->huge_size)
			  << GM_MFD_HUGE_SHIFT);
	fd = memfd_create("gmem", flags);
	if (fd < 0)
		return gm_error(-errno, "%s memfd backing: memfd_create",
				gm_pages_name(store->pages));
	if (store->pages == GM_PAGES_THP_2M) {
		size_t bits = (store->npages / THP_PAGES + 7) / 8;

		store->thp_split = calloc(bits ? bits : 1, 1);
		if (!store->thp_split) {
			close(fd);
			return gm_error(-ENOMEM,
					"gm_store_create: THP region map");
		}
	}
	return fd;
}

static bool split_test(struct gm_store *store, uint64_t r)
{
	return store->thp_split[r / 8] & (1u << (r % 8));
}

static void split_set(struct gm_store *store, uint64_t r, bool on)
{
	if (on)
		store->thp_split[r / 8] |= (uint8_t)(1u << (r % 8));
	else
		store->thp_split[r / 8] &= (uint8_t) ~(1u << (r % 8));
}

/* VIEW_OPEN or VIEW_CLOSED if region r is uniform in the view, else -1. */
static int region_state(struct gm_store *store, uint64_t r)
{
	uint64_t rs = r * THP_PAGES, S, E;
	uint8_t v;

	emap_extent(store->view_map, rs, &S, &E, &v);
	return E >= rs + THP_PAGES ? v : -1;
}

/*
 * Map region r at 2 MiB again. Only where some page of it is in memory: a
 * collapse fills holes, and an untouched region faults in huge anyway.
 */
static bool collapse(struct gm_store *store, uint64_t r)
{
	unsigned char vec[THP_PAGES];
	void *at = store->view + r * THP_SIZE;
	bool resident = false;

	if (mincore(at, THP_SIZE, vec))
		return false;
	for (size_t i = 0; i < THP_PAGES && !resident; i++)
		resident = vec[i] & 1;
	if (resident && madvise(at, THP_SIZE, MADV_COLLAPSE))
		return false;
	if (resident)
		gm_stat_add(&store->stats.huge_merges, 1);
	return true;
}

/* Bring region r's mark up to date; with collapse, merge it if it can. */
static uint64_t region_update(struct gm_store *store, uint64_t r, bool closed)
{
	int state = region_state(store, r);

	if (state < 0) {
		if (!split_test(store, r) && closed)
			gm_stat_add(&store->stats.huge_splits, 1);
		split_set(store, r, true);
		return 0;
	}
	if (!split_test(store, r))
		return 0;
	if (state == VIEW_CLOSED || collapse(store, r)) {
		split_set(store, r, false);
		return state == VIEW_OPEN;
	}
	return 0;
}

void gm_huge_view_changed(struct gm_store *store, uint64_t s, uint64_t e,
			  bool closed)
{
	uint64_t last = store->npages / THP_PAGES;

	if (!store->thp_split)
		return;
	for (uint64_t r = s / THP_PAGES; r < last && r * THP_PAGES < e; r++)
		region_update(store, r, closed);
}

/*
 * A region all shared whose view is (partly) closed, as the view budget
 * leaves whole runs after scattered conversions: open it, budget
 * permitting, and map it at 2 MiB (the split mark makes the open collapse
 * it). 1 if it is open now.
 */
static uint64_t reopen(struct gm_store *store, uint64_t r)
{
	uint64_t rs = r * THP_PAGES, re = rs + THP_PAGES;

	if (gm_view_pages_open(store, rs, re) ||
	    gm_attr_find_not(store, rs, re, GM_ATTR_SHARED) < re)
		return 0;
	pthread_rwlock_wrlock(&store->view_lock);
	split_set(store, r, true);
	pthread_rwlock_unlock(&store->view_lock);
	return !gm_view_open_pages(store, rs, re);
}

int gm_store_compact(struct gm_store *store)
{
	uint64_t merged = 0, nr;
	int ret = gm_check_store(store, "gm_store_compact");

	if (!ret)
		ret = gm_read_lock(store, "gm_store_compact");
	if (ret)
		return ret;
	if (store->thp_split) {
		nr = store->npages / THP_PAGES;
		if (!(store->flags & GM_STORE_VIEW_LAZY))
			for (uint64_t r = 0; r < nr; r++)
				merged += reopen(store, r);
		pthread_rwlock_wrlock(&store->view_lock);
		for (uint64_t r = 0; r < nr; r++)
			if (split_test(store, r))
				merged += region_update(store, r, false);
		pthread_rwlock_unlock(&store->view_lock);
	}
	gm_read_unlock(store);
	return merged > INT32_MAX ? INT32_MAX : (int)merged;
}

/* Bytes of ShmemPmdMapped in the mappings that start in [lo, hi). */
static uint64_t pmd_mapped(FILE *f, uintptr_t lo, uintptr_t hi)
{
	char line[512];
	unsigned long start = 0, end, kb;
	bool in = false;
	uint64_t bytes = 0;

	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			in = start >= lo && start < hi;
		else if (in && sscanf(line, "ShmemPmdMapped: %lu kB", &kb) == 1)
			bytes += (uint64_t)kb << 10;
	}
	return bytes;
}

uint64_t gm_huge_bytes(struct gm_store *store)
{
	uintptr_t view = (uintptr_t)store->view;
	uint64_t in_view, in_kvm = 0;
	struct stat st;
	FILE *f;

	if (store->granule > 1)
		return fstat(store->fd, &st) ? 0 : (uint64_t)st.st_blocks * 512;
	if (store->pages != GM_PAGES_THP_2M)
		return 0;
	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return 0;
	in_view = pmd_mapped(f, view, view + store->size);
	for (struct gm_kvm_slot *s = store->kvm_slots; s; s = s->next)
		if (s->kvm_map)
			in_kvm += pmd_mapped(f, (uintptr_t)s->kvm_map,
					     (uintptr_t)s->kvm_map + s->len);
	fclose(f);
	return in_view > in_kvm ? in_view : in_kvm;
}
