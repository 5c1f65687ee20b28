/*
 * handoff.c — the master's accept loop and the hand-off of each new
 * connection to the least-loaded worker of the current generation that has
 * a free slot.  When no worker has room the master stops accepting, so new
 * clients wait in the kernel backlog instead of being refused.
 *
 * A worker's load is what it last reported open plus the descriptors sent
 * to it that it had not yet received when it reported: exact, whatever the
 * order in which messages cross.
 *
 * Each accepted connection is admitted first (admit.c: allow/deny,
 * proxy_trusted, max_clients_per_address, from the address accept4
 * returns); one refused is reset unanswered and tallied, never handed off.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "tally.h"

static uint64_t
handoff_load(const struct worker_slot *s)
{
	return s->open + (s->sent - s->received);
}

/*
 * Clients the worker can hold: clients_per_worker, or fewer when its
 * descriptor limit says so (it reports what it can hold).
 */
static uint64_t
handoff_capacity(const struct master *m, const struct worker_slot *s)
{
	uint64_t cap = (uint64_t)m->conf->clients_per_worker;

	return s->capacity < cap ? s->capacity : cap;
}

/*
 * A worker reports what it received within WORKER_LOAD_MS (10 ms): one that
 * leaves a hand-off unreported this long is not reading its channel
 * (stopped, stuck), and new clients go to the others meanwhile.
 */
#define HANDOFF_STALLED_MS  250

static bool
handoff_stalled(const struct worker_slot *s, uint64_t now_ms)
{
	return s->unreceived_since_ms != 0 && now_ms - s->unreceived_since_ms >= HANDOFF_STALLED_MS;
}

/*
 * The one definition of "this worker can take a client": serving, ready
 * (and its capacity known: the LOAD that follows READY), below capacity or holding idle clients it would close to make room, and
 * no control message waiting (a CONN must not overtake it, and a worker
 * that is not reading should not get more clients).
 */
static bool
handoff_can_take(const struct master *m, const struct worker_slot *s)
{
	return spawn_slot_serving(m, s) && s->ready && !control_waiting(s) &&
	    !handoff_stalled(s, m->now_ms) &&
	    (handoff_load(s) < handoff_capacity(m, s) || s->evictable > 0);
}

/* Least-loaded worker that can take a client and has not failed this attempt. */
static struct worker_slot *
handoff_pick(struct master *m)
{
	struct worker_slot *best = NULL;
	uint64_t            best_load = 0;

	for (int i = 0; i < m->nslots; i++) {
		struct worker_slot *s = &m->slots[i];
		uint64_t            load;

		if (s->handoff_failed == m->handoff_attempt || !handoff_can_take(m, s))
			continue;
		load = handoff_load(s);
		if (best == NULL || load < best_load) {
			best = s;
			best_load = load;
		}
	}
	return best;
}

bool
handoff_has_room(const struct master *m)
{
	for (int i = 0; i < m->nslots; i++) {
		if (handoff_can_take(m, &m->slots[i]))
			return true;
	}
	return false;
}

int
handoff_give(struct master *m, int fd, uint32_t flags, const struct sockaddr *peer)
{
	struct channel_conn conn;
	struct worker_slot *s;

	/* A worker whose channel is full is marked and not tried again. */
	m->handoff_attempt++;
	while ((s = handoff_pick(m)) != NULL) {
		conn.id = m->next_id + 1;
		conn.flags = flags;
		conn.pad = 0;
		if (channel_send(s->chan, CHANNEL_CONN, s->gen, &conn, sizeof(conn), fd) == 0) {
			m->next_id++;
			if (handoff_load(s) >= handoff_capacity(m, s))
				s->evictable--;     /* it closes an idle client for this one */
			if (s->sent == s->received && s->unreceived_since_ms == 0)
				s->unreceived_since_ms = m->now_ms;
			s->sent++;
			if (peer != NULL)
				admit_opened(m, conn.id, s->pid, peer);
			close(fd);
			return 0;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
			log_warn("worker %d (pid %ld): hand-off", s->index, (long)s->pid);
			s->ready = false;   /* its death will be reaped shortly */
		}
		s->handoff_failed = m->handoff_attempt;
	}
	return -1;
}

int
handoff_flush_pending(struct master *m)
{
	const struct sockaddr *peer = (const struct sockaddr *)&m->pending_peer;

	if (m->pending_fd == -1)
		return 0;
	if (handoff_give(m, m->pending_fd, m->pending_flags,
	    peer->sa_family != AF_UNSPEC ? peer : NULL) == -1)
		return -1;
	m->pending_fd = -1;
	return 0;
}

static const enum tally_kind handoff_refusal[] = {
	[ADMIT_DENIED]    = TALLY_DENIED,
	[ADMIT_UNTRUSTED] = TALLY_UNTRUSTED,
	[ADMIT_OVER_CAP]  = TALLY_OVER_CAP,
};

/*
 * Whether fd, just accepted from peer, may be served; one that may not is
 * reset unanswered (no bytes, no FIN wait) and tallied, not logged alone.
 */
static bool
handoff_admit(struct master *m, const struct listener *l, int fd,
    const struct sockaddr *peer)
{
	enum admit_verdict v = admit_check(m, l->addr.proxy_protocol, peer);
	char               text[TALLY_ADDR_MAX + 8];

	if (v == ADMIT_OK)
		return true;
	net_close_abortive(fd);
	net_addr_text(peer, text, sizeof(text));
	tally_note(handoff_refusal[v], text);
	return false;
}

int
handoff_accept(struct master *m, const struct listener *l)
{
	uint32_t                flags = l->addr.proxy_protocol ? CHANNEL_CONN_PROXY : 0;
	struct sockaddr_storage ss;
	socklen_t               sslen;
	/* direct connections count under their address; proxied ones by header */
	bool                    counted = !l->addr.proxy_protocol &&
	    m->conf->max_clients_per_address > 0;

	for (;;) {
		int fd;

		if (m->pending_fd != -1 || !handoff_has_room(m))
			return 0;
		sslen = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			/*
			 * EMFILE, ENFILE, ENOBUFS: the caller pauses accepting
			 * a moment; clients wait in the backlog meanwhile.
			 * Logged once per episode.
			 */
			if (!m->accept_failing)
				log_warn("accept (pausing new connections until it works again)");
			m->accept_failing = true;
			return -1;
		}
		if (m->accept_failing)
			log_info("accept works again");
		m->accept_failing = false;
		if (!handoff_admit(m, l, fd, (const struct sockaddr *)&ss))
			continue;
		if (handoff_give(m, fd, flags, counted ? (const struct sockaddr *)&ss : NULL) == -1) {
			m->pending_fd = fd;     /* retried every loop turn */
			m->pending_flags = flags;
			m->pending_peer = ss;
			if (!counted)
				m->pending_peer.ss_family = AF_UNSPEC;
		}
	}
}
