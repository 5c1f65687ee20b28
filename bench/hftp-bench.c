/*
 * hftp-bench.c — entry point of the HFTP / HTTP load generator: parses the
 * options, resolves the target, asks the server for the file's size (and
 * checks the local copy given by --file-path), runs the threads for the
 * warm-up and the measured window, merges their histograms and prints the
 * result as text or as one JSON object.
 *
 * Exit status: 0 after a completed run (its error count is in the output),
 * 2 on a usage error, 1 when the run cannot start (cannot connect, no such
 * file, ...).
 */
#include "bench.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROBE_TIMEOUT_MS   5000    /* each step of the start-up probe */
#define DEFAULT_TIMEOUT_S  10      /* --timeout */
#define DEFAULT_SLICE_SIZE 65536   /* --size */
#define MAX_CONNS          1000000 /* --conns */
#define MAX_THREADS        1024    /* --threads */
#define MAX_PIPELINE       4096    /* --pipeline */
#define MAX_FILE_NAME      4096    /* --file, in bytes */

static void
hftp_bench_usage(FILE *f)
{
	fprintf(f,
	    "usage: hftp-bench --proto hftp|http --host H --port P --conns N --threads T\n"
	    "                  --duration S [--warmup S]\n"
	    "                  --workload metadata|slice|raw|listing|connect --file NAME\n"
	    "                  [--size BYTES] [--pipeline D] [--rate R] [--seed N] [--json]\n"
	    "                  [--file-path PATH] [--timeout S]\n"
	    "  --rate R        open loop: R requests/s in all, latency from the intended send time\n"
	    "  --pipeline D    closed loop: D requests written in one send per connection\n"
	    "  --file-path P   local copy of the served file: 1 payload in 64 is decoded and compared\n"
	    "  --timeout S     a request unanswered after S seconds is a timeout (default 10)\n");
}

static int
hftp_bench_parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return (errno || end == s || *end != '\0' || *out < 0) ? -1 : 0;
}

static int
hftp_bench_parse_uint(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || *end != '\0') ? -1 : 0;
}

/* Option and report names, in enum order. */
static const char *const proto_names[] = { "hftp", "http" };
static const char *const workload_names[] = { "metadata", "slice", "raw",
	"listing", "connect" };
#define NAMES_N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Index of s in names (enum order), or -1. */
static int
hftp_bench_parse_choice(const char *s, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0)
			return i;
	}
	return -1;
}

static int
hftp_bench_parse_int(const char *s, int lo, int hi, int *out)
{
	uint64_t v;

	if (hftp_bench_parse_uint(s, &v) < 0 || v < (uint64_t)lo ||
	    v > (uint64_t)hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* Which of the options without a usable default were given. */
struct args_given {
	int proto;
	int workload;
	int size;
};

static void
hftp_bench_set_defaults(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->conns = -1;
	o->threads = -1;
	o->duration = -1;
	o->pipeline = 1;
	o->timeout = DEFAULT_TIMEOUT_S;
	o->seed = 1;
	o->size = DEFAULT_SLICE_SIZE;
}

/* Applies the option ch with argument arg.  Returns -1 on a bad value. */
static int
hftp_bench_parse_option(
    int ch, const char *arg, struct bench_opts *o, struct args_given *given)
{
	int k;

	switch (ch) {
	case 'P':
		if ((k = hftp_bench_parse_choice(
			 arg, proto_names, NAMES_N(proto_names))) < 0)
			return -1;
		o->proto = (enum bench_proto)k;
		given->proto = 1;
		return 0;
	case 'W':
		if ((k = hftp_bench_parse_choice(
			 arg, workload_names, NAMES_N(workload_names))) < 0)
			return -1;
		o->workload = (enum bench_workload)k;
		given->workload = 1;
		return 0;
	case 'h':
		o->host = arg;
		return 0;
	case 'p':
		o->port = arg;
		return 0;
	case 'f':
		o->file = arg;
		return 0;
	case 'F':
		o->file_path = arg;
		return 0;
	case 'c':
		return hftp_bench_parse_int(arg, 1, MAX_CONNS, &o->conns);
	case 't':
		return hftp_bench_parse_int(arg, 1, MAX_THREADS, &o->threads);
	case 'D':
		return hftp_bench_parse_int(arg, 1, MAX_PIPELINE, &o->pipeline);
	case 'd':
		if (hftp_bench_parse_double(arg, &o->duration) < 0 ||
		    o->duration <= 0)
			return -1;
		return 0;
	case 'w':
		return hftp_bench_parse_double(arg, &o->warmup);
	case 'r':
		return hftp_bench_parse_double(arg, &o->rate);
	case 'T':
		if (hftp_bench_parse_double(arg, &o->timeout) < 0 ||
		    o->timeout <= 0)
			return -1;
		return 0;
	case 's':
		if (hftp_bench_parse_uint(arg, &o->size) < 0 || o->size == 0)
			return -1;
		given->size = 1;
		return 0;
	case 'S':
		return hftp_bench_parse_uint(arg, &o->seed);
	case 'j':
		o->json = 1;
		return 0;
	case 'H':
		hftp_bench_usage(stdout);
		exit(0);
	default:
		return -1;
	}
}

/* Checks that the options make one run; says why not on stderr. */
static int
hftp_bench_check_args(
    const struct bench_opts *o, const struct args_given *given)
{
	if (!given->proto || !given->workload || !o->host || !o->port ||
	    !o->file || o->conns < 0 || o->threads < 0 || o->duration < 0) {
		fprintf(stderr, "hftp-bench: missing or extra arguments\n");
		return -1;
	}
	if (strlen(o->file) > MAX_FILE_NAME || strpbrk(o->file, " \r\n")) {
		fprintf(stderr, "hftp-bench: bad --file name\n");
		return -1;
	}
	if (o->proto == BENCH_HTTP && o->workload == BENCH_LISTING) {
		fprintf(
		    stderr, "hftp-bench: the listing workload is HFTP only\n");
		return -1;
	}
	if (o->workload == BENCH_CONNECT && (o->rate > 0 || o->pipeline > 1)) {
		fprintf(stderr,
		    "hftp-bench: the connect workload is closed "
		    "loop without pipelining\n");
		return -1;
	}
	if (o->rate > 0 && o->pipeline > 1) {
		fprintf(stderr,
		    "hftp-bench: --pipeline applies to the closed loop only\n");
		return -1;
	}
	return 0;
}

static int
hftp_bench_parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{ "proto",	required_argument,	NULL, 'P' },
		{ "host",	required_argument,	NULL, 'h' },
		{ "port",	required_argument,	NULL, 'p' },
		{ "conns",	required_argument,	NULL, 'c' },
		{ "threads",	required_argument,	NULL, 't' },
		{ "duration",	required_argument,	NULL, 'd' },
		{ "warmup",	required_argument,	NULL, 'w' },
		{ "workload",	required_argument,	NULL, 'W' },
		{ "file",	required_argument,	NULL, 'f' },
		{ "file-path",	required_argument,	NULL, 'F' },
		{ "size",	required_argument,	NULL, 's' },
		{ "pipeline",	required_argument,	NULL, 'D' },
		{ "rate",	required_argument,	NULL, 'r' },
		{ "seed",	required_argument,	NULL, 'S' },
		{ "timeout",	required_argument,	NULL, 'T' },
		{ "json",	no_argument,		NULL, 'j' },
		{ "help",	no_argument,		NULL, 'H' },
		{ NULL,		0,			NULL, 0 }
	};
	struct args_given given;
	int ch;

	memset(&given, 0, sizeof(given));
	hftp_bench_set_defaults(o);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (hftp_bench_parse_option(ch, optarg, o, &given) < 0) {
			fprintf(
			    stderr, "hftp-bench: bad value for an option\n");
			goto fail;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "hftp-bench: missing or extra arguments\n");
		goto fail;
	}
	if (hftp_bench_check_args(o, &given) < 0)
		goto fail;
	/* http: the 1-byte range; hftp: no payload */
	if (!given.size && o->workload != BENCH_SLICE &&
	    o->workload != BENCH_RAW)
		o->size = o->proto == BENCH_HTTP ? 1 : 0;
	if (o->threads > o->conns)
		o->threads = o->conns;
	return 0;
fail:
	hftp_bench_usage(stderr);
	return -1;
}

static int
hftp_bench_resolve(struct bench_opts *o)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0 || !res) {
		fprintf(stderr, "hftp-bench: %s:%s: %s\n", o->host, o->port,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(&o->addr, res->ai_addr, res->ai_addrlen);
	o->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Blocking connect with a deadline; returns the socket or -1. */
static int
hftp_bench_probe_connect(const struct bench_opts *o)
{
	struct pollfd pfd;
	int fd, err = 0;
	socklen_t el = sizeof(err);

	fd = socket(
	    o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (connect(fd, (const struct sockaddr *)&o->addr, o->addrlen) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, PROBE_TIMEOUT_MS) != 1) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ||
		    err != 0) {
			errno = err ? err : errno;
			goto fail;
		}
	}
	return fd;
fail:
	fprintf(stderr, "hftp-bench: cannot connect to %s port %s: %s\n",
	    o->host, o->port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Sends req, then reads until done(buf, len) says the answer is complete. */
static int
hftp_bench_probe_exchange(int fd, const char *req, char *buf, size_t cap,
    int (*done)(const char *, size_t), size_t *got)
{
	size_t len = 0, off = 0, rl = strlen(req);
	struct pollfd pfd;

	while (off < rl) {
		ssize_t n = send(fd, req + off, rl - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, PROBE_TIMEOUT_MS) != 1)
				return -1;
			continue;
		}
		return -1;
	}
	while (!done(buf, len)) {
		ssize_t n;

		if (len + 1 >= cap)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, PROBE_TIMEOUT_MS) != 1)
			return -1;
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
	}
	*got = len;
	return 0;
}

/* An HFTP metadata answer is complete after its status line when that is
 * an error, else after the size line. */
static int
hftp_bench_hftp_meta_done(const char *buf, size_t len)
{
	const char *eol = memmem(buf, len, "\r\n", 2);

	if (!eol)
		return 0;
	if ((size_t)(eol - buf) != 4 || memcmp(buf, "0 OK", 4) != 0)
		return 1;
	return memmem(eol + 2, len - (size_t)(eol + 2 - buf), "\r\n", 2) !=
	    NULL;
}

static int
hftp_bench_http_head_done(const char *buf, size_t len)
{
	return memmem(buf, len, "\r\n\r\n", 4) != NULL;
}

/* Learns the file's size from the server: get_metadata, or the total of a
 * 1-byte range answer's Content-Range. */
static int
hftp_bench_probe_size(struct bench_opts *o)
{
	char buf[16384];
	char req[8192];
	size_t got = 0;
	int fd;

	fd = hftp_bench_probe_connect(o);
	if (fd < 0)
		return -1;
	if (o->proto == BENCH_HFTP) {
		const char *eol;

		snprintf(req, sizeof(req), "get_metadata %s\r\n", o->file);
		if (hftp_bench_probe_exchange(fd, req, buf, sizeof(buf),
			hftp_bench_hftp_meta_done, &got) < 0)
			goto io;
		eol = memmem(buf, got, "\r\n", 2);
		if ((size_t)(eol - buf) != 4 || memcmp(buf, "0 OK", 4) != 0) {
			fprintf(stderr, "hftp-bench: get_metadata %s: %.*s\n",
			    o->file, (int)(eol - buf), buf);
			goto fail;
		}
		if (sscanf(eol + 2, "%" SCNu64, &o->file_size) != 1)
			goto io;
	} else {
		const char *cr;
		const char *h = strchr(o->host, ':') ? "[%s]:%s" : "%s:%s";
		char host[300];

		snprintf(host, sizeof(host), h, o->host, o->port);
		snprintf(req, sizeof(req),
		    "GET /%s HTTP/1.1\r\nHost: %s\r\nRange: bytes=0-0\r\n"
		    "Connection: close\r\n\r\n",
		    o->file, host);
		if (hftp_bench_probe_exchange(fd, req, buf, sizeof(buf),
			hftp_bench_http_head_done, &got) < 0)
			goto io;
		if (strncmp(buf, "HTTP/1.", 7) != 0 ||
		    strncmp(buf + 9, "206", 3) != 0) {
			fprintf(stderr, "hftp-bench: GET /%s: %.*s\n", o->file,
			    (int)strcspn(buf, "\r\n"), buf);
			goto fail;
		}
		cr = strcasestr(buf, "\r\nContent-Range: bytes 0-0/");
		if (!cr || sscanf(cr + 27, "%" SCNu64, &o->file_size) != 1)
			goto io;
	}
	close(fd);
	return 0;
io:
	fprintf(stderr,
	    "hftp-bench: no usable answer to the size probe from %s port %s\n",
	    o->host, o->port);
fail:
	close(fd);
	return -1;
}

static int
hftp_bench_check_sizes(const struct bench_opts *o)
{
	int needs_bytes = o->proto == BENCH_HTTP ||
	    o->workload == BENCH_SLICE || o->workload == BENCH_RAW;

	if (needs_bytes && o->size > o->file_size) {
		fprintf(stderr,
		    "hftp-bench: %s is %" PRIu64
		    " bytes, smaller than --size %" PRIu64 "\n",
		    o->file, o->file_size, o->size);
		return -1;
	}
	return 0;
}

/* Maps --file-path after checking it has the size the server reports. */
static int
hftp_bench_map_local(struct bench_opts *o, void **map)
{
	struct stat sb;
	int fd;

	*map = NULL;
	if (!o->file_path)
		return 0;
	fd = open(o->file_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		fprintf(stderr, "hftp-bench: %s: %s\n", o->file_path,
		    strerror(errno));
		goto fail;
	}
	if ((uint64_t)sb.st_size != o->file_size) {
		fprintf(stderr,
		    "hftp-bench: %s has %jd bytes, the server says %" PRIu64
		    "\n",
		    o->file_path, (intmax_t)sb.st_size, o->file_size);
		goto fail;
	}
	if (o->file_size > 0) {
		*map = mmap(NULL, o->file_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (*map == MAP_FAILED) {
			*map = NULL;
			fprintf(stderr, "hftp-bench: mmap %s: %s\n",
			    o->file_path, strerror(errno));
			goto fail;
		}
		o->file_map = *map;
	}
	close(fd);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static void *
hftp_bench_thread_main(void *arg)
{
	struct bench_thread *t = arg;

	return bench_thread_run(t) == 0 ? NULL : t;
}

static void
hftp_bench_sleep_until(uint64_t t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(t / CLOCK_NS_PER_SEC);
	ts.tv_nsec = (long)(t % CLOCK_NS_PER_SEC);
	while (
	    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static double
hftp_bench_cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
hftp_bench_report(const struct bench_opts *o, const struct bench_stats *st,
    double secs, double cpu)
{
	const struct bench_hist *h = &st->hist;
	double rps = (double)st->requests / secs;
	double pbps = (double)st->payload_bytes / secs;
	double wbps = (double)st->wire_bytes / secs;
	double p50 = (double)bench_hist_percentile(h, 50) / 1e3;
	double p90 = (double)bench_hist_percentile(h, 90) / 1e3;
	double p99 = (double)bench_hist_percentile(h, 99) / 1e3;
	double p999 = (double)bench_hist_percentile(h, 99.9) / 1e3;
	double maxv = (double)h->max / 1e3;
	double minv = h->count ? (double)h->min / 1e3 : 0;
	double mean = h->count ? h->sum / (double)h->count / 1e3 : 0;
	int bound = cpu >= 0.9 * (double)o->threads * secs;

	if (o->json) {
		printf(
		    "{\"proto\": \"%s\", \"workload\": \"%s\", \"conns\": %d, \"threads\": %d, "
		    "\"pipeline\": %d, \"rate\": %.1f, \"size\": %" PRIu64
		    ", \"duration_s\": %.3f, "
		    "\"warmup_s\": %.3f, \"requests\": %" PRIu64
		    ", \"errors\": %" PRIu64 ", \"timeouts\": %" PRIu64
		    ", \"verified\": %" PRIu64 ", \"reconnects\": %" PRIu64
		    ", \"rps\": %.1f, \"payload_bps\": %.1f, \"wire_bps\": %.1f, "
		    "\"min_us\": %.1f, \"mean_us\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, "
		    "\"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f, \"client_cpu_s\": %.3f, "
		    "\"generator_bound\": %s}\n",
		    proto_names[o->proto], workload_names[o->workload],
		    o->conns, o->threads, o->pipeline, o->rate, o->size, secs,
		    o->warmup, st->requests, st->errors, st->timeouts,
		    st->verified, st->reconnects, rps, pbps, wbps, minv, mean,
		    p50, p90, p99, p999, maxv, cpu, bound ? "true" : "false");
		return;
	}
	printf("hftp-bench: %s %s%s, %d conns over %d threads, ",
	    proto_names[o->proto], workload_names[o->workload],
	    o->workload == BENCH_SLICE || o->workload == BENCH_RAW ? " slices"
								   : "",
	    o->conns, o->threads);
	if (o->rate > 0)
		printf("open loop at %.0f req/s", o->rate);
	else
		printf("closed loop, pipeline %d", o->pipeline);
	printf(", %.1f s measured after %.1f s warm-up\n", secs, o->warmup);
	if (o->workload == BENCH_SLICE || o->workload == BENCH_RAW ||
	    o->proto == BENCH_HTTP)
		printf("  slice size    %" PRIu64 " bytes of %" PRIu64 "\n",
		    o->size, o->file_size);
	printf(
	    "  requests      %" PRIu64 "  (%.1f req/s)\n", st->requests, rps);
	printf("  payload       %.2f MB/s   wire %.2f MB/s\n", pbps / 1e6,
	    wbps / 1e6);
	printf(
	    "  latency (us)  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (min %.1f, mean %.1f)\n",
	    p50, p90, p99, p999, maxv, minv, mean);
	printf("  errors        %" PRIu64 "   timeouts %" PRIu64
	       "   reconnects %" PRIu64 "\n",
	    st->errors, st->timeouts, st->reconnects);
	if (o->file_map)
		printf("  verified      %" PRIu64
		       " payloads (1 in 64) matched the file\n",
		    st->verified);
	else
		printf(
		    "  verified      no payloads (no --file-path); framing and lengths checked\n");
	printf("  client CPU    %.2f s  (%.0f %% of %d threads x %.1f s)\n",
	    cpu, 100.0 * cpu / ((double)o->threads * secs), o->threads, secs);
	if (bound)
		printf(
		    "  WARNING: the client used ~all of its threads' CPU: this run is generator-bound; "
		    "the server may be faster than shown\n");
}

static void
hftp_bench_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_thread *th = NULL;
	pthread_t *tids = NULL;
	struct bench_stats total;
	void *map = NULL;
	uint64_t now;
	double cpu0, cpu1;
	int started = 0;
	int failed = 0;
	int rc = 1;
	int i, first;

	if (hftp_bench_parse_args(argc, argv, &o) < 0)
		return 2;
	hftp_bench_raise_nofile();
	if (hftp_bench_resolve(&o) < 0 || hftp_bench_probe_size(&o) < 0 ||
	    hftp_bench_check_sizes(&o) < 0 ||
	    hftp_bench_map_local(&o, &map) < 0)
		goto fail;

	th = calloc((size_t)o.threads, sizeof(*th));
	tids = calloc((size_t)o.threads, sizeof(*tids));
	if (!th || !tids) {
		fprintf(stderr, "hftp-bench: out of memory\n");
		goto fail;
	}
	now = clock_now_ns();
	for (i = 0, first = 0; i < o.threads; i++) {
		th[i].id = i;
		th[i].o = &o;
		th[i].first_conn = first;
		th[i].nconns = o.conns / o.threads + (i < o.conns % o.threads);
		first += th[i].nconns;
		th[i].t_start = now;
		th[i].t_measure = now + (uint64_t)(o.warmup * 1e9);
		th[i].t_end = th[i].t_measure + (uint64_t)(o.duration * 1e9);
	}
	cpu0 = hftp_bench_cpu_seconds();
	for (i = 0; i < o.threads; i++) {
		if (pthread_create(
			&tids[i], NULL, hftp_bench_thread_main, &th[i]) != 0) {
			fprintf(
			    stderr, "hftp-bench: cannot start thread %d\n", i);
			break;
		}
		started++;
	}
	if (started == o.threads) {
		if (o.warmup > 0) {
			hftp_bench_sleep_until(th[0].t_measure);
			cpu0 = hftp_bench_cpu_seconds();
		}
		hftp_bench_sleep_until(th[0].t_end);
	}
	cpu1 = hftp_bench_cpu_seconds();
	for (i = 0; i < started; i++) {
		void *ret = NULL;

		pthread_join(tids[i], &ret);
		if (ret) {
			fprintf(stderr, "hftp-bench: %s\n", th[i].err);
			failed = 1;
		}
	}
	if (started != o.threads || failed)
		goto fail;

	memset(&total, 0, sizeof(total));
	bench_hist_init(&total.hist);
	for (i = 0; i < o.threads; i++) {
		total.requests += th[i].st.requests;
		total.errors += th[i].st.errors;
		total.timeouts += th[i].st.timeouts;
		total.payload_bytes += th[i].st.payload_bytes;
		total.wire_bytes += th[i].st.wire_bytes;
		total.verified += th[i].st.verified;
		total.reconnects += th[i].st.reconnects;
		bench_hist_merge(&total.hist, &th[i].st.hist);
	}
	hftp_bench_report(&o, &total, o.duration, cpu1 - cpu0);
	rc = 0;
fail:
	free(th);
	free(tids);
	if (map)
		munmap(map, o.file_size);
	return rc;
}
