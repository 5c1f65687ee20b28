/*
 * bench_client.c — one hftp-bench thread: a non-blocking epoll loop over its
 * share of the connections.  Each connection is a small state machine:
 * connect, write a batch of requests (closed loop) or the requests that are
 * due (open loop) in one send, parse the responses as they stream in, check
 * status, framing and exact length, verify a sample of payloads against the
 * local file, and reconnect after an error or a timeout.  A response is
 * counted only once it is complete.
 */
#include "bench.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP		65536u		/* per-connection receive buffer */
#define RESP_LINE_MAX	4096u		/* longest HFTP response line accepted */
#define RAW_HDR		"Content-Length: "	/* HFTP raw slice header */
#define RAW_HDR_LEN	(sizeof(RAW_HDR) - 1)
#define HDR_MAX		16384u		/* longest HTTP response head accepted */
#define SAMPLE_EVERY	64u		/* verify one payload in this many */
#define OPEN_QCAP	1024u		/* open loop: most requests in flight per connection */
#define RETRY_NS	10000000ull	/* wait after an error before reconnecting */
#define TICK_NS		5000000ull	/* housekeeping period */
#define SCRATCH_CHARS	65536u		/* base64 characters decoded at once */
#define MAX_EVENTS	256		/* epoll events taken per wait */
#define PHASE_STEPS	1000000u	/* open loop: start phases per interval */

/* HFTP's answer to quit: an array, so that a suffix is &quit_ok[k] */
static const char quit_ok[] = "0 OK\r\n";
#define QUIT_OK_LEN (sizeof(quit_ok) - 1)

enum cstate { C_DOWN, C_CONNECTING, C_OPEN };

enum pstate {
	P_STATUS,   /* HFTP status line */
	P_META,     /* HFTP metadata size line */
	P_RAWHDR,   /* HFTP "Content-Length: N" */
	P_RAWBLANK, /* HFTP empty line after it */
	P_BODY,     /* payload bytes (base64 text or raw) */
	P_CRLF,     /* CR LF after a base64 line */
	P_LIST,     /* HFTP listing lines */
	P_HTTP_HDR  /* HTTP status line and headers */
};

struct req {
	uint64_t
	    t0; /* latency origin: send time, intended time, or connect time */
	uint64_t sent; /* when it was actually written (for timeouts) */
	uint64_t off;
	uint64_t size; /* payload bytes the response must carry */
	int sample;
};

struct conn {
	int fd;
	int idx;      /* global connection index */
	uint32_t gen; /* bumped on every connect, tags epoll events */
	enum cstate state;
	int out_armed; /* EPOLLOUT registered */
	uint64_t retry_at;
	uint64_t connect_t0;
	char *out;
	size_t out_len, out_off, out_cap;
	char *in;
	size_t in_len, in_off;
	/* response being parsed */
	enum pstate ps;
	uint64_t body_left;
	uint64_t body_pos;
	uint64_t resp_wire;
	int resp_bad;
	int is_b64;
	int http_close;
	/* HFTP connect mode: the request went with "quit"; after its answer the
	 * server's "0 OK" ends the connection (the server closes first, as
	 * nginx does for Connection: close, and the client closes on reading
	 * the last byte, as for HTTP) */
	int quitting;
	size_t quit_seen; /* bytes of quit_ok read so far */
	uint64_t quit_t0;
	int list_found;
	char carry[4];
	int ncarry;
	uint64_t dec_pos;
	int dec_done;
	/* requests in flight, oldest first */
	struct req *q;
	unsigned qcap, qhead, qlen;
	/* open loop schedule */
	double next_due;
	double interval;
	uint64_t rng;
	uint64_t nissued;
};

struct loop {
	struct bench_thread *t;
	const struct bench_opts *o;
	int ep;
	int tfd;
	int open_loop;
	struct conn *c;
	int n;
	unsigned char *scratch;
	size_t req_max;
	uint64_t now;
	double min_due;
	double armed_due;
	char hostport[300];
};

static uint64_t
bench_client_rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int
bench_client_initial_pstate(const struct bench_opts *o)
{
	return o->proto == BENCH_HTTP ? P_HTTP_HDR : P_STATUS;
}

static void
bench_client_reset_response(struct loop *L, struct conn *c)
{
	c->ps = (enum pstate)bench_client_initial_pstate(L->o);
	c->body_left = 0;
	c->body_pos = 0;
	c->resp_wire = 0;
	c->resp_bad = 0;
	c->is_b64 = 0;
	c->http_close = 0;
	c->list_found = 0;
	c->ncarry = 0;
	c->dec_pos = 0;
	c->dec_done = 0;
}

static void
bench_client_epoll_set(struct loop *L, struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = ((uint64_t)(unsigned)(c - L->c) << 32) | c->gen;
	(void)epoll_ctl(L->ep, op, c->fd, &ev);
}

/* Closes the connection, adding nerr errors and ntmo timeouts; it comes
 * back after a pause when it failed, at once when it closed cleanly. */
static void
bench_client_conn_down(
    struct loop *L, struct conn *c, uint64_t nerr, uint64_t ntmo)
{
	c->quitting = 0;
	c->quit_seen = 0;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = C_DOWN;
	c->out_armed = 0;
	c->out_len = c->out_off = 0;
	c->in_len = c->in_off = 0;
	c->qhead = c->qlen = 0;
	bench_client_reset_response(L, c);
	L->t->st.errors += nerr;
	L->t->st.timeouts += ntmo;
	c->retry_at = (nerr || ntmo) ? L->now + RETRY_NS : L->now;
}

static void bench_client_conn_issue(struct loop *L, struct conn *c);

static void
bench_client_conn_connected(struct loop *L, struct conn *c)
{
	c->state = C_OPEN;
	c->out_armed = 0;
	bench_client_epoll_set(L, c, EPOLL_CTL_MOD, EPOLLIN);
	bench_client_reset_response(L, c);
	bench_client_conn_issue(L, c);
}

static void
bench_client_conn_start(struct loop *L, struct conn *c)
{
	const struct bench_opts *o = L->o;
	int one = 1;
	int fd;

	c->gen++;
	c->connect_t0 = L->now;
	fd = socket(
	    o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->fd = -1;
		bench_client_conn_down(L, c, 1, 0);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->state = C_CONNECTING;
	if (c->gen > 1)
		L->t->st.reconnects++;
	if (connect(fd, (const struct sockaddr *)&o->addr, o->addrlen) == 0) {
		bench_client_epoll_set(L, c, EPOLL_CTL_ADD, EPOLLIN);
		bench_client_conn_connected(L, c);
		return;
	}
	if (errno != EINPROGRESS) {
		bench_client_conn_down(L, c, 1, 0);
		return;
	}
	bench_client_epoll_set(L, c, EPOLL_CTL_ADD, EPOLLOUT);
}

/* Writes what is queued; arms EPOLLOUT when the socket is full. */
static int
bench_client_conn_flush(struct loop *L, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->out_armed) {
				bench_client_epoll_set(
				    L, c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
				c->out_armed = 1;
			}
			return 0;
		}
		bench_client_conn_down(L, c, c->qlen ? c->qlen : 1, 0);
		return -1;
	}
	c->out_off = c->out_len = 0;
	if (c->out_armed) {
		bench_client_epoll_set(L, c, EPOLL_CTL_MOD, EPOLLIN);
		c->out_armed = 0;
	}
	return 0;
}

/* Queues one request whose latency counts from t0. */
static void
bench_client_conn_append(struct loop *L, struct conn *c, uint64_t t0)
{
	const struct bench_opts *o = L->o;
	struct req *r;
	char *p;
	size_t room;
	int n;

	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	r = &c->q[(c->qhead + c->qlen) % c->qcap];
	r->t0 = t0;
	r->sent = L->now;
	r->off = 0;
	r->size = 0;
	r->sample = 0;
	if (o->proto == BENCH_HTTP) {
		r->size =
		    (o->workload == BENCH_SLICE || o->workload == BENCH_RAW)
		    ? o->size
		    : 1;
		r->off = bench_client_rng_next(&c->rng) %
		    (o->file_size - r->size + 1);
	} else if (o->workload == BENCH_SLICE || o->workload == BENCH_RAW) {
		r->size = o->size;
		r->off = bench_client_rng_next(&c->rng) %
		    (o->file_size - r->size + 1);
	}
	if (o->file_map && r->size > 0 &&
	    c->nissued % SAMPLE_EVERY == (uint64_t)c->idx % SAMPLE_EVERY)
		r->sample = 1;
	c->nissued++;

	p = c->out + c->out_len;
	room = c->out_cap - c->out_len;
	if (o->proto == BENCH_HTTP) {
		n = snprintf(p, room,
		    "GET /%s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%" PRIu64
		    "-%" PRIu64 "\r\n%s\r\n",
		    o->file, L->hostport, r->off, r->off + r->size - 1,
		    o->workload == BENCH_CONNECT ? "Connection: close\r\n"
						 : "");
	} else if (o->workload == BENCH_SLICE || o->workload == BENCH_RAW) {
		n = snprintf(p, room,
		    "get_slice %s %" PRIu64 " %" PRIu64 "%s\r\n", o->file,
		    r->off, r->size, o->workload == BENCH_RAW ? " raw" : "");
	} else if (o->workload == BENCH_LISTING) {
		n = snprintf(p, room, "get_file_listing\r\n");
	} else {
		n = snprintf(p, room, "get_metadata %s\r\n%s", o->file,
		    o->workload == BENCH_CONNECT ? "quit\r\n" : "");
	}
	if (n < 0 || (size_t)n >= room)
		abort(); /* out_cap is sized for qcap requests */
	c->out_len += (size_t)n;
	c->qlen++;
}

static void
bench_client_note_due(struct loop *L, struct conn *c)
{
	if (L->open_loop && c->state == C_OPEN && c->qlen < c->qcap &&
	    c->next_due < L->min_due)
		L->min_due = c->next_due;
}

/* Sends what this connection owes: one request (connect), a batch of
 * --pipeline requests when none is in flight (closed loop), or every
 * request whose time has come (open loop). */
static void
bench_client_conn_issue(struct loop *L, struct conn *c)
{
	const struct bench_opts *o = L->o;
	size_t before = c->out_len;

	if (c->state != C_OPEN)
		return;
	if (o->workload == BENCH_CONNECT) {
		if (c->qlen == 0)
			bench_client_conn_append(L, c, c->connect_t0);
	} else if (L->open_loop) {
		while (c->qlen < c->qcap && c->next_due <= (double)L->now) {
			bench_client_conn_append(L, c, (uint64_t)c->next_due);
			c->next_due += c->interval;
		}
		bench_client_note_due(L, c);
	} else if (c->qlen == 0) {
		int i;

		for (i = 0; i < o->pipeline; i++)
			bench_client_conn_append(L, c, L->now);
	}
	if (c->out_len != before)
		(void)bench_client_conn_flush(L, c);
}

/* A response is complete (ok) or failed its check but kept the stream in
 * step (!ok).  Returns 1 if the connection was closed or replaced. */
static int
bench_client_conn_finish(struct loop *L, struct conn *c, int ok)
{
	const struct bench_opts *o = L->o;
	struct bench_stats *st = &L->t->st;
	struct req *r = &c->q[c->qhead];
	int was_full = c->qlen == c->qcap;

	if (ok && r->sample && c->is_b64 &&
	    (c->ncarry != 0 || c->dec_pos != r->size))
		ok = 0;
	if (ok && r->sample && !c->is_b64 && c->body_pos != r->size)
		ok = 0;
	if (!ok) {
		st->errors++;
	} else {
		if (r->sample)
			st->verified++;
		if (L->now >= L->t->t_measure && L->now < L->t->t_end) {
			st->requests++;
			st->payload_bytes += r->size;
			st->wire_bytes += c->resp_wire;
			bench_hist_record(&st->hist, L->now - r->t0);
		}
	}
	c->qhead = (c->qhead + 1) % c->qcap;
	c->qlen--;
	if (o->workload == BENCH_CONNECT && o->proto == BENCH_HFTP) {
		c->quitting = 1;
		c->quit_seen = 0;
		c->quit_t0 = L->now;
		return 0;
	}
	if (o->workload == BENCH_CONNECT) {
		bench_client_conn_down(L, c, c->qlen, 0);
		bench_client_conn_start(L, c);
		return 1;
	}
	if (c->http_close) {
		bench_client_conn_down(L, c, c->qlen, 0);
		bench_client_conn_start(L, c);
		return 1;
	}
	bench_client_reset_response(L, c);
	if ((!L->open_loop && c->qlen == 0) || (L->open_loop && was_full)) {
		bench_client_conn_issue(L, c);
		if (c->state != C_OPEN)
			return 1;
	}
	return 0;
}

/* Checks body bytes of a sampled response against the file. */
static void
bench_client_b64_check(struct loop *L, struct conn *c, const struct req *r,
    const char *s, size_t n)
{
	long k;

	if (c->dec_done) {
		c->resp_bad = 1;
		return;
	}
	k = bench_b64_decode(L->scratch, s, n);
	if (k < 0 || c->dec_pos + (uint64_t)k > r->size ||
	    memcmp(L->scratch, L->o->file_map + r->off + c->dec_pos,
		(size_t)k) != 0) {
		c->resp_bad = 1;
		return;
	}
	c->dec_pos += (uint64_t)k;
	if ((size_t)k < n / 4 * 3)
		c->dec_done = 1;
}

static void
bench_client_verify_chunk(struct loop *L, struct conn *c, const struct req *r,
    const char *p, size_t n)
{
	if (c->resp_bad)
		return;
	if (!c->is_b64) {
		if (memcmp(p, L->o->file_map + r->off + c->body_pos, n) != 0)
			c->resp_bad = 1;
		return;
	}
	while (n > 0 && !c->resp_bad) {
		if (c->ncarry > 0 || n < 4) {
			size_t k = 4u - (size_t)c->ncarry;

			if (k > n)
				k = n;
			memcpy(c->carry + c->ncarry, p, k);
			c->ncarry += (int)k;
			p += k;
			n -= k;
			if (c->ncarry == 4) {
				bench_client_b64_check(L, c, r, c->carry, 4);
				c->ncarry = 0;
			}
		} else {
			size_t whole = n & ~(size_t)3;

			if (whole > SCRATCH_CHARS)
				whole = SCRATCH_CHARS;
			bench_client_b64_check(L, c, r, p, whole);
			p += whole;
			n -= whole;
		}
	}
}

static int
bench_client_parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 19)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Case-insensitive "Name:" match at the start of a header line; returns
 * the value with leading blanks skipped, or NULL. */
static const char *
bench_client_header_value(
    const char *line, size_t len, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	size_t i;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	i = nl + 1;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	*vlen = len - i;
	while (*vlen > 0 &&
	    (line[i + *vlen - 1] == ' ' || line[i + *vlen - 1] == '\t'))
		(*vlen)--;
	return line + i;
}

/* Parses an HTTP response head of hlen bytes (ending in CR LF CR LF). */
static int
bench_client_http_head(struct loop *L, struct conn *c, const struct req *r,
    const char *h, size_t hlen)
{
	const char *end = h + hlen;
	const char *line = h;
	int have_len = 0;
	uint64_t clen = 0;
	int first = 1;

	while (line < end) {
		const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
		size_t len;
		const char *v;
		size_t vlen;

		if (!eol)
			break;
		len = (size_t)(eol - line);
		if (first) {
			/* "HTTP/1.1 206 Partial Content" */
			if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 ||
			    line[8] != ' ')
				return -1;
			if (strncmp(line + 9, "206", 3) != 0)
				c->resp_bad = 1;
			first = 0;
		} else if (len == 0) {
			break;
		} else if ((v = bench_client_header_value(
				line, len, "Content-Length", &vlen)) != NULL) {
			if (bench_client_parse_u64(v, vlen, &clen) < 0)
				return -1;
			have_len = 1;
		} else if ((v = bench_client_header_value(line, len,
				"Transfer-Encoding", &vlen)) != NULL) {
			return -1; /* a range answer is never chunked here */
		} else if ((v = bench_client_header_value(
				line, len, "Connection", &vlen)) != NULL) {
			if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
				c->http_close = 1;
		} else if ((v = bench_client_header_value(
				line, len, "Content-Range", &vlen)) != NULL) {
			char want[96];
			int wn = snprintf(want, sizeof(want),
			    "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, r->off,
			    r->off + r->size - 1, L->o->file_size);

			if (wn < 0 || (size_t)wn != vlen ||
			    memcmp(v, want, vlen) != 0)
				c->resp_bad = 1;
		}
		line = eol + 2;
	}
	if (!have_len)
		return -1;
	if (clen != r->size)
		c->resp_bad = 1;
	c->body_left = clen;
	c->is_b64 = 0;
	return 0;
}

/* What one parse step leaves for bench_client_conn_parse to do. */
enum parse_step {
	STEP_WAIT, /* the rest of the response has not arrived yet */
	STEP_NEXT, /* progress made: parse what is buffered after it */
	STEP_GONE  /* the connection was closed or replaced */
};

/* The response at the head of the queue is complete (or failed its check
 * but kept the stream in step). */
static enum parse_step
bench_client_parse_done(struct loop *L, struct conn *c, int ok)
{
	return bench_client_conn_finish(L, c, ok) ? STEP_GONE : STEP_NEXT;
}

/* The stream is out of step: every request in flight failed. */
static enum parse_step
bench_client_parse_fail(struct loop *L, struct conn *c)
{
	bench_client_conn_down(L, c, c->qlen, 0);
	return STEP_GONE;
}

/* HFTP connect mode, after the answer: "0 OK\r\n" for quit, then nothing
 * but the server's close. */
static enum parse_step
bench_client_parse_quit(
    struct loop *L, struct conn *c, const char *p, size_t avail)
{
	size_t want = QUIT_OK_LEN - c->quit_seen;
	size_t take = avail < want ? avail : want;

	if (take == 0 || memcmp(p, &quit_ok[c->quit_seen], take) != 0) {
		bench_client_conn_down(L, c, 1, 0);
		bench_client_conn_start(L, c);
		return STEP_GONE;
	}
	c->quit_seen += take;
	c->in_off += take;
	if (c->quit_seen == QUIT_OK_LEN && c->in_off == c->in_len) {
		/* the server closes right after writing it: its FIN is out
		 * first, as nginx's is after a Connection: close answer */
		bench_client_conn_down(L, c, 0, 0);
		bench_client_conn_start(L, c);
		return STEP_GONE;
	}
	return STEP_NEXT;
}

/* Payload bytes, base64 text or raw; a base64 line ends in CR LF. */
static enum parse_step
bench_client_parse_body(struct loop *L, struct conn *c, const struct req *r,
    const char *p, size_t avail)
{
	size_t take = avail < c->body_left ? avail : (size_t)c->body_left;

	if (r->sample && L->o->file_map)
		bench_client_verify_chunk(L, c, r, p, take);
	c->in_off += take;
	c->resp_wire += take;
	c->body_left -= take;
	c->body_pos += take;
	if (c->body_left > 0)
		return STEP_WAIT;
	if (c->is_b64) {
		c->ps = P_CRLF;
		return STEP_NEXT;
	}
	return bench_client_parse_done(L, c, !c->resp_bad);
}

static enum parse_step
bench_client_parse_crlf(
    struct loop *L, struct conn *c, const char *p, size_t avail)
{
	if (avail < 2)
		return STEP_WAIT;
	if (p[0] != '\r' || p[1] != '\n')
		return bench_client_parse_fail(L, c);
	c->in_off += 2;
	c->resp_wire += 2;
	return bench_client_parse_done(L, c, !c->resp_bad);
}

/* An HTTP status line and headers, up to the empty line. */
static enum parse_step
bench_client_parse_http(struct loop *L, struct conn *c, const struct req *r,
    const char *p, size_t avail)
{
	const char *end = memmem(p, avail, "\r\n\r\n", 4);
	size_t hlen;

	if (end == NULL)
		return avail > HDR_MAX ? bench_client_parse_fail(L, c)
				       : STEP_WAIT;
	hlen = (size_t)(end - p) + 4;
	if (bench_client_http_head(L, c, r, p, hlen) < 0)
		return bench_client_parse_fail(L, c);
	c->in_off += hlen;
	c->resp_wire += hlen;
	c->ps = P_BODY;
	if (c->body_left == 0)
		return bench_client_parse_done(L, c, !c->resp_bad);
	return STEP_NEXT;
}

/* An HFTP status line of len bytes: "0 OK" leads to what the workload's
 * answer carries; a 2xx error is the whole answer. */
static enum parse_step
bench_client_parse_status(struct loop *L, struct conn *c, const struct req *r,
    const char *line, size_t len)
{
	if (len == 4 && memcmp(line, "0 OK", 4) == 0) {
		switch (L->o->workload) {
		case BENCH_SLICE:
			c->is_b64 = 1;
			c->body_left = (r->size + 2) / 3 * 4;
			c->ps = c->body_left ? P_BODY : P_CRLF;
			break;
		case BENCH_RAW:
			c->ps = P_RAWHDR;
			break;
		case BENCH_LISTING:
			c->ps = P_LIST;
			break;
		default:
			c->ps = P_META;
			break;
		}
		return STEP_NEXT;
	}
	if (len >= 4 && line[0] == '2' && line[1] >= '0' && line[1] <= '9' &&
	    line[2] >= '0' && line[2] <= '9' && line[3] == ' ') {
		/* a 2xx error: one line, the stream stays in step */
		return bench_client_parse_done(L, c, 0);
	}
	/* 1xx (fatal: the server closes) or garbage */
	return bench_client_parse_fail(L, c);
}

/* One line of an HFTP answer: status, metadata size, raw header, the
 * empty line after it, or a listing line. */
static enum parse_step
bench_client_parse_line(struct loop *L, struct conn *c, const struct req *r,
    const char *p, size_t avail)
{
	const struct bench_opts *o = L->o;
	const char *eol = memmem(p, avail, "\r\n", 2);
	size_t len;
	uint64_t v;

	if (eol == NULL)
		return avail > RESP_LINE_MAX ? bench_client_parse_fail(L, c)
					     : STEP_WAIT;
	len = (size_t)(eol - p);
	c->in_off += len + 2;
	c->resp_wire += len + 2;
	switch (c->ps) {
	case P_STATUS:
		return bench_client_parse_status(L, c, r, p, len);
	case P_META:
		return bench_client_parse_done(L, c,
		    bench_client_parse_u64(p, len, &v) == 0 &&
			v == o->file_size);
	case P_RAWHDR:
		if (len < RAW_HDR_LEN || memcmp(p, RAW_HDR, RAW_HDR_LEN) != 0 ||
		    bench_client_parse_u64(
			p + RAW_HDR_LEN, len - RAW_HDR_LEN, &v) < 0 ||
		    v != r->size)
			return bench_client_parse_fail(L, c);
		c->ps = P_RAWBLANK;
		return STEP_NEXT;
	case P_RAWBLANK:
		if (len != 0)
			return bench_client_parse_fail(L, c);
		c->is_b64 = 0;
		c->body_left = r->size;
		c->ps = P_BODY;
		if (c->body_left == 0)
			return bench_client_parse_done(L, c, 1);
		return STEP_NEXT;
	case P_LIST:
		if (len == 0)
			return bench_client_parse_done(L, c, c->list_found);
		if (len == strlen(o->file) && memcmp(p, o->file, len) == 0)
			c->list_found = 1;
		return STEP_NEXT;
	default:
		return bench_client_parse_fail(L, c);
	}
}

/* Consumes what is buffered.  Returns 1 when the connection was closed or
 * replaced (stop touching it), 0 otherwise. */
static int
bench_client_conn_parse(struct loop *L, struct conn *c)
{
	enum parse_step step = STEP_NEXT;

	while (step == STEP_NEXT) {
		const char *p = c->in + c->in_off;
		size_t avail = c->in_len - c->in_off;
		const struct req *r;

		if (avail == 0)
			return 0;
		if (c->quitting) {
			step = bench_client_parse_quit(L, c, p, avail);
			continue;
		}
		if (c->qlen == 0) {
			/* bytes nobody asked for */
			bench_client_conn_down(L, c, 1, 0);
			return 1;
		}
		r = &c->q[c->qhead];
		switch (c->ps) {
		case P_BODY:
			step = bench_client_parse_body(L, c, r, p, avail);
			break;
		case P_CRLF:
			step = bench_client_parse_crlf(L, c, p, avail);
			break;
		case P_HTTP_HDR:
			step = bench_client_parse_http(L, c, r, p, avail);
			break;
		default:
			step = bench_client_parse_line(L, c, r, p, avail);
			break;
		}
	}
	return step == STEP_GONE;
}

static void
bench_client_conn_readable(struct loop *L, struct conn *c)
{
	uint32_t gen = c->gen;

	while (c->state == C_OPEN && c->gen == gen) {
		size_t room;
		ssize_t n;

		if (c->in_off == c->in_len) {
			c->in_off = c->in_len = 0;
		} else if (c->in_off > 0 && c->in_len > IN_CAP / 2) {
			memmove(
			    c->in, c->in + c->in_off, c->in_len - c->in_off);
			c->in_len -= c->in_off;
			c->in_off = 0;
		}
		room = IN_CAP - c->in_len;
		n = recv(c->fd, c->in + c->in_len, room, 0);
		if (n > 0) {
			L->now = clock_now_ns();
			c->in_len += (size_t)n;
			if (bench_client_conn_parse(L, c))
				return;
			if ((size_t)n < room)
				return;
			continue;
		}
		if (n == 0) {
			if (c->quitting) {
				/* connect mode: a clean end is quit's answer, then the close */
				bench_client_conn_down(L, c,
				    c->quit_seen == QUIT_OK_LEN ? 0 : 1, 0);
				bench_client_conn_start(L, c);
				return;
			}
			/* the server closed: fine between responses, an error inside one */
			if (c->qlen > 0 || c->in_len > c->in_off)
				bench_client_conn_down(
				    L, c, c->qlen ? c->qlen : 1, 0);
			else
				bench_client_conn_down(L, c, 0, 0);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		bench_client_conn_down(L, c, c->qlen ? c->qlen : 1, 0);
		return;
	}
}

static void
bench_client_conn_event(struct loop *L, struct conn *c, uint32_t ev)
{
	uint32_t gen = c->gen;

	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ||
		    err != 0) {
			bench_client_conn_down(L, c, 1, 0);
			return;
		}
		if (ev & (EPOLLOUT | EPOLLIN))
			bench_client_conn_connected(L, c);
		return;
	}
	if (c->state != C_OPEN)
		return;
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		bench_client_conn_readable(L, c);
	if (c->state == C_OPEN && c->gen == gen && (ev & EPOLLOUT))
		(void)bench_client_conn_flush(L, c);
}

/* Timeouts and reconnections. */
static void
bench_client_housekeeping(struct loop *L)
{
	uint64_t tmo = (uint64_t)(L->o->timeout * 1e9);
	int i;

	for (i = 0; i < L->n; i++) {
		struct conn *c = &L->c[i];

		if (c->state == C_CONNECTING && L->now - c->connect_t0 > tmo) {
			bench_client_conn_down(L, c, 0, 1);
		} else if (c->state == C_OPEN && c->qlen > 0 &&
		    L->now - c->q[c->qhead].sent > tmo) {
			bench_client_conn_down(L, c, 0, c->qlen);
		} else if (c->state == C_OPEN && c->quitting &&
		    L->now - c->quit_t0 > tmo) {
			bench_client_conn_down(L, c, 0, 1);
		} else if (c->state == C_DOWN && L->now >= c->retry_at) {
			bench_client_conn_start(L, c);
		}
	}
}

/* Open loop: sends what is due and re-arms the timer for the next one. */
static void
bench_client_schedule(struct loop *L)
{
	if ((double)L->now >= L->min_due) {
		int i;

		L->min_due = 1e300;
		for (i = 0; i < L->n; i++) {
			struct conn *c = &L->c[i];

			if (c->state == C_OPEN && c->qlen < c->qcap &&
			    c->next_due <= (double)L->now)
				bench_client_conn_issue(L, c);
			bench_client_note_due(L, c);
		}
	}
	if (L->min_due != L->armed_due && L->min_due < 1e300) {
		struct itimerspec its;
		uint64_t due = (uint64_t)L->min_due;

		memset(&its, 0, sizeof(its));
		its.it_value.tv_sec = (time_t)(due / CLOCK_NS_PER_SEC);
		its.it_value.tv_nsec = (long)(due % CLOCK_NS_PER_SEC);
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;
		(void)timerfd_settime(L->tfd, TFD_TIMER_ABSTIME, &its, NULL);
		L->armed_due = L->min_due;
	}
}

static int
bench_client_loop_setup(struct loop *L, struct bench_thread *t)
{
	const struct bench_opts *o = t->o;
	int i;

	memset(L, 0, sizeof(*L));
	L->t = t;
	L->o = o;
	L->ep = -1;
	L->tfd = -1;
	L->n = t->nconns;
	L->open_loop = o->rate > 0 && o->workload != BENCH_CONNECT;
	L->min_due = 1e300;
	L->armed_due = -1;
	if (strchr(o->host, ':'))
		snprintf(L->hostport, sizeof(L->hostport), "[%s]:%s", o->host,
		    o->port);
	else
		snprintf(L->hostport, sizeof(L->hostport), "%s:%s", o->host,
		    o->port);
	L->req_max = strlen(o->file) + strlen(L->hostport) + 160;
	L->ep = epoll_create1(EPOLL_CLOEXEC);
	if (L->ep < 0)
		goto fail;
	if (L->open_loop) {
		struct epoll_event ev;

		L->tfd =
		    timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (L->tfd < 0)
			goto fail;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.u64 = UINT64_MAX;
		if (epoll_ctl(L->ep, EPOLL_CTL_ADD, L->tfd, &ev) < 0)
			goto fail;
	}
	L->scratch = malloc(SCRATCH_CHARS / 4 * 3);
	L->c = calloc((size_t)L->n, sizeof(*L->c));
	if (!L->scratch || !L->c)
		goto fail;
	for (i = 0; i < L->n; i++)
		L->c[i].fd = -1;
	for (i = 0; i < L->n; i++) {
		struct conn *c = &L->c[i];

		c->idx = t->first_conn + i;
		c->rng = o->seed * 0x2545f4914f6cdd1dull +
		    (uint64_t)c->idx * 0x9e3779b97f4a7c15ull + 1;
		c->qcap = L->open_loop ? OPEN_QCAP : (unsigned)o->pipeline;
		if (o->workload == BENCH_CONNECT)
			c->qcap = 1;
		c->q = calloc(c->qcap, sizeof(*c->q));
		c->out_cap = (size_t)c->qcap * L->req_max;
		c->out = malloc(c->out_cap);
		c->in = malloc(IN_CAP);
		if (!c->q || !c->out || !c->in)
			goto fail;
		if (L->open_loop) {
			/* each connection gets rate/conns, started at a random phase */
			c->interval = 1e9 * (double)o->conns / o->rate;
			c->next_due = (double)t->t_start +
			    c->interval *
				(double)(bench_client_rng_next(&c->rng) %
				    PHASE_STEPS) / PHASE_STEPS;
		}
	}
	return 0;
fail:
	snprintf(t->err, sizeof(t->err), "thread %d setup: %s", t->id,
	    strerror(errno));
	return -1;
}

static void
bench_client_loop_teardown(struct loop *L)
{
	int i;

	if (L->c) {
		for (i = 0; i < L->n; i++) {
			if (L->c[i].fd >= 0)
				close(L->c[i].fd);
			free(L->c[i].q);
			free(L->c[i].out);
			free(L->c[i].in);
		}
	}
	free(L->c);
	free(L->scratch);
	if (L->tfd >= 0)
		close(L->tfd);
	if (L->ep >= 0)
		close(L->ep);
}

int
bench_thread_run(struct bench_thread *t)
{
	struct loop L;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t last_tick;
	int i;

	bench_hist_init(&t->st.hist);
	if (bench_client_loop_setup(&L, t) < 0)
		goto fail;
	L.now = clock_now_ns();
	for (i = 0; i < L.n; i++)
		bench_client_conn_start(&L, &L.c[i]);
	last_tick = L.now;
	for (;;) {
		int n;
		int tmo_ms;
		uint64_t left;

		L.now = clock_now_ns();
		if (L.now >= t->t_end)
			break;
		left = t->t_end - L.now;
		tmo_ms = left > TICK_NS ? (int)(TICK_NS / CLOCK_NS_PER_MS)
					: (int)(left / CLOCK_NS_PER_MS) + 1;
		n = epoll_wait(L.ep, evs, MAX_EVENTS, tmo_ms);
		if (n < 0 && errno != EINTR) {
			snprintf(t->err, sizeof(t->err), "epoll_wait: %s",
			    strerror(errno));
			goto fail;
		}
		L.now = clock_now_ns();
		for (i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			struct conn *c;

			if (tag == UINT64_MAX) {
				uint64_t ticks;

				(void)!read(L.tfd, &ticks, sizeof(ticks));
				continue;
			}
			c = &L.c[tag >> 32];
			if ((uint32_t)tag != c->gen || c->fd < 0)
				continue; /* stale event of a closed connection */
			bench_client_conn_event(&L, c, evs[i].events);
		}
		if (L.now - last_tick >= TICK_NS) {
			bench_client_housekeeping(&L);
			last_tick = L.now;
		}
		if (L.open_loop)
			bench_client_schedule(&L);
	}
	bench_client_loop_teardown(&L);
	return 0;
fail:
	bench_client_loop_teardown(&L);
	return -1;
}
