// SPDX-License-Identifier: MIT
/*
 * A real static glibc program for gmem-vm exec (guests/exec.sh): prints its
 * arguments and environment, uses the heap (brk and mmap) and TLS, and
 * exits with argc + 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread int tls_counter = 40;

int main(int argc, char **argv, char **envp)
{
	struct timespec ts;
	char *small = malloc(100), *big = malloc(1 << 20); /* brk, mmap */

	if (!small || !big)
		return 99;
	memset(big, 'x', 1 << 20);
	snprintf(small, 100, "tls %d", tls_counter + 2);
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	for (char **e = envp; *e; e++)
		printf("env %s\n", *e);
	printf("%s heap %d clock %d\n", small, big[(1 << 20) - 1] == 'x',
	       clock_gettime(CLOCK_MONOTONIC, &ts) == 0 && ts.tv_sec >= 0);
	free(big);
	free(small);
	return argc + 2;
}
