/*
 * client.h — one client connection inside a worker, and the worker itself.
 */
#ifndef HFTPD_CLIENT_H
#define HFTPD_CLIENT_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "access.h"
#include "buffer.h"
#include "config.h"
#include "files.h"
#include "request.h"

#define CLIENT_IN_CAP       (64 * 1024)
#define CLIENT_OUT_CAP      (256 * 1024)
/* Requests are read only while less than this is queued for the client. */
#define CLIENT_OUT_HIGH     (CLIENT_OUT_CAP - 4096)
/* File bytes per framing step (a multiple of 3 for base64). */
#define CLIENT_CHUNK        (144 * 1024)

enum client_state {
	CLIENT_READING,     /* parsing requests (idle or mid-line) */
	CLIENT_STREAMING,   /* a response body is being produced */
	CLIENT_CLOSING,     /* flush what is owed, then close (quit, fatal, EOF) */
	CLIENT_CLOSED       /* to be freed by the worker */
};

enum stream_kind { STREAM_NONE, STREAM_BASE64, STREAM_RAW, STREAM_FRAGMENTS, STREAM_MEMORY };

struct stream {
	enum stream_kind kind;
	bool             done;      /* body complete: end it after accounting */
	int              fd;
	uint64_t         offset;
	uint64_t         remaining;
	char            *mem;       /* STREAM_MEMORY: owned block */
	size_t           memlen;
	size_t           mempos;
	struct access_pending *access;  /* while logging: the request it answers */
	unsigned char   *map;       /* mapped view of the file: window or whole */
	size_t           maplen;
	uint64_t         mapoff;
	struct file_map *shared;    /* map belongs to the worker's cache */
	dev_t            dev;       /* the file, as fstat saw it at open */
	ino_t            ino;
	uint64_t         filesize;
};

/* A streamed response's access-log line, completed when the body ends. */
struct access_pending {
	struct timespec start;
	uint64_t        bytes;
	char            peer[80];
	char            request[ACCESS_REQUEST_MAX + 1];
};

struct worker;
struct file_map;

struct client {
	int                   fd;
	int                   slot;         /* index in the worker's poll set */
	enum client_state     state;
	bool                  peer_eof;     /* the client shut down its side */
	int                   status;       /* of the last response begun */
	uint64_t              id;
	uint64_t              last_active;  /* worker->now_ms of the last byte */
	struct buffer         in;           /* allocated while holding bytes */
	struct buffer         out;
	struct stream         stream;
	struct request_parser parser;
	struct worker        *worker;
};

struct worker {
	const struct config  *conf;
	unsigned              gen;
	int                   chan;
	/* [0] channel, [1..nhot] hot clients, [nhot+1..nclients] cold ones */
	struct pollfd        *pfd;
	struct client       **clients;      /* parallel to pfd */
	int                   nclients;
	int                   nhot;
	uint64_t              now_ns;       /* the same in nanoseconds */
	uint64_t              scan_ns;      /* smoothed cost of a full poll */
	uint64_t              next_scan_ns; /* when the cold clients are due */
	int                   maxclients;
	uint64_t              received;     /* descriptors from the master */
	uint64_t              unreported_closes; /* since the last LOAD sent */
	uint64_t              reported_ns;
	bool                  draining;
	bool                  stopping;
	struct files          files;
	unsigned char        *scratch;      /* CLIENT_CHUNK bytes */
	char                **in_pool;      /* free input blocks */
	int                   in_pooled;
	char                **out_pool;     /* free output blocks */
	int                   out_pooled;
	uint64_t              now_ms;       /* monotonic, read once per turn */
	uint64_t              turn;         /* poll turns so far */
};

/* client.c */
struct client *client_new(struct worker *w, int fd, uint64_t id);
void client_free(struct client *c);
/* One poll turn for c given its revents; afterwards c->state may be CLOSED. */
void client_turn(struct client *c, short revents);
short client_events(const struct client *c);
void client_set_state(struct client *c, enum client_state state);
int  client_out_reserve(struct client *c);
void client_idle_check(struct client *c);
/* Owed nothing, and no bytes either way for seconds. */
bool client_quiet(const struct client *c, int seconds);

/* commands.c */
void commands_dispatch(struct client *c);
void commands_fatal(struct client *c, int status);

/* framing.c */
/* Produces more of the body into c->out: 0 progress/done, -1 broken. */
int  framing_fill(struct client *c);
void framing_end(struct client *c);
void framing_init(void);
/* Drops cached file mappings unused for a while (once a second). */
void framing_maps_sweep(uint64_t now_ms);
void framing_maps_close(void);
/* Raw bodies past the first chunk: bytes sent / -1. */
long framing_send_raw(struct client *c);

/* worker.c */
#include "worker.h"
char *worker_block_get(struct worker *w, int out);
void  worker_block_put(struct worker *w, int out, char *block);

#endif
