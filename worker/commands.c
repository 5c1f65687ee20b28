/*
 * commands.c — the HFTP command table and its handlers.  A handler gets a
 * complete, parsed request line and answers it: a status line and small
 * bodies go straight into the output queue; file and listing bodies are
 * handed to framing.c as a stream.  Handlers never write to the socket.
 *
 * Order of checks (HFTP.md): command known (200) -> argument count and form
 * (201) -> file exists and is servable (202) -> range (203) -> readable (199).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "net.h"

struct command {
	const char *name;
	int         argc_min;       /* arguments after the command */
	int         argc_max;
	void      (*handler)(struct client *, const struct request_parser *);
};

static void commands_listing(struct client *, const struct request_parser *);
static void commands_metadata(struct client *, const struct request_parser *);
static void commands_slice(struct client *, const struct request_parser *);
static void commands_help(struct client *, const struct request_parser *);
static void commands_quit(struct client *, const struct request_parser *);

static const struct command commands_table[] = {
	{ "get_file_listing", 0, 0, commands_listing },
	{ "get_metadata",     1, 1, commands_metadata },
	{ "get_slice",        3, 4, commands_slice },
	{ "help",             0, 0, commands_help },
	{ "quit",             0, 0, commands_quit },
};

static const char *
commands_status_text(int status)
{
	switch (status) {
	case 0:   return "OK";
	case 100: return "BAD EOL";
	case 101: return "BAD REQUEST";
	case 199: return "INTERNAL SERVER ERROR";
	case 200: return "NO SUCH COMMAND";
	case 201: return "INVALID ARGUMENTS FOR COMMAND";
	case 202: return "FILE NOT FOUND";
	case 203: return "OFFSET EXCEEDS FILE SIZE";
	}
	return "INTERNAL SERVER ERROR";
}

/* Appends "CODE TEXT\r\n"; the caller made sure there is room. */
static void
commands_status(struct client *c, int status)
{
	c->status = status;
	if (buffer_printf(&c->out, "%d %s\r\n", status, commands_status_text(status)) == -1)
		log_warnx("client %" PRIu64 ": output queue full", c->id);
}

/*
 * The access-log line of the response just begun: written now, or when its
 * body ends if one is streaming.
 */
static void
commands_account(struct client *c, size_t queued_before, const struct timespec *start)
{
	struct access_pending *a;
	uint64_t               bytes = buffer_len(&c->out) - queued_before;

	if ((a = malloc(sizeof(*a))) == NULL)
		return;
	a->start = *start;
	a->bytes = bytes;
	net_peer_text(c->fd, a->peer, sizeof(a->peer));
	access_request_text(&c->parser, a->request, sizeof(a->request));
	if (c->stream.kind != STREAM_NONE) {
		c->stream.access = a;
		return;
	}
	access_record(a->peer, a->request, c->status, a->bytes, &a->start);
	free(a);
}

void
commands_fatal(struct client *c, int status)
{
	struct timespec start;
	size_t          before;

	if (client_out_reserve(c) == 0) {
		before = buffer_len(&c->out);
		clock_gettime(CLOCK_MONOTONIC, &start);
		commands_status(c, status);
		if (access_enabled())
			commands_account(c, before, &start);
	}
	client_set_state(c, CLIENT_CLOSING);
}

static void
commands_run(struct client *c)
{
	const struct request_parser *p = &c->parser;
	const struct request_elem   *cmd = &p->elem[0];
	int                          nargs = p->argc - 1;

	if (cmd->len > 0 && !cmd->truncated) {
		for (size_t i = 0; i < sizeof(commands_table) / sizeof(commands_table[0]); i++) {
			const struct command *k = &commands_table[i];
			/* by length too: the text may hold a NUL */
			if (cmd->len != strlen(k->name) || strcmp(k->name, cmd->text) != 0)
				continue;
			if (nargs < k->argc_min || nargs > k->argc_max) {
				commands_status(c, 201);
				return;
			}
			k->handler(c, p);
			return;
		}
	}
	commands_status(c, 200);
}

void
commands_dispatch(struct client *c)
{
	struct timespec start;
	size_t          before;

	if (client_out_reserve(c) == -1) {
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
	if (!access_enabled()) {
		commands_run(c);
		return;
	}
	before = buffer_len(&c->out);
	clock_gettime(CLOCK_MONOTONIC, &start);
	commands_run(c);
	if (c->state != CLIENT_CLOSED && c->out.data != NULL)
		commands_account(c, before, &start);
}

static void
commands_listing(struct client *c, const struct request_parser *p)
{
	size_t len;
	char  *body;

	(void)p;
	files_refresh_turn(&c->worker->files, c->worker->turn);
	if ((body = files_listing(&c->worker->files, &len)) == NULL) {
		log_warnx("client %" PRIu64 ": listing: out of memory", c->id);
		commands_fatal(c, 199);
		return;
	}
	c->stream.kind = STREAM_MEMORY;
	c->stream.mem = body;
	c->stream.memlen = len;
	c->stream.mempos = 0;
	client_set_state(c, CLIENT_STREAMING);
}

/* A FILENAME element that names a servable file: 0 with *st; else 202 sent. */
static int
commands_find(struct client *c, const struct request_elem *name, struct stat *st)
{
	files_refresh_turn(&c->worker->files, c->worker->turn);
	/* Longer than any name the filesystem allows: no such file. */
	if (name->truncated || files_stat(&c->worker->files, name->text, st) == -1) {
		commands_status(c, 202);
		return -1;
	}
	return 0;
}

static void
commands_metadata(struct client *c, const struct request_parser *p)
{
	struct stat st;

	if (!p->elem[1].name_ok) {
		commands_status(c, 201);
		return;
	}
	if (commands_find(c, &p->elem[1], &st) == -1)
		return;
	buffer_printf(&c->out, "0 OK\r\n%jd\r\n", (intmax_t)st.st_size);
}

static int
commands_out_of_range(uint64_t offset, uint64_t size, const struct stat *st)
{
	uint64_t filesize = (uint64_t)st->st_size;

	return offset > filesize || size > filesize - offset;
}

static void
commands_slice(struct client *c, const struct request_parser *p)
{
	const struct request_elem *name = &p->elem[1], *off = &p->elem[2], *size = &p->elem[3];
	struct stat                st;
	enum stream_kind           kind;
	int                        fd;

	if (!name->name_ok || !off->digits_ok || !size->digits_ok ||
	    (p->argc == 5 && (p->elem[4].len != 3 || strcmp(p->elem[4].text, "raw") != 0))) {
		commands_status(c, 201);
		return;
	}
	if (commands_find(c, name, &st) == -1)
		return;
	if (off->overflow || size->overflow || commands_out_of_range(off->value, size->value, &st)) {
		commands_status(c, 203);
		return;
	}
	if ((fd = files_open(&c->worker->files, name->text, &st)) == -1) {
		if (errno == ENOENT) {          /* replaced since the stat */
			commands_status(c, 202);
			return;
		}
		log_warn("client %" PRIu64 ": open %s", c->id, name->text);
		commands_fatal(c, 199);
		return;
	}
	if (commands_out_of_range(off->value, size->value, &st)) {
		close(fd);
		commands_status(c, 203);
		return;
	}
	if (p->argc == 5)
		kind = STREAM_RAW;
	else if (c->worker->conf->slice_encoding == SLICE_FRAGMENTS)
		kind = STREAM_FRAGMENTS;
	else
		kind = STREAM_BASE64;

	commands_status(c, 0);
	if (kind == STREAM_RAW)
		buffer_printf(&c->out, "Content-Length: %" PRIu64 "\r\n\r\n", size->value);
	if (size->value == 0) {
		close(fd);
		if (kind == STREAM_BASE64)
			buffer_append(&c->out, "\r\n", 2);
		else if (kind == STREAM_FRAGMENTS)
			buffer_append(&c->out, "0 \r\n", 4);
		return;
	}
	c->stream.kind = kind;
	c->stream.fd = fd;
	c->stream.dev = st.st_dev;
	c->stream.ino = st.st_ino;
	c->stream.filesize = (uint64_t)st.st_size;
	c->stream.offset = off->value;
	c->stream.remaining = size->value;
	client_set_state(c, CLIENT_STREAMING);
}

static void
commands_help(struct client *c, const struct request_parser *p)
{
	(void)p;
	commands_status(c, 0);
	for (size_t i = 0; i < sizeof(commands_table) / sizeof(commands_table[0]); i++)
		buffer_printf(&c->out, "%s\r\n", commands_table[i].name);
	buffer_append(&c->out, "\r\n", 2);
}

static void
commands_quit(struct client *c, const struct request_parser *p)
{
	(void)p;
	commands_status(c, 0);
	client_set_state(c, CLIENT_CLOSING);
}
