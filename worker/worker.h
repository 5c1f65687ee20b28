/*
 * worker.h — a worker process: its poll set over the channel to the master
 * and its clients, the served directory and the buffer pools its clients
 * borrow from, and the entry point the master calls after fork.
 */
#ifndef HFTPD_WORKER_H
#define HFTPD_WORKER_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "buffer.h"
#include "client.h"
#include "files.h"
#include "room.h"

struct config;
struct client;

struct worker {
	/* what clients see of the worker: conf, now_ms, turn, files, pools, chan, gen */
	struct client_ctx     ctx;
	/* [0] channel, [1..nhot] hot clients, [nhot+1..nclients] cold ones */
	struct pollfd        *pfd;
	struct client       **clients;      /* parallel to pfd */
	int                   nclients;
	int                   nhot;
	int                   maxclients;
	uint64_t              now_ns;       /* monotonic, read once per poll */
	/* ctx.now_ms: the same in milliseconds; ctx.turn: poll turns so far */
	uint64_t              scan_ns;      /* smoothed cost of a full poll */
	uint64_t              next_scan_ns; /* when the cold clients are due */
	bool                  quiet;        /* the last poll found nothing to do */
	uint64_t              received;     /* descriptors from the master */
	uint64_t              unreported_closes; /* since the last LOAD sent */
	uint64_t              reported_ns;
	uint64_t              reported_received; /* received, as last reported */
	uint32_t              evictable;    /* clients that may make room (client_evictable), counted when nearly full */
	bool                  load_changed; /* capacity or evictable to report */
	bool                  fd_lost;      /* descriptors lost: logged once per episode */
	bool                  no_slot;      /* clients refused for want of a slot: the same */
	bool                  draining;
	bool                  stopping;
	struct room_queue     waiting;      /* handed over when no slot could be freed */
	/* ids of closed connections not yet told the master (max_clients_per_address) */
	uint64_t             *closed_ids;
	size_t                nclosed;
	size_t                closed_cap;
	uint64_t              closed_sent_ns;
	bool                  closed_lost;  /* out of memory: logged once */
};

/*
 * Serves clients handed over chan until told to stop; the exit status.
 * access_fd is the access log the master opened (-1: off); the worker
 * never opens a log itself: fresh descriptors come with REOPEN.
 */
int worker_main(const struct config *conf, unsigned gen, int chan, int access_fd);

#endif
