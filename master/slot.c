/*
 * slot.c — the one owner of a worker slot (slot.h): its life as one state
 * machine with the deadlines that move it (STOP at the drain deadline,
 * SIGKILL a grace after STOP), its load as the worker reports it plus the
 * hand-offs it has not acknowledged, the rule of whether it can take a
 * client, and its queue of control messages (DRAIN, STOP, REOPEN with a
 * fresh log descriptor), which are never dropped: what the channel cannot
 * take now is sent when the poll loop sees POLLOUT (master.c asks for it
 * while slot_waiting()).
 *
 * A worker's load is what it last reported open plus the descriptors sent
 * to it that it had not yet received when it reported: exact, whatever the
 * order in which messages cross.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "clock.h"
#include "log.h"
#include "slot.h"

void
slot_init(struct worker_slot *s)
{
	memset(s, 0, sizeof(*s));
	s->state = SLOT_FREE;
	s->chan = -1;
	channel_queue_init(&s->out);
}

void
slot_started(struct worker_slot *s, pid_t pid, int chan, unsigned gen, int index,
    uint64_t now_ms)
{
	slot_init(s);
	s->state = SLOT_STARTING;
	s->pid = pid;
	s->chan = chan;
	s->gen = gen;
	s->index = index;
	s->started_ms = now_ms;
}

void
slot_ready(struct worker_slot *s)
{
	if (s->state == SLOT_STARTING)
		s->state = SLOT_READY;
}

bool
slot_alive(const struct worker_slot *s)
{
	return s->state != SLOT_FREE;
}

bool
slot_serving(const struct worker_slot *s, unsigned gen)
{
	return (s->state == SLOT_STARTING || s->state == SLOT_READY) &&
	    s->gen == gen && s->chan != -1;
}

bool
slot_is_ready(const struct worker_slot *s)
{
	return s->state == SLOT_READY && s->chan != -1;
}

bool
slot_leaving(const struct worker_slot *s)
{
	return s->state == SLOT_DRAINING || s->state == SLOT_STOPPING ||
	    s->state == SLOT_KILLED;
}

void
slot_drain(struct worker_slot *s, int timeout_s, uint64_t now_ms)
{
	if (s->state != SLOT_STARTING && s->state != SLOT_READY)
		return;
	s->state = SLOT_DRAINING;
	s->deadline_ms = now_ms + (uint64_t)timeout_s * CLOCK_MS_PER_SEC;
	slot_control(s, CHANNEL_DRAIN);
}

void
slot_stop(struct worker_slot *s, uint64_t now_ms)
{
	if (s->state != SLOT_STARTING && s->state != SLOT_READY && s->state != SLOT_DRAINING)
		return;
	s->state = SLOT_STOPPING;
	s->deadline_ms = now_ms + SLOT_STOP_GRACE_MS;
	slot_control(s, CHANNEL_STOP);
	if (s->pid > 0)
		kill(s->pid, SIGTERM);
}

void
slot_tick(struct worker_slot *s, uint64_t now_ms)
{
	if (now_ms < s->deadline_ms)
		return;
	if (s->state == SLOT_DRAINING) {
		log_info("worker %d (pid %ld, gen %u): drain timeout; stopping it",
		    s->index, (long)s->pid, s->gen);
		slot_stop(s, now_ms);
	} else if (s->state == SLOT_STOPPING) {
		log_info("worker %d (pid %ld, gen %u): still there after STOP; killing it",
		    s->index, (long)s->pid, s->gen);
		if (s->pid > 0)
			kill(s->pid, SIGKILL);
		s->state = SLOT_KILLED;
	}
}

void
slot_channel_closed(struct worker_slot *s)
{
	if (s->chan != -1) {
		close(s->chan);
		s->chan = -1;
	}
	channel_queue_clear(&s->out);   /* nobody left to read it */
}

void
slot_reaped(struct worker_slot *s)
{
	slot_channel_closed(s);
	slot_init(s);
}

int
slot_load_report(struct worker_slot *s, const struct channel_load *load, uint64_t now_ms)
{
	if (load->received > s->sent || load->open > load->received) {
		log_warnx("worker %d (pid %ld): impossible load report dropped",
		    s->index, (long)s->pid);
		return -1;
	}
	s->open = load->open;
	s->received = load->received;
	if (s->received == s->sent)
		s->unreceived_since_ms = 0;
	else if (s->unreceived_since_ms != 0)
		s->unreceived_since_ms = now_ms;    /* it reads: restart the clock */
	s->capacity = load->capacity;
	/* Connections still in flight may each take one of the idle slots. */
	s->evictable = load->evictable > s->sent - s->received ?
	    load->evictable - (uint32_t)(s->sent - s->received) : 0;
	return 0;
}

uint64_t
slot_load(const struct worker_slot *s)
{
	return s->open + (s->sent - s->received);
}

static bool
slot_stalled(const struct worker_slot *s, uint64_t now_ms)
{
	return s->unreceived_since_ms != 0 && now_ms - s->unreceived_since_ms >= SLOT_STALLED_MS;
}

bool
slot_can_take(const struct worker_slot *s, unsigned gen, uint64_t now_ms)
{
	return slot_serving(s, gen) && s->state == SLOT_READY && !slot_waiting(s) &&
	    !slot_stalled(s, now_ms) &&
	    (slot_load(s) < s->capacity || s->evictable > 0);
}

uint64_t
slot_room(const struct worker_slot *s, unsigned gen, uint64_t now_ms)
{
	uint64_t load = slot_load(s);

	if (!slot_can_take(s, gen, now_ms))
		return 0;
	return (load < s->capacity ? s->capacity - load : 0) + s->evictable;
}

/* One connection more in flight to s. */
static void
slot_gave(struct worker_slot *s, uint64_t now_ms)
{
	if (slot_load(s) >= s->capacity && s->evictable > 0)
		s->evictable--;     /* it closes an idle client for this one */
	if (s->sent == s->received && s->unreceived_since_ms == 0)
		s->unreceived_since_ms = now_ms;
	s->sent++;
}

int
slot_give(struct worker_slot *s, const struct channel_conn *conn, int fd, uint64_t now_ms)
{
	if (channel_send(s->chan, CHANNEL_CONN, s->gen, conn, sizeof(*conn), fd) == -1)
		return -1;
	slot_gave(s, now_ms);
	return 0;
}

int
slot_give_conns(struct worker_slot *s, const struct channel_conns *conns, const int *fds,
    uint64_t now_ms)
{
	if (channel_send_conns(s->chan, s->gen, conns, fds) == -1)
		return -1;
	for (uint32_t i = 0; i < conns->n; i++)
		slot_gave(s, now_ms);
	return 0;
}

bool
slot_tried(const struct worker_slot *s, uint64_t attempt)
{
	return s->handoff_failed == attempt;
}

void
slot_give_failed(struct worker_slot *s, uint64_t attempt)
{
	s->handoff_failed = attempt;
}

int
slot_drop(struct worker_slot *s, uint64_t id)
{
	struct channel_drop drop = { .id = id };

	return channel_send(s->chan, CHANNEL_DROP, s->gen, &drop, sizeof(drop), -1);
}

bool
slot_waiting(const struct worker_slot *s)
{
	return channel_queue_pending(&s->out) > 0;
}

int
slot_flush(struct worker_slot *s)
{
	if (s->chan == -1 || !slot_waiting(s))
		return 0;
	if (channel_queue_flush(s->chan, &s->out) == -1) {
		/*
		 * A dead worker (EPIPE, ECONNRESET): its channel closes and its
		 * exit is reaped and logged, so only other errors are news.
		 */
		if (errno == EPIPE || errno == ECONNRESET)
			log_debug("worker %d (pid %ld): gone before its control messages",
			    s->index, (long)s->pid);
		else
			log_warn("worker %d (pid %ld): sending control messages",
			    s->index, (long)s->pid);
		return -1;
	}
	return 0;
}

void
slot_control(struct worker_slot *s, enum channel_type type)
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
	slot_flush(s);
}

void
slot_reopen(struct worker_slot *s, enum channel_log log, int fd)
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
	slot_flush(s);
}
