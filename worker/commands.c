/*
 * commands.c — the HFTP command table and its handlers.  A row names a
 * command, the kinds of its arguments (which also tell the parser how much
 * of each to keep) and its handler.  A handler gets a complete, parsed
 * request line and a context (the served directory, the config, the turn)
 * and returns a reply: a status and a small body (a size, the help lines),
 * or the description of a stream (an open file's slice, a listing).  It
 * knows no connection: the client applies the reply.
 *
 * Order of checks (docs/PROTOCOL.md): command known (200) -> argument count
 * and form (201) -> file exists and is servable (202) -> range (203) ->
 * readable (199).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "log.h"

typedef void commands_handler(const struct request_parser *, const struct commands_ctx *,
    struct commands_reply *);

struct command {
	const char           *name;
	int                   argc_min;     /* arguments after the command */
	struct request_shape  shape;        /* argc_max = shape.nargs */
	commands_handler     *handler;
};

static commands_handler commands_listing, commands_metadata, commands_slice,
    commands_help, commands_quit;

static const struct command commands_table[] = {
	{ "get_file_listing", 0, { 0, { REQUEST_ARG_NONE } }, commands_listing },
	{ "get_metadata",     1, { 1, { REQUEST_ARG_NAME } }, commands_metadata },
	{ "get_slice",        3, { 4, { REQUEST_ARG_NAME, REQUEST_ARG_NUMBER,
	    REQUEST_ARG_NUMBER, REQUEST_ARG_KEYWORD } }, commands_slice },
	{ "help",             0, { 0, { REQUEST_ARG_NONE } }, commands_help },
	{ "quit",             0, { 0, { REQUEST_ARG_NONE } }, commands_quit },
};
#define COMMANDS_COUNT (sizeof(commands_table) / sizeof(commands_table[0]))

/* The keyword get_slice takes last for the raw framing. */
#define COMMANDS_RAW "raw"

static const struct command *
commands_find(const char *name, size_t len)
{
	for (size_t i = 0; i < COMMANDS_COUNT; i++) {
		/* by length too: the text may hold a NUL */
		if (len == strlen(commands_table[i].name) && strcmp(commands_table[i].name, name) == 0)
			return &commands_table[i];
	}
	return NULL;
}

const struct request_shape *
commands_shape(const char *cmd, size_t len)
{
	const struct command *k = commands_find(cmd, len);

	return k != NULL ? &k->shape : NULL;
}

/*
 * The line's command: the parser looked it up once already (commands_shape
 * gave it the shape, which sits in the command's row); else by name.
 */
static const struct command *
commands_of_line(const struct request_parser *p)
{
	const struct request_elem *cmd = &p->elem[0];

	if (p->shape_of == commands_shape && p->shape_known)
		return p->shape == NULL ? NULL : (const struct command *)(const void *)
		    ((const char *)p->shape - offsetof(struct command, shape));
	if (cmd->len == 0 || cmd->truncated)
		return NULL;
	return commands_find(cmd->text, (size_t)cmd->len);
}

/* A reply of a status alone. */
static void
commands_status(struct commands_reply *r, enum status status)
{
	r->status = status;
	r->body = COMMANDS_BODY_NONE;
}

void
commands_run(const struct request_parser *p, const struct commands_ctx *ctx,
    struct commands_reply *r)
{
	const struct command *k = commands_of_line(p);
	int                   nargs = p->argc - 1;

	r->close = false;
	r->len = 0;
	if (k == NULL)
		commands_status(r, STATUS_NO_SUCH_COMMAND);
	else if (nargs < k->argc_min || nargs > k->shape.nargs)
		commands_status(r, STATUS_INVALID_ARGUMENTS);
	else
		k->handler(p, ctx, r);
}

static void
commands_listing(const struct request_parser *p, const struct commands_ctx *ctx,
    struct commands_reply *r)
{
	(void)p;
	files_sync(ctx->files, ctx->turn, ctx->recvs);
	if (files_list(ctx->files, &r->listing) == -1) {
		log_warn("client %" PRIu64 ": listing %s", ctx->id, ctx->files->path);
		commands_status(r, STATUS_INTERNAL_ERROR);
		return;
	}
	r->status = STATUS_OK;
	r->body = COMMANDS_BODY_LISTING;
}

/* A FILENAME element that names a servable file: 0 with *st; else -1 (202). */
static int
commands_stat(const struct commands_ctx *ctx, const struct request_elem *name,
    struct stat *st)
{
	files_sync(ctx->files, ctx->turn, ctx->recvs);
	/* Longer than any name the filesystem allows: no such file. */
	if (name->truncated || files_stat(ctx->files, name->text, st) == -1)
		return -1;
	return 0;
}

static void
commands_metadata(const struct request_parser *p, const struct commands_ctx *ctx,
    struct commands_reply *r)
{
	struct stat st;

	if (!p->elem[1].name_ok) {
		commands_status(r, STATUS_INVALID_ARGUMENTS);
		return;
	}
	if (commands_stat(ctx, &p->elem[1], &st) == -1) {
		commands_status(r, STATUS_FILE_NOT_FOUND);
		return;
	}
	r->len = protocol_decimal(r->text, (uint64_t)st.st_size);
	memcpy(r->text + r->len, "\r\n", 2);
	r->len += 2;
	r->status = STATUS_OK;
	r->body = COMMANDS_BODY_TEXT;
}

static bool
commands_out_of_range(uint64_t offset, uint64_t size, const struct stat *st)
{
	uint64_t filesize = (uint64_t)st->st_size;

	return offset > filesize || size > filesize - offset;
}

static bool
commands_slice_args_ok(const struct request_parser *p)
{
	const struct request_elem *keyword = &p->elem[4];

	return p->elem[1].name_ok && p->elem[2].digits_ok && p->elem[3].digits_ok &&
	    (p->argc == 4 || (keyword->len == strlen(COMMANDS_RAW) &&
	    strcmp(keyword->text, COMMANDS_RAW) == 0));
}

static enum stream_kind
commands_slice_kind(const struct commands_ctx *ctx, const struct request_parser *p)
{
	if (p->argc == 5)
		return STREAM_RAW;
	if (ctx->conf->slice_encoding == SLICE_FRAGMENTS)
		return STREAM_FRAGMENTS;
	return STREAM_BASE64;
}

/* Opens the file a slice reads: 0, or -1 with the reply's status set. */
static int
commands_slice_open(const struct commands_ctx *ctx, const char *name,
    struct commands_reply *r)
{
	if ((r->slice.fd = files_borrow(ctx->files, name, &r->slice.st)) != -1)
		return 0;
	if (errno == ENOENT) {          /* replaced since the stat */
		commands_status(r, STATUS_FILE_NOT_FOUND);
		return -1;
	}
	log_warn("client %" PRIu64 ": open %s", ctx->id, name);
	commands_status(r, STATUS_INTERNAL_ERROR);
	return -1;
}

static void
commands_slice(const struct request_parser *p, const struct commands_ctx *ctx,
    struct commands_reply *r)
{
	const struct request_elem *name = &p->elem[1], *off = &p->elem[2], *size = &p->elem[3];

	if (!commands_slice_args_ok(p)) {
		commands_status(r, STATUS_INVALID_ARGUMENTS);
		return;
	}
	if (commands_stat(ctx, name, &r->slice.st) == -1) {
		commands_status(r, STATUS_FILE_NOT_FOUND);
		return;
	}
	if (off->overflow || size->overflow ||
	    commands_out_of_range(off->value, size->value, &r->slice.st)) {
		commands_status(r, STATUS_BAD_OFFSET);
		return;
	}
	if (commands_slice_open(ctx, name->text, r) == -1)
		return;
	/* the file opened may differ from the one stat'ed: its own size counts */
	if (commands_out_of_range(off->value, size->value, &r->slice.st)) {
		files_give_back(r->slice.fd);
		commands_status(r, STATUS_BAD_OFFSET);
		return;
	}
	r->slice.kind = commands_slice_kind(ctx, p);
	r->slice.offset = off->value;
	r->slice.size = size->value;
	r->status = STATUS_OK;
	r->body = COMMANDS_BODY_SLICE;
}

static void
commands_help(const struct request_parser *p, const struct commands_ctx *ctx,
    struct commands_reply *r)
{
	size_t len, room;

	(void)p;
	(void)ctx;
	for (size_t i = 0; i < COMMANDS_COUNT; i++) {
		len = strlen(commands_table[i].name);
		room = sizeof(r->text) - r->len;
		if (len + 4 > room)     /* the table outgrew the text: a broken invariant */
			fatalx("commands: help does not fit its reply");
		memcpy(r->text + r->len, commands_table[i].name, len);
		memcpy(r->text + r->len + len, "\r\n", 2);
		r->len += len + 2;
	}
	memcpy(r->text + r->len, "\r\n", 2);
	r->len += 2;
	r->status = STATUS_OK;
	r->body = COMMANDS_BODY_TEXT;
}

static void
commands_quit(const struct request_parser *p, const struct commands_ctx *ctx,
    struct commands_reply *r)
{
	(void)p;
	(void)ctx;
	commands_status(r, STATUS_OK);
	r->close = true;
}
