/*
 * client.h — one client connection inside a worker: its buffers, its
 * parser, the response body it is producing, its deadlines, and the one
 * state machine that says what it is doing.
 *
 *   PROXY --header--> READING --slice/listing--> STREAMING --body done--> READING
 *     \--bad, late--> CLOSED |  \--quit, 1xx, EOF, broken body----> CLOSING --flushed--> CLOSED
 *                            |                                 \--unread input--> LINGERING --> CLOSED
 *                            \--a deadline passed (idle, request, send)----------------------> CLOSED
 *
 * PROXY is the first state only on listeners marked proxy_protocol: the
 * header from the load balancer, then the requests behind it.
 *
 * Only client_set_state() changes the state; leaving STREAMING ends the
 * stream and writes the response's access-log line.  LINGERING (as nginx's
 * lingering close): the response is flushed and the write side shut down,
 * input is read and dropped until the client closes, for a bounded time and
 * number of bytes, so closing with unread input cannot reset the connection
 * and destroy the response the client has not read yet.
 */
#ifndef HFTPD_CLIENT_H
#define HFTPD_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "access.h"
#include "buffer.h"
#include "files.h"
#include "protocol.h"
#include "request.h"
#include "stats.h"
#include "stream.h"
#include "tally.h"

#define CLIENT_IN_CAP       (64 * 1024)
#define CLIENT_OUT_CAP      (256 * 1024)
/* Requests are read only while less than this is queued for the client. */
#define CLIENT_OUT_HIGH     (CLIENT_OUT_CAP - 4096)
/* Lingering close: input dropped for at most this long, and this much. */
#define CLIENT_LINGER_MS    5000
#define CLIENT_LINGER_BYTES (1u << 20)
/*
 * A balancer sends its PROXY header with the connection; one that has not
 * within this is closed (checked by the once-a-second sweep, so up to a
 * second later).
 */
#define CLIENT_PROXY_TIMEOUT_MS 3000
/*
 * A partial request line arriving at under 1 / CLIENT_CRAWL_SHARE of
 * request_min_rate may be closed to make room, like an idle client: an
 * honest client sending at the minimum rate is four times above it.
 */
#define CLIENT_CRAWL_SHARE 4
/*
 * limit_rate: the budget a throttled connection waits for before it is
 * polled for output again (a tenth of a second's worth, at most this).
 */
#define CLIENT_LIMIT_CHUNK_MAX (64u * 1024)

enum client_state {
	CLIENT_PROXY,       /* waiting for the PROXY header (proxy_protocol listeners) */
	CLIENT_READING,     /* parsing requests (idle or mid-line) */
	CLIENT_STREAMING,   /* a response body is being produced */
	CLIENT_CLOSING,     /* flush what is owed, then close (quit, fatal, EOF) */
	CLIENT_LINGERING,   /* flushed, write side shut: drop input until EOF */
	CLIENT_CLOSED       /* to be freed by the worker */
};

/* Why a client was closed by a deadline (see client_deadline_check). */
enum client_expiry {
	CLIENT_EXPIRY_NONE,
	CLIENT_EXPIRY_IDLE,     /* client_timeout: nothing sent, nothing owed */
	CLIENT_EXPIRY_REQUEST,  /* request_timeout: a request line not finished */
	CLIENT_EXPIRY_SEND,     /* send_timeout: owed bytes, none read */
	CLIENT_EXPIRY_LINGER,   /* a lingering close ran out of time */
	CLIENT_EXPIRY_PROXY,    /* the PROXY header did not come in time */
	CLIENT_EXPIRY_KINDS
};

struct config;

/*
 * What a worker lends its clients, and all a client sees of it: the
 * config, the turn's clock, the served directory, the pools its buffers
 * borrow from, and the channel a PROXY header's address is reported on.
 * The worker owns it (sets the clock, opens the directory and the pools);
 * a unit test can make one without a worker.
 */
struct client_ctx {
	const struct config  *conf;
	uint64_t              now_ms;       /* monotonic, read once per poll */
	uint64_t              now_ns;       /* the same, in ns (access-log durations) */
	uint64_t              turn;         /* poll turns so far */
	uint64_t              recvs;        /* receives of request bytes so far */
	struct files          files;
	struct buffer_pool    in_pool;      /* input blocks of idle-looking clients */
	struct buffer_pool    out_pool;
	int                   chan;         /* to the master: PEER */
	unsigned              gen;
};

struct client {
	int                    fd;
	int                    slot;        /* index in the worker's poll set */
	enum client_state      state;
	enum status            status;      /* of the last response begun */
	uint32_t               send_queued;     /* socket send queue at the last sweep */
	/* the flags together: the struct lives in every idle connection */
	bool                   peer_eof;    /* the client shut down its side */
	bool                   kernel_unsent;   /* sent since the sweep last saw the queue empty */
	bool                   rate_short;      /* a window drained below the minimum */
	bool                   unread_input;    /* CLOSING left request bytes unread */
	bool                   read_filled;     /* the last read filled the input block */
	bool                   received;        /* client_receive read this turn */
	uint64_t               id;
	uint64_t               last_active; /* ctx->now_ms of the last byte */
	uint64_t               request_started; /* ms: a partial line's first byte, 0 none */
	uint64_t               send_progress;   /* ms: last byte sent or drained, or response begun */
	uint64_t               sent;            /* bytes written to the socket */
	/* send_min_rate: a window of send_timeout, from the sweep's samples */
	uint64_t               rate_mark_ms;    /* the window began, 0 = not yet */
	uint64_t               rate_mark_drained; /* bytes the client had read then */
	/* limit_rate: a budget counted from when bytes became owed */
	uint64_t               limit_start_ms;
	uint64_t               limit_base;      /* sent, then */
	uint64_t               wake_ms;         /* no POLLOUT before this (budget spent) */
	uint64_t               linger_until;    /* ms: LINGERING ends then */
	uint64_t               lingered;        /* bytes dropped while LINGERING */
	uint64_t               proxy_deadline_ms; /* while PROXY: header complete by */
	char                  *peer;        /* ADDR:PORT for the logs, made when first needed */
	struct buffer          in;          /* a pool block while holding bytes */
	struct buffer          out;
	struct stream          stream;      /* while STREAMING */
	struct stats_out       stats_out;   /* framing of the body bytes queued */
	struct access_pending  access;      /* the response under way, when logging */
	struct request_parser  parser;
	struct client_ctx     *ctx;
};

/* proxy: the connection starts with a PROXY header (state CLIENT_PROXY). */
struct client *client_new(struct client_ctx *ctx, int fd, uint64_t id, bool proxy);
void client_free(struct client *c);
/* One poll turn for c given its revents; afterwards c->state may be CLOSED. */
void client_turn(struct client *c, short revents);
/*
 * The receive of a turn, done ahead for every ready client so their
 * answers follow all of the turn's receives (one drain of the metadata
 * cache's events, not one a client); client_turn then does not read
 * again.  Afterwards c->state may be CLOSED.
 */
void client_receive(struct client *c, short revents);
/* The poll events c waits for now. */
short client_events(const struct client *c);
void client_set_state(struct client *c, enum client_state state);
/*
 * Closes c at once with a reset (nothing more is sent, the kernel drops
 * its queue), counting why in the tally: for connections refused, cut by
 * a deadline or too slow, and closed to make room.
 */
void client_abort(struct client *c, enum tally_kind why);
const char *client_state_name(enum client_state state);
/*
 * The one writer of status lines: queues "CODE TEXT\r\n" and records the
 * status for the access log; a fatal status also starts closing.
 */
void client_status(struct client *c, enum status status);
/*
 * Closes c when one of its deadlines passed (client_timeout, request_timeout,
 * send_timeout or send_min_rate, the lingering close's, the PROXY
 * header's), counts it in the tally, and says which.  Expiries reset the
 * connection (the kernel drops what it still queues); an ended lingering
 * close closes gracefully.
 */
enum client_expiry client_deadline_check(struct client *c);
/*
 * Idle: reading, owed nothing, no partial request, and quiet for quiet_ms.
 */
bool client_idle(const struct client *c, uint64_t quiet_ms);
/*
 * A client that may be closed to make room for a new one: idle for
 * quiet_ms, or reading a partial request line for at least quiet_ms at
 * under a CLIENT_CRAWL_SHARE-th of request_min_rate (no better than idle).
 */
bool client_evictable(const struct client *c, uint64_t quiet_ms);
/* No bytes either way for seconds, owed or not. */
bool client_stalled(const struct client *c, int seconds);

#endif
