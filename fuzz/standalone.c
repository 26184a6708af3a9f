// SPDX-License-Identifier: MIT
/*
 * A libFuzzer stand-in for compilers without -fsanitize=fuzzer (the gcc
 * build): replays every file given (or found in the directories given)
 * through LLVMFuzzerTestOneInput, then feeds it random inputs for
 * -seconds=N (default 0). An input that aborts is written to
 * ./standalone-crash-<target>.bin first.
 *
 *   fuzz_x-replay [-seconds=N] [-seed=N] FILE_OR_DIR...
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_common.h"

static const uint8_t *cur;
static size_t cur_len;
static const char *prog;

static void on_crash(int sig)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "standalone-crash-%s.bin", prog);
	f = fopen(path, "wb");
	if (f) {
		fwrite(cur, 1, cur_len, f);
		fclose(f);
		fprintf(stderr, "standalone: input written to %s\n", path);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int run_file(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return 1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	cur = buf;
	cur_len = n;
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, unsigned long *count)
{
	struct stat st;
	struct dirent *de;
	char **names = NULL;
	size_t nr = 0;
	DIR *d;
	int err = 0;

	if (stat(path, &st)) {
		perror(path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	d = opendir(path);
	if (!d)
		return 1;
	while ((de = readdir(d))) {
		char *full;

		if (de->d_name[0] == '.')
			continue;
		if (asprintf(&full, "%s/%s", path, de->d_name) < 0)
			return 1;
		names = realloc(names, (nr + 1) * sizeof(*names));
		names[nr++] = full;
	}
	closedir(d);
	qsort(names, nr, sizeof(*names), cmp_str);
	for (size_t i = 0; i < nr; i++) {
		err |= run_path(names[i], count);
		free(names[i]);
	}
	free(names);
	return err;
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

int main(int argc, char **argv)
{
	unsigned long files = 0, randoms = 0;
	double seconds = 0;
	uint64_t seed = (uint64_t)time(NULL), t_end;
	static uint8_t buf[4096];
	struct timespec ts;
	int err = 0;

	prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	signal(SIGABRT, on_crash);
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "-seconds=", 9))
			seconds = atof(argv[i] + 9);
		else if (!strncmp(argv[i], "-seed=", 6))
			seed = strtoull(argv[i] + 6, NULL, 0);
		else if (argv[i][0] == '-')
			fprintf(stderr, "standalone: ignoring %s\n", argv[i]);
		else
			err |= run_path(argv[i], &files);
	}
	fprintf(stderr, "standalone: %lu corpus inputs replayed\n", files);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t_end = ts.tv_sec * 1000000000ULL + ts.tv_nsec +
		(uint64_t)(seconds * 1e9);
	fprintf(stderr, "standalone: random inputs for %.0f s, seed %llu\n",
		seconds, (unsigned long long)seed);
	seed |= 1;
	for (;;) {
		size_t n;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec >= t_end)
			break;
		n = xs(&seed) % sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)xs(&seed);
		cur = buf;
		cur_len = n;
		LLVMFuzzerTestOneInput(buf, n);
		randoms++;
	}
	fprintf(stderr, "standalone: %lu random inputs, no failure\n", randoms);
	return err;
}
