/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the store tests (cmocka).
 *
 * A test executable registered with BACKINGS (tests/store.cmake) gets the
 * backing name as argv[1]: "guest_memfd" or "memfd", or with HUGE
 * "memfd-thp" or "memfd-hugetlb2m" (the memfd backing on 2 MiB THP or
 * hugetlb pages; tu_init sets the system's settings for the run, as root,
 * and they are restored at exit; skipped otherwise). tu_init() parses it;
 * tu_store() and friends create stores with that backing. The guest_memfd
 * run is skipped (exit 77) only where /dev/kvm is absent; where it exists,
 * a store that cannot be created is a test failure.
 */
#ifndef GMEM_TEST_UTIL_H
#define GMEM_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <gmem/gmem.h>

#define PG GM_PAGE_SIZE

/*
 * The largest sparse store the tests make: 1 TiB. ThreadSanitizer leaves
 * mmap(NULL) about 1.5 TiB of address space, where a 1 TiB view does not
 * always fit (two never do): 256 GiB there, the same code path.
 */
#if defined(__SANITIZE_THREAD__)
#define TU_SPARSE_STORE_SIZE (1ULL << 38)
#else
#define TU_SPARSE_STORE_SIZE (1ULL << 40)
#endif

/* The backing under test, from argv[1]. */
extern enum gm_backing tu_backing;
extern const char *tu_backing_str;
/* The backing's pages: GM_PAGES_4K but for memfd-thp, memfd-hugetlb2m. */
extern enum gm_pages tu_pages;

/*
 * Parse argv: argv[1] is "guest_memfd" or "memfd" (default: memfd). Exits
 * 77 (skip) if guest_memfd is asked and /dev/kvm is absent, 2 on bad use.
 * Prints the backing and the test name on stderr.
 */
void tu_init(int argc, char **argv, const char *name);

/* A cmocka group name: "<name>.<backing>". */
const char *tu_group(const char *name);

/*
 * The size unit of a store of the backing under test: 2 MiB on hugetlb
 * (whole huge pages), else PG; and size rounded up to it on hugetlb
 * (unchanged elsewhere, so every size a test asks for holds there as
 * written, bad ones included).
 */
uint64_t tu_unit(void);
uint64_t tu_round(uint64_t size);

/*
 * On memfd-hugetlb2m, skip the calling cmocka test, printing why (a check
 * of 4 KiB granularity that hugetlb's 2 MiB pages cannot have).
 */
#define tu_skip_on_hugetlb(why)                                                \
	do {                                                                   \
		if (tu_pages == GM_PAGES_HUGETLB_2M) {                         \
			fprintf(stderr, "%s: SKIP on hugetlb: %s\n", __func__, \
				why);                                          \
			skip();                                                \
		}                                                              \
	} while (0)

/*
 * Options for a store of the backing under test (vm_fd = -1), of
 * tu_round(size) bytes.
 */
void tu_opts(struct gm_store_opts *o, uint64_t size, unsigned int flags);

/* Create a store of the backing under test; asserts success. */
struct gm_store *tu_store(uint64_t size, unsigned int flags);
/* Create a store from o (backing filled in by the caller); asserts. */
struct gm_store *tu_store_with(const struct gm_store_opts *o);

/* Random numbers: xorshift64*, fixed seeds. */
uint64_t tu_rand(uint64_t *state);
/* A seed: GM_TEST_SEED from the environment, else def; printed. */
uint64_t tu_seed(const char *what, uint64_t def);

/* The pattern byte at absolute store offset off for seed (never 0). */
uint8_t tu_pat_byte(uint64_t off, uint32_t seed);
void tu_pat_fill(void *buf, size_t len, uint64_t off, uint32_t seed);
/* Index of the first byte not matching the pattern, or len. */
size_t tu_pat_check(const void *buf, size_t len, uint64_t off, uint32_t seed);
/* gm_write the pattern over [off, off + len); asserts. */
void tu_write_pattern(struct gm_store *s, uint64_t off, uint64_t len,
		      uint32_t seed);
/* gm_read [off, off + len) and assert it holds the pattern. */
void tu_expect_pattern(struct gm_store *s, uint64_t off, uint64_t len,
		       uint32_t seed);
/* Index of the first non-zero byte, or len. */
size_t tu_zero_check(const void *buf, size_t len);

/*
 * Touch addr (read; with write, read and write back the same byte) with
 * SIGSEGV and SIGBUS caught. 0 if the access worked, else the signal.
 */
int tu_probe(void *addr, bool write);

/* Resident set size of this process in KiB. */
long tu_rss_kib(void);
/* Lines of /proc/self/maps (mappings of this process). */
long tu_maps_count(void);

/*
 * Per-page states by iterating gm_extent_at over the whole store (out has
 * size / PG entries), asserting that the extents tile the store, are
 * maximal and number gm_extent_count().
 */
void tu_attrs(struct gm_store *s, uint8_t *out);
/* Convert pages so that page i has state want[i] (in place); asserts. */
void tu_apply(struct gm_store *s, const uint8_t *want, uint64_t npages);
/* Assert the first npages pages have state want[i]. */
void tu_expect_attrs(struct gm_store *s, const uint8_t *want, uint64_t npages);

void tu_stats(struct gm_store *s, struct gm_stats *st);

/* A raw MAP_SHARED read/write mapping of the store's fd, test-side. */
void *tu_raw_map(struct gm_store *s);
void tu_raw_unmap(struct gm_store *s, void *p);

/* The store's file, as /proc/self/maps names it (device and inode). */
struct tu_file_id {
	unsigned int major, minor;
	unsigned long ino;
};
struct tu_file_id tu_store_file(struct gm_store *s);
/*
 * Mappings of this process of file id that cover file offset off (of any
 * offset, with off == UINT64_MAX); the first one's address in *addr.
 */
int tu_fd_mappings(struct tu_file_id id, uint64_t off, uintptr_t *addr);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t tu_now_ms(void);

#endif /* GMEM_TEST_UTIL_H */
