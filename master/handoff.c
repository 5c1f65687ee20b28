/*
 * handoff.c — the master's accept loop and the hand-off of new connections
 * to the least-loaded workers of the current generation that have a free
 * slot.  When no worker has room the master stops accepting, so new
 * clients wait in the kernel backlog instead of being refused.
 *
 * It only picks: whether a worker can take a client, how many, and its
 * load, are slot.c's (slot_can_take, slot_room, slot_load); the sends are
 * slot_give and slot_give_conns.
 *
 * Each accepted connection is admitted first (admit.c: allow/deny,
 * proxy_trusted, max_clients_per_address, from the address accept4
 * returns); one refused is reset unanswered and tallied, never handed off.
 *
 * Connections ready together are handed off together: accepted into the
 * pending batch (at most CHANNEL_CONNS_MAX, and no more than the workers
 * have room for), spread over the workers as one-by-one hand-offs would
 * spread them, and each worker's share sent in one message (CONNS; CONN
 * for a share of one).  Until they are counted, the batch's connections
 * count against their address's cap at admission; while any of them waits
 * for a channel, nothing more is accepted, so the count stays exact.
 *
 * One call accepts at most HANDOFF_ACCEPT_BATCH connections: under a
 * connect storm the listener never drains, and the master must still get
 * back to its poll loop for signals, worker channels and other listeners.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "tally.h"

/* Like HAProxy's tune.maxaccept: enough to amortise a poll, small enough to return. */
#define HANDOFF_ACCEPT_BATCH 64

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

/*
 * Plans who takes each pending connection: the least-loaded worker that has
 * room for one more and has not failed this attempt, counting those planned
 * before it.  to[i] is a slot index, or -1 when no worker can take it.
 */
static void
handoff_plan(const struct master *m, const struct handoff_batch *b, int *to)
{
	static uint8_t planned[MASTER_SLOTS_MAX];

	memset(planned, 0, (size_t)m->nslots);
	for (int i = 0; i < b->n; i++) {
		uint64_t best_load = 0;
		int      best = -1;

		for (int j = 0; j < m->nslots; j++) {
			const struct worker_slot *s = &m->slots[j];
			uint64_t                  load;

			if (slot_tried(s, m->handoff_attempt) ||
			    slot_room(s, m->gen, m->now_ms) <= planned[j])
				continue;
			load = slot_load(s) + planned[j];
			if (best == -1 || load < best_load) {
				best = j;
				best_load = load;
			}
		}
		to[i] = best;
		if (best != -1)
			planned[best]++;
	}
}

/*
 * Sends the connections planned for slot j in one message; on success they
 * are numbered, counted under their addresses, closed here and marked -1
 * in the batch.  0, or -1 with errno and the batch unchanged.
 */
static int
handoff_send(struct master *m, struct handoff_batch *b, const int *to, int j)
{
	struct worker_slot  *s = &m->slots[j];
	struct channel_conns cs;
	int                  fds[CHANNEL_CONNS_MAX], idx[CHANNEL_CONNS_MAX], rc;

	memset(&cs, 0, sizeof(cs));
	for (int i = 0; i < b->n; i++) {
		if (to[i] != j)
			continue;
		idx[cs.n] = i;
		fds[cs.n] = b->fd[i];
		cs.conn[cs.n].id = m->next_id + 1 + cs.n;
		cs.conn[cs.n].flags = b->flags;
		cs.n++;
	}
	rc = cs.n == 1 ? slot_give(s, &cs.conn[0], fds[0], m->now_ms) :
	    slot_give_conns(s, &cs, fds, m->now_ms);
	if (rc == -1)
		return -1;
	m->next_id += cs.n;
	for (uint32_t k = 0; k < cs.n; k++) {
		if (b->counted)
			admit_opened(m, cs.conn[k].id, s->pid,
			    (const struct sockaddr *)&b->peer[idx[k]]);
		close(b->fd[idx[k]]);
		b->fd[idx[k]] = -1;
	}
	return 0;
}

/* Drops the batch's handed-off entries (fd -1), keeping the others in order. */
static void
handoff_compact(struct handoff_batch *b)
{
	int kept = 0;

	for (int i = 0; i < b->n; i++) {
		if (b->fd[i] == -1)
			continue;
		b->fd[kept] = b->fd[i];
		b->peer[kept] = b->peer[i];
		kept++;
	}
	b->n = kept;
}

/* Hands off what b holds, worker by worker; 0 when all went, -1 when some are kept. */
static int
handoff_give_batch(struct master *m, struct handoff_batch *b)
{
	int to[CHANNEL_CONNS_MAX];

	/* A worker whose channel is full is marked and not tried again. */
	m->handoff_attempt++;
	while (b->n > 0) {
		struct worker_slot *s;
		int                 j = -1;

		handoff_plan(m, b, to);
		for (int i = 0; i < b->n && j == -1; i++)
			j = to[i];
		if (j == -1)
			return -1;
		if (handoff_send(m, b, to, j) == 0) {
			handoff_compact(b);
			continue;
		}
		s = &m->slots[j];
		if (!handoff_transient(errno)) {
			log_warn("worker %d (pid %ld): hand-off", s->index, (long)s->pid);
			slot_channel_closed(s);     /* its death will be reaped shortly */
		}
		slot_give_failed(s, m->handoff_attempt);
	}
	return 0;
}

int
handoff_give(struct master *m, int fd, uint32_t flags, const struct sockaddr *peer)
{
	struct handoff_batch b = { .n = 1, .flags = flags, .counted = peer != NULL };

	b.fd[0] = fd;
	if (peer != NULL)
		memcpy(&b.peer[0], peer, peer->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	return handoff_give_batch(m, &b);
}

bool
handoff_pending(const struct master *m)
{
	return m->pending.n > 0;
}

void
handoff_pending_close(struct master *m)
{
	for (int i = 0; i < m->pending.n; i++)
		close(m->pending.fd[i]);
	m->pending.n = 0;
}

int
handoff_flush_pending(struct master *m)
{
	if (m->pending.n == 0)
		return 0;
	return handoff_give_batch(m, &m->pending);
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
	const struct handoff_batch *b = &m->pending;
	enum admit_verdict          v = admit_check_among(m, l->addr.proxy_protocol, peer,
	    b->peer, b->counted ? b->n : 0);
	char                        text[TALLY_ADDR_MAX + 8];

	if (v == ADMIT_OK)
		return true;
	net_close_abortive(fd);
	net_addr_text(peer, text, sizeof(text));
	tally_note(handoff_refusal[v], text);
	return false;
}

/* Clients the workers can take now, at most CHANNEL_CONNS_MAX. */
static int
handoff_room(const struct master *m)
{
	uint64_t room = 0;

	for (int i = 0; i < m->nslots && room < CHANNEL_CONNS_MAX; i++)
		room += slot_room(&m->slots[i], m->gen, m->now_ms);
	return room < CHANNEL_CONNS_MAX ? (int)room : CHANNEL_CONNS_MAX;
}

/*
 * Accepts from l into the pending batch until it holds want, *accepted
 * reaches HANDOFF_ACCEPT_BATCH (1 for both: more may wait), the listener
 * is empty (0) or accept4 fails (-1).
 */
static int
handoff_fill(struct master *m, const struct listener *l, int want, int *accepted)
{
	struct handoff_batch *b = &m->pending;

	while (b->n < want && *accepted < HANDOFF_ACCEPT_BATCH) {
		socklen_t sslen = sizeof(b->peer[b->n]);
		int       fd = accept4(l->fd, (struct sockaddr *)&b->peer[b->n], &sslen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		(*accepted)++;
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
		if (handoff_admit(m, l, fd, (const struct sockaddr *)&b->peer[b->n]))
			b->fd[b->n++] = fd;
	}
	return 1;
}

int
handoff_accept(struct master *m, const struct listener *l)
{
	struct handoff_batch *b = &m->pending;
	int                   accepted = 0, r = 1;

	while (r == 1 && accepted < HANDOFF_ACCEPT_BATCH) {
		int want;

		/* one kept from a failed hand-off goes first (retried every loop turn) */
		if (handoff_pending(m) || (want = handoff_room(m)) == 0)
			return 0;
		b->flags = l->addr.proxy_protocol ? CHANNEL_CONN_PROXY : 0;
		/* direct connections count under their address; proxied ones by header */
		b->counted = !l->addr.proxy_protocol && m->conf->max_clients_per_address > 0;
		r = handoff_fill(m, l, want, &accepted);
		handoff_flush_pending(m);
	}
	return r == -1 ? -1 : 0;    /* more may wait: poll reports the listener again */
}
