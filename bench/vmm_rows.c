// SPDX-License-Identifier: MIT
/*
 * Rows measured through gmem-vm with the bench guests (bench/guests/):
 *  - one 4 KiB conversion requested by the guest, round trip as the guest
 *    sees it (request, conversion, resume), in place and destructive,
 *    against the floor for the same work measured in the same run: the
 *    guest's bare exit round trip (nop port) plus the host's median
 *    mprotect of one populated page (in place) or fallocate(PUNCH_HOLE) of
 *    one populated page (destructive), on a store fd of the same backing;
 *  - the throughput of 2 vCPUs converting disjoint pages against 1 vCPU,
 *    beside the same scaling for bare exits (2 vCPUs) and for bare
 *    mprotect from 2 host threads on their own halves of one mapping.
 * Without gmem-vm, the bench guests or /dev/kvm, the rows are reported
 * missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "bench.h"

#ifndef GMEM_BENCH_VMM
#define GMEM_BENCH_VMM NULL
#endif
#ifndef GMEM_BENCH_GUESTS
#define GMEM_BENCH_GUESTS NULL
#endif

double kv_get(const struct kv *kv, const char *key)
{
	for (int i = 0; i < kv->n; i++)
		if (!strcmp(kv->k[i], key))
			return kv->v[i];
	die("guest output lacks %s", key);
}

void run_guest(const char *vmm, const char *guests, const char *name, int vcpus,
	       const char *extra, struct kv *kv)
{
	char cmd[1024], line[1024];
	bool found = false;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' run '%s/%s.elf' --quiet --vcpus %d %s",
		 vmm, guests, name, vcpus, extra ? extra : "");
	p = popen(cmd, "r");
	if (!p)
		die("%s: %s", cmd, strerror(errno));
	while (fgets(line, sizeof(line), p)) {
		char *tok, *save;

		if (strncmp(line, "BENCH ", 6))
			continue;
		found = true;
		kv->n = 0;
		for (tok = strtok_r(line + 6, " \n", &save); tok;
		     tok = strtok_r(NULL, " \n", &save)) {
			char *eq = strchr(tok, '=');

			if (!eq || kv->n == MAXKV)
				continue;
			*eq = 0;
			snprintf(kv->k[kv->n], sizeof(kv->k[0]), "%s", tok);
			kv->v[kv->n++] = strtod(eq + 1, NULL);
		}
	}
	st = pclose(p);
	if (st || !found)
		die("%s: exit status %d%s", cmd, st,
		    found ? "" : ", no BENCH line");
}

/* Median µs of mprotect of one populated page (both directions). */
static double mprotect_1page_us(struct gm_store *s, int n)
{
	volatile uint8_t *p = gm_view_base(s);
	double v[2 * n];
	uint64_t t0, t1, t2;

	for (int i = 0; i < n; i++) {
		p[0] = (uint8_t)i;
		t0 = now_ns();
		if (mprotect((void *)p, 4096, PROT_NONE))
			die("mprotect: %s", strerror(errno));
		t1 = now_ns();
		if (mprotect((void *)p, 4096, PROT_READ | PROT_WRITE))
			die("mprotect: %s", strerror(errno));
		t2 = now_ns();
		v[2 * i] = (t1 - t0) / 1e3;
		v[2 * i + 1] = (t2 - t1) / 1e3;
	}
	return median(v, 2 * n);
}

/* Median µs of fallocate(PUNCH_HOLE) of one populated, mapped page. */
static double punch_1page_us(struct gm_store *s, int n)
{
	volatile uint8_t *p = gm_view_base(s);
	int fd = gm_store_fd(s);
	double v[n];
	uint64_t t0;

	for (int i = 0; i < n; i++) {
		p[4096] = (uint8_t)(i | 1);
		t0 = now_ns();
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      4096, 4096))
			die("fallocate: %s", strerror(errno));
		v[i] = (now_ns() - t0) / 1e3;
	}
	return median(v, n);
}

/* ---- bare mprotect from 1 and 2 threads ---- */

#define MP_PAGES 64
#define MP_OPS 4000

struct mp_arg {
	uint8_t *base;
	pthread_barrier_t *bar;
	double secs;
};

static void *mp_thread(void *opaque)
{
	struct mp_arg *a = opaque;
	uint64_t t0;

	pthread_barrier_wait(a->bar);
	t0 = now_ns();
	for (int i = 0; i < MP_OPS; i += 2) {
		uint8_t *pg = a->base + (uint64_t)(i / 2 % MP_PAGES) * 4096;

		if (mprotect(pg, 4096, PROT_NONE) ||
		    mprotect(pg, 4096, PROT_READ | PROT_WRITE))
			die("mprotect: %s", strerror(errno));
		*(volatile uint8_t *)pg = (uint8_t)i;
	}
	a->secs = (now_ns() - t0) / 1e9;
	return NULL;
}

/* ops/s of `threads` threads, each flipping pages of its own half. */
static double mprotect_throughput(uint8_t *map, int threads)
{
	pthread_barrier_t bar;
	pthread_t th[2];
	struct mp_arg a[2];
	double worst = 0;

	pthread_barrier_init(&bar, NULL, threads);
	for (int t = 0; t < threads; t++) {
		a[t] = (struct mp_arg){ .base = map + t * MP_PAGES * 4096,
					.bar = &bar };
		if (pthread_create(&th[t], NULL, mp_thread, &a[t]))
			die("pthread_create");
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		worst = a[t].secs > worst ? a[t].secs : worst;
	}
	pthread_barrier_destroy(&bar);
	return threads * MP_OPS / worst;
}

static const char *const row_ids[][2] = {
	{ "vmm.convert4k.inplace",
	  "guest 4 KiB conversion round trip, in place" },
	{ "vmm.convert4k.destructive",
	  "guest 4 KiB conversion round trip, destructive" },
	{ "vmm.scaling.convert", "2-vCPU conversion scaling vs bare exits'" },
	{ "vmm.scaling.exits", "2-vCPU bare port I/O exit scaling" },
	{ "vmm.scaling.mprotect", "2-thread bare mprotect scaling" },
};

static void all_missing(const char *why)
{
	for (unsigned int i = 0; i < sizeof(row_ids) / sizeof(row_ids[0]); i++)
		row_missing(row_ids[i][0], row_ids[i][1], why);
}

static double us(double ticks, double khz)
{
	return ticks * 1e3 / khz;
}

static void convert_rows(const char *vmm, const char *guests, int reps)
{
	struct gm_store *fs = bench_store(2 * MiB, GM_STORE_INIT_SHARED);
	double ex[reps], rq[reps], in[reps], de[reps], mp[reps], pu[reps];
	double inp[reps], ins[reps], dep[reps], des[reps];
	struct kv kv;
	struct row r;

	for (int i = 0; i < reps; i++) {
		double khz;

		run_guest(vmm, guests, "bench_convert", 1, NULL, &kv);
		khz = kv_get(&kv, "tsc_khz");
		if (khz <= 0)
			die("gmem-vm gave no TSC rate");
		ex[i] = us(kv_get(&kv, "exit"), khz);
		rq[i] = us(kv_get(&kv, "request"), khz);
		in[i] = us(kv_get(&kv, "inplace"), khz);
		de[i] = us(kv_get(&kv, "destructive"), khz);
		inp[i] = us(kv_get(&kv, "inplace_to_private"), khz);
		ins[i] = us(kv_get(&kv, "inplace_to_shared"), khz);
		dep[i] = us(kv_get(&kv, "destructive_to_private"), khz);
		des[i] = us(kv_get(&kv, "destructive_to_shared"), khz);
		mp[i] = mprotect_1page_us(fs, 200);
		pu[i] = punch_1page_us(fs, 200);
	}
	gm_store_destroy(fs);

	r = (struct row){ .id = row_ids[0][0],
			  .what = "guest 4 KiB conversion round trip, in place",
			  .unit = "us",
			  .ours = median(in, reps),
			  .floor_what = "bare exit + mprotect of 1 page" };
	r.floor = median(ex, reps) + median(mp, reps);
	row_extra(&r, "exit_us", median(ex, reps));
	row_extra(&r, "mprotect_us", median(mp, reps));
	row_extra(&r, "request_us", median(rq, reps));
	row_extra(&r, "to_private_us", median(inp, reps));
	row_extra(&r, "to_shared_us", median(ins, reps));
	row_extra(&r, "runs", reps);
	row_add(&r);

	r = (struct row){
		.id = row_ids[1][0],
		.what = "guest 4 KiB conversion round trip, destructive",
		.unit = "us",
		.ours = median(de, reps),
		.floor_what = "bare exit + punch hole of 1 page"
	};
	r.floor = median(ex, reps) + median(pu, reps);
	row_extra(&r, "exit_us", median(ex, reps));
	row_extra(&r, "punch_us", median(pu, reps));
	row_extra(&r, "request_us", median(rq, reps));
	row_extra(&r, "to_private_us", median(dep, reps));
	row_extra(&r, "to_shared_us", median(des, reps));
	row_extra(&r, "runs", reps);
	row_add(&r);
}

static void scaling_rows(const char *vmm, const char *guests, int reps)
{
	double e1[reps], e2[reps], c1[reps], c2[reps], m1[reps], m2[reps];
	double es, cs, ms;
	uint8_t *map;
	struct kv kv;
	struct row r;
	int fd;

	fd = memfd_create("gmem-bench-mprotect", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 2 * MP_PAGES * 4096))
		die("memfd: %s", strerror(errno));
	map = mmap(NULL, 2 * MP_PAGES * 4096, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(map, 1, 2 * MP_PAGES * 4096);

	for (int i = 0; i < reps; i++) {
		for (int v = 1; v <= 2; v++) {
			double n, khz;

			run_guest(vmm, guests, "bench_scale", v, NULL, &kv);
			n = kv_get(&kv, "n") * v;
			khz = kv_get(&kv, "tsc_khz");
			(v == 1 ? e1 : e2)[i] =
				n / (us(kv_get(&kv, "exit_ticks"), khz) / 1e6);
			(v == 1 ? c1 : c2)[i] =
				n /
				(us(kv_get(&kv, "convert_ticks"), khz) / 1e6);
		}
		m1[i] = mprotect_throughput(map, 1);
		m2[i] = mprotect_throughput(map, 2);
	}
	munmap(map, 2 * MP_PAGES * 4096);
	close(fd);

	es = median(e2, reps) / median(e1, reps);
	cs = median(c2, reps) / median(c1, reps);
	ms = median(m2, reps) / median(m1, reps);

	r = (struct row){ .id = row_ids[2][0],
			  .what = "2-vCPU/1-vCPU conversion throughput",
			  .unit = "x",
			  .ours = cs,
			  .floor_what = "2-vCPU/1-vCPU bare exit throughput",
			  .floor = es };
	row_extra(&r, "convert_1vcpu_per_s", median(c1, reps));
	row_extra(&r, "convert_2vcpu_per_s", median(c2, reps));
	row_extra(&r, "mprotect_scaling", ms);
	row_extra(&r, "runs", reps);
	row_add(&r);

	r = (struct row){ .id = row_ids[3][0],
			  .what = "2-vCPU/1-vCPU bare exit throughput",
			  .unit = "x",
			  .ours = es,
			  .floor_what = "ideal (2 CPUs)",
			  .floor = 2 };
	row_extra(&r, "exit_1vcpu_per_s", median(e1, reps));
	row_extra(&r, "exit_2vcpu_per_s", median(e2, reps));
	row_add(&r);

	r = (struct row){ .id = row_ids[4][0],
			  .what = "2-thread/1-thread bare mprotect throughput",
			  .unit = "x",
			  .ours = ms,
			  .floor_what = "ideal (2 CPUs)",
			  .floor = 2 };
	row_extra(&r, "mprotect_1thread_per_s", median(m1, reps));
	row_extra(&r, "mprotect_2thread_per_s", median(m2, reps));
	row_add(&r);
}

const char *vmm_guests(const char **vmm, const char **guests)
{
	char path[1024];

	*vmm = cfg.vmm ? cfg.vmm : GMEM_BENCH_VMM;
	*guests = cfg.guests ? cfg.guests : GMEM_BENCH_GUESTS;
	if (!*vmm || access(*vmm, X_OK))
		return "gmem-vm not built";
	snprintf(path, sizeof(path), "%s/bench_scale.elf",
		 *guests ? *guests : ".");
	if (!*guests || access(path, R_OK))
		return "bench guests not built";
	if (access("/dev/kvm", R_OK | W_OK))
		return "no /dev/kvm";
	return NULL;
}

void bench_vmm(void)
{
	const char *vmm, *guests, *why = vmm_guests(&vmm, &guests);
	int reps = cfg.reps < 5 ? 5 : cfg.reps;

	if (why) {
		all_missing(why);
		return;
	}
	convert_rows(vmm, guests, reps);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		for (int i = 2; i < 5; i++)
			row_missing(row_ids[i][0], row_ids[i][1],
				    "fewer than 2 CPUs");
		return;
	}
	scaling_rows(vmm, guests, reps);
}
