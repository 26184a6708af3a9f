// SPDX-License-Identifier: MIT
/* System settings for the huge-page tests; see huge_fixture.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "huge_fixture.h"

#define MAX_KNOBS 8

static struct {
	char path[160];
	char old[64];
} knobs[MAX_KNOBS];
static volatile sig_atomic_t nr_knobs;

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

/* Async-signal-safe: open, write, close. */
static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

void tu_knobs_restore(void)
{
	while (nr_knobs > 0) {
		int i = nr_knobs - 1;

		write_file(knobs[i].path, knobs[i].old);
		nr_knobs = i;
	}
}

static void on_signal(int sig)
{
	tu_knobs_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_restore(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGABRT };
	static bool done;

	if (done)
		return;
	done = true;
	atexit(tu_knobs_restore);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
}

int tu_knob_set(const char *path, const char *val)
{
	char buf[64], *lb, *rb;
	int i, ret;

	for (i = 0; i < nr_knobs; i++)
		if (!strcmp(knobs[i].path, path))
			break;
	if (i == nr_knobs) {
		if (nr_knobs == MAX_KNOBS)
			return -ENOSPC;
		ret = read_file(path, buf, sizeof(buf));
		if (ret)
			return ret;
		lb = strchr(buf, '[');
		rb = lb ? strchr(lb, ']') : NULL;
		if (rb) {
			*rb = '\0';
			memmove(buf, lb + 1, strlen(lb + 1) + 1);
		}
		install_restore();
		snprintf(knobs[i].path, sizeof(knobs[i].path), "%s", path);
		memcpy(knobs[i].old, buf, sizeof(buf));
		nr_knobs = i + 1;
	}
	return write_file(path, val);
}

static int read_mode(const char *path, char *out, size_t len)
{
	char buf[256], *lb, *rb;
	int ret = read_file(path, buf, sizeof(buf));

	if (ret)
		return ret;
	lb = strchr(buf, '[');
	rb = lb ? strchr(lb, ']') : NULL;
	if (!rb)
		return -EINVAL;
	*rb = '\0';
	snprintf(out, len, "%s", lb + 1);
	return 0;
}

bool tu_thp_enable(void)
{
	char mode[32];

	if (read_mode(TU_THP_KNOB, mode, sizeof(mode))) {
		fprintf(stderr, "SKIP: %s unreadable: no shmem THP\n",
			TU_THP_KNOB);
		return false;
	}
	if (strcmp(mode, "never") && strcmp(mode, "deny"))
		return true;
	if (tu_knob_set(TU_THP_KNOB, "advise")) {
		fprintf(stderr,
			"SKIP: %s is %s and cannot be set to advise (%s)\n",
			TU_THP_KNOB, mode, strerror(errno));
		return false;
	}
	return true;
}

static uint64_t read_num(const char *path)
{
	char buf[32];

	return read_file(path, buf, sizeof(buf)) ? 0 : strtoull(buf, NULL, 10);
}

uint64_t tu_hugetlb_avail(uint64_t kb)
{
	char path[160];
	uint64_t free_pages, resv;

	snprintf(path, sizeof(path), TU_HUGETLB_DIR "%llukB/free_hugepages",
		 (unsigned long long)kb);
	free_pages = read_num(path);
	snprintf(path, sizeof(path), TU_HUGETLB_DIR "%llukB/resv_hugepages",
		 (unsigned long long)kb);
	resv = read_num(path);
	return free_pages > resv ? free_pages - resv : 0;
}

bool tu_hugetlb_reserve(uint64_t kb, uint64_t n)
{
	char path[160], val[32];
	uint64_t avail = tu_hugetlb_avail(kb), nr;

	if (avail >= n)
		return true;
	snprintf(path, sizeof(path), TU_HUGETLB_DIR "%llukB/nr_hugepages",
		 (unsigned long long)kb);
	nr = read_num(path);
	snprintf(val, sizeof(val), "%llu",
		 (unsigned long long)(nr + n - avail));
	if (tu_knob_set(path, val) || tu_hugetlb_avail(kb) < n) {
		fprintf(stderr,
			"SKIP: %llu hugetlb pages of %llu kB cannot be "
			"reserved (%s: %llu free)\n",
			(unsigned long long)n, (unsigned long long)kb, path,
			(unsigned long long)tu_hugetlb_avail(kb));
		return false;
	}
	return true;
}
