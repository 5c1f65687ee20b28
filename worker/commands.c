/*
 * commands.c — the HFTP command table and its handlers.  A row names a
 * command, the kinds of its arguments (which also tell the parser how much
 * of each to keep) and its handler.  A handler gets a complete, parsed
 * request line and answers it: its status through client_status(), small
 * bodies (a size, the help lines) into the output queue, and file and
 * listing bodies as a stream.  Handlers never write to the socket.
 *
 * Order of checks (docs/PROTOCOL.md): command known (200) -> argument count
 * and form (201) -> file exists and is servable (202) -> range (203) ->
 * readable (199).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "commands.h"
#include "config.h"
#include "log.h"
#include "worker.h"

struct command {
	const char           *name;
	int                   argc_min;     /* arguments after the command */
	struct request_shape  shape;        /* argc_max = shape.nargs */
	void                (*handler)(struct client *, const struct request_parser *);
};

static void commands_listing(struct client *, const struct request_parser *);
static void commands_metadata(struct client *, const struct request_parser *);
static void commands_slice(struct client *, const struct request_parser *);
static void commands_help(struct client *, const struct request_parser *);
static void commands_quit(struct client *, const struct request_parser *);

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

void
commands_run(struct client *c)
{
	const struct request_parser *p = &c->parser;
	const struct request_elem   *cmd = &p->elem[0];
	const struct command        *k = NULL;
	int                          nargs = p->argc - 1;

	if (cmd->len > 0 && !cmd->truncated)
		k = commands_find(cmd->text, (size_t)cmd->len);
	if (k == NULL)
		client_status(c, STATUS_NO_SUCH_COMMAND);
	else if (nargs < k->argc_min || nargs > k->shape.nargs)
		client_status(c, STATUS_INVALID_ARGUMENTS);
	else
		k->handler(c, p);
}

static void
commands_listing(struct client *c, const struct request_parser *p)
{
	struct files_listing listing;

	(void)p;
	files_refresh_turn(&c->worker->files, c->worker->turn);
	if (files_list(&c->worker->files, &listing) == -1) {
		log_warn("client %" PRIu64 ": listing %s", c->id, c->worker->files.path);
		client_status(c, STATUS_INTERNAL_ERROR);
		return;
	}
	client_status(c, STATUS_OK);
	stream_start_listing(&c->stream, &listing);
	client_set_state(c, CLIENT_STREAMING);
}

/* A FILENAME element that names a servable file: 0 with *st; else 202 answered. */
static int
commands_stat(struct client *c, const struct request_elem *name, struct stat *st)
{
	files_refresh_turn(&c->worker->files, c->worker->turn);
	/* Longer than any name the filesystem allows: no such file. */
	if (name->truncated || files_stat(&c->worker->files, name->text, st) == -1) {
		client_status(c, STATUS_FILE_NOT_FOUND);
		return -1;
	}
	return 0;
}

static void
commands_metadata(struct client *c, const struct request_parser *p)
{
	struct stat st;

	if (!p->elem[1].name_ok) {
		client_status(c, STATUS_INVALID_ARGUMENTS);
		return;
	}
	if (commands_stat(c, &p->elem[1], &st) == -1)
		return;
	client_status(c, STATUS_OK);
	buffer_printf(&c->out, "%jd\r\n", (intmax_t)st.st_size);
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
commands_slice_kind(const struct client *c, const struct request_parser *p)
{
	if (p->argc == 5)
		return STREAM_RAW;
	if (c->worker->conf->slice_encoding == SLICE_FRAGMENTS)
		return STREAM_FRAGMENTS;
	return STREAM_BASE64;
}

static void
commands_slice(struct client *c, const struct request_parser *p)
{
	const struct request_elem *name = &p->elem[1], *off = &p->elem[2], *size = &p->elem[3];
	struct stat                st;
	int                        fd;

	if (!commands_slice_args_ok(p)) {
		client_status(c, STATUS_INVALID_ARGUMENTS);
		return;
	}
	if (commands_stat(c, name, &st) == -1)
		return;
	if (off->overflow || size->overflow || commands_out_of_range(off->value, size->value, &st)) {
		client_status(c, STATUS_BAD_OFFSET);
		return;
	}
	if ((fd = files_open(&c->worker->files, name->text, &st)) == -1) {
		if (errno == ENOENT) {          /* replaced since the stat */
			client_status(c, STATUS_FILE_NOT_FOUND);
			return;
		}
		log_warn("client %" PRIu64 ": open %s", c->id, name->text);
		client_status(c, STATUS_INTERNAL_ERROR);
		return;
	}
	if (commands_out_of_range(off->value, size->value, &st)) {
		close(fd);
		client_status(c, STATUS_BAD_OFFSET);
		return;
	}
	client_status(c, STATUS_OK);
	stream_start_slice(&c->stream, commands_slice_kind(c, p), fd, &st, off->value, size->value);
	client_set_state(c, CLIENT_STREAMING);
}

static void
commands_help(struct client *c, const struct request_parser *p)
{
	(void)p;
	client_status(c, STATUS_OK);
	for (size_t i = 0; i < COMMANDS_COUNT; i++)
		buffer_printf(&c->out, "%s\r\n", commands_table[i].name);
	buffer_append(&c->out, "\r\n", 2);
}

static void
commands_quit(struct client *c, const struct request_parser *p)
{
	(void)p;
	client_status(c, STATUS_OK);
	client_set_state(c, CLIENT_CLOSING);
}
