/*
 * status.c — the status listener and what it tells: the master's own
 * counters (accepts, refusals, accept pauses, reloads, worker restarts),
 * the workers' counters (CHANNEL_STATS) kept per pool index and
 * generation, and the HTTP side: GET /metrics (Prometheus text format
 * 0.0.4), /status (JSON), /health ("ok", or 503 "draining" once the
 * master stops), / (statuspage.c's page).  Requests are parsed by
 * statushttp.c.
 *
 * An attack surface, so: at most STATUS_CONNS_MAX connections (more are
 * closed at once), a request head of at most STATUSHTTP_HEAD_MAX bytes,
 * STATUS_DEADLINE_MS from accept to the last byte sent, then closed; one
 * answer per connection (Connection: close); no path is ever resolved and
 * no file read.  Everything is non-blocking, in the master's poll loop.
 *
 * Totals across respawns: a worker reports its own totals since it
 * started; when it is reaped, they are added to its (generation, pool
 * index) entry's base, and its successor's totals count on top.  Entries
 * of the current generation stay; an old generation's are reported,
 * labelled with their generation, while its workers drain, and dropped
 * with its last worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "clock.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "statushttp.h"
#include "statuspage.h"
#include "tally.h"

#define STATUS_CONNS_MAX    16
#define STATUS_DEADLINE_MS  2000

struct status_conn {
	int       fd;
	uint64_t  deadline_ms;
	size_t    inlen;
	char      in[STATUSHTTP_HEAD_MAX];
	char     *out;          /* the whole answer, once made */
	size_t    outlen, outoff;
};

/* One pool index of one generation: the totals of its dead workers, its live one's. */
struct status_worker {
	unsigned             gen;
	int                  index;
	pid_t                pid;   /* the last worker's */
	struct channel_stats base;
	struct channel_stats last;
};

struct status_state {
	struct status_conn    conns[STATUS_CONNS_MAX];
	int                   nconns;
	struct status_worker *workers;
	size_t                nworkers, capworkers;
	uint64_t              events[STATUS_EVENTS];
	time_t                started;      /* wall clock, for hftpd_start_time_seconds */
	uint64_t              started_ms;   /* monotonic, for the uptime */
};

/* A growing text: an answer being made.  Out of memory: failed, and dropped. */
struct status_text {
	char   *p;
	size_t  len, cap;
	bool    failed;
};

/* What one worker series says: its entry's totals and, when alive, its slot's. */
struct status_view {
	unsigned                  gen;
	int                       index;
	pid_t                     pid;
	const struct worker_slot *slot;     /* NULL: none alive */
	struct channel_stats      tot;
};

int
status_init(struct master *m)
{
	if ((m->status = calloc(1, sizeof(*m->status))) == NULL)
		return -1;
	m->status->started = time(NULL);
	m->status->started_ms = clock_now_ms();
	return 0;
}

static void
status_conn_close(struct status_state *st, int i)
{
	close(st->conns[i].fd);
	free(st->conns[i].out);
	st->conns[i] = st->conns[--st->nconns];
}

void
status_free(struct master *m)
{
	if (m->status == NULL)
		return;
	while (m->status->nconns > 0)
		status_conn_close(m->status, 0);
	free(m->status->workers);
	free(m->status);
	m->status = NULL;
}

void
status_count(struct master *m, enum status_event ev)
{
	if (m->status != NULL && ev < STATUS_EVENTS)
		m->status->events[ev]++;
}

/* -- the workers' counters ----------------------------------------------------- */

static struct status_worker *
status_worker_find(struct status_state *st, unsigned gen, int index, bool add)
{
	struct status_worker *w;

	for (size_t i = 0; i < st->nworkers; i++) {
		if (st->workers[i].gen == gen && st->workers[i].index == index)
			return &st->workers[i];
	}
	if (!add)
		return NULL;
	if (st->nworkers == st->capworkers) {
		size_t cap = st->capworkers ? st->capworkers * 2 : 8;
		if ((w = realloc(st->workers, cap * sizeof(*w))) == NULL)
			return NULL;
		st->workers = w;
		st->capworkers = cap;
	}
	w = &st->workers[st->nworkers++];
	memset(w, 0, sizeof(*w));
	w->gen = gen;
	w->index = index;
	return w;
}

static void
status_stats_add(struct channel_stats *to, const struct channel_stats *from)
{
	uint64_t       *t = (uint64_t *)to;
	const uint64_t *f = (const uint64_t *)from;

	_Static_assert(sizeof(*to) % sizeof(uint64_t) == 0, "channel_stats holds uint64_t only");
	for (size_t i = 0; i < sizeof(*to) / sizeof(uint64_t); i++)
		t[i] += f[i];
}

void
status_stats_report(struct master *m, const struct worker_slot *s, const void *payload)
{
	struct status_worker *w;

	if (m->status == NULL ||
	    (w = status_worker_find(m->status, s->gen, s->index, true)) == NULL)
		return;
	memcpy(&w->last, payload, sizeof(w->last));
	w->pid = s->pid;
}

/* True when a live slot of generation gen has pool index index. */
static const struct worker_slot *
status_live_slot(const struct master *m, unsigned gen, int index)
{
	for (int i = 0; i < m->nslots; i++) {
		const struct worker_slot *s = &m->slots[i];
		if (slot_alive(s) && s->gen == gen && s->index == index)
			return s;
	}
	return NULL;
}

void
status_worker_gone(struct master *m, const struct worker_slot *s)
{
	struct status_state  *st = m->status;
	struct status_worker *w;

	if (st == NULL || (w = status_worker_find(st, s->gen, s->index, false)) == NULL)
		return;
	status_stats_add(&w->base, &w->last);
	memset(&w->last, 0, sizeof(w->last));
	/* an old generation's entry goes with its worker (s is not reaped yet) */
	if (s->gen != m->gen)
		*w = st->workers[--st->nworkers];
}

void
status_prune(struct master *m)
{
	struct status_state *st = m->status;

	if (st == NULL)
		return;
	/*
	 * A worker that died while its respawn waited for the back-off has no
	 * slot of its generation any more (the respawn joins the new one):
	 * without this its entry would stay, unseen, one per such reload.
	 */
	for (size_t i = 0; i < st->nworkers;) {
		struct status_worker *w = &st->workers[i];

		if (w->gen != m->gen && status_live_slot(m, w->gen, w->index) == NULL)
			*w = st->workers[--st->nworkers];
		else
			i++;
	}
}

/*
 * The series to report: every entry of the current generation, and of an
 * older one while its worker lives; live workers without an entry yet
 * (no report so far) with zeros.  *n of them, in a new array (NULL: none
 * or out of memory).
 */
static struct status_view *
status_views(const struct master *m, size_t *n)
{
	const struct status_state *st = m->status;
	struct status_view        *v = calloc(st->nworkers + (size_t)m->nslots + 1, sizeof(*v));

	*n = 0;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < st->nworkers; i++) {
		const struct status_worker *w = &st->workers[i];
		const struct worker_slot   *s = status_live_slot(m, w->gen, w->index);

		if (s == NULL && w->gen != m->gen)
			continue;
		v[*n] = (struct status_view){ w->gen, w->index, s ? s->pid : w->pid, s, w->base };
		status_stats_add(&v[*n].tot, &w->last);
		(*n)++;
	}
	for (int i = 0; i < m->nslots; i++) {
		const struct worker_slot *s = &m->slots[i];
		size_t                    j;

		for (j = 0; j < *n && (v[j].slot != s); j++)
			;
		if (!slot_alive(s) || j < *n)
			continue;
		memset(&v[*n], 0, sizeof(v[*n]));
		v[*n].gen = s->gen;
		v[*n].index = s->index;
		v[*n].pid = s->pid;
		v[(*n)++].slot = s;
	}
	return v;
}

static uint64_t
status_requests_sum(const struct channel_stats *c)
{
	uint64_t n = 0;

	for (int i = 0; i < CHANNEL_STATS_COMMANDS; i++)
		for (int j = 0; j < CHANNEL_STATS_STATUSES; j++)
			n += c->requests[i][j];
	return n;
}

static uint64_t
status_sent_sum(const struct channel_stats *c)
{
	return c->sent[0] + c->sent[1] + c->sent[2];
}

static uint64_t
status_refused(void)
{
	return tally_total(TALLY_DENIED) + tally_total(TALLY_OVER_CAP) +
	    tally_total(TALLY_UNTRUSTED);
}

/* -- texts ----------------------------------------------------------------------- */

static void __attribute__((format(printf, 2, 3)))
status_printf(struct status_text *t, const char *fmt, ...)
{
	va_list ap;
	int     n;

	for (int tries = 0; tries < 2 && !t->failed; tries++) {
		va_start(ap, fmt);
		n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if (t->p != NULL && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 > t->len + (size_t)n + 1 ? t->cap * 2 : t->len + (size_t)n + 4096;
		char  *p = realloc(t->p, cap);
		if (p == NULL) {
			t->failed = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
}

static void
status_family(struct status_text *t, const char *name, const char *type, const char *help)
{
	status_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The master's own series. */
static void
status_metrics_master(const struct master *m, struct status_text *t)
{
	const struct status_state *st = m->status;
	static const enum tally_kind refusals[] = { TALLY_DENIED, TALLY_OVER_CAP, TALLY_UNTRUSTED };

	status_family(t, "hftpd_build_info", "gauge", "The version of hftpd serving (always 1).");
	status_printf(t, "hftpd_build_info{version=\"%s\"} 1\n", HFTPD_VERSION);
	status_family(t, "hftpd_start_time_seconds", "gauge",
	    "When the master started, in seconds since the Unix epoch.");
	status_printf(t, "hftpd_start_time_seconds %lld\n", (long long)st->started);
	status_family(t, "hftpd_uptime_seconds", "gauge", "Seconds since the master started.");
	status_printf(t, "hftpd_uptime_seconds %.3f\n",
	    (double)(clock_now_ms() - st->started_ms) / 1000.0);
	status_family(t, "hftpd_accepted_total", "counter",
	    "Connections the master accepted on the HFTP listeners.");
	status_printf(t, "hftpd_accepted_total %" PRIu64 "\n", st->events[STATUS_ACCEPTED]);
	status_family(t, "hftpd_refused_total", "counter",
	    "Connections the master reset unanswered at accept, by reason.");
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		status_printf(t, "hftpd_refused_total{reason=\"%s\"} %" PRIu64 "\n",
		    channel_stats_close_name((unsigned)refusals[i]), tally_total(refusals[i]));
	status_family(t, "hftpd_accept_pauses_total", "counter",
	    "Times accept failed (EMFILE and the like) and accepting paused.");
	status_printf(t, "hftpd_accept_pauses_total %" PRIu64 "\n", st->events[STATUS_ACCEPT_PAUSE]);
	status_family(t, "hftpd_reloads_total", "counter", "Configuration reloads that took effect.");
	status_printf(t, "hftpd_reloads_total %" PRIu64 "\n", st->events[STATUS_RELOAD]);
	status_family(t, "hftpd_worker_restarts_total", "counter",
	    "Workers that died unasked and were replaced.");
	status_printf(t, "hftpd_worker_restarts_total %" PRIu64 "\n",
	    st->events[STATUS_WORKER_RESTART]);
}

#define STATUS_LABELS "worker=\"%d\",generation=\"%u\""

/* Per worker: a gauge or counter of one number each. */
static void
status_metrics_simple(struct status_text *t, const struct status_view *v, size_t n)
{
	status_family(t, "hftpd_worker_info", "gauge", "A worker process: its pid (always 1).");
	for (size_t i = 0; i < n; i++)
		status_printf(t, "hftpd_worker_info{" STATUS_LABELS ",pid=\"%ld\"} 1\n",
		    v[i].index, v[i].gen, (long)v[i].pid);
	status_family(t, "hftpd_connections_open", "gauge", "Connections a worker holds open.");
	for (size_t i = 0; i < n; i++)
		status_printf(t, "hftpd_connections_open{" STATUS_LABELS "} %u\n", v[i].index,
		    v[i].gen, v[i].slot ? v[i].slot->open : 0);
	status_family(t, "hftpd_connections_capacity", "gauge",
	    "Connections a worker can hold (its open-file limit allowing).");
	for (size_t i = 0; i < n; i++)
		status_printf(t, "hftpd_connections_capacity{" STATUS_LABELS "} %u\n", v[i].index,
		    v[i].gen, v[i].slot ? v[i].slot->capacity : 0);
	status_family(t, "hftpd_connections_received_total", "counter",
	    "Connections handed to a worker.");
	for (size_t i = 0; i < n; i++)
		status_printf(t, "hftpd_connections_received_total{" STATUS_LABELS "} %" PRIu64 "\n",
		    v[i].index, v[i].gen, v[i].tot.received);
	status_family(t, "hftpd_access_log_lost_lines_total", "counter",
	    "Access-log lines a worker could not write and dropped.");
	for (size_t i = 0; i < n; i++)
		status_printf(t, "hftpd_access_log_lost_lines_total{" STATUS_LABELS "} %" PRIu64 "\n",
		    v[i].index, v[i].gen, v[i].tot.log_lost);
}

/* Per worker, by a second label: closes by reason, bytes by framing. */
static void
status_metrics_split(struct status_text *t, const struct status_view *v, size_t n)
{
	status_family(t, "hftpd_connections_closed_total", "counter",
	    "Connections a worker closed by a deadline, to make room, or refused, by reason.");
	for (size_t i = 0; i < n; i++)
		for (unsigned k = 0; k < CHANNEL_STATS_CLOSES; k++)
			status_printf(t, "hftpd_connections_closed_total{" STATUS_LABELS
			    ",reason=\"%s\"} %" PRIu64 "\n", v[i].index, v[i].gen,
			    channel_stats_close_name(k), v[i].tot.closed[k]);
	status_family(t, "hftpd_sent_bytes_total", "counter",
	    "Bytes a worker wrote to client sockets, by the framing of the body they belong to.");
	for (size_t i = 0; i < n; i++)
		for (unsigned k = 0; k < CHANNEL_STATS_FRAMINGS; k++)
			status_printf(t, "hftpd_sent_bytes_total{" STATUS_LABELS
			    ",framing=\"%s\"} %" PRIu64 "\n", v[i].index, v[i].gen,
			    channel_stats_framing_name(k), v[i].tot.sent[k]);
}

/* Requests by command and status: every command's "0", and every other cell seen. */
static void
status_metrics_requests(struct status_text *t, const struct status_view *v, size_t n)
{
	status_family(t, "hftpd_requests_total", "counter",
	    "Requests a worker answered, by command and status code.");
	for (size_t i = 0; i < n; i++)
		for (unsigned c = 0; c < CHANNEL_STATS_COMMANDS; c++)
			for (unsigned k = 0; k < CHANNEL_STATS_STATUSES; k++) {
				if (k != 0 && v[i].tot.requests[c][k] == 0)
					continue;
				status_printf(t, "hftpd_requests_total{" STATUS_LABELS
				    ",command=\"%s\",status=\"%d\"} %" PRIu64 "\n", v[i].index,
				    v[i].gen, channel_stats_command_name(c),
				    channel_stats_status_code(k), v[i].tot.requests[c][k]);
			}
}

static void
status_metrics(const struct master *m, struct status_text *t)
{
	struct status_view *v;
	size_t              n;

	status_metrics_master(m, t);
	if ((v = status_views(m, &n)) == NULL) {
		t->failed = true;
		return;
	}
	status_metrics_simple(t, v, n);
	status_metrics_split(t, v, n);
	status_metrics_requests(t, v, n);
	free(v);
}

static const char *
status_slot_state(const struct worker_slot *s)
{
	switch (s->state) {
	case SLOT_STARTING: return "starting";
	case SLOT_READY:    return "ready";
	case SLOT_DRAINING: return "draining";
	default:            return "stopping";
	}
}

static void
status_json(const struct master *m, struct status_text *t)
{
	static const char *const phases[] = { "running", "draining", "stopping" };
	/* a graceful stop's grace: still serving, already announced as draining */
	const char *state = m->phase == MASTER_RUNNING && m->grace_end_ms != 0 ?
	    "grace" : phases[m->phase];
	const struct status_state *st = m->status;
	struct status_view        *v;
	size_t                     n;

	status_printf(t, "{\"version\":\"%s\",\"pid\":%ld,\"generation\":%u,\"state\":\"%s\","
	    "\"uptime_seconds\":%" PRIu64 ",\"accepted\":%" PRIu64 ",\"refused\":%" PRIu64
	    ",\"reloads\":%" PRIu64 ",\"worker_restarts\":%" PRIu64 ",\"workers\":[",
	    HFTPD_VERSION, (long)getpid(), m->gen, state,
	    (clock_now_ms() - st->started_ms) / 1000, st->events[STATUS_ACCEPTED],
	    status_refused(), st->events[STATUS_RELOAD], st->events[STATUS_WORKER_RESTART]);
	if ((v = status_views(m, &n)) == NULL)
		n = 0;
	for (size_t i = 0, k = 0; i < n; i++) {
		if (v[i].slot == NULL)
			continue;   /* no worker alive for it now */
		status_printf(t, "%s{\"slot\":%d,\"pid\":%ld,\"generation\":%u,\"state\":\"%s\","
		    "\"clients\":%u,\"capacity\":%u,\"requests\":%" PRIu64 ",\"sent_bytes\":%"
		    PRIu64 "}", k++ ? "," : "", v[i].index, (long)v[i].slot->pid, v[i].gen,
		    status_slot_state(v[i].slot), v[i].slot->open, v[i].slot->capacity,
		    status_requests_sum(&v[i].tot), status_sent_sum(&v[i].tot));
	}
	free(v);
	status_printf(t, "]}\n");
}

/* -- HTTP ---------------------------------------------------------------------- */

/* The answer to a parsed request: code, content type, body (made into body). */
static int
status_answer_body(const struct master *m, enum statushttp_result r,
    const struct statushttp_request *req, const char **type, struct status_text *body)
{
	*type = "text/plain; charset=utf-8";
	if (r == STATUSHTTP_TOO_BIG) {
		status_printf(body, "request head too large\n");
		return 431;
	}
	if (r != STATUSHTTP_DONE) {
		status_printf(body, "bad request\n");
		return 400;
	}
	if (req->method == STATUSHTTP_OTHER) {
		status_printf(body, "only GET and HEAD\n");
		return 405;
	}
	switch (req->target) {
	case STATUSHTTP_METRICS:
		*type = "text/plain; version=0.0.4; charset=utf-8";
		status_metrics(m, body);
		return 200;
	case STATUSHTTP_STATUS:
		*type = "application/json";
		status_json(m, body);
		return 200;
	case STATUSHTTP_HEALTH:
		/* 503 from a graceful stop's first moment, its grace included */
		if (m->phase != MASTER_RUNNING || m->grace_end_ms != 0) {
			status_printf(body, "draining\n");
			return 503;
		}
		status_printf(body, "ok\n");
		return 200;
	case STATUSHTTP_ROOT:
		*type = "text/html; charset=utf-8";
		status_printf(body, "%s", statuspage_html);
		return 200;
	case STATUSHTTP_UNKNOWN:
		break;
	}
	status_printf(body, "not found\n");
	return 404;
}

static const char *
status_reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default:  return "Error";
	}
}

/* Makes c's whole answer (head, and body unless HEAD); false when out of memory. */
static bool
status_answer(const struct master *m, struct status_conn *c, enum statushttp_result r,
    const struct statushttp_request *req)
{
	struct status_text body = { 0 }, all = { 0 };
	const char        *type;
	int                code = status_answer_body(m, r, req, &type, &body);

	status_printf(&all, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n", code, status_reason(code),
	    type, body.len, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!(r == STATUSHTTP_DONE && req->method == STATUSHTTP_HEAD) && body.len > 0)
		status_printf(&all, "%.*s", (int)body.len, body.p);
	free(body.p);
	if (body.failed || all.failed) {
		free(all.p);
		return false;
	}
	c->out = all.p;
	c->outlen = all.len;
	c->outoff = 0;
	return true;
}

/* Reads what came; the answer is made once the request is whole or wrong. */
static bool
status_conn_read(const struct master *m, struct status_conn *c)
{
	struct statushttp_request req;
	enum statushttp_result    r;
	ssize_t                   n;

	n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		return false;
	if (n > 0)
		c->inlen += (size_t)n;
	r = statushttp_parse(c->in, c->inlen, &req);
	if (r == STATUSHTTP_MORE)
		return true;
	return status_answer(m, c, r, &req);
}

/* Sends what it can; false when done (or broken): the connection closes. */
static bool
status_conn_write(struct status_conn *c)
{
	ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

	if (n == -1)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	c->outoff += (size_t)n;
	return c->outoff < c->outlen;
}

/* Accepts what waits on a status listener; past the cap, closed at once. */
static void
status_accept(struct master *m, int lfd)
{
	struct status_state *st = m->status;
	int                  fd;

	for (int tries = 0; tries < STATUS_CONNS_MAX; tries++) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("status listener: accept");
			return;
		}
		if (st->nconns == STATUS_CONNS_MAX) {
			net_close_abortive(fd);
			continue;
		}
		memset(&st->conns[st->nconns], 0, sizeof(st->conns[0]));
		st->conns[st->nconns].fd = fd;
		st->conns[st->nconns].deadline_ms = clock_now_ms() + STATUS_DEADLINE_MS;
		st->nconns++;
	}
}

int
status_poll_fill(struct master *m, struct pollfd *pfd, int max)
{
	int n = 0;

	if (m->status == NULL)
		return 0;
	for (int i = 0; i < m->nlisteners && n < max; i++) {
		if (m->listeners[i].addr.status)
			pfd[n++] = (struct pollfd){ .fd = m->listeners[i].fd, .events = POLLIN };
	}
	for (int i = 0; i < m->status->nconns && n < max; i++)
		pfd[n++] = (struct pollfd){ .fd = m->status->conns[i].fd,
		    .events = m->status->conns[i].out ? POLLOUT : POLLIN };
	return n;
}

/* One connection's events: false when it is to be closed. */
static bool
status_conn_events(const struct master *m, struct status_conn *c, short ev)
{
	if (c->out == NULL && (ev & (POLLIN | POLLHUP | POLLERR)) && !status_conn_read(m, c))
		return false;
	if (c->out != NULL && (ev & (POLLOUT | POLLHUP | POLLERR)) && !status_conn_write(c))
		return false;
	return clock_now_ms() < c->deadline_ms;
}

void
status_poll_events(struct master *m, const struct pollfd *pfd, int n)
{
	struct status_state *st = m->status;

	if (st == NULL)
		return;
	/* connections first (by descriptor: closing one moves another), then accepts */
	for (int i = 0; i < n; i++) {
		int j;

		for (j = 0; j < st->nconns && st->conns[j].fd != pfd[i].fd; j++)
			;
		if (j < st->nconns && pfd[i].revents != 0 &&
		    !status_conn_events(m, &st->conns[j], pfd[i].revents))
			status_conn_close(st, j);
	}
	for (int j = st->nconns - 1; j >= 0; j--) {
		if (clock_now_ms() >= st->conns[j].deadline_ms)
			status_conn_close(st, j);   /* silent or slow: the deadline is firm */
	}
	for (int i = 0; i < n; i++) {
		if ((pfd[i].revents & POLLIN) && pfd[i].events == POLLIN) {
			for (int l = 0; l < m->nlisteners; l++)
				if (m->listeners[l].addr.status && m->listeners[l].fd == pfd[i].fd)
					status_accept(m, pfd[i].fd);
		}
	}
}

bool
status_busy(const struct master *m)
{
	return m->status != NULL && m->status->nconns > 0;
}
