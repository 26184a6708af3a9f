/* SPDX-License-Identifier: MIT */
/*
 * System settings for the huge-page tests. As root, a test sets what it
 * needs for its own run (THP for shmem, hugetlb pages in the pool) and the
 * previous values come back at exit, on SIGINT/SIGTERM/SIGHUP/SIGABRT too.
 * Tests touching them share the ctest RESOURCE_LOCK "hugepages".
 */
#ifndef GMEM_HUGE_FIXTURE_H
#define GMEM_HUGE_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#define TU_THP_KNOB "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
#define TU_HUGETLB_DIR "/sys/kernel/mm/hugepages/hugepages-"

/*
 * Write val to the sysfs/procfs file path, saving its value first (once)
 * to restore at exit. For mode files ("a [b] c"), the bracketed word is
 * saved. 0 or -errno.
 */
int tu_knob_set(const char *path, const char *val);
/* Put every saved value back now (also done at exit). */
void tu_knobs_restore(void);

/* shmem THP allowed where MADV_HUGEPAGE asks; false if it cannot be. */
bool tu_thp_enable(void);
/*
 * At least n free, unreserved hugetlb pages of size kb; false (with a
 * message) if they cannot be had.
 */
bool tu_hugetlb_reserve(uint64_t kb, uint64_t n);
/* Free, unreserved hugetlb pages of size kb. */
uint64_t tu_hugetlb_avail(uint64_t kb);

#endif /* GMEM_HUGE_FIXTURE_H */
