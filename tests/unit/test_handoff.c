/*
 * test_handoff.c — unit tests for master/handoff.c without forking: a
 * struct master whose worker slots' channels are one end of a socketpair,
 * the test holding the other end as the "worker".  Least-loaded choice,
 * a full pool (no room: accepting pauses), workers that may not take
 * clients, a queued control message, a pool of more than 64 workers
 * whose first picks all fail with EAGAIN, and the listener's proxy_protocol
 * flag reaching the worker with each connection, also one held back.
 * Bursts: connections ready together go to each worker in one message,
 * no more accepted than there is room for, the per-address cap counting
 * the batch itself, and a batch kept whole while every channel is full.
 * Slots are set up and loaded only through slot.c's verbs: a worker's
 * load is what it reports (slot_load_report) after taking descriptors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "config.h"
#include "master.h"
#include "tally.h"

#define TEST_POOL_BIG   (64 + 16)

static struct master  m;
static struct config  conf;
static int            peer[MASTER_SLOTS_MAX];  /* the worker's end */

/* Worker i reports it received all it was sent, open of them open. */
static void report(int i, uint32_t open, uint32_t capacity)
{
	struct channel_load load = {
		.received = m.slots[i].sent, .open = open, .capacity = capacity,
	};

	assert_int_equal(slot_load_report(&m.slots[i], &load, m.now_ms), 0);
}

static int conn_fd(void);
static int received_by(int i);

/* Worker i holds open clients: sent as many as needed, then reported. */
static void set_open(int i, uint32_t open)
{
	struct channel_conn conn = { .id = 0 };

	while (m.slots[i].sent < open) {
		int fd = conn_fd();
		assert_int_equal(slot_give(&m.slots[i], &conn, fd, m.now_ms), 0);
		close(fd);
	}
	received_by(i);
	report(i, open, m.slots[i].capacity);
}

static void pool_make(int n, int capacity)
{
	memset(&m, 0, sizeof(m));
	memset(&conf, 0, sizeof(conf));
	conf.workers = n;
	conf.clients_per_worker = capacity;
	m.conf = &conf;
	m.gen = 1;
	m.ready_fd = -1;
	for (int i = 0; i < n; i++) {
		struct worker_slot *s = &m.slots[i];
		int sv[2];

		assert_int_equal(channel_pair(sv), 0);
		/* pid never signalled: nothing here stops a slot */
		slot_started(s, 100000 + i, sv[0], 1, i, 0);
		peer[i] = sv[1];
		slot_ready(s);
		report(i, 0, (uint32_t)capacity);   /* the LOAD right behind READY */
	}
	m.nslots = n;
}

static int pool_free(void **state)
{
	(void)state;
	for (int i = 0; i < m.nslots; i++) {
		slot_reaped(&m.slots[i]);
		close(peer[i]);
	}
	m.nslots = 0;
	return 0;
}

/* A descriptor to hand off (the read end of a pipe, write end closed). */
static int conn_fd(void)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	close(p[1]);
	return p[0];
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/*
 * Calls f(conn, fd) for each connection slot i's peer got, in CONN or
 * CONNS messages, then closes fd; how many came.
 */
static int received_each(int i, void (*f)(const struct channel_conn *, int))
{
	struct channel_hdr hdr;
	unsigned char      payload[CHANNEL_RECV_MAX];
	int                fds[CHANNEL_CONNS_MAX], n = 0;

	while (channel_recv_fds(peer[i], &hdr, payload, sizeof(payload), fds) == 1) {
		struct channel_conns cs;

		if (hdr.type == CHANNEL_CONN) {
			cs.n = 1;
			memcpy(&cs.conn[0], payload, sizeof(cs.conn[0]));
		} else if (hdr.type == CHANNEL_CONNS) {
			memcpy(&cs, payload, hdr.len);
		} else {
			continue;
		}
		for (uint32_t k = 0; k < cs.n; k++) {
			assert_true(fds[k] >= 0);
			if (f != NULL)
				f(&cs.conn[k], fds[k]);
			close(fds[k]);
			n++;
		}
	}
	return n;
}

/* How many connections slot i's peer got; the passed fds are closed. */
static int received_by(int i)
{
	return received_each(i, NULL);
}

static void fill_channel(int i)
{
	int n = 0;

	while (channel_send(m.slots[i].chan, CHANNEL_READY, 1, NULL, 0, -1) == 0)
		assert_true(++n < 10000000);
	assert_int_equal(errno, EAGAIN);
}

static void test_least_loaded(void **state)
{
	int fd = conn_fd();

	(void)state;
	pool_make(3, 10);
	set_open(0, 5);
	set_open(1, 2);
	set_open(2, 7);
	assert_true(handoff_has_room(&m));
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_false(fd_is_open(fd));
	assert_int_equal(received_by(0), 0);
	assert_int_equal(received_by(1), 1);
	assert_int_equal(received_by(2), 0);
	assert_int_equal(m.slots[1].sent, 3);
	assert_int_equal(m.next_id, 1);
	/* descriptors sent but not yet reported received count as load */
	for (int k = 0; k < 3; k++) {
		struct channel_conn conn = { .id = 0 };
		int                 cfd = conn_fd();
		assert_int_equal(slot_give(&m.slots[1], &conn, cfd, m.now_ms), 0);
		close(cfd);
	}
	assert_int_equal(slot_load(&m.slots[1]), 6);
	received_by(1);
	fd = conn_fd();
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_int_equal(received_by(0), 1);
}

static void test_full_pool_has_no_room(void **state)
{
	int fd = conn_fd();

	(void)state;
	pool_make(3, 2);
	for (int i = 0; i < 3; i++)
		set_open(i, 2);
	assert_false(handoff_has_room(&m));
	assert_int_equal(handoff_give(&m, fd, 0, NULL), -1);
	assert_true(fd_is_open(fd));    /* kept by the caller as pending */
	report(2, 1, 2);
	assert_true(handoff_has_room(&m));
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_int_equal(received_by(2), 1);
}

/* Not ready, draining, an older generation, a closed channel: no clients. */
static void test_only_serving_workers_take_clients(void **state)
{
	int fd = conn_fd();

	(void)state;
	pool_make(5, 10);
	slot_started(&m.slots[0], 100000, m.slots[0].chan, 1, 0, 0);  /* no READY yet */
	report(0, 0, 10);
	slot_drain(&m.slots[1], 10, 0);
	slot_started(&m.slots[2], 100002, m.slots[2].chan, 0, 2, 0);  /* an older generation */
	slot_ready(&m.slots[2]);
	report(2, 0, 10);
	slot_channel_closed(&m.slots[3]);
	set_open(4, 9);
	assert_true(handoff_has_room(&m));
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(received_by(i), 0);
	assert_int_equal(received_by(4), 1);
	/* its tenth client, sent and not yet reported, fills it */
	assert_int_equal(slot_load(&m.slots[4]), 10);
	assert_false(handoff_has_room(&m));
}

/* A worker with a control message waiting gets no CONN to overtake it. */
static void test_waiting_control_message_blocks_conn(void **state)
{
	int fd = conn_fd(), logfd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	(void)state;
	assert_true(logfd >= 0);
	pool_make(2, 10);
	set_open(1, 3);
	fill_channel(0);
	slot_reopen(&m.slots[0], CHANNEL_LOG_ACCESS, logfd);
	close(logfd);       /* the queue holds its own copy */
	assert_true(slot_waiting(&m.slots[0]));
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_int_equal(received_by(1), 1);
	/* the worker reads: the REOPEN goes out first, then it may get clients */
	assert_int_equal(received_by(0), 0);
	assert_int_equal(slot_flush(&m.slots[0]), 0);
	assert_false(slot_waiting(&m.slots[0]));
	fd = conn_fd();
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	{
		struct channel_hdr hdr;
		unsigned char      payload[CHANNEL_PAYLOAD_MAX];
		int                got;
		assert_int_equal(channel_recv(peer[0], &hdr, payload, sizeof(payload), &got), 1);
		assert_int_equal(hdr.type, CHANNEL_REOPEN);
		assert_true(got >= 0);
		close(got);
		assert_int_equal(channel_recv(peer[0], &hdr, payload, sizeof(payload), &got), 1);
		assert_int_equal(hdr.type, CHANNEL_CONN);
		close(got);
	}
	/* a single worker with a message waiting: no room, accepting pauses */
	set_open(1, 10);
	fill_channel(0);
	slot_control(&m.slots[0], CHANNEL_DRAIN);
	assert_false(handoff_has_room(&m));
}

/*
 * More than 64 workers (the config allows 1024): the first picks, all
 * with the lowest load, fail with EAGAIN; the one worker left with room
 * in its channel, the most loaded and the last slot, takes the client.
 */
static void test_more_than_64_workers(void **state)
{
	int fd = conn_fd();
	int last = TEST_POOL_BIG - 1;

	(void)state;
	pool_make(TEST_POOL_BIG, 10);
	for (int i = 0; i < last; i++)
		fill_channel(i);
	set_open(last, 1);
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_false(fd_is_open(fd));
	assert_int_equal(received_by(last), 1);
	assert_int_equal(m.slots[last].sent, 2);
	assert_int_equal(m.next_id, 1);
	for (int i = 0; i < last; i++)
		assert_int_equal(m.slots[i].sent, 0);

	/* every channel full: the descriptor is kept, nothing loops for ever */
	fill_channel(last);
	fd = conn_fd();
	assert_int_equal(handoff_give(&m, fd, 0, NULL), -1);
	assert_true(fd_is_open(fd));
	close(fd);
	assert_int_equal(m.next_id, 1);
	/* a failed attempt does not mark workers for the next one */
	assert_int_equal(received_by(7), 0);
	fd = conn_fd();
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_int_equal(received_by(7), 1);
}


/*
 * A worker that leaves a hand-off unreported for long is not reading its
 * channel (stopped, stuck): the least-loaded choice passes over it; once
 * it reports again, it takes clients again.
 */
static void test_stalled_worker_passed_over(void **state)
{
	int fd;

	(void)state;
	pool_make(2, 10);
	set_open(1, 3);                 /* slot 0 is the least loaded */
	m.now_ms = 10000;
	fd = conn_fd();
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_int_equal(received_by(0), 1);
	assert_int_equal(m.slots[0].unreceived_since_ms, 10000);
	m.now_ms += 100;                /* not yet long */
	fd = conn_fd();
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_int_equal(received_by(0), 1);
	m.now_ms += 1000;               /* nothing reported for 1.1 s */
	fd = conn_fd();
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_int_equal(received_by(1), 1);
	/* it reports all it received: back in the choice */
	report(0, 0, 10);
	assert_int_equal(m.slots[0].unreceived_since_ms, 0);
	report(1, 1, 40);
	set_open(1, 30);
	fd = conn_fd();
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_int_equal(received_by(0), 1);
}

/*
 * A send that fails for good (the worker's end is gone): that worker's
 * channel is closed, so it is never tried again and its exit is reaped;
 * the client goes to another.
 */
static void test_broken_channel(void **state)
{
	int fd = conn_fd();

	(void)state;
	pool_make(2, 10);
	set_open(1, 5);                 /* slot 0 is the least loaded */
	close(peer[0]);
	peer[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);  /* for pool_free */
	assert_int_equal(handoff_give(&m, fd, 0, NULL), 0);
	assert_int_equal(received_by(1), 1);
	assert_int_equal(m.slots[0].chan, -1);
	assert_true(slot_alive(&m.slots[0]));
	assert_false(slot_serving(&m.slots[0], m.gen));
	assert_int_equal(m.slots[0].sent, 0);
}

static int64_t last_flags;

static void note_flags(const struct channel_conn *conn, int fd)
{
	(void)fd;
	last_flags = conn->flags;
}

/* The flags of the last connection slot i's peer got, or -1 when none came. */
static int64_t received_flags(int i)
{
	last_flags = -1;
	received_each(i, note_flags);
	return last_flags;
}

/* A listener on a free loopback port with one client waiting; the client fd. */
static int listener_with_client(struct listener *l, bool proxy)
{
	struct sockaddr_in sin;
	socklen_t          len = sizeof(sin);
	int                c;

	memset(l, 0, sizeof(*l));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(l->fd >= 0);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l->fd, 32), 0);
	assert_int_equal(getsockname(l->fd, (struct sockaddr *)&sin, &len), 0);
	l->addr.proxy_protocol = proxy;
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return c;
}

static void test_flags_follow_the_listener(void **state)
{
	struct listener l;
	int             c;

	(void)state;
	pool_make(1, 10);
	c = listener_with_client(&l, true);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_int_equal(received_flags(0), CHANNEL_CONN_PROXY);
	close(c);
	close(l.fd);
	c = listener_with_client(&l, false);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_int_equal(received_flags(0), 0);
	close(c);
	close(l.fd);
	/* held back while the worker's channel is full: the flag waits with it */
	c = listener_with_client(&l, true);
	fill_channel(0);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_true(handoff_pending(&m));
	while (received_flags(0) != -1)
		;
	assert_int_equal(handoff_flush_pending(&m), 0);
	assert_false(handoff_pending(&m));
	assert_int_equal(received_flags(0), CHANNEL_CONN_PROXY);
	close(c);
	close(l.fd);
}

/* Another client of the same listener; its fd. */
static int another_client(const struct listener *l)
{
	struct sockaddr_in sin;
	socklen_t          len = sizeof(sin);
	int                c;

	assert_int_equal(getsockname(l->fd, (struct sockaddr *)&sin, &len), 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return c;
}

/* The client was reset unanswered: recv fails with ECONNRESET. */
static void assert_reset(int c)
{
	char byte;

	errno = 0;
	assert_int_equal(recv(c, &byte, 1, 0), -1);
	assert_int_equal(errno, ECONNRESET);
}

/*
 * Admission at accept: a denied client, one over max_clients_per_address
 * and a proxy_protocol peer outside proxy_trusted are reset and tallied,
 * never handed off; closes reported by the worker make room again.
 */
static void test_refused_never_handed_off(void **state)
{
	struct listener l;
	uint64_t        denied = tally_total(TALLY_DENIED), over = tally_total(TALLY_OVER_CAP);
	uint64_t        untrusted = tally_total(TALLY_UNTRUSTED);
	char            err[256];
	int             c, c2, c3;

	(void)state;
	pool_make(1, 10);
	assert_int_equal(acl_add(&conf.access, "127.0.0.1", false, 1, err, sizeof(err)), 0);
	c = listener_with_client(&l, false);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_int_equal(received_flags(0), -1);
	assert_int_equal(tally_total(TALLY_DENIED), denied + 1);
	assert_reset(c);
	close(c);
	close(l.fd);
	memset(&conf.access, 0, sizeof(conf.access));

	conf.max_clients_per_address = 1;
	c = listener_with_client(&l, false);
	c2 = another_client(&l);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_int_equal(received_flags(0), 0);     /* the first, counted */
	assert_int_equal(tally_total(TALLY_OVER_CAP), over + 1);
	assert_reset(c2);
	admit_closed(&m, m.next_id);                /* the worker closed it */
	c3 = another_client(&l);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_int_equal(received_flags(0), 0);
	conf.max_clients_per_address = 0;
	admit_free(&m);
	close(c);
	close(c2);
	close(c3);
	close(l.fd);

	assert_int_equal(acl_add(&conf.proxy_trusted, "10.0.0.0/8", true, 1, err, sizeof(err)), 0);
	c = listener_with_client(&l, true);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_int_equal(received_flags(0), -1);
	assert_int_equal(tally_total(TALLY_UNTRUSTED), untrusted + 1);
	assert_reset(c);
	memset(&conf.proxy_trusted, 0, sizeof(conf.proxy_trusted));
	close(c);
	close(l.fd);
}

/* Messages (CONN or CONNS) waiting on slot i's peer, and the ids they carry; fds closed. */
static int received_msgs(int i, uint64_t *ids, int *nids)
{
	struct channel_hdr hdr;
	unsigned char      payload[CHANNEL_RECV_MAX];
	int                fds[CHANNEL_CONNS_MAX], msgs = 0;

	while (channel_recv_fds(peer[i], &hdr, payload, sizeof(payload), fds) == 1) {
		struct channel_conns cs;

		if (hdr.type != CHANNEL_CONNS && hdr.type != CHANNEL_CONN)
			continue;
		if (hdr.type == CHANNEL_CONN) {
			cs.n = 1;
			memcpy(&cs.conn[0], payload, sizeof(cs.conn[0]));
		} else {
			memcpy(&cs, payload, hdr.len);
		}
		msgs++;
		for (uint32_t k = 0; k < cs.n; k++) {
			assert_true(fds[k] >= 0);
			close(fds[k]);
			ids[(*nids)++] = cs.conn[k].id;
		}
	}
	return msgs;
}

/* n clients of listener l connected and waiting in its backlog; their fds. */
static void clients(const struct listener *l, int *c, int n)
{
	for (int i = 0; i < n; i++)
		c[i] = another_client(l);
}

static void close_all(int *c, int n)
{
	for (int i = 0; i < n; i++)
		close(c[i]);
}

/*
 * Ten connections ready at once, two idle workers: each worker gets its
 * half in one message, numbered 1..10 once each, counted as sent.
 */
static void test_burst_one_message_per_worker(void **state)
{
	struct listener l;
	uint64_t        ids[32];
	int             c[10], nids = 0, seen[11] = { 0 };

	(void)state;
	pool_make(2, 10);
	c[0] = listener_with_client(&l, false);
	clients(&l, c + 1, 9);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_false(handoff_pending(&m));
	assert_int_equal(received_msgs(0, ids, &nids), 1);
	assert_int_equal(nids, 5);
	assert_int_equal(received_msgs(1, ids, &nids), 1);
	assert_int_equal(nids, 10);
	for (int i = 0; i < nids; i++) {
		assert_true(ids[i] >= 1 && ids[i] <= 10);
		assert_int_equal(seen[ids[i]]++, 0);
	}
	assert_int_equal(m.next_id, 10);
	assert_int_equal(m.slots[0].sent, 5);
	assert_int_equal(m.slots[1].sent, 5);
	close_all(c, 10);
	close(l.fd);
}

/* No more is accepted than the workers have room for: the rest wait in the backlog. */
static void test_burst_bounded_by_room(void **state)
{
	struct listener l;
	uint64_t        ids[32];
	int             c[5], nids = 0, fd;

	(void)state;
	pool_make(1, 3);
	c[0] = listener_with_client(&l, false);
	clients(&l, c + 1, 4);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_false(handoff_pending(&m));
	assert_int_equal(received_msgs(0, ids, &nids), 1);
	assert_int_equal(nids, 3);
	assert_false(handoff_has_room(&m));
	for (int i = 0; i < 2; i++) {               /* still in the backlog */
		assert_true((fd = accept(l.fd, NULL, NULL)) >= 0);
		close(fd);
	}
	assert_int_equal(accept(l.fd, NULL, NULL), -1);
	close_all(c, 5);
	close(l.fd);
}

/*
 * max_clients_per_address within one batch: the batch's own connections
 * count against the cap before they are handed off, so five from one
 * address at once under a cap of 3 make 3 handed off and 2 reset.
 */
static void test_burst_cap_counts_the_batch(void **state)
{
	struct listener    l;
	struct sockaddr_in lo = { .sin_family = AF_INET };
	uint64_t           over = tally_total(TALLY_OVER_CAP), ids[32];
	int                c[5], nids = 0;

	(void)state;
	pool_make(2, 10);
	conf.max_clients_per_address = 3;
	lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c[0] = listener_with_client(&l, false);
	clients(&l, c + 1, 4);
	assert_int_equal(handoff_accept(&m, &l), 0);
	received_msgs(0, ids, &nids);
	received_msgs(1, ids, &nids);
	assert_int_equal(nids, 3);
	assert_int_equal(tally_total(TALLY_OVER_CAP), over + 2);
	assert_int_equal(admit_count(&m, (struct sockaddr *)&lo), 3);
	assert_reset(c[3]);
	assert_reset(c[4]);
	conf.max_clients_per_address = 0;
	admit_free(&m);
	close_all(c, 5);
	close(l.fd);
}

/*
 * Every channel full: the batch is kept whole (accepting paused, nothing
 * numbered); flushed once a worker reads, worker by worker, each once.
 */
static void test_burst_kept_while_channels_full(void **state)
{
	struct listener l;
	uint64_t        ids[32];
	int             c[5], nids = 0;

	(void)state;
	pool_make(2, 10);
	fill_channel(0);
	fill_channel(1);
	c[0] = listener_with_client(&l, false);
	clients(&l, c + 1, 3);
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_true(handoff_pending(&m));
	assert_int_equal(m.pending.n, 4);
	assert_int_equal(m.next_id, 0);
	c[4] = another_client(&l);
	assert_int_equal(handoff_accept(&m, &l), 0);      /* paused: not accepted */
	assert_int_equal(m.pending.n, 4);
	assert_int_equal(handoff_flush_pending(&m), -1);
	received_by(0);                                     /* worker 0 reads its channel */
	assert_int_equal(handoff_flush_pending(&m), 0);
	assert_false(handoff_pending(&m));
	assert_int_equal(received_msgs(0, ids, &nids), 2);  /* its half, then the other's */
	assert_int_equal(nids, 4);
	assert_int_equal(m.next_id, 4);
	assert_int_equal(m.slots[0].sent, 4);
	assert_int_equal(m.slots[1].sent, 0);
	/* the fifth, still in the backlog, comes with the next accept */
	assert_int_equal(handoff_accept(&m, &l), 0);
	assert_int_equal(received_by(0), 1);
	close_all(c, 5);
	close(l.fd);
}

#define PT(f) cmocka_unit_test_teardown(f, pool_free)

int main(void)
{
	const struct CMUnitTest tests[] = {
		PT(test_least_loaded),
		PT(test_full_pool_has_no_room),
		PT(test_only_serving_workers_take_clients),
		PT(test_waiting_control_message_blocks_conn),
		PT(test_more_than_64_workers),
		PT(test_stalled_worker_passed_over),
		PT(test_broken_channel),
		PT(test_flags_follow_the_listener),
		PT(test_refused_never_handed_off),
		PT(test_burst_one_message_per_worker),
		PT(test_burst_bounded_by_room),
		PT(test_burst_cap_counts_the_batch),
		PT(test_burst_kept_while_channels_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
