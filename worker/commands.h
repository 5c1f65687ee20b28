/*
 * commands.h — the HFTP command table: each row names a command, the kinds
 * of its arguments (for the parser) and the handler that answers it.  A
 * handler takes the parsed line and a small context and returns a reply;
 * it knows no connection: the client applies the reply.
 */
#ifndef HFTPD_COMMANDS_H
#define HFTPD_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "files.h"
#include "protocol.h"
#include "request.h"
#include "stream.h"

struct config;

/* What a handler may use: named, nothing else. */
struct commands_ctx {
	struct files        *files;     /* the served directory */
	const struct config *conf;      /* slice_encoding */
	uint64_t             turn;      /* the poll turn: one directory check per turn */
	uint64_t             id;        /* the connection: log lines */
	uint64_t             recvs;     /* the worker's receives so far: the cache drains
	                                 * its events when this moved (files_sync) */
};

/* What follows the status line. */
enum commands_body {
	COMMANDS_BODY_NONE,
	COMMANDS_BODY_TEXT,     /* text[0..len): bytes appended to the queue */
	COMMANDS_BODY_SLICE,    /* a stream of a slice of an open file */
	COMMANDS_BODY_LISTING   /* a stream of the listing's names */
};

/* A small body's room: help's lines, or a size and its CRLF. */
#define COMMANDS_TEXT_MAX 96

struct commands_reply {
	enum status          status;
	bool                 close;     /* quit: close once what is owed is flushed */
	enum commands_body   body;
	size_t               len;
	char                 text[COMMANDS_TEXT_MAX];
	struct {                        /* COMMANDS_BODY_SLICE: the fd is the reply's
	                                   (files_borrow's: given back, never closed) */
		enum stream_kind kind;
		int              fd;
		struct stat      st;
		uint64_t         offset;
		uint64_t         size;
	}                    slice;
	struct files_listing listing;   /* COMMANDS_BODY_LISTING: the reply's */
};

/*
 * Answers the complete request line p holds: *r is the reply.  A reply
 * with a body other than text owns what it describes (an open file, a
 * listing) until the client starts its stream.
 */
void commands_run(const struct request_parser *p, const struct commands_ctx *ctx,
    struct commands_reply *r);
/* The parser's shape function: the argument kinds of a known command. */
const struct request_shape *commands_shape(const char *cmd, size_t len);

#endif
