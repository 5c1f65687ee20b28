/*
 * client.c — one connection's life inside a worker: the state enum and the
 * one function that changes it, reading requests, feeding the parser,
 * running the producers and the one send per poll turn.
 *
 *   READING --get_slice/listing--> STREAMING --body done--> READING
 *      |  \--quit, 1xx, EOF-----------------------------> CLOSING --flushed--> CLOSED
 *
 * Input and output blocks are borrowed from the worker's pools only while
 * they hold bytes, so an idle connection costs little more than this struct.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "log.h"

struct client *
client_new(struct worker *w, int fd, uint64_t id)
{
	struct client *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = fd;
	c->id = id;
	c->worker = w;
	c->state = CLIENT_READING;
	c->last_active = w->now_ms;
	c->stream.kind = STREAM_NONE;
	c->stream.fd = -1;
	request_init(&c->parser, w->conf->request_line_max);
	return c;
}

static void
client_release_in(struct client *c)
{
	if (c->in.data != NULL) {
		worker_block_put(c->worker, 0, c->in.data);
		c->in.data = NULL;
		c->in.start = c->in.end = c->in.cap = 0;
	}
}

static void
client_release_out(struct client *c)
{
	if (c->out.data != NULL) {
		worker_block_put(c->worker, 1, c->out.data);
		c->out.data = NULL;
		c->out.start = c->out.end = c->out.cap = 0;
	}
}

void
client_free(struct client *c)
{
	framing_end(c);
	client_release_in(c);
	client_release_out(c);
	if (c->fd != -1)
		close(c->fd);
	free(c);
}

void
client_set_state(struct client *c, enum client_state state)
{
	if (c->state == CLIENT_CLOSED || c->state == state)
		return;
	/* Once closing, only CLOSED follows: nothing more is read or answered. */
	if (c->state == CLIENT_CLOSING && state != CLIENT_CLOSED)
		return;
	if (state == CLIENT_CLOSED || state == CLIENT_CLOSING) {
		client_release_in(c);
		if (state == CLIENT_CLOSED)
			framing_end(c);
	}
	log_debug("client %" PRIu64 ": state %d -> %d", c->id, c->state, state);
	c->state = state;
}

/* Makes sure c->out exists; 0 / -1 (out of memory). */
int
client_out_reserve(struct client *c)
{
	if (c->out.data != NULL)
		return 0;
	if ((c->out.data = worker_block_get(c->worker, 1)) == NULL)
		return -1;
	c->out.cap = CLIENT_OUT_CAP;
	c->out.start = c->out.end = 0;
	return 0;
}

static bool
client_owes(const struct client *c)
{
	return (c->out.data != NULL && buffer_len(&c->out) > 0) || c->stream.kind != STREAM_NONE;
}

/* Reads what the socket has into c->in; false when the connection is gone. */
static bool
client_read(struct client *c)
{
	ssize_t n;

	if (c->in.data == NULL) {
		if ((c->in.data = worker_block_get(c->worker, 0)) == NULL) {
			log_warnx("client %" PRIu64 ": out of memory", c->id);
			return false;
		}
		c->in.cap = CLIENT_IN_CAP;
		c->in.start = c->in.end = 0;
	}
	if (buffer_room(&c->in) == 0)
		return true;
	n = recv(c->fd, buffer_tail(&c->in), buffer_room(&c->in), 0);
	if (n > 0) {
		buffer_commit(&c->in, (size_t)n);
		c->last_active = c->worker->now_ms;
		return true;
	}
	if (n == 0) {
		c->peer_eof = true;
		return true;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return true;
	if (errno != ECONNRESET)
		log_warn("client %" PRIu64 ": recv", c->id);
	return false;
}

/* Answers complete requests while the output queue has room. */
static void
client_process(struct client *c)
{
	enum request_result res;
	size_t              used;

	while (c->state == CLIENT_READING && c->in.data != NULL && buffer_len(&c->in) > 0) {
		if (client_out_reserve(c) == -1) {
			client_set_state(c, CLIENT_CLOSED);
			return;
		}
		if (buffer_len(&c->out) >= CLIENT_OUT_HIGH)
			return;
		used = request_feed(&c->parser, buffer_head(&c->in), buffer_len(&c->in), &res);
		buffer_consume(&c->in, used);
		if (res == REQUEST_LINE)
			commands_dispatch(c);
		else if (res == REQUEST_FATAL)
			commands_fatal(c, c->parser.status);
	}
	if (c->state == CLIENT_READING && c->in.data != NULL && buffer_len(&c->in) == 0)
		client_release_in(c);
}

/* Runs the parser and the body producer until neither can advance. */
static void
client_progress(struct client *c)
{
	for (;;) {
		client_process(c);
		if (c->state == CLIENT_CLOSED)
			return;
		if (c->stream.kind != STREAM_NONE) {
			if (framing_fill(c) == -1) {
				client_set_state(c, CLIENT_CLOSED);
				return;
			}
			if (c->stream.kind != STREAM_NONE)
				return;         /* body still coming: wait for room */
			if (c->state == CLIENT_STREAMING)
				client_set_state(c, CLIENT_READING);
			continue;
		}
		return;
	}
}

/* At most one send per turn; false when the connection is gone. */
static bool
client_send(struct client *c)
{
	ssize_t n;

	if (c->out.data != NULL && buffer_len(&c->out) > 0) {
		n = send(c->fd, buffer_head(&c->out), buffer_len(&c->out), MSG_NOSIGNAL);
		if (n >= 0) {
			buffer_consume(&c->out, (size_t)n);
			c->last_active = c->worker->now_ms;
		}
	} else if (c->stream.kind == STREAM_RAW) {
		n = framing_send_raw(c);
		if (n >= 0) {
			c->last_active = c->worker->now_ms;
			if (c->stream.kind == STREAM_NONE && c->state == CLIENT_STREAMING)
				client_set_state(c, CLIENT_READING);
		}
	} else
		return true;
	if (n >= 0)
		return true;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return true;
	if (errno != EPIPE && errno != ECONNRESET)
		log_warn("client %" PRIu64 ": send", c->id);
	return false;
}

void
client_turn(struct client *c, short revents)
{
	if (revents & (POLLERR | POLLNVAL)) {
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
	if ((revents & (POLLIN | POLLHUP)) && c->state == CLIENT_READING && !c->peer_eof) {
		if (!client_read(c)) {
			client_set_state(c, CLIENT_CLOSED);
			return;
		}
	}
	client_progress(c);
	if (c->state == CLIENT_CLOSED)
		return;
	if (!client_send(c)) {
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
	/* Room was made: prepare the next send so POLLOUT has work. */
	client_progress(c);
	if (c->state == CLIENT_CLOSED)
		return;

	if (!client_owes(c)) {
		if (c->out.data != NULL)
			client_release_out(c);
		if (c->state == CLIENT_CLOSING) {
			client_set_state(c, CLIENT_CLOSED);
			return;
		}
		/* Half-closed and every complete request answered: done. */
		if (c->peer_eof && c->state == CLIENT_READING &&
		    (c->in.data == NULL || buffer_len(&c->in) == 0)) {
			client_set_state(c, CLIENT_CLOSED);
			return;
		}
	}
}

short
client_events(const struct client *c)
{
	short ev = 0;

	if (client_owes(c))
		ev |= POLLOUT;
	if (c->state == CLIENT_READING && !c->peer_eof &&
	    (c->out.data == NULL || buffer_len(&c->out) < CLIENT_OUT_HIGH) &&
	    (c->in.data == NULL || buffer_len(&c->in) < c->in.cap))
		ev |= POLLIN;
	return ev;
}

bool
client_quiet(const struct client *c, int seconds)
{
	return !client_owes(c) && c->worker->now_ms - c->last_active >= (uint64_t)seconds * 1000;
}

void
client_idle_check(struct client *c)
{
	int timeout = c->worker->conf->client_timeout;

	/*
	 * Idle means no request bytes and nothing owed (HFTP.md): a client
	 * that is slow to read what it is owed is not idle.  TCP keepalive
	 * finds peers that vanished.
	 */
	if (timeout > 0 && client_quiet(c, timeout)) {
		log_debug("client %" PRIu64 ": idle for %ds; closing", c->id, timeout);
		client_set_state(c, CLIENT_CLOSED);
	}
}
