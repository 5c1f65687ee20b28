/*
 * base64-bench.c — throughput of each base64 encoder of shared/base64.c
 * on 64 KiB and 1 MiB buffers, in MB/s of input (1 MB = 10^6 bytes).
 *
 * Each encoder runs in a forked child with HFTPD_BASE64 set, since the
 * dispatcher reads the override once per process.
 *
 * Built by make as build/base64-bench; usage:
 *   build/base64-bench [seconds-per-measurement, default 0.5]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"
#include "clock.h"

#define DEFAULT_SECONDS	0.5	/* per measurement */
#define ROUNDS		5	/* a measurement is the best of this many */
#define CALLS_PER_CHECK	16	/* encodes between two looks at the clock */
#define SMALL_BUFFER	(64 * 1024)
#define LARGE_BUFFER	(1024 * 1024)

static double
base64_bench_seconds(void)
{
	return (double)clock_now_ns() / (double)CLOCK_NS_PER_SEC;
}

/* Best of ROUNDS rounds of ~secs/ROUNDS each: MB/s of input. */
static double
base64_bench_measure(size_t n, double secs)
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
	for (round = 0; round < ROUNDS; round++) {
		double t0 = base64_bench_seconds(), t;
		size_t iters = 0;

		do {
			size_t k;

			for (k = 0; k < CALLS_PER_CHECK; k++)
				base64_encode(dst, src, n);
			iters += CALLS_PER_CHECK;
			t = base64_bench_seconds() - t0;
		} while (t < secs / ROUNDS);
		if ((double)iters * (double)n / t / 1e6 > best)
			best = (double)iters * (double)n / t / 1e6;
	}
	sink = dst[n / 2];
	(void)sink;
	free(src);
	free(dst);
	return best;
}

/* In a child: forces the encoder called name, then prints its row. */
static void
base64_bench_row(const char *name, double secs)
{
	setenv("HFTPD_BASE64", name, 1);
	if (strcmp(base64_impl_name(), name) != 0) {
		printf("%-10s %14s %14s\n", name, "n/a", "n/a");
	} else {
		double small = base64_bench_measure(SMALL_BUFFER, secs);
		double large = base64_bench_measure(LARGE_BUFFER, secs);

		printf("%-10s %14.0f %14.0f\n", name, small, large);
	}
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	static const char *const names[] = { "scalar", "ssse3", "avx2", "avx512vbmi" };
	double secs = argc > 1 ? atof(argv[1]) : DEFAULT_SECONDS;
	size_t k;

	if (secs <= 0)
		secs = DEFAULT_SECONDS;
	printf("%-10s %14s %14s\n", "impl", "64 KiB MB/s", "1 MiB MB/s");
	fflush(stdout);
	for (k = 0; k < sizeof names / sizeof names[0]; k++) {
		pid_t pid = fork();
		int status;

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			base64_bench_row(names[k], secs);
			_exit(0);
		}
		waitpid(pid, &status, 0);
	}
	return 0;
}
