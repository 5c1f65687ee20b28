/*
 * room.h — a full worker's room for newcomers: which of its clients to
 * close (reset) for one, and the waiting room of clients handed over when
 * none could be.  Functions over the worker's client array and a small
 * queue: no poll set, no channel.
 */
#ifndef HFTPD_ROOM_H
#define HFTPD_ROOM_H

#include <stdbool.h>
#include <stdint.h>

struct client;

/*
 * A full worker closes its evictable client quiet longest to make room
 * for a new one, as nginx reuses keep-alive connections: only clients
 * quiet this long count as idle, and a partial request only when it has
 * been crawling this long far below request_min_rate (client_evictable);
 * never a client owed bytes.
 */
#define ROOM_EVICT_QUIET_MS 1000

/*
 * A client handed over when no slot could be freed: the master counted an
 * evictable client that has woken since the sweep counted it.  It waits
 * here, unpolled, for the next free slot, as it would in the backlog:
 * no client is refused.  Bounded by the descriptors a worker keeps in
 * reserve (CONFIG_FDS_RESERVE).
 */
#define ROOM_WAITING_MAX 8

struct room_waiting {
	int      fd;
	uint64_t id;
	bool     proxy;
};

/* First come, first in. */
struct room_queue {
	struct room_waiting entry[ROOM_WAITING_MAX];
	int                 n;
};

/* The evictable client quiet longest among clients[1..n]: its index; 0 when none. */
int      room_victim(struct client *const *clients, int n);
/* How many of clients[1..n] could be closed to make room. */
uint32_t room_evictable(struct client *const *clients, int n);
/* Queues a newcomer: 0; -1 when the waiting room is full. */
int      room_wait(struct room_queue *q, int fd, uint64_t id, bool proxy);
/* Takes the first waiting client into *out: false when none waits. */
bool     room_next(struct room_queue *q, struct room_waiting *out);

#endif
