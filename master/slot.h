/*
 * slot.h — one worker as the master sees it: struct worker_slot and the
 * verbs that change it.  slot.c is the only file that writes a slot's
 * fields; every other master file reads them and calls these verbs.
 *
 * A slot's life is one state machine (docs/DESIGN.md draws it):
 *
 *   FREE --slot_started--> STARTING --READY--> READY
 *   STARTING, READY --slot_drain--> DRAINING (DRAIN queued)
 *   STARTING, READY, DRAINING --slot_stop, or DRAINING's deadline-->
 *       STOPPING (STOP queued, SIGTERM sent)
 *   STOPPING --its deadline (slot_tick)--> KILLED (SIGKILL sent)
 *   any state but FREE --slot_reaped--> FREE
 *
 * Its channel may close in any state (the worker exits, or a send to it
 * fails for good): it then takes nothing and waits for its reap.
 */
#ifndef HFTPD_SLOT_H
#define HFTPD_SLOT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "channel.h"

enum slot_state {
	SLOT_FREE,          /* no worker: never used, or reaped */
	SLOT_STARTING,      /* forked; its READY not yet in */
	SLOT_READY,         /* serving; takes clients once its LOAD says how many */
	SLOT_DRAINING,      /* DRAIN queued: finishing its clients; STOP at the deadline */
	SLOT_STOPPING,      /* STOP queued and SIGTERM sent; SIGKILL at the deadline */
	SLOT_KILLED,        /* SIGKILL sent; waiting to be reaped */
};

struct worker_slot {
	enum slot_state state;
	pid_t       pid;            /* 0 when FREE */
	int         chan;           /* -1 once closed */
	unsigned    gen;
	int         index;          /* position in its generation's pool */
	uint32_t    open;           /* as last reported */
	uint32_t    capacity;       /* as last reported; 0 until its first LOAD */
	uint32_t    evictable;      /* idle clients it would close for new ones */
	uint64_t    received;       /* as last reported */
	uint64_t    sent;           /* descriptors handed to it */
	uint64_t    unreceived_since_ms; /* oldest hand-off it has not reported, 0 none */
	uint64_t    handoff_failed; /* hand-off attempt in which a send to it failed */
	uint64_t    started_ms;
	uint64_t    deadline_ms;    /* DRAINING: STOP after; STOPPING: SIGKILL after */
	struct channel_queue out;   /* control messages waiting for room */
};

/* After STOP and SIGTERM, a worker has this long before SIGKILL. */
#define SLOT_STOP_GRACE_MS  1000
/*
 * A worker reports what it received within WORKER_LOAD_MS (10 ms): one that
 * leaves a hand-off unreported this long is not reading its channel
 * (stopped, stuck), and new clients go to the others meanwhile.
 */
#define SLOT_STALLED_MS     250

/* Life */
/* An empty slot (FREE, no channel: a zeroed one would name descriptor 0). */
void slot_init(struct worker_slot *s);
/* A worker was forked into s: STARTING. */
void slot_started(struct worker_slot *s, pid_t pid, int chan, unsigned gen, int index,
	    uint64_t now_ms);
/* Its READY arrived: STARTING -> READY (ignored in any other state). */
void slot_ready(struct worker_slot *s);
/* STARTING or READY -> DRAINING: DRAIN queued, STOP after timeout_s. */
void slot_drain(struct worker_slot *s, int timeout_s, uint64_t now_ms);
/* Any live state before STOPPING -> STOPPING: STOP queued, SIGTERM. */
void slot_stop(struct worker_slot *s, uint64_t now_ms);
/* The deadlines: DRAINING -> STOPPING, STOPPING -> KILLED. */
void slot_tick(struct worker_slot *s, uint64_t now_ms);
/* Closes the master's end of the channel (the worker is going away). */
void slot_channel_closed(struct worker_slot *s);
/* The worker was reaped: FREE, channel closed. */
void slot_reaped(struct worker_slot *s);

/* What it is */
bool slot_alive(const struct worker_slot *s);
/* Generation gen's, starting or ready, channel open: part of the pool. */
bool slot_serving(const struct worker_slot *s, unsigned gen);
bool slot_is_ready(const struct worker_slot *s);
/* Told to go (DRAINING, STOPPING, KILLED): its exit is expected. */
bool slot_leaving(const struct worker_slot *s);

/* Load and hand-offs */
/* A LOAD report; -1 (logged, nothing changed) when it is impossible. */
int  slot_load_report(struct worker_slot *s, const struct channel_load *load,
	    uint64_t now_ms);
/* Clients it holds: last reported open + sent but not yet received. */
uint64_t slot_load(const struct worker_slot *s);
/*
 * The one rule of "this worker can take a client": serving generation
 * gen, READY with its capacity known, below it or holding idle clients it
 * would close, no control message waiting (a CONN must not overtake it)
 * and not stalled.
 */
bool slot_can_take(const struct worker_slot *s, unsigned gen, uint64_t now_ms);
/*
 * How many clients it can take now (0 when !slot_can_take): its free
 * places plus the idle clients it would close, each hand-off using one.
 */
uint64_t slot_room(const struct worker_slot *s, unsigned gen, uint64_t now_ms);
/* Sends fd as connection conn; 0 (counted as sent) / -1 with errno. */
int  slot_give(struct worker_slot *s, const struct channel_conn *conn, int fd,
	    uint64_t now_ms);
/* Sends conns->n connections in one CONNS message; 0 (all counted as sent) / -1. */
int  slot_give_conns(struct worker_slot *s, const struct channel_conns *conns,
	    const int *fds, uint64_t now_ms);
/* Whether a send to it failed in hand-off attempt `attempt`; marks it. */
bool slot_tried(const struct worker_slot *s, uint64_t attempt);
void slot_give_failed(struct worker_slot *s, uint64_t attempt);
/* DROP connection id; 0 / -1 when the channel cannot take it now. */
int  slot_drop(struct worker_slot *s, uint64_t id);

/* Control messages: queued, never dropped */
void slot_control(struct worker_slot *s, enum channel_type type);
/* Queues a copy of fd as the worker's new error or access log. */
void slot_reopen(struct worker_slot *s, enum channel_log log, int fd);
/* Sends what waits as far as the channel takes; 0 / -1 logged. */
int  slot_flush(struct worker_slot *s);
bool slot_waiting(const struct worker_slot *s);

#endif
