/*
 * dispatch.c — the master's accept loop and the hand-off of each new
 * connection to the least-loaded worker of the current generation that has
 * a free slot.  When no worker has room the master stops accepting, so new
 * clients wait in the kernel backlog instead of being refused.
 *
 * A worker's load is what it last reported open plus the descriptors sent
 * to it that it had not yet received when it reported: exact, whatever the
 * order in which messages cross.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "master.h"

static uint64_t
dispatch_load(const struct worker_slot *s)
{
	return s->open + (s->sent - s->received);
}

static struct worker_slot *
dispatch_pick(struct master *m, uint64_t skip_mask)
{
	struct worker_slot *best = NULL;
	uint64_t            best_load = 0;

	for (int i = 0; i < m->nslots; i++) {
		struct worker_slot *s = &m->slots[i];
		uint64_t            load;

		if (i < 64 && (skip_mask & (1ull << i)))
			continue;
		if (s->gen != m->gen || !s->ready || s->draining || s->chan == -1 || s->pid == 0)
			continue;
		load = dispatch_load(s);
		if (load >= (uint64_t)m->conf->clients_per_worker)
			continue;
		if (best == NULL || load < best_load) {
			best = s;
			best_load = load;
		}
	}
	return best;
}

bool
dispatch_has_room(const struct master *m)
{
	for (int i = 0; i < m->nslots; i++) {
		const struct worker_slot *s = &m->slots[i];
		if (s->gen == m->gen && s->ready && !s->draining && s->chan != -1 && s->pid != 0 &&
		    dispatch_load(s) < (uint64_t)m->conf->clients_per_worker)
			return true;
	}
	return false;
}

/* Hands fd to a worker; 0 when handed (fd closed), -1 when it is kept. */
static int
dispatch_handoff(struct master *m, int fd)
{
	struct channel_conn conn;
	uint64_t            skip = 0;
	struct worker_slot *s;

	while ((s = dispatch_pick(m, skip)) != NULL) {
		conn.id = ++m->next_id;
		if (channel_send(s->chan, CHANNEL_CONN, s->gen, &conn, sizeof(conn), fd) == 0) {
			s->sent++;
			close(fd);
			return 0;
		}
		m->next_id--;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
			log_warn("worker %d (pid %ld): hand-off", s->index, (long)s->pid);
			s->ready = false;   /* its death will be reaped shortly */
		}
		if (s - m->slots >= 64)
			break;
		skip |= 1ull << (s - m->slots);
	}
	return -1;
}

int
dispatch_flush_pending(struct master *m)
{
	if (m->pending_fd == -1)
		return 0;
	if (dispatch_handoff(m, m->pending_fd) == -1)
		return -1;
	m->pending_fd = -1;
	return 0;
}

int
dispatch_accept(struct master *m, int lfd)
{
	for (;;) {
		int fd;

		if (m->pending_fd != -1 || !dispatch_has_room(m))
			return 0;
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			/* EMFILE and friends: the caller pauses accepting a moment */
			log_warn("accept");
			return -1;
		}
		if (dispatch_handoff(m, fd) == -1)
			m->pending_fd = fd;     /* retried every loop turn */
	}
}
