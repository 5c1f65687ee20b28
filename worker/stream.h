/*
 * stream.h — a response body being produced: which framing, which file (or
 * listing), how far it has gone.  One place starts, advances and ends a
 * stream; a new body kind is one case in stream.c.
 *
 *   base64     file bytes (multiples of 3) -> encoder -> queue; then "\r\n"
 *   raw        "Content-Length: N\r\n\r\n" + the bytes
 *   fragments  "LEN " + bytes + "\r\n" per chunk; "0 \r\n" to end
 *   listing    "NAME\r\n" per name; "\r\n" to end
 *
 * The producers never put more in the queue than it holds, so memory per
 * connection stays bounded whatever the size asked for.
 */
#ifndef HFTPD_STREAM_H
#define HFTPD_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "files.h"

/* File bytes per production step (a multiple of 3 for base64). */
#define STREAM_CHUNK        (144 * 1024)

enum stream_kind { STREAM_BASE64, STREAM_RAW, STREAM_FRAGMENTS, STREAM_LISTING };

enum stream_result {
	STREAM_MORE,        /* progress made or waiting for room: call again */
	STREAM_DONE,        /* the body is complete in the queue */
	STREAM_SHRANK,      /* the file ended before the slice: end the connection */
	STREAM_ERROR        /* a read failed (errno): end the connection */
};

struct stream {
	enum stream_kind     kind;
	bool                 started;   /* the framing's header is queued */
	int                  fd;        /* the file being read; -1 when none */
	uint64_t             offset;    /* next file byte to produce */
	uint64_t             remaining;
	struct files_listing listing;
	size_t               listed;    /* names already produced */
};

void stream_init(struct stream *s);
/* Starts a slice of the open file fd (files_borrow's, the stream's from now on). */
void stream_start_slice(struct stream *s, enum stream_kind kind, int fd,
	    uint64_t offset, uint64_t size);
/* Starts a listing (the stream takes the names). */
void stream_start_listing(struct stream *s, struct files_listing *listing);
/* Produces as much of the body into out as fits. */
enum stream_result stream_fill(struct stream *s, struct buffer *out);
/* Ends the stream, finished or not: gives the file back, frees the listing. */
void stream_end(struct stream *s);

#endif
