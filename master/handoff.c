/*
 * handoff.c — the master's accept loop and the hand-off of each new
 * connection to the least-loaded worker of the current generation that has
 * a free slot.  When no worker has room the master stops accepting, so new
 * clients wait in the kernel backlog instead of being refused.
 *
 * It only picks: whether a worker can take a client, and its load, are
 * slot.c's (slot_can_take, slot_load); the send is slot_give.
 *
 * Each accepted connection is admitted first (admit.c: allow/deny,
 * proxy_trusted, max_clients_per_address, from the address accept4
 * returns); one refused is reset unanswered and tallied, never handed off.
 *
 * One call accepts at most HANDOFF_ACCEPT_BATCH connections: under a
 * connect storm the listener never drains, and the master must still get
 * back to its poll loop for signals, worker channels and other listeners.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "tally.h"

/* Like HAProxy's tune.maxaccept: enough to amortise a poll, small enough to return. */
#define HANDOFF_ACCEPT_BATCH 64

/* Least-loaded worker that can take a client and has not failed this attempt. */
static struct worker_slot *
handoff_pick(struct master *m)
{
	struct worker_slot *best = NULL;
	uint64_t            best_load = 0;

	for (int i = 0; i < m->nslots; i++) {
		struct worker_slot *s = &m->slots[i];
		uint64_t            load;

		if (slot_tried(s, m->handoff_attempt) || !slot_can_take(s, m->gen, m->now_ms))
			continue;
		load = slot_load(s);
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
		if (slot_can_take(&m->slots[i], m->gen, m->now_ms))
			return true;
	}
	return false;
}

/* A send that may work later (the channel is full, or too many descriptors in flight). */
static bool
handoff_transient(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ETOOMANYREFS;
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
		if (slot_give(s, &conn, fd, m->now_ms) == 0) {
			m->next_id++;
			if (peer != NULL)
				admit_opened(m, conn.id, s->pid, peer);
			close(fd);
			return 0;
		}
		if (!handoff_transient(errno)) {
			log_warn("worker %d (pid %ld): hand-off", s->index, (long)s->pid);
			slot_channel_closed(s);     /* its death will be reaped shortly */
		}
		slot_give_failed(s, m->handoff_attempt);
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

	for (int n = 0; n < HANDOFF_ACCEPT_BATCH; n++) {
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
		status_count(m, STATUS_ACCEPTED);
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
	return 0;       /* more may wait: poll reports the listener again at once */
}
