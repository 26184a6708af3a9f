/* SPDX-License-Identifier: MIT */
/*
 * gmem-bench: shared helpers. Every figure is measured beside its floor or
 * baseline in the same run and reported as a ratio; see docs/performance.md.
 */
#ifndef GMEM_BENCH_H
#define GMEM_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)

struct bench_cfg {
	bool quick;
	int reps; /* repetitions of the slow rows (median taken) */
	const char *only; /* run only the sections whose name contains this */
	const char *vmm; /* path of gmem-vm, or NULL */
	const char *guests; /* directory of the bench guests, or NULL */
	uint64_t seed;
	bool verbose;
};

extern struct bench_cfg cfg;

uint64_t now_ns(void);
double median(double *v, int n);
/* xorshift64* */
uint64_t rnd(uint64_t *state);
/* A uniformly random integer in [0, n). */
uint64_t rnd_below(uint64_t *state, uint64_t n);

void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A store of size bytes on the best backing here, or die. */
struct gm_store *bench_store(uint64_t size, unsigned int flags);

/*
 * One row of the results. `ours` and `floor` are in `unit`; ratio is
 * ours / floor. Extra numeric fields (x_*) go into the JSON object as they
 * are, for bench/check (e.g. the extent count of a pattern).
 */
struct row {
	const char *id; /* stable key, what bench/check looks up */
	const char *what;
	const char *unit;
	double ours;
	const char *floor_what;
	double floor;
	int nx;
	const char *xk[8];
	double xv[8];
};

void row_add(const struct row *r);
void row_extra(struct row *r, const char *key, double v);
/* A row that cannot be measured on this machine or build yet. */
void row_missing(const char *id, const char *what, const char *reason);

/* Sections. */
void bench_convert_1g(void);
void bench_attr_map(void);
void bench_vmas(void);
void bench_per_gib(void);
void bench_pins(void);
void bench_vmm(void);
/* huge_rows.c: huge backings against 4 KiB */
void bench_huge(void);
/* launch_rows.c, or a missing row without gmem-vm's measure code */
void bench_launch(void);

/* "BENCH k=v ..." of a bench guest */
#define MAXKV 16
struct kv {
	int n;
	char k[MAXKV][32];
	double v[MAXKV];
};

/* The value of key, or die. */
double kv_get(const struct kv *kv, const char *key);
/*
 * Run gmem-vm on a bench guest (extra: more options, or NULL) and parse
 * its "BENCH k=v ..." line; die if it fails.
 */
void run_guest(const char *vmm, const char *guests, const char *name, int vcpus,
	       const char *extra, struct kv *kv);
/* gmem-vm and the bench guests' directory; NULL, or why they cannot run. */
const char *vmm_guests(const char **vmm, const char **guests);

/* Lines of /proc/self/maps overlapping [addr, addr + len) (len 0: all). */
long count_maps(const void *addr, uint64_t len);

#endif /* GMEM_BENCH_H */
