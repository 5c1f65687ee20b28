/*
 * control.c — the master's control messages to a worker (DRAIN, STOP,
 * REOPEN with a fresh log descriptor).  They are never dropped: each goes
 * into the worker slot's outgoing queue behind any still waiting, and what
 * the channel cannot take now is sent when the poll loop sees POLLOUT
 * (master.c asks for it while control_waiting()).  A worker that is
 * stopped or slow under a burst of connections still gets its REOPEN and
 * DRAIN when it reads again.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "channel.h"
#include "clock.h"
#include "log.h"
#include "master.h"

bool
control_waiting(const struct worker_slot *s)
{
	return channel_queue_pending(&s->out) > 0;
}

int
control_flush(struct worker_slot *s)
{
	if (s->chan == -1 || !control_waiting(s))
		return 0;
	if (channel_queue_flush(s->chan, &s->out) == -1) {
		/* a dead worker: its channel closes and its exit is reaped */
		log_warn("worker %d (pid %ld): sending control messages", s->index, (long)s->pid);
		return -1;
	}
	return 0;
}

void
control_send(struct worker_slot *s, enum channel_type type)
{
	if (s->chan == -1)
		return;
	/*
	 * One of a type waiting says all a second would: the queue holds at
	 * most one per type, so it cannot overflow.
	 */
	if (channel_queue_has(&s->out, type))
		return;
	if (channel_queue_push(&s->out, type, s->gen, NULL, 0, -1) == -1) {
		log_warn("worker %d (pid %ld): queueing %s", s->index, (long)s->pid,
		    channel_type_name(type));
		return;
	}
	control_flush(s);
}

void
control_reopen(struct worker_slot *s, enum channel_log log, int fd)
{
	struct channel_reopen r = { .log = (uint32_t)log };
	int                   copy;

	if (s->chan == -1 || fd == -1)
		return;
	/* The queue owns a copy: the master's own may be replaced before it goes. */
	if ((copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warn("worker %d (pid %ld): REOPEN", s->index, (long)s->pid);
		return;
	}
	/* a waiting one names an older file: this one replaces it */
	channel_queue_cancel(&s->out, CHANNEL_REOPEN, &r, sizeof(r));
	if (channel_queue_push(&s->out, CHANNEL_REOPEN, s->gen, &r, sizeof(r), copy) == -1) {
		log_warn("worker %d (pid %ld): queueing REOPEN", s->index, (long)s->pid);
		close(copy);
		return;
	}
	control_flush(s);
}

void
control_drain(struct worker_slot *s, int timeout_s)
{
	if (s->draining)
		return;
	s->draining = true;
	s->deadline_ms = clock_now_ms() + (uint64_t)timeout_s * CLOCK_MS_PER_SEC;
	control_send(s, CHANNEL_DRAIN);
}
