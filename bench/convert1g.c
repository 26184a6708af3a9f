// SPDX-License-Identifier: MIT
/*
 * Conversion of 1 GiB against the system calls that are its physical floor.
 *
 * "The same work": a 1 GiB store whose pages are all populated (written)
 * and open in the host view (shared, read/write), against a second store
 * of the same size and backing (so the same kind of object: guest_memfd or
 * memfd, mapped once the same way) whose view the floor uses directly,
 * bypassing the library, populated the same way. Then:
 *   - in place to private    vs mprotect(PROT_NONE) of the 1 GiB mapping;
 *   - in place to shared     vs mprotect(PROT_READ|PROT_WRITE) of it;
 *   - destructive to private vs fallocate(PUNCH_HOLE) of the populated,
 *     mapped 1 GiB (the conversion also closes the view: mprotect + punch);
 *   - destructive to shared (pages populated while shared, then made
 *     private in place, untimed) vs the same punch.
 * Repetitions alternate ours and the floor; medians are reported.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "bench.h"

#define SZ GiB

/* Write every page (allocating it if it is a hole). */
static void populate(uint8_t *p, uint8_t v)
{
	for (uint64_t off = 0; off < SZ; off += 4096)
		p[off] = v;
}

/*
 * Allocate both stores' pages in turn, page by page, so that neither gets
 * the more scattered free pages: an unmap or mprotect reads each page's
 * struct page, and a mapping allocated first from fragmented free memory
 * was 11-15 % slower to change in every repetition (docs/performance.md,
 * "Noise in the 1 GiB rows").
 */
static void populate_interleaved(uint8_t *a, uint8_t *b)
{
	for (uint64_t off = 0; off < SZ; off += 4096) {
		a[off] = 1;
		b[off] = 1;
	}
}

static void convert(struct gm_store *s, enum gm_attr to, unsigned int flags)
{
	int ret = gm_convert(s, 0, SZ, to, flags);

	if (ret)
		die("gm_convert 1 GiB: %s (%s)", gm_strerror(ret),
		    gm_last_error());
}

static double t_convert(struct gm_store *s, enum gm_attr to, unsigned int flags)
{
	uint64_t t0 = now_ns();

	convert(s, to, flags);
	return (now_ns() - t0) / 1e6;
}

static double t_mprotect(void *p, int prot)
{
	uint64_t t0 = now_ns();

	if (mprotect(p, SZ, prot))
		die("mprotect 1 GiB: %s", strerror(errno));
	return (now_ns() - t0) / 1e6;
}

/*
 * Back to shared, and the host writes every page again: mapping the fd
 * back is lazy, so what the host pays is in the faults of its next touch.
 */
static double t_shared_touch(struct gm_store *s, uint8_t *v)
{
	uint64_t t0 = now_ns();

	convert(s, GM_ATTR_SHARED, 0);
	populate(v, 2);
	return (now_ns() - t0) / 1e6;
}

static double t_mprotect_touch(uint8_t *p)
{
	uint64_t t0 = now_ns();

	if (mprotect(p, SZ, PROT_READ | PROT_WRITE))
		die("mprotect 1 GiB: %s", strerror(errno));
	populate(p, 2);
	return (now_ns() - t0) / 1e6;
}

/* Take [p, p + SZ) out of the address space: an anonymous reservation. */
static double t_unmap(void *p)
{
	uint64_t t0 = now_ns();

	if (mmap(p, SZ, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
		 0) == MAP_FAILED)
		die("mmap anonymous 1 GiB: %s", strerror(errno));
	return (now_ns() - t0) / 1e6;
}

/*
 * Map the fd read/write over [p, p + SZ) again, with the advice every
 * mapping of a store carries (out of core dumps and forked children), and
 * write every page.
 */
static double t_map(void *p, int fd)
{
	uint64_t t0 = now_ns();

	if (mmap(p, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		 0) == MAP_FAILED ||
	    madvise(p, SZ, MADV_DONTDUMP) || madvise(p, SZ, MADV_DONTFORK))
		die("mmap of the fd 1 GiB: %s", strerror(errno));
	populate(p, 2);
	return (now_ns() - t0) / 1e6;
}

static double t_punch(int fd)
{
	uint64_t t0 = now_ns();

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, SZ))
		die("fallocate(PUNCH_HOLE) 1 GiB: %s", strerror(errno));
	return (now_ns() - t0) / 1e6;
}

static void add(const char *id, const char *what, double *ours,
		const char *floor_what, double *floor, double *mprot, int n,
		enum gm_backing b)
{
	struct row r = {
		.id = id, .what = what, .unit = "ms", .floor_what = floor_what
	};

	r.ours = median(ours, n);
	r.floor = median(floor, n);
	if (mprot) {
		row_extra(&r, "mprotect_ms", median(mprot, n));
		row_extra(&r, "ratio_vs_mprotect", r.ours / median(mprot, n));
	}
	row_extra(&r, "reps", n);
	row_extra(&r, "guest_memfd", b == GM_BACKING_GUEST_MEMFD);
	row_add(&r);
}

void bench_convert_1g(void)
{
	struct gm_store *s = bench_store(SZ, GM_STORE_INIT_SHARED),
			*f = bench_store(SZ, GM_STORE_INIT_SHARED);
	int n = cfg.reps, ffd = gm_store_fd(f);
	double op[n], fp[n], os[n], fs[n], odp[n], fdp[n], ods[n], fds[n];
	double mp[n], ms[n];
	enum gm_backing b = gm_store_backing(s);
	uint8_t *v = gm_view_base(s), *fm;

	note("1 GiB stores on %s", gm_backing_name(b));
	/*
	 * The floor works on the second store's own view, bypassing the
	 * library: the same kind of fd, mapped once, the same way.
	 */
	fm = gm_view_base(f);

	/*
	 * In place. Both stores' pages are allocated in turn first; each
	 * timed call then follows the populate of its own mapping. mprotect
	 * keeps the pages mapped, so its pair runs on a freshly populated
	 * floor mapping too.
	 */
	populate_interleaved(v, fm);
	for (int i = 0; i < n; i++) {
		if (i % 2) {
			populate(v, i);
			op[i] = t_convert(s, GM_ATTR_PRIVATE, 0);
			populate(fm, i);
			fp[i] = t_unmap(fm);
			os[i] = t_shared_touch(s, v);
			fs[i] = t_map(fm, ffd);
		} else {
			populate(fm, i);
			fp[i] = t_unmap(fm);
			populate(v, i);
			op[i] = t_convert(s, GM_ATTR_PRIVATE, 0);
			fs[i] = t_map(fm, ffd);
			os[i] = t_shared_touch(s, v);
		}
		populate(fm, i);
		mp[i] = t_mprotect(fm, PROT_NONE);
		ms[i] = t_mprotect_touch(fm);
	}
	add("convert1g.inplace.to_private",
	    "1 GiB in place to private (populated, view open)", op,
	    "mmap(anonymous, MAP_FIXED) over 1 GiB populated", fp, mp, n, b);
	add("convert1g.inplace.to_shared",
	    "1 GiB in place to shared, then the host writes it", os,
	    "mmap(fd, MAP_FIXED) + 2 madvise, then the same writes", fs, ms, n,
	    b);

	/* Destructive: every rep populates 1 GiB afresh. */
	for (int i = 0; i < n; i++) {
		populate(v, 0x5a);
		populate(fm, 0x5a);
		if (i % 2) {
			odp[i] = t_convert(s, GM_ATTR_PRIVATE,
					   GM_CONVERT_DESTRUCTIVE);
			fdp[i] = t_punch(ffd);
		} else {
			fdp[i] = t_punch(ffd);
			odp[i] = t_convert(s, GM_ATTR_PRIVATE,
					   GM_CONVERT_DESTRUCTIVE);
		}
		convert(s, GM_ATTR_SHARED, 0);
		populate(v, 0xa5);
		populate(fm, 0xa5);
		convert(s, GM_ATTR_PRIVATE, 0);
		if (i % 2) {
			ods[i] = t_convert(s, GM_ATTR_SHARED,
					   GM_CONVERT_DESTRUCTIVE);
			fds[i] = t_punch(ffd);
		} else {
			fds[i] = t_punch(ffd);
			ods[i] = t_convert(s, GM_ATTR_SHARED,
					   GM_CONVERT_DESTRUCTIVE);
		}
		if (v[4096 * 7] != 0)
			die("destructive conversion left old contents");
	}
	add("convert1g.destructive.to_private",
	    "1 GiB destructive to private (populated)", odp,
	    "fallocate(PUNCH_HOLE) 1 GiB populated", fdp, NULL, n, b);
	add("convert1g.destructive.to_shared",
	    "1 GiB destructive to shared (populated)", ods,
	    "fallocate(PUNCH_HOLE) 1 GiB populated", fds, NULL, n, b);

	gm_store_destroy(f);
	gm_store_destroy(s);
}
