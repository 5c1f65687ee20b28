/*
 * worker.c — a worker process: one poll loop over its channel to the master
 * and at most clients_per_worker client sockets.  Clients arrive as
 * descriptors on the channel (CONN); the worker reports its load back (LOAD)
 * so the master can pick the least-loaded worker and pause accepting when
 * every worker is full.  DRAIN finishes the clients and exits; STOP exits now.
 *
 * poll() costs the kernel a visit to every descriptor in the set, idle or
 * not (about half a microsecond each here), so thousands of idle clients
 * would tax every turn of the busy few.  The poll set is therefore split:
 * hot clients (active in the last seconds, or owed bytes) are polled every
 * turn; cold ones (quiet for WORKER_COLD_AFTER seconds) only in a full scan,
 * which runs whenever no client is hot and otherwise at most every
 * WORKER_SCAN_SHARE times its own measured cost, so scanning the cold ones
 * takes a bounded share of the worker's time.  A cold client that wakes up
 * under load waits at most that interval (WORKER_SCAN_MAX_MS) to be seen.
 * A worker never spins: with nothing to do it sleeps in poll (over every
 * client once a turn found nothing) until a client or its next deadline
 * (the once-a-second sweep, a load report, a limit_rate wake) needs it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "channel.h"
#include "client.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "net.h"
#include "proctitle.h"
#include "room.h"
#include "stats.h"
#include "tally.h"
#include "worker.h"

/* Free buffer blocks each pool keeps for reuse. */
#define WORKER_POOL_MAX 64
/* See the header comment: the hot/cold split of the poll set. */
#define WORKER_COLD_AFTER    2          /* seconds quiet before going cold */
#define WORKER_SCAN_SHARE    32         /* full scan every 32 x its cost */
#define WORKER_SCAN_MIN_MS   1
#define WORKER_SCAN_MAX_MS   100

/* See worker_report_load(). */
#define WORKER_LOAD_MS       10
#define WORKER_LOAD_MARGIN(w) (2 + (uint64_t)(w)->maxclients / 8)

static volatile sig_atomic_t worker_got_term;

static void
worker_on_signal(int sig)
{
	(void)sig;
	worker_got_term = 1;
}

static void
worker_clock(struct worker *w)
{
	w->now_ns = clock_now_ns();
	w->ctx.now_ns = w->now_ns;
	w->ctx.now_ms = w->now_ns / CLOCK_NS_PER_MS;
}

/* Puts the client at slot from into slot to (its old place is left as is). */
static void
worker_move(struct worker *w, int from, int to)
{
	if (from == to)
		return;
	w->clients[to] = w->clients[from];
	w->pfd[to] = w->pfd[from];
	w->clients[to]->slot = to;
}

static void
worker_swap(struct worker *w, int i, int j)
{
	struct client *c = w->clients[i];
	struct pollfd  p = w->pfd[i];

	worker_move(w, j, i);
	w->clients[j] = c;
	w->pfd[j] = p;
	c->slot = j;
}

/*
 * Connection id is closed: the master, which counts connections per
 * address across workers, hears of it with the next CLOSED batch.
 */
static void
worker_note_closed(struct worker *w, uint64_t id)
{
	if (w->ctx.conf->max_clients_per_address == 0)
		return;
	if (w->nclosed == w->closed_cap) {
		size_t    cap = w->closed_cap ? w->closed_cap * 2 : 64;
		uint64_t *ids = realloc(w->closed_ids, cap * sizeof(*ids));

		if (ids == NULL) {
			/* the master counts this one open until the worker exits */
			if (!w->closed_lost)
				log_warnx("out of memory: closes not reported to the master");
			w->closed_lost = true;
			return;
		}
		w->closed_ids = ids;
		w->closed_cap = cap;
	}
	w->closed_ids[w->nclosed++] = id;
}

/*
 * Sends the ids noted closed, CHANNEL_CLOSED_IDS a message, at the LOAD
 * cadence: at once when a message is full, else after WORKER_LOAD_MS.  A
 * full channel keeps them for the next turn.
 */
static void
worker_report_closed(struct worker *w)
{
	struct channel_closed msg;
	size_t                done = 0;

	if (w->nclosed == 0 || (w->nclosed < CHANNEL_CLOSED_IDS &&
	    w->now_ns - w->closed_sent_ns < WORKER_LOAD_MS * CLOCK_NS_PER_MS))
		return;
	while (done < w->nclosed) {
		memset(&msg, 0, sizeof(msg));
		msg.n = (uint32_t)(w->nclosed - done < CHANNEL_CLOSED_IDS ?
		    w->nclosed - done : CHANNEL_CLOSED_IDS);
		memcpy(msg.id, w->closed_ids + done, msg.n * sizeof(msg.id[0]));
		if (channel_send(w->ctx.chan, CHANNEL_CLOSED, w->ctx.gen, &msg, sizeof(msg), -1) == -1) {
			if (errno != EAGAIN)
				log_warn("channel: send CLOSED");
			break;
		}
		done += msg.n;
	}
	memmove(w->closed_ids, w->closed_ids + done, (w->nclosed - done) * sizeof(*w->closed_ids));
	w->nclosed -= done;
	w->closed_sent_ns = w->now_ns;
}

/*
 * Removes the client at slot i: the last hot client fills a hole among the
 * hot ones, the last client the hole that leaves.  Only clients from slots
 * above i move, so a walk from the top down visits each client once.
 */
static void
worker_remove_client(struct worker *w, int i)
{
	struct client *c = w->clients[i];

	log_debug("client %" PRIu64 ": closed", c->id);
	worker_note_closed(w, c->id);
	client_free(c);
	if (i <= w->nhot) {
		worker_move(w, w->nhot, i);
		i = w->nhot--;
	}
	worker_move(w, w->nclients, i);
	w->clients[w->nclients] = NULL;
	memset(&w->pfd[w->nclients], 0, sizeof(w->pfd[0]));
	w->nclients--;
	w->unreported_closes++;
}

/* Makes room for one more client when full; false when there is none to be had. */
static bool
worker_make_room(struct worker *w, uint64_t id)
{
	int victim;

	if (w->nclients < w->maxclients)
		return true;
	if ((victim = room_victim(w->clients, w->nclients)) == 0)
		return false;
	log_debug("client %" PRIu64 ": closing client %" PRIu64 " to make room",
	    id, w->clients[victim]->id);
	client_abort(w->clients[victim], TALLY_ROOM);
	worker_remove_client(w, victim);
	if (w->evictable > 0)
		w->evictable--;
	return true;
}

/* A slot is free: fd becomes a client, served at once. */
static void
worker_take(struct worker *w, int fd, uint64_t id, bool proxy)
{
	struct client *c;

	w->no_slot = false;
	if ((c = client_new(&w->ctx, fd, id, proxy)) == NULL) {
		log_warnx("client %" PRIu64 ": out of memory; closing", id);
		close(fd);
		w->unreported_closes++;
		worker_note_closed(w, id);
		return;
	}
	/* New clients start hot: the first cold one makes room at the end. */
	w->nclients++;
	worker_move(w, w->nhot + 1, w->nclients);
	c->slot = ++w->nhot;
	w->clients[c->slot] = c;
	w->pfd[c->slot].fd = fd;
	w->pfd[c->slot].events = POLLIN;
	w->pfd[c->slot].revents = 0;
	log_debug("client %" PRIu64 ": accepted, %d open", id, w->nclients);
	/*
	 * Its first request has usually arrived by now (clients write right
	 * after connecting): serve it in this turn rather than the next.
	 */
	client_turn(c, POLLIN);
	if (c->state == CLIENT_CLOSED)
		worker_remove_client(w, c->slot);
}

/*
 * Waiting clients take the slots that free up, first come first; with
 * make_room (an O(clients) search, so only from the sweep) also the
 * evictable clients' slots.
 */
static void
worker_admit_waiting(struct worker *w, bool make_room)
{
	struct room_waiting first;

	while (w->waiting.n > 0 && (w->nclients < w->maxclients ||
	    (make_room && worker_make_room(w, w->waiting.entry[0].id))) &&
	    room_next(&w->waiting, &first))
		worker_take(w, first.fd, first.id, first.proxy);
}

static void
worker_add_client(struct worker *w, int fd, uint64_t id, bool proxy)
{
	w->received++;
	stats_received();
	if (fd == -1) {
		/* The kernel dropped the descriptor: our limit.  Counted, not served. */
		if (!w->fd_lost)
			log_warnx("client %" PRIu64 ": descriptor lost in the hand-off "
			    "(open file limit reached?); such losses are logged once", id);
		w->fd_lost = true;
		w->unreported_closes++;
		worker_note_closed(w, id);
		return;
	}
	w->fd_lost = false;
	if (w->waiting.n == 0 && !w->draining && worker_make_room(w, id)) {
		worker_take(w, fd, id, proxy);
		return;
	}
	if (!w->draining && room_wait(&w->waiting, fd, id, proxy) == 0)
		return;
	/*
	 * The master's books are wrong by more than the waiting room holds.
	 * Logged once per episode: an attacker could make it repeat.
	 */
	if (!w->no_slot)
		log_warnx("client %" PRIu64 ": no free slot (%d open, %d waiting); closing "
		    "(logged once until a client is taken again)", id, w->nclients, w->waiting.n);
	w->no_slot = true;
	net_close_abortive(fd);
	w->unreported_closes++;
	worker_note_closed(w, id);
}

/* Cold clients that had events in a full scan become hot. */
static void
worker_promote(struct worker *w)
{
	for (int i = w->nhot + 1; i <= w->nclients; i++) {
		if (w->pfd[i].revents == 0)
			continue;
		w->pfd[i].revents = 0;
		worker_swap(w, i, ++w->nhot);
	}
}

/*
 * Hot clients with no bytes either way for WORKER_COLD_AFTER seconds become
 * cold, owed bytes or not: a client that does not read what it is owed
 * waits in the full scan like an idle one.
 */
static void
worker_demote(struct worker *w)
{
	for (int i = w->nhot; i >= 1; i--) {
		if (client_stalled(w->clients[i], WORKER_COLD_AFTER))
			worker_swap(w, i, w->nhot--);
	}
}

/*
 * Milliseconds poll may sleep: until the next once-a-second sweep, or
 * sooner for a load report waiting (WORKER_LOAD_MS) or a throttled
 * client's wake (limit_rate, the earliest in wake, UINT64_MAX: none).
 * Nothing else needs the worker: its clients' deadlines are all checked
 * by the sweep.
 */
static int
worker_timeout(const struct worker *w, uint64_t wake)
{
	uint64_t now = w->ctx.now_ms, timeout;

	timeout = CLOCK_MS_PER_SEC - now % CLOCK_MS_PER_SEC;
	if (timeout > WORKER_LOAD_MS && (w->unreported_closes > 0 || w->nclosed > 0 ||
	    w->received != w->reported_received))
		timeout = WORKER_LOAD_MS;
	if (wake != UINT64_MAX && timeout > wake - now)
		timeout = wake - now;
	return (int)timeout;
}

/* The next full scan: WORKER_SCAN_SHARE times its measured cost, within bounds. */
static void
worker_next_scan(struct worker *w)
{
	uint64_t interval = w->scan_ns * WORKER_SCAN_SHARE;

	if (interval < WORKER_SCAN_MIN_MS * CLOCK_NS_PER_MS)
		interval = WORKER_SCAN_MIN_MS * CLOCK_NS_PER_MS;
	if (interval > WORKER_SCAN_MAX_MS * CLOCK_NS_PER_MS)
		interval = WORKER_SCAN_MAX_MS * CLOCK_NS_PER_MS;
	w->next_scan_ns = w->now_ns + interval;
}

/*
 * Polls the hot clients, or everyone when a full scan is due; returns
 * poll's result and sets *npolled to the clients it covered.  A full scan
 * is only for cold clients: with none, the hot set is everyone.  While the
 * hot clients keep the worker busy, a full scan is a measured poll(0)
 * between their turns; once a turn found nothing to do (the worker went
 * quiet), the full scan is where it sleeps, until a client (hot or cold)
 * or the next deadline (worker_timeout) needs it.  So an idle worker, or
 * one with a client that asks once a second, wakes only when needed.
 */
static int
worker_poll(struct worker *w, int *npolled)
{
	bool     cold = w->nclients > w->nhot;
	bool     full = cold && (w->nhot == 0 || w->now_ns >= w->next_scan_ns);
	bool     measured = full && w->nhot > 0 && !w->quiet;
	uint64_t start = 0, wake = UINT64_MAX, until_scan;
	int      n, timeout;

	*npolled = full ? w->nclients : w->nhot;
	for (int i = 1; i <= *npolled; i++) {
		w->pfd[i].events = client_events(w->clients[i]);
		/* limit_rate: a throttled client (hot: it sends every turn it may) */
		if (w->clients[i]->wake_ms > w->ctx.now_ms && w->clients[i]->wake_ms < wake)
			wake = w->clients[i]->wake_ms;
	}
	timeout = worker_timeout(w, wake);
	if (measured) {
		timeout = 0;    /* a measured scan; the hot turns do the waiting */
		worker_clock(w);
		start = w->now_ns;
	} else if (cold && !full) {
		until_scan = (w->next_scan_ns - w->now_ns + CLOCK_NS_PER_MS - 1) / CLOCK_NS_PER_MS;
		if ((uint64_t)timeout > until_scan)
			timeout = (int)until_scan;
	}
	n = poll(w->pfd, (nfds_t)*npolled + 1, timeout);
	worker_clock(w);
	if (measured)
		w->scan_ns = (w->scan_ns * 3 + (w->now_ns - start)) / 4;
	if (full)
		worker_next_scan(w);
	w->quiet = n == 0;
	return n;
}

/*
 * The master counts the descriptors it sends, so a new client needs no
 * report; a closed one does, or the master goes on counting its slot as
 * taken.  Counting too many is safe (never more clients than slots) but can
 * make the master pause accepting, so closes are reported at once when the
 * master may think this worker nearly full, and otherwise at most every
 * WORKER_LOAD_MS: one message for many connections.
 */
static void
worker_report_load(struct worker *w)
{
	struct channel_load load = {
		.received = w->received,
		.open = (uint32_t)(w->nclients + w->waiting.n),
		.capacity = (uint32_t)w->maxclients,
		.evictable = w->evictable,
	};
	uint64_t            believed = (uint64_t)w->nclients + (uint64_t)w->waiting.n +
	    w->unreported_closes;

	/*
	 * Receipts are reported too (batched the same way): the master takes
	 * a worker that leaves clients unreceived for long (stopped, stuck)
	 * out of the hand-off.
	 */
	if (w->unreported_closes == 0 && !w->load_changed && w->received == w->reported_received)
		return;
	if (!w->load_changed && believed + WORKER_LOAD_MARGIN(w) < (uint64_t)w->maxclients &&
	    w->now_ns - w->reported_ns < WORKER_LOAD_MS * CLOCK_NS_PER_MS)
		return;
	if (channel_send(w->ctx.chan, CHANNEL_LOAD, w->ctx.gen, &load, sizeof(load), -1) == 0) {
		w->unreported_closes = 0;
		w->load_changed = false;
		w->reported_received = w->received;
		w->reported_ns = w->now_ns;
	} else if (errno != EAGAIN)
		log_warn("channel: send LOAD");
}

/* When nearly full, how many clients could be closed to make room (told the master). */
static void
worker_count_evictable(struct worker *w)
{
	uint32_t n = 0;

	if ((uint64_t)w->nclients + WORKER_LOAD_MARGIN(w) >= (uint64_t)w->maxclients)
		n = room_evictable(w->clients, w->nclients);
	if (n != w->evictable)
		w->load_changed = true;
	w->evictable = n;
}

/*
 * Clients this worker can hold: clients_per_worker, or fewer when its open
 * file limit cannot give each its socket and a file (a descriptor the
 * kernel cannot hand over is lost, and the client with it).
 */
static int
worker_capacity(const struct config *conf)
{
	struct rlimit rl;
	uint64_t      nofile = CONFIG_NOFILE_UNLIMITED;
	int           cap;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		nofile = (uint64_t)rl.rlim_cur;
	cap = config_capacity(conf, nofile);
	if (cap < conf->clients_per_worker)
		log_warnx("open file limit %llu holds %d clients, not clients_per_worker = %d",
		    (unsigned long long)nofile, cap, conf->clients_per_worker);
	return cap;
}

/*
 * The master counted connection id's PROXY address over
 * max_clients_per_address: it is reset, tallied, not logged alone.  A
 * linear search, but only for connections refused so.
 */
static void
worker_drop(struct worker *w, uint64_t id)
{
	for (int i = 1; i <= w->nclients; i++) {
		if (w->clients[i]->id == id) {
			client_abort(w->clients[i], TALLY_OVER_CAP);
			worker_remove_client(w, i);
			return;
		}
	}
}

/* REOPEN: fd replaces the error or the access log (both take it over). */
static void
worker_reopen(const unsigned char *payload, int fd)
{
	struct channel_reopen r;

	memcpy(&r, payload, sizeof(r));
	if (fd == -1) {
		/* the kernel dropped it: our open file limit */
		log_warnx("channel: REOPEN's descriptor lost (open file limit reached?); "
		    "writing the old %s log", r.log == CHANNEL_LOG_ERROR ? "error" : "access");
		return;
	}
	if (r.log == CHANNEL_LOG_ERROR)
		log_reopen_fd(fd);
	else if (r.log == CHANNEL_LOG_ACCESS)
		access_reopen(fd);
	else {
		log_warnx("channel: REOPEN of unknown log %u dropped", r.log);
		close(fd);
	}
}

/* A CONNS: each connection with its descriptor (-1: lost, still counted). */
static void
worker_add_clients(struct worker *w, const unsigned char *payload, const int *fds)
{
	struct channel_conns cs;

	memcpy(&cs, payload, offsetof(struct channel_conns, conn));
	memcpy(cs.conn, payload + offsetof(struct channel_conns, conn),
	    (size_t)cs.n * sizeof(cs.conn[0]));
	for (uint32_t i = 0; i < cs.n; i++)
		worker_add_client(w, fds[i], cs.conn[i].id,
		    (cs.conn[i].flags & CHANNEL_CONN_PROXY) != 0);
}

/* Handles every message waiting on the channel; -1 when the master is gone. */
static int
worker_channel_read(struct worker *w)
{
	struct channel_hdr hdr;
	unsigned char      payload[CHANNEL_RECV_MAX];
	int                fds[CHANNEL_CONNS_MAX], fd, r;

	for (;;) {
		r = channel_recv_fds(w->ctx.chan, &hdr, payload, sizeof(payload), fds);
		fd = fds[0];
		if (r == 0)
			return -1;
		if (r == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EBADMSG) {
				log_warnx("channel: malformed message dropped");
				continue;
			}
			log_warn("channel: recv");
			return -1;
		}
		switch (hdr.type) {
		case CHANNEL_CONN: {
			struct channel_conn conn;
			memcpy(&conn, payload, sizeof(conn));
			worker_add_client(w, fd, conn.id, (conn.flags & CHANNEL_CONN_PROXY) != 0);
			break;
		}
		case CHANNEL_CONNS:
			worker_add_clients(w, payload, fds);
			break;
		case CHANNEL_DROP: {
			struct channel_drop drop;
			memcpy(&drop, payload, sizeof(drop));
			worker_drop(w, drop.id);
			break;
		}
		case CHANNEL_DRAIN:
			log_info("draining: %d clients left", w->nclients);
			proctitle_set("hftpd: worker process (gen %u, draining)", w->ctx.gen);
			w->draining = true;
			stats_report(w->ctx.chan, w->ctx.gen, true);
			break;
		case CHANNEL_STOP:
			w->stopping = true;
			break;
		case CHANNEL_REOPEN:
			worker_reopen(payload, fd);
			break;
		default:
			log_warnx("channel: unexpected %s message dropped", channel_type_name(hdr.type));
			if (fd != -1)
				close(fd);
			break;
		}
	}
}

static int
worker_setup(struct worker *w, const struct config *conf, unsigned gen, int chan,
    int access_fd)
{
	memset(w, 0, sizeof(*w));
	tally_reset();      /* the master's counts are not this worker's */
	stats_reset();
	w->ctx.files.dirfd = -1;
	w->ctx.conf = conf;
	w->ctx.gen = gen;
	w->ctx.chan = chan;
	w->maxclients = worker_capacity(conf);
	w->load_changed = true;     /* the first report says what it can hold */
	worker_clock(w);
	w->pfd = calloc((size_t)w->maxclients + 1, sizeof(*w->pfd));
	w->clients = calloc((size_t)w->maxclients + 1, sizeof(*w->clients));
	if (w->pfd == NULL || w->clients == NULL ||
	    buffer_pool_init(&w->ctx.in_pool, CLIENT_IN_CAP, WORKER_POOL_MAX) == -1 ||
	    buffer_pool_init(&w->ctx.out_pool, CLIENT_OUT_CAP, WORKER_POOL_MAX) == -1)
		return -1;
	access_open(access_fd, conf->access_log, conf->access_log_format);
	w->pfd[0].fd = chan;
	w->pfd[0].events = POLLIN;
	files_init(&w->ctx.files, conf->directory);
	if (conf->metadata_cache == METADATA_CACHE_INOTIFY)
		files_cache_start(&w->ctx.files);   /* logs and serves uncached if it cannot */
	return 0;
}

static void
worker_teardown(struct worker *w)
{
	struct room_waiting left;

	while (w->nclients > 0)
		worker_remove_client(w, w->nclients);
	while (room_next(&w->waiting, &left))
		close(left.fd);
	buffer_pool_free(&w->ctx.in_pool);
	buffer_pool_free(&w->ctx.out_pool);
	files_free(&w->ctx.files);
	access_close();
	free(w->clients);
	free(w->pfd);
	free(w->closed_ids);
	close(w->ctx.chan);
}

static void
worker_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = worker_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
}

/*
 * Test hook: a worker that dies at start, to exercise the master's
 * crash-loop back-off.  Only read when HFTPD_TEST_HOOKS=1 is also set.
 */
static void
worker_test_hook(void)
{
	const char *hooks = getenv("HFTPD_TEST_HOOKS"), *code = getenv("HFTPD_TEST_WORKER_EXIT");

	if (hooks != NULL && code != NULL && strcmp(hooks, "1") == 0)
		_exit(atoi(code));
}

/*
 * Once a second: clients past a deadline closed, quiet ones cooled, the
 * tally of closes logged when its interval is over, the counters sent to
 * the master when they changed.
 */
static void
worker_sweep(struct worker *w)
{
	for (int i = w->nclients; i >= 1; i--) {
		client_deadline_check(w->clients[i]);
		if (w->clients[i]->state == CLIENT_CLOSED)
			worker_remove_client(w, i);
	}
	worker_demote(w);
	worker_count_evictable(w);
	worker_admit_waiting(w, true);
	tally_flush(w->ctx.now_ms, 0);
	stats_report(w->ctx.chan, w->ctx.gen, false);
}

/* One poll turn: the clients with events, then the channel; 0, 1 when the master is gone, -1 on error. */
/*
 * Ready clients' bytes received first, then each answered: the answers
 * follow all of the turn's receives, so the metadata cache drains its
 * events once a turn, not once a client (files_sync).  At most
 * WORKER_POOL_MAX ahead: each may take an input block, and a turn where
 * thousands are ready (an attack) must not hold thousands of blocks at
 * once; the rest receive in their own turn, as before.
 */
static void
worker_receive_all(struct worker *w, int npolled, int n)
{
	int ahead = 0;

	for (int i = npolled; i >= 1 && n > 0 && ahead < WORKER_POOL_MAX; i--) {
		if (w->pfd[i].revents != 0) {
			client_receive(w->clients[i], w->pfd[i].revents);
			ahead++;
		}
	}
}

static int
worker_turn(struct worker *w)
{
	int n, npolled;

	n = worker_poll(w, &npolled);
	if (n == -1 && errno != EINTR) {
		log_warn("poll");
		return -1;
	}
	w->ctx.turn++;
	worker_receive_all(w, npolled, n);
	/*
	 * Walk down: removal only moves clients from above.  Cold clients
	 * keep their revents as a mark for worker_promote().
	 */
	for (int i = npolled; i >= 1 && n > 0; i--) {
		struct client *c = w->clients[i];
		short          revents = w->pfd[i].revents;

		if (revents == 0)
			continue;
		if (i <= w->nhot)
			w->pfd[i].revents = 0;
		if (c->state != CLIENT_CLOSED)
			client_turn(c, revents);
		if (c->state == CLIENT_CLOSED)
			worker_remove_client(w, i);
	}
	if (npolled > w->nhot)
		worker_promote(w);
	if (w->waiting.n > 0)
		worker_admit_waiting(w, false);
	/* The channel after the clients: new ones join the next turn. */
	if (n > 0 && w->pfd[0].revents && worker_channel_read(w) == -1) {
		log_info("master gone; exiting");
		return 1;
	}
	return 0;
}

/* At exit: what the tally holds yet, then the totals of the deadlines. */
static void
worker_exit_report(void)
{
	uint64_t idle = tally_total(TALLY_CLIENT_TIMEOUT), req = tally_total(TALLY_REQUEST_TIMEOUT);
	uint64_t snd = tally_total(TALLY_SEND_TIMEOUT), room = tally_total(TALLY_ROOM);

	tally_flush(clock_now_ms(), 1);
	if (idle + req + snd + room > 0)
		log_info("closed by deadlines: %" PRIu64 " client_timeout, %" PRIu64
		    " request_timeout, %" PRIu64 " send_timeout; %" PRIu64 " to make room",
		    idle, req, snd, room);
}

int
worker_main(const struct config *conf, unsigned gen, int chan, int access_fd)
{
	struct worker w;
	uint64_t      last_sweep_s;    /* the idle sweep runs once each second */
	int           rc = 1, r;

	log_set_role("worker", gen);
	worker_signals();
	worker_test_hook();
	if (worker_setup(&w, conf, gen, chan, access_fd) == -1) {
		log_warnx("out of memory at start");
		goto done;
	}
	if (channel_send(chan, CHANNEL_READY, gen, NULL, 0, -1) == -1)
		log_warn("channel: send READY");
	/* Right behind READY: what it can hold, before the first client comes. */
	worker_report_load(&w);
	log_debug("serving %s, up to %d clients", conf->directory, w.maxclients);
	last_sweep_s = w.ctx.now_ms / CLOCK_MS_PER_SEC;

	while (!w.stopping && !worker_got_term &&
	    !(w.draining && w.nclients == 0 && w.waiting.n == 0)) {
		if ((r = worker_turn(&w)) == -1)
			goto done;
		if (r == 1)
			break;
		if (w.ctx.now_ms / CLOCK_MS_PER_SEC != last_sweep_s) {
			last_sweep_s = w.ctx.now_ms / CLOCK_MS_PER_SEC;
			worker_sweep(&w);
		}
		worker_report_load(&w);
		worker_report_closed(&w);
		access_flush(false);
	}
	rc = 0;
done:
	worker_exit_report();
	access_flush(true);     /* lines it could not write count as lost */
	stats_report(w.ctx.chan, w.ctx.gen, true);
	worker_teardown(&w);
	log_close();
	return rc;
}
