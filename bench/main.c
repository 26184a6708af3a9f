// SPDX-License-Identifier: MIT
/*
 * gmem-bench: measures libgmem (and gmem-vm, when given) against the
 * physical floor and against the peers' data structures, in one run, and
 * writes the rows as JSON and as a table. Usage: gmem-bench --help.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "bench.h"

struct bench_cfg cfg = { .reps = 7, .seed = 0x9e3779b97f4a7c15ULL };

#define MAX_ROWS 128

struct out_row {
	struct row r;
	const char *reason; /* missing: why */
};

static struct out_row rows[MAX_ROWS];
static int nr_rows;

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double median(double *v, int n)
{
	if (n <= 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rnd(s) * n) >> 64);
}

void note(const char *fmt, ...)
{
	va_list ap;

	if (!cfg.verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "gmem-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "gmem-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

struct gm_store *bench_store(uint64_t size, unsigned int flags)
{
	struct gm_store_opts o = {
		.sz = sizeof(o),
		.size = size,
		.backing = GM_BACKING_AUTO,
		.vm_fd = -1,
		.flags = flags,
	};
	struct gm_store *s;
	int ret = gm_store_create(&o, &s);

	if (ret)
		die("gm_store_create(%llu bytes): %s (%s)",
		    (unsigned long long)size, gm_strerror(ret),
		    gm_last_error());
	return s;
}

static struct out_row *new_row(void)
{
	if (nr_rows == MAX_ROWS)
		die("too many rows");
	return &rows[nr_rows++];
}

void row_add(const struct row *r)
{
	struct out_row *o = new_row();

	o->r = *r;
	fprintf(stderr, "  %-34s %14.4g %-3s vs %14.4g  ratio %.3f\n", r->id,
		r->ours, r->unit, r->floor, r->ours / r->floor);
}

void row_extra(struct row *r, const char *key, double v)
{
	if (r->nx == (int)(sizeof(r->xk) / sizeof(r->xk[0])))
		die("too many extras in row %s", r->id);
	r->xk[r->nx] = key;
	r->xv[r->nx++] = v;
}

void row_missing(const char *id, const char *what, const char *reason)
{
	struct out_row *o = new_row();

	o->r = (struct row){
		.id = id, .what = what, .ours = NAN, .floor = NAN
	};
	o->reason = reason;
	fprintf(stderr, "  %-34s missing: %s\n", id, reason);
}

long count_maps(const void *addr, uint64_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo, hi, a = (unsigned long)addr;
	char line[512];
	long n = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		if (!len || (hi > a && lo < a + len))
			n++;
	}
	fclose(f);
	return n;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void read_line(const char *path, const char *key, char *buf, size_t n)
{
	FILE *f = fopen(path, "r");
	char line[512];

	snprintf(buf, n, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c;

		if (strncmp(line, key, strlen(key)))
			continue;
		c = strchr(line, ':');
		c = c ? c + 1 : line;
		while (*c == ' ' || *c == '\t')
			c++;
		c[strcspn(c, "\n")] = 0;
		if (strlen(c) >= n)
			c[n - 1] = 0;
		memcpy(buf, c, strlen(c) + 1);
		break;
	}
	fclose(f);
}

static void write_json(const char *path, double secs)
{
	struct utsname u;
	char cpu[256], mem[64], host[256];
	FILE *f;

	f = fopen(path, "w");
	if (!f)
		die("%s: %s", path, strerror(errno));
	uname(&u);
	read_line("/proc/cpuinfo", "model name", cpu, sizeof(cpu));
	read_line("/proc/meminfo", "MemTotal", mem, sizeof(mem));
	if (gethostname(host, sizeof(host)))
		snprintf(host, sizeof(host), "unknown");
	fprintf(f, "{\n  \"version\": 1,\n  \"quick\": %s,\n",
		cfg.quick ? "true" : "false");
	fprintf(f, "  \"reps\": %d,\n  \"seconds\": %.1f,\n", cfg.reps, secs);
	fprintf(f, "  \"machine\": {\"kernel\": ");
	json_str(f, u.release);
	fprintf(f, ", \"cpu\": ");
	json_str(f, cpu);
	fprintf(f, ", \"cpus\": %ld, \"mem\": ", sysconf(_SC_NPROCESSORS_ONLN));
	json_str(f, mem);
	fprintf(f, ", \"host\": ");
	json_str(f, host);
	fprintf(f, "},\n  \"rows\": [\n");
	for (int i = 0; i < nr_rows; i++) {
		const struct out_row *o = &rows[i];
		const struct row *r = &o->r;

		fprintf(f, "    {\"id\": ");
		json_str(f, r->id);
		fprintf(f, ", \"what\": ");
		json_str(f, r->what);
		if (o->reason) {
			fprintf(f, ", \"missing\": ");
			json_str(f, o->reason);
		} else {
			fprintf(f, ", \"unit\": ");
			json_str(f, r->unit);
			fprintf(f, ", \"ours\": ");
			json_num(f, r->ours);
			fprintf(f, ", \"floor_what\": ");
			json_str(f, r->floor_what);
			fprintf(f, ", \"floor\": ");
			json_num(f, r->floor);
			fprintf(f, ", \"ratio\": ");
			json_num(f, r->ours / r->floor);
			for (int k = 0; k < r->nx; k++) {
				fprintf(f, ", ");
				json_str(f, r->xk[k]);
				fprintf(f, ": ");
				json_num(f, r->xv[k]);
			}
		}
		fprintf(f, "}%s\n", i + 1 < nr_rows ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	if (fclose(f))
		die("%s: %s", path, strerror(errno));
}

static void print_table(void)
{
	printf("%-52s %14s %14s %8s  %s\n", "what", "ours", "floor/base",
	       "ratio", "floor/baseline");
	for (int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i].r;

		if (rows[i].reason) {
			printf("%-52.52s %14s %14s %8s  (%s)\n", r->what, "-",
			       "-", "missing", rows[i].reason);
			continue;
		}
		printf("%-52.52s %11.4g %-2s %11.4g %-2s %8.3f  %s\n", r->what,
		       r->ours, r->unit, r->floor, r->unit, r->ours / r->floor,
		       r->floor_what);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gmem-bench [--quick] [--out FILE] [--only SECTION] "
		"[--vmm GMEM-VM --guests DIR] [--reps N] [--seed N] [-v]\n"
		"sections: convert1g attrmap vmas pergib pins vmm launch huge\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "out", required_argument, NULL, 'o' },
		{ "only", required_argument, NULL, 'O' },
		{ "vmm", required_argument, NULL, 'm' },
		{ "guests", required_argument, NULL, 'g' },
		{ "reps", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *out = "results.json";
	bool reps_set = false;
	uint64_t t0;
	int c;

	while ((c = getopt_long(argc, argv, "qo:O:m:g:r:s:vh", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'q':
			cfg.quick = true;
			break;
		case 'o':
			out = optarg;
			break;
		case 'O':
			cfg.only = optarg;
			break;
		case 'm':
			cfg.vmm = optarg;
			break;
		case 'g':
			cfg.guests = optarg;
			break;
		case 'r':
			cfg.reps = atoi(optarg);
			reps_set = true;
			if (cfg.reps < 1)
				die("--reps must be >= 1");
			break;
		case 's':
			cfg.seed = strtoull(optarg, NULL, 0);
			break;
		case 'v':
			cfg.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (cfg.quick && !reps_set)
		cfg.reps = 3;

	t0 = now_ns();
#define SECTION(name, fn)                                          \
	do {                                                       \
		if (!cfg.only || strstr(name, cfg.only)) {         \
			fprintf(stderr, "gmem-bench: %s\n", name); \
			fn();                                      \
		}                                                  \
	} while (0)
	SECTION("convert1g", bench_convert_1g);
	SECTION("attrmap", bench_attr_map);
	SECTION("vmas", bench_vmas);
	SECTION("pergib", bench_per_gib);
	SECTION("pins", bench_pins);
	SECTION("vmm", bench_vmm);
	SECTION("launch", bench_launch);
	SECTION("huge", bench_huge);
	write_json(out, (now_ns() - t0) / 1e9);
	print_table();
	printf("results: %s (%.1f s)\n", out, (now_ns() - t0) / 1e9);
	return 0;
}
