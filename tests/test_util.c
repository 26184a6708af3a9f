// SPDX-License-Identifier: MIT
/* Helpers shared by the store tests; see test_util.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "huge_fixture.h"
#include "test_util.h"

/* 2 MiB hugetlb pages a memfd-hugetlb2m run has free: 1 GiB */
#define TU_HUGETLB_POOL_PAGES 512

enum gm_backing tu_backing = GM_BACKING_MEMFD;
enum gm_pages tu_pages = GM_PAGES_4K;
const char *tu_backing_str = "memfd";

/* The settings a huge backing needs could not be had: skip the run. */
static void huge_settings(const char *name, bool ok)
{
	if (ok)
		return;
	fprintf(stderr,
		"%s: SKIP: the huge backing's system settings cannot "
		"be set here (root needed)\n",
		name);
	exit(77);
}

void tu_init(int argc, char **argv, const char *name)
{
	const char *b = argc > 1 ? argv[1] : "memfd";

	if (argc > 2) {
		fprintf(stderr,
			"usage: %s [guest_memfd|memfd|memfd-thp|"
			"memfd-hugetlb2m]\n",
			argv[0]);
		exit(2);
	}
	if (!strcmp(b, "guest_memfd")) {
		tu_backing = GM_BACKING_GUEST_MEMFD;
		if (access("/dev/kvm", F_OK)) {
			fprintf(stderr,
				"%s: SKIP: /dev/kvm is absent, the "
				"guest_memfd backing cannot be tested here\n",
				name);
			exit(77);
		}
	} else if (!strcmp(b, "memfd")) {
		tu_backing = GM_BACKING_MEMFD;
	} else if (!strcmp(b, "memfd-thp")) {
		tu_backing = GM_BACKING_MEMFD;
		tu_pages = GM_PAGES_THP_2M;
		huge_settings(name, tu_thp_enable());
	} else if (!strcmp(b, "memfd-hugetlb2m")) {
		tu_backing = GM_BACKING_MEMFD;
		tu_pages = GM_PAGES_HUGETLB_2M;
		huge_settings(name,
			      tu_hugetlb_reserve(2048, TU_HUGETLB_POOL_PAGES));
	} else {
		fprintf(stderr,
			"%s: unknown backing '%s' (guest_memfd|memfd|"
			"memfd-thp|memfd-hugetlb2m)\n",
			name, b);
		exit(2);
	}
	tu_backing_str = b;
	fprintf(stderr, "%s: backing %s\n", name, b);
}

const char *tu_group(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s.%s", name, tu_backing_str);
	return buf;
}

uint64_t tu_unit(void)
{
	return tu_pages == GM_PAGES_HUGETLB_2M ? 2ULL << 20 : PG;
}

uint64_t tu_round(uint64_t size)
{
	uint64_t unit = tu_unit();

	/* 4 KiB: as asked, so tests of bad sizes get them */
	if (unit == PG)
		return size;
	return (size + unit - 1) / unit * unit;
}

void tu_opts(struct gm_store_opts *o, uint64_t size, unsigned int flags)
{
	memset(o, 0, sizeof(*o));
	o->sz = sizeof(*o);
	o->size = tu_round(size);
	o->backing = tu_backing;
	o->vm_fd = -1;
	o->flags = flags;
	o->pages = tu_pages;
}

struct gm_store *tu_store_with(const struct gm_store_opts *o)
{
	struct gm_store *s = NULL;
	int ret = gm_store_create(o, &s);

	if (ret)
		fprintf(stderr, "gm_store_create(%s, %llu bytes): %d: %s\n",
			gm_backing_name(o->backing),
			(unsigned long long)o->size, ret, gm_last_error());
	assert_int_equal(ret, 0);
	assert_non_null(s);
	assert_int_equal(gm_store_backing(s), o->backing);
	return s;
}

struct gm_store *tu_store(uint64_t size, unsigned int flags)
{
	struct gm_store_opts o;

	tu_opts(&o, size, flags);
	return tu_store_with(&o);
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

uint64_t tu_seed(const char *what, uint64_t def)
{
	const char *env = getenv("GM_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : def;

	if (!seed)
		seed = 1;
	fprintf(stderr, "%s: seed 0x%llx (set GM_TEST_SEED to change)\n", what,
		(unsigned long long)seed);
	return seed;
}

uint8_t tu_pat_byte(uint64_t off, uint32_t seed)
{
	uint64_t x = (off >> 3) * 0x9E3779B97F4A7C15ULL ^
		     (uint64_t)seed * 0xD1B54A32D192ED03ULL;

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 29;
	return (uint8_t)(x >> ((off & 7) * 8)) | 1;
}

void tu_pat_fill(void *buf, size_t len, uint64_t off, uint32_t seed)
{
	uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		b[i] = tu_pat_byte(off + i, seed);
}

size_t tu_pat_check(const void *buf, size_t len, uint64_t off, uint32_t seed)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i] != tu_pat_byte(off + i, seed))
			return i;
	return len;
}

size_t tu_zero_check(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return i;
	return len;
}

static __thread sigjmp_buf probe_jmp;
static __thread volatile sig_atomic_t probe_sig;

static void probe_handler(int sig)
{
	probe_sig = sig;
	siglongjmp(probe_jmp, 1);
}

int tu_probe(void *addr, bool write)
{
	struct sigaction sa, old_segv, old_bus;
	volatile uint8_t *p = addr;
	int sig = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = probe_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	probe_sig = 0;
	if (sigsetjmp(probe_jmp, 1) == 0) {
		uint8_t v = *p;

		if (write)
			*p = v;
	} else {
		sig = probe_sig;
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return sig;
}

long tu_rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, rss = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &size, &rss), 2);
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

long tu_maps_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		if (c == '\n')
			n++;
	fclose(f);
	return n;
}

void tu_attrs(struct gm_store *s, uint8_t *out)
{
	uint64_t size = gm_store_size(s), off = 0, n = 0;
	struct gm_extent ext = { .sz = sizeof(ext) }, prev = { 0 };

	while (off < size) {
		assert_int_equal(gm_extent_at(s, off, &ext), 0);
		assert_int_equal(ext.off, off);
		assert_true(ext.len > 0);
		assert_int_equal(ext.len % PG, 0);
		assert_true(ext.off + ext.len <= size);
		assert_true(ext.attr == GM_ATTR_SHARED ||
			    ext.attr == GM_ATTR_PRIVATE);
		if (n)
			assert_int_not_equal(ext.attr, prev.attr);
		memset(out + off / PG, ext.attr, ext.len / PG);
		prev = ext;
		off += ext.len;
		n++;
	}
	assert_int_equal(off, size);
	assert_int_equal(gm_extent_count(s), n);
}

void tu_apply(struct gm_store *s, const uint8_t *want, uint64_t npages)
{
	uint64_t i = 0, j;

	while (i < npages) {
		for (j = i + 1; j < npages && want[j] == want[i]; j++)
			;
		assert_int_equal(gm_convert(s, i * PG, (j - i) * PG,
					    (enum gm_attr)want[i], 0),
				 0);
		i = j;
	}
}

void tu_expect_attrs(struct gm_store *s, const uint8_t *want, uint64_t npages)
{
	/* tu_attrs fills the whole store, which may be larger (tu_round) */
	uint8_t *got = malloc(gm_store_size(s) / PG);

	assert_non_null(got);
	assert_true(npages <= gm_store_size(s) / PG);
	tu_attrs(s, got);
	for (uint64_t i = 0; i < npages; i++) {
		if (got[i] != want[i])
			fprintf(stderr, "page %llu: state %u, expected %u\n",
				(unsigned long long)i, got[i], want[i]);
		assert_int_equal(got[i], want[i]);
	}
	free(got);
}

void tu_stats(struct gm_store *s, struct gm_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	assert_int_equal(gm_store_stats(s, st), 0);
}

void *tu_raw_map(struct gm_store *s)
{
	void *p = mmap(NULL, gm_store_size(s), PROT_READ | PROT_WRITE,
		       MAP_SHARED, gm_store_fd(s), 0);

	assert_true(p != MAP_FAILED);
	return p;
}

void tu_raw_unmap(struct gm_store *s, void *p)
{
	munmap(p, gm_store_size(s));
}

uint64_t tu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tu_write_pattern(struct gm_store *s, uint64_t off, uint64_t len,
		      uint32_t seed)
{
	uint8_t *b = malloc(len);

	assert_non_null(b);
	tu_pat_fill(b, len, off, seed);
	assert_int_equal(gm_write(s, off, b, len), 0);
	free(b);
}

void tu_expect_pattern(struct gm_store *s, uint64_t off, uint64_t len,
		       uint32_t seed)
{
	uint8_t *b = malloc(len);
	size_t bad;

	assert_non_null(b);
	assert_int_equal(gm_read(s, off, b, len), 0);
	bad = tu_pat_check(b, len, off, seed);
	if (bad != len)
		fprintf(stderr, "byte 0x%llx: 0x%02x, expected 0x%02x\n",
			(unsigned long long)(off + bad), b[bad],
			tu_pat_byte(off + bad, seed));
	assert_int_equal(bad, len);
	free(b);
}

struct tu_file_id tu_store_file(struct gm_store *s)
{
	struct stat st;

	assert_int_equal(fstat(gm_store_fd(s), &st), 0);
	return (struct tu_file_id){ major(st.st_dev), minor(st.st_dev),
				    (unsigned long)st.st_ino };
}

int tu_fd_mappings(struct tu_file_id id, uint64_t off, uintptr_t *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, ino;
		unsigned long long foff;
		unsigned int ma, mi;

		if (sscanf(line, "%lx-%lx %*s %llx %x:%x %lu", &start, &end,
			   &foff, &ma, &mi, &ino) != 6)
			continue;
		if (ma != id.major || mi != id.minor || ino != id.ino)
			continue;
		if (off != UINT64_MAX &&
		    (off < foff || off >= foff + (end - start)))
			continue;
		if (n++ == 0 && addr)
			*addr = start + (off == UINT64_MAX ? 0 : off - foff);
	}
	fclose(f);
	return n;
}
