/*
 * bench.h — shared declarations of hftp-bench, the HFTP / HTTP load
 * generator: run options, the latency histogram, per-thread statistics,
 * the client loop and the base64 decoder used to verify payloads.
 */
#ifndef HFTP_BENCH_H
#define HFTP_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum bench_proto { BENCH_HFTP, BENCH_HTTP };

enum bench_workload {
	BENCH_METADATA,
	BENCH_SLICE,
	BENCH_RAW,
	BENCH_LISTING,
	BENCH_CONNECT
};

/* What one run does; filled by option parsing, then by the start-up probe. */
struct bench_opts {
	enum bench_proto proto;
	enum bench_workload workload;
	const char *host;
	const char *port;
	const char *file;      /* name on the server */
	const char *file_path; /* local path of the same file, or NULL */
	int conns;
	int threads;
	int pipeline;
	int json;
	double duration; /* seconds measured */
	double warmup;   /* seconds discarded before that */
	double rate;     /* total requests/s; 0 = closed loop */
	double timeout;  /* seconds before a request counts as timed out */
	uint64_t size;   /* slice size */
	uint64_t seed;
	/* resolved at start-up */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t file_size;
	/* the local file, or NULL: no payload check */
	const unsigned char *file_map;
};

/* Log-linear latency histogram in nanoseconds: 2^BENCH_HIST_SUB_BITS
 * buckets per power of two, so any value is known to within 1/128 (0.8 %).
 * Covers 1 ns .. 2^35 ns (34 s); larger values land in the last bucket. */
#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_BUCKETS  4096

struct bench_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	double sum;
	uint64_t bucket[BENCH_HIST_BUCKETS];
};

void bench_hist_init(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t ns);
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* Value (ns) at percentile p (0..100): the top of the bucket holding it,
 * clamped to the exact maximum. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);

/* What one thread saw.  Only responses completed inside the measured window
 * count in requests / bytes / hist; errors and timeouts count over the
 * whole run, warm-up included. */
struct bench_stats {
	uint64_t requests;
	uint64_t errors;
	uint64_t timeouts;
	uint64_t payload_bytes;
	uint64_t wire_bytes;
	uint64_t verified; /* sampled payloads decoded and compared */
	uint64_t reconnects;
	struct bench_hist hist;
};

struct bench_thread {
	int id;
	const struct bench_opts *o;
	int first_conn; /* global index of its first connection */
	int nconns;
	uint64_t t_start; /* monotonic ns */
	uint64_t t_measure;
	uint64_t t_end;
	struct bench_stats st;
	char err[256]; /* first setup error, if the thread failed */
};

/* Runs one thread's connections from t_start to t_end.  Returns 0, or -1
 * on a local setup failure (t->err says why). */
int bench_thread_run(struct bench_thread *t);

/* Decodes n base64 characters (n a multiple of 4, '=' padding only in the
 * last group) into dst.  Returns the number of bytes, or -1 if the input
 * is not canonical base64. */
long bench_b64_decode(unsigned char *dst, const char *src, size_t n);

#endif
