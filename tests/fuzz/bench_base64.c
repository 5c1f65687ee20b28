/*
 * bench_base64.c — throughput of each base64 encoder (shared/base64.c)
 * on 64 KiB and 1 MiB buffers, in MB/s of input (1 MB = 10^6 bytes).
 *
 * Each implementation runs in a forked child with HFTPD_BASE64 set,
 * since the dispatcher reads the override once per process.
 *
 * Build and run (from the repo root):
 *   cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
 *      -Wstrict-prototypes -Wmissing-prototypes -O2 -Ishared \
 *      tests/fuzz/bench_base64.c shared/base64.c -o /tmp/bench_base64
 *   /tmp/bench_base64 [seconds-per-measurement, default 0.5]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Best of 5 rounds of ~secs/5 each: MB/s of input. */
static double measure(size_t n, double secs)
{
	unsigned char *src = malloc(n);
	char *dst = malloc(BASE64_ENCODED_LEN(n));
	volatile char sink;
	double best = 0;
	size_t i;
	int round;

	if (src == NULL || dst == NULL) {
		perror("malloc");
		exit(1);
	}
	for (i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 2654435761u >> 13);
	base64_encode(dst, src, n);	/* warm caches and page-in dst */
	for (round = 0; round < 5; round++) {
		double t0 = now(), t;
		size_t iters = 0;

		do {
			size_t k;

			for (k = 0; k < 16; k++)
				base64_encode(dst, src, n);
			iters += 16;
			t = now() - t0;
		} while (t < secs / 5);
		if ((double)iters * (double)n / t / 1e6 > best)
			best = (double)iters * (double)n / t / 1e6;
	}
	sink = dst[n / 2];
	(void)sink;
	free(src);
	free(dst);
	return best;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "scalar", "ssse3", "avx2" };
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	size_t k;

	if (secs <= 0)
		secs = 0.5;
	printf("%-7s %14s %14s\n", "impl", "64 KiB MB/s", "1 MiB MB/s");
	fflush(stdout);
	for (k = 0; k < sizeof names / sizeof names[0]; k++) {
		pid_t pid = fork();
		int status;

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			setenv("HFTPD_BASE64", names[k], 1);
			if (strcmp(base64_impl_name(), names[k]) != 0) {
				printf("%-7s %14s %14s\n", names[k], "n/a", "n/a");
			} else {
				double a = measure(64 * 1024, secs);
				double b = measure(1024 * 1024, secs);

				printf("%-7s %14.0f %14.0f\n", names[k], a, b);
			}
			fflush(stdout);
			_exit(0);
		}
		waitpid(pid, &status, 0);
	}
	return 0;
}
