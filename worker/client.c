/*
 * client.c — one connection's life inside a worker (see client.h): reading
 * requests, feeding the parser, running the command table and the body
 * producer, and the one send per poll turn.
 *
 * Input and output blocks are borrowed from the worker's pools only while
 * they hold bytes, so an idle connection costs little more than this struct.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "commands.h"
#include "config.h"
#include "log.h"
#include "net.h"
#include "proxy.h"
#include "worker.h"

static const char *const client_state_names[] = {
	[CLIENT_PROXY]     = "proxy",
	[CLIENT_READING]   = "reading",
	[CLIENT_STREAMING] = "streaming",
	[CLIENT_CLOSING]   = "closing",
	[CLIENT_CLOSED]    = "closed",
};

const char *
client_state_name(enum client_state state)
{
	return client_state_names[state];
}

struct client *
client_new(struct worker *w, int fd, uint64_t id, bool proxy)
{
	struct client *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = fd;
	c->id = id;
	c->worker = w;
	c->state = proxy ? CLIENT_PROXY : CLIENT_READING;
	c->last_active = w->now_ms;
	c->proxy_deadline_ms = w->now_ms + CLIENT_PROXY_TIMEOUT_MS;
	net_peer_text(fd, c->peer, sizeof(c->peer));
	stream_init(&c->stream);
	request_init(&c->parser, w->conf->request_line_max, commands_shape);
	return c;
}

/* The response under way is complete (or abandoned): its access-log line. */
static void
client_response_end(struct client *c)
{
	access_end(c->access, c->status);
	c->access = NULL;
}

void
client_free(struct client *c)
{
	client_set_state(c, CLIENT_CLOSED);
	buffer_detach(&c->out, &c->worker->out_pool);
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
	log_debug("client %" PRIu64 ": %s -> %s", c->id,
	    client_state_name(c->state), client_state_name(state));
	if (c->state == CLIENT_STREAMING) {
		stream_end(&c->stream, c->worker->now_ms);
		client_response_end(c);
	}
	if (state == CLIENT_CLOSING || state == CLIENT_CLOSED)
		buffer_detach(&c->in, &c->worker->in_pool);
	c->state = state;
}

void
client_status(struct client *c, enum status status)
{
	c->status = status;
	if (buffer_printf(&c->out, "%d %s\r\n", (int)status, protocol_status_text(status)) == -1)
		log_warnx("client %" PRIu64 ": output queue full", c->id);
	if (protocol_status_fatal(status))
		client_set_state(c, CLIENT_CLOSING);
}

/* Bytes are owed while the queue holds some or a body is being produced. */
static bool
client_owes(const struct client *c)
{
	return buffer_len(&c->out) > 0 || c->state == CLIENT_STREAMING;
}

/* The states that take bytes from the socket. */
static bool
client_reads(const struct client *c)
{
	return c->state == CLIENT_READING || c->state == CLIENT_PROXY;
}

/* Reads what the socket has into c->in; false when the connection is gone. */
static bool
client_read(struct client *c)
{
	ssize_t n;

	if (c->in.data == NULL && buffer_attach(&c->in, &c->worker->in_pool) == -1) {
		log_warnx("client %" PRIu64 ": out of memory", c->id);
		return false;
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

/* Answers one complete line or a fatal parse, with its access-log record. */
static void
client_respond(struct client *c, enum request_result res)
{
	size_t before = buffer_len(&c->out);

	c->access = access_begin(c->peer, &c->parser);
	if (res == REQUEST_LINE)
		commands_run(c);
	else
		client_status(c, c->parser.status);
	access_count(c->access, buffer_len(&c->out) - before);
	if (c->state != CLIENT_STREAMING)
		client_response_end(c);
}

/*
 * PROXY: the header at the head of c->in.  Once complete, the client it
 * names is the peer the logs show, and the bytes after it are requests.  A
 * bad header closes the connection unanswered: it is not HFTP, and nothing
 * of it reaches the request parser.
 */
static void
client_proxy(struct client *c)
{
	struct proxy_header hdr;
	enum proxy_result   r;
	size_t              used;
	char                was[ACCESS_PEER_MAX];

	r = proxy_parse(buffer_head(&c->in), buffer_len(&c->in), &used, &hdr);
	if (r == PROXY_MORE && !c->peer_eof)
		return;
	if (r == PROXY_MORE && buffer_len(&c->in) == 0) {
		/* a bare connect and close, as port scanners and TCP checks do */
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
	if (r != PROXY_DONE) {
		log_warnx("client %" PRIu64 " (%s): PROXY header: %s; closing", c->id,
		    c->peer, r == PROXY_BAD ? hdr.error : "connection closed before its end");
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
	buffer_consume(&c->in, used);
	if (!hdr.local) {
		snprintf(was, sizeof(was), "%s", c->peer);
		net_addr_text((const struct sockaddr *)&hdr.src, c->peer, sizeof(c->peer));
		log_debug("client %" PRIu64 ": %s via %s (PROXY v%d)", c->id, c->peer, was,
		    hdr.version);
	}
	client_set_state(c, CLIENT_READING);
}

/* Answers complete requests while the output queue has room. */
static void
client_process(struct client *c)
{
	enum request_result res;
	size_t              used;

	if (c->state == CLIENT_PROXY)
		client_proxy(c);

	while (c->state == CLIENT_READING && buffer_len(&c->in) > 0) {
		if (c->out.data == NULL && buffer_attach(&c->out, &c->worker->out_pool) == -1) {
			log_warnx("client %" PRIu64 ": out of memory", c->id);
			client_set_state(c, CLIENT_CLOSED);
			return;
		}
		if (buffer_len(&c->out) >= CLIENT_OUT_HIGH)
			return;
		used = request_feed(&c->parser, buffer_head(&c->in), buffer_len(&c->in), &res);
		buffer_consume(&c->in, used);
		if (res != REQUEST_MORE)
			client_respond(c, res);
	}
	if (c->state == CLIENT_READING && c->in.data != NULL && buffer_len(&c->in) == 0)
		buffer_detach(&c->in, &c->worker->in_pool);
}

/* A body that cannot go on ends the connection: it cannot take back its "0 OK". */
static void
client_body_broken(struct client *c, enum stream_result r)
{
	if (r == STREAM_SHRANK)
		log_error("client %" PRIu64 " (%s): file shrank while being sent; "
		    "closing the connection", c->id, c->peer);
	else
		log_warn("client %" PRIu64 ": sending a body", c->id);
	client_set_state(c, CLIENT_CLOSED);
}

/* Runs the parser and the body producer until neither can advance. */
static void
client_progress(struct client *c)
{
	enum stream_result r;
	size_t             before;

	for (;;) {
		client_process(c);
		if (c->state != CLIENT_STREAMING)
			return;
		before = buffer_len(&c->out);
		r = stream_fill(&c->stream, &c->out, c->worker->now_ms);
		access_count(c->access, buffer_len(&c->out) - before);
		if (r == STREAM_MORE)
			return;         /* body still coming: wait for room */
		if (r != STREAM_DONE) {
			client_body_broken(c, r);
			return;
		}
		client_set_state(c, CLIENT_READING);
	}
}

/* A raw body past what the queue carried: straight from the file. */
static bool
client_send_direct(struct client *c)
{
	enum stream_result r;
	size_t             sent;

	r = stream_send_direct(&c->stream, c->fd, &c->out, c->worker->now_ms, &sent);
	access_count(c->access, sent);
	if (sent > 0)
		c->last_active = c->worker->now_ms;
	if (r == STREAM_DONE)
		client_set_state(c, CLIENT_READING);
	else if (r != STREAM_MORE) {
		if (r == STREAM_ERROR && (errno == EPIPE || errno == ECONNRESET))
			client_set_state(c, CLIENT_CLOSED);
		else
			client_body_broken(c, r);
		return false;
	}
	return true;
}

/* At most one send per turn; false when the connection is gone. */
static bool
client_send(struct client *c)
{
	ssize_t n;

	if (buffer_len(&c->out) == 0 && c->state == CLIENT_STREAMING &&
	    stream_sends_direct(&c->stream) && !client_send_direct(c))
		return false;
	if (buffer_len(&c->out) == 0)
		return true;
	n = send(c->fd, buffer_head(&c->out), buffer_len(&c->out), MSG_NOSIGNAL);
	if (n >= 0) {
		buffer_consume(&c->out, (size_t)n);
		c->last_active = c->worker->now_ms;
		return true;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return true;
	if (errno != EPIPE && errno != ECONNRESET)
		log_warn("client %" PRIu64 ": send", c->id);
	return false;
}

/* Nothing owed: give back the output block, and close what is finished. */
static void
client_settle(struct client *c)
{
	if (client_owes(c))
		return;
	buffer_detach(&c->out, &c->worker->out_pool);
	if (c->state == CLIENT_CLOSING)
		client_set_state(c, CLIENT_CLOSED);
	/* Half-closed and every complete request answered: done. */
	else if (c->peer_eof && c->state == CLIENT_READING && buffer_len(&c->in) == 0)
		client_set_state(c, CLIENT_CLOSED);
}

void
client_turn(struct client *c, short revents)
{
	if (revents & (POLLERR | POLLNVAL)) {
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
	if ((revents & (POLLIN | POLLHUP)) && client_reads(c) && !c->peer_eof &&
	    !client_read(c)) {
		client_set_state(c, CLIENT_CLOSED);
		return;
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
	if (c->state != CLIENT_CLOSED)
		client_settle(c);
}

short
client_events(const struct client *c)
{
	short ev = 0;

	if (client_owes(c))
		ev |= POLLOUT;
	if (client_reads(c) && !c->peer_eof &&
	    buffer_len(&c->out) < CLIENT_OUT_HIGH &&
	    (c->in.data == NULL || buffer_len(&c->in) < c->in.cap))
		ev |= POLLIN;
	return ev;
}

bool
client_quiet(const struct client *c, int seconds)
{
	return !client_owes(c) && c->worker->now_ms - c->last_active >= (uint64_t)seconds * CLOCK_MS_PER_SEC;
}

void
client_idle_check(struct client *c)
{
	int timeout = c->worker->conf->client_timeout;

	if (c->state == CLIENT_PROXY && c->worker->now_ms >= c->proxy_deadline_ms) {
		log_warnx("client %" PRIu64 " (%s): no complete PROXY header within %d ms; closing",
		    c->id, c->peer, CLIENT_PROXY_TIMEOUT_MS);
		client_set_state(c, CLIENT_CLOSED);
		return;
	}

	/*
	 * Idle means no request bytes and nothing owed (docs/PROTOCOL.md): a
	 * client that is slow to read what it is owed is not idle.  TCP
	 * keepalive finds peers that vanished.
	 */
	if (timeout > 0 && client_quiet(c, timeout)) {
		log_debug("client %" PRIu64 ": idle for %ds; closing", c->id, timeout);
		client_set_state(c, CLIENT_CLOSED);
	}
}
