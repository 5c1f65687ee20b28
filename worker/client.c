/*
 * client.c — one connection's life inside a worker (see client.h): reading
 * requests, feeding the parser, asking the command table for a reply and
 * applying it (client_apply: the one place), producing the body, and the
 * one send per poll turn.  All it sees of its worker is its client_ctx.
 *
 * One turn, by name: client_turn reads, then client_fill_queue (which
 * runs client_answer_requests, one client_answer_line per complete line,
 * and the stream), one client_send, client_fill_queue again, and
 * client_if_flushed (nothing owed: the output block given back, and a
 * closing client closed or left lingering by client_close_or_linger).
 *
 * Input and output blocks are borrowed from the worker's pools only while
 * they hold bytes, so an idle connection costs little more than this struct.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acl.h"
#include "channel.h"
#include "client.h"
#include "clock.h"
#include "commands.h"
#include "config.h"
#include "log.h"
#include "net.h"
#include "proxy.h"
#include "tally.h"

static const char *const client_state_names[] = {
	[CLIENT_PROXY]     = "proxy",
	[CLIENT_READING]   = "reading",
	[CLIENT_STREAMING] = "streaming",
	[CLIENT_CLOSING]   = "closing",
	[CLIENT_LINGERING] = "lingering",
	[CLIENT_CLOSED]    = "closed",
};

/* Input dropped per read while lingering. */
#define CLIENT_LINGER_CHUNK 16384

const char *
client_state_name(enum client_state state)
{
	return client_state_names[state];
}

/*
 * The client's address for the logs: the PROXY header's, or the socket's
 * peer, looked up the first time it is needed (no system call, and no
 * memory, for a connection that never logs).
 */
static const char *
client_peer(struct client *c)
{
	if (c->peer == NULL) {
		if ((c->peer = malloc(ACCESS_PEER_MAX)) == NULL)
			return "?";
		net_peer_text(c->fd, c->peer, ACCESS_PEER_MAX);
	}
	return c->peer;
}

struct client *
client_new(struct client_ctx *ctx, int fd, uint64_t id, bool proxy)
{
	struct client *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = fd;
	c->id = id;
	c->ctx = ctx;
	c->state = proxy ? CLIENT_PROXY : CLIENT_READING;
	c->last_active = ctx->now_ms;
	c->proxy_deadline_ms = ctx->now_ms + CLIENT_PROXY_TIMEOUT_MS;
	stream_init(&c->stream);
	request_init(&c->parser, ctx->conf->request_line_max, commands_shape);
	return c;
}

/* The response under way is complete (or abandoned): its access-log line. */
static void
client_response_end(struct client *c)
{
	access_end(&c->access, c->status);
}

void
client_free(struct client *c)
{
	client_set_state(c, CLIENT_CLOSED);
	buffer_detach(&c->out, &c->ctx->out_pool);
	if (c->fd != -1)
		close(c->fd);
	free(c->peer);
	free(c);
}

void
client_set_state(struct client *c, enum client_state state)
{
	if (c->state == CLIENT_CLOSED || c->state == state)
		return;
	/* Once closing, only lingering or CLOSED follow: nothing more is answered. */
	if (c->state == CLIENT_CLOSING && state != CLIENT_CLOSED && state != CLIENT_LINGERING)
		return;
	if (c->state == CLIENT_LINGERING && state != CLIENT_CLOSED)
		return;
	log_debug("client %" PRIu64 ": %s -> %s", c->id,
	    client_state_name(c->state), client_state_name(state));
	if (c->state == CLIENT_STREAMING) {
		stream_end(&c->stream);
		client_response_end(c);
	}
	if (state == CLIENT_CLOSING)
		c->unread_input |= buffer_len(&c->in) > 0;
	if (state == CLIENT_CLOSING || state == CLIENT_CLOSED)
		buffer_detach(&c->in, &c->ctx->in_pool);
	c->state = state;
}

void
client_status(struct client *c, enum status status)
{
	const char *line;
	size_t      len;

	c->status = status;
	line = protocol_status_line(status, &len);
	if (buffer_append(&c->out, line, len) == -1)
		log_warnx("client %" PRIu64 ": output queue full", c->id);
	if (protocol_status_fatal(status)) {
		/* The rest of the line may still be on its way. */
		c->unread_input = true;
		client_set_state(c, CLIENT_CLOSING);
	}
}

/* Bytes are owed while the queue holds some or a body is being produced. */
static bool
client_owes(const struct client *c)
{
	return buffer_len(&c->out) > 0 || c->state == CLIENT_STREAMING;
}

/*
 * Owed, or sent but perhaps not yet taken: the kernel may still hold the
 * end of an answer (up to twice send_buffer) until the sweep samples its
 * send queue empty.  Such a client is judged by send_timeout and
 * send_min_rate, not idle: closing it (a reset) would cut that answer.
 */
static bool
client_owes_any(const struct client *c)
{
	return client_owes(c) || c->kernel_unsent;
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

	if (c->in.data == NULL && buffer_attach(&c->in, &c->ctx->in_pool) == -1) {
		log_warnx("client %" PRIu64 ": out of memory", c->id);
		return false;
	}
	if (buffer_room(&c->in) == 0)
		return true;
	n = recv(c->fd, buffer_tail(&c->in), buffer_room(&c->in), 0);
	if (n > 0) {
		c->ctx->recvs++;    /* the metadata cache drains before its next answer */
		c->read_filled = (size_t)n == buffer_room(&c->in);
		buffer_commit(&c->in, (size_t)n);
		c->last_active = c->ctx->now_ms;
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

/*
 * A reply applied, the one place: its status line through client_status(),
 * a small body into the queue, a stream started, the state set.
 */
static void
client_apply(struct client *c, struct commands_reply *r)
{
	client_status(c, r->status);
	switch (r->body) {
	case COMMANDS_BODY_NONE:
		break;
	case COMMANDS_BODY_TEXT:
		if (buffer_append(&c->out, r->text, r->len) == -1)
			log_warnx("client %" PRIu64 ": output queue full", c->id);
		break;
	case COMMANDS_BODY_SLICE:
		stream_start_slice(&c->stream, r->slice.kind, r->slice.fd, r->slice.offset,
		    r->slice.size);
		client_set_state(c, CLIENT_STREAMING);
		break;
	case COMMANDS_BODY_LISTING:
		stream_start_listing(&c->stream, &r->listing);
		client_set_state(c, CLIENT_STREAMING);
		break;
	}
	if (r->close)
		client_set_state(c, CLIENT_CLOSING);
}

/* send_timeout, send_min_rate and limit_rate count from when bytes become owed. */
static void
client_owing_starts(struct client *c)
{
	if (!client_owes_any(c)) {
		c->send_progress = c->ctx->now_ms;
		c->rate_mark_ms = 0;
		c->rate_short = false;
	}
	if (!client_owes(c)) {
		c->limit_start_ms = c->ctx->now_ms;
		c->limit_base = c->sent;
		c->wake_ms = 0;
	}
}

/* Answers one complete line or a fatal parse, with its access-log record. */
static void
client_answer_line(struct client *c, enum request_result res)
{
	struct commands_ctx   ctx = {
		&c->ctx->files, c->ctx->conf, c->ctx->turn, c->id, c->ctx->recvs
	};
	struct commands_reply reply;
	size_t                before = buffer_len(&c->out);

	client_owing_starts(c);
	if (access_enabled())
		access_begin(&c->access, client_peer(c), &c->parser, c->ctx->now_ns);
	if (res == REQUEST_LINE) {
		commands_run(&c->parser, &ctx, &reply);
		client_apply(c, &reply);
	} else
		client_status(c, c->parser.status);
	stats_request(&c->parser, c->status);
	access_count(&c->access, buffer_len(&c->out) - before);
	if (c->state != CLIENT_STREAMING)
		client_response_end(c);
}

void
client_abort(struct client *c, enum tally_kind why)
{
	tally_note(why, client_peer(c));
	if (c->fd != -1)
		net_close_abortive(c->fd);
	c->fd = -1;
	client_set_state(c, CLIENT_CLOSED);
}

/*
 * Tells the master the address a PROXY header named, which it counts
 * against max_clients_per_address (and answers DROP when over).  If the
 * channel is full the connection goes uncounted: never refused wrongly.
 */
static void
client_report_peer(struct client *c, const struct sockaddr_storage *src)
{
	struct channel_peer peer;

	if (c->ctx->conf->max_clients_per_address == 0)
		return;
	memset(&peer, 0, sizeof(peer));
	peer.id = c->id;
	peer.family = (uint32_t)src->ss_family;
	if (src->ss_family == AF_INET)
		memcpy(peer.addr, &((const struct sockaddr_in *)src)->sin_addr, 4);
	else if (src->ss_family == AF_INET6)
		memcpy(peer.addr, &((const struct sockaddr_in6 *)src)->sin6_addr, 16);
	else
		return;
	if (channel_send(c->ctx->chan, CHANNEL_PEER, c->ctx->gen, &peer, sizeof(peer), -1) == -1 &&
	    errno != EAGAIN)
		log_warn("channel: send PEER");
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
		log_debug("client %" PRIu64 " (%s): PROXY header: %s; closing", c->id,
		    client_peer(c), r == PROXY_BAD ? hdr.error : "connection closed before its end");
		client_abort(c, TALLY_PROXY_BAD);
		return;
	}
	buffer_consume(&c->in, used);
	if (!hdr.local) {
		snprintf(was, sizeof(was), "%s", client_peer(c));
		if (c->peer != NULL) {
			net_addr_text((const struct sockaddr *)&hdr.src, c->peer, ACCESS_PEER_MAX);
			log_debug("client %" PRIu64 ": %s via %s (PROXY v%d)", c->id, c->peer,
			    was, hdr.version);
		}
		/* allow / deny judge the client the header names, not the balancer */
		if (!acl_allows(&c->ctx->conf->access, (const struct sockaddr *)&hdr.src)) {
			client_abort(c, TALLY_DENIED);
			return;
		}
		client_report_peer(c, &hdr.src);
	}
	client_set_state(c, CLIENT_READING);
}

/* Answers complete requests while the output queue has room. */
static void
client_answer_requests(struct client *c)
{
	enum request_result res;
	size_t              used;

	if (c->state == CLIENT_PROXY)
		client_proxy(c);

	while (c->state == CLIENT_READING && buffer_len(&c->in) > 0) {
		if (c->out.data == NULL && buffer_attach(&c->out, &c->ctx->out_pool) == -1) {
			log_warnx("client %" PRIu64 ": out of memory", c->id);
			client_set_state(c, CLIENT_CLOSED);
			return;
		}
		if (buffer_len(&c->out) >= CLIENT_OUT_HIGH)
			return;
		used = request_feed(&c->parser, buffer_head(&c->in), buffer_len(&c->in), &res);
		buffer_consume(&c->in, used);
		if (res != REQUEST_MORE)
			client_answer_line(c, res);
	}
	if (c->state == CLIENT_READING && c->in.data != NULL && buffer_len(&c->in) == 0)
		buffer_detach(&c->in, &c->ctx->in_pool);
	/* request_timeout runs from the first byte of a line to its end. */
	if (!request_partial(&c->parser))
		c->request_started = 0;
	else if (c->request_started == 0)
		c->request_started = c->ctx->now_ms;
}

/*
 * A body that cannot go on ends the connection: it cannot take back its
 * "0 OK".  What is queued (answers to earlier requests, the body's bytes
 * so far, all of them right) is still the client's: the connection
 * flushes it, then closes, and reads no further request.
 */
static void
client_body_broken(struct client *c, enum stream_result r)
{
	if (r == STREAM_SHRANK)
		log_error("client %" PRIu64 " (%s): file shrank while being sent; "
		    "closing the connection", c->id, client_peer(c));
	else
		log_warn("client %" PRIu64 ": sending a body", c->id);
	client_set_state(c, CLIENT_CLOSING);
}

/* Runs the parser and the body producer until neither can advance. */
static void
client_fill_queue(struct client *c)
{
	enum stream_result r;
	size_t             before;

	for (;;) {
		client_answer_requests(c);
		if (c->state != CLIENT_STREAMING)
			return;
		before = buffer_len(&c->out);
		r = stream_fill(&c->stream, &c->out);
		access_count(&c->access, buffer_len(&c->out) - before);
		stats_out_body(&c->stats_out, c->stream.kind, c->sent + before,
		    c->sent + buffer_len(&c->out));
		if (r == STREAM_MORE)
			return;         /* body still coming: wait for room */
		if (r != STREAM_DONE) {
			client_body_broken(c, r);
			return;
		}
		client_set_state(c, CLIENT_READING);
	}
}

/* limit_rate: the budget a throttled client waits for (a tenth of a second's). */
static uint64_t
client_limit_chunk(uint64_t rate)
{
	uint64_t chunk = rate / 10;

	if (chunk > CLIENT_LIMIT_CHUNK_MAX)
		chunk = CLIENT_LIMIT_CHUNK_MAX;
	return chunk > 0 ? chunk : 1;
}

/*
 * limit_rate: what c may send now, SIZE_MAX when unlimited.  The budget
 * grows at limit_rate from when bytes became owed, starts at one chunk,
 * and holds at most a second's worth more (a client that stopped reading
 * does not earn a burst).  Arithmetic only: no system call, no clock read.
 */
static size_t
client_budget(struct client *c, uint64_t rate, uint64_t now)
{
	uint64_t chunk, el, cap;
	int64_t  avail;

	if (rate == 0)
		return SIZE_MAX;
	chunk = client_limit_chunk(rate);
	cap = rate + chunk;
	el = now - c->limit_start_ms;
	avail = (int64_t)(rate / 1000 * el + rate % 1000 * el / 1000 + chunk) -
	    (int64_t)(c->sent - c->limit_base);
	if (avail > (int64_t)cap) {
		/* rebased so that exactly cap is available now */
		c->limit_start_ms = now;
		c->limit_base = c->sent + cap - chunk;
		avail = (int64_t)cap;
	}
	return avail > 0 ? (size_t)avail : 0;
}

/* limit_rate: with less than a chunk left, not polled for output until it refills. */
static void
client_throttle(struct client *c, uint64_t rate, uint64_t now)
{
	uint64_t chunk, left;

	if (rate == 0)
		return;
	chunk = client_limit_chunk(rate);
	left = client_budget(c, rate, now);
	if (left < chunk)
		c->wake_ms = now + (chunk - left) * CLOCK_MS_PER_SEC / rate + 1;
}

/* At most one send per turn (within limit_rate); false when the connection is gone. */
static bool
client_send(struct client *c)
{
	uint64_t now = c->ctx->now_ms, rate = c->ctx->conf->limit_rate;
	size_t   budget, len;
	ssize_t  n;

	if (c->wake_ms > now || buffer_len(&c->out) == 0 ||
	    (budget = client_budget(c, rate, now)) == 0)
		return true;
	len = buffer_len(&c->out) < budget ? buffer_len(&c->out) : budget;
	n = send(c->fd, buffer_head(&c->out), len, MSG_NOSIGNAL);
	if (n >= 0) {
		buffer_consume(&c->out, (size_t)n);
		stats_out_sent(&c->stats_out, c->sent, (uint64_t)n);
		c->sent += (uint64_t)n;
		c->kernel_unsent = true;
		c->last_active = c->send_progress = now;
		client_throttle(c, rate, now);
		return true;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return true;
	if (errno != EPIPE && errno != ECONNRESET)
		log_warn("client %" PRIu64 ": send", c->id);
	return false;
}

/* Reads and drops input while lingering; CLOSED at EOF, error or the byte bound. */
static void
client_linger_read(struct client *c)
{
	char    drop[CLIENT_LINGER_CHUNK];
	ssize_t n;

	for (;;) {
		n = recv(c->fd, drop, sizeof(drop), 0);
		if (n > 0) {
			c->lingered += (uint64_t)n;
			if (c->lingered <= CLIENT_LINGER_BYTES)
				continue;
		} else if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
}

/*
 * Whether input waits that close() would turn into a reset: request bytes
 * left unread, a last read that filled the input block, or bytes in the
 * socket (one peek, about half a microsecond, on the close after quit).
 */
static bool
client_input_waiting(struct client *c)
{
	char    byte;
	ssize_t n;

	if (c->unread_input || c->read_filled)
		return true;
	n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		c->peer_eof = true;
	return n > 0;
}

/*
 * Everything owed is flushed: close, or, when input is waiting that close()
 * would answer with a reset (destroying what the client has not read yet),
 * shut the write side down and linger.
 */
static void
client_close_or_linger(struct client *c)
{
	if (c->peer_eof || !client_input_waiting(c) || shutdown(c->fd, SHUT_WR) == -1) {
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
	c->linger_until = c->ctx->now_ms + CLIENT_LINGER_MS;
	client_set_state(c, CLIENT_LINGERING);
	client_linger_read(c);
}

/*
 * When nothing is owed (else nothing to do): give back the output block,
 * and close what is finished.
 */
static void
client_if_flushed(struct client *c)
{
	if (client_owes(c))
		return;
	buffer_detach(&c->out, &c->ctx->out_pool);
	if (c->state == CLIENT_CLOSING)
		client_close_or_linger(c);
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
	if (c->state == CLIENT_LINGERING) {
		if (revents & (POLLIN | POLLHUP))
			client_linger_read(c);
		return;
	}
	if (c->received)
		c->received = false;    /* client_receive read this turn's bytes */
	else if ((revents & (POLLIN | POLLHUP)) && client_reads(c) && !c->peer_eof &&
	    !client_read(c)) {
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
	client_fill_queue(c);
	if (c->state == CLIENT_CLOSED)
		return;
	if (!client_send(c)) {
		client_set_state(c, CLIENT_CLOSED);
		return;
	}
	/* Room was made: prepare the next send so POLLOUT has work. */
	client_fill_queue(c);
	if (c->state != CLIENT_CLOSED)
		client_if_flushed(c);
}

void
client_receive(struct client *c, short revents)
{
	if ((revents & (POLLERR | POLLNVAL)) || c->state == CLIENT_LINGERING ||
	    !(revents & (POLLIN | POLLHUP)) || !client_reads(c) || c->peer_eof)
		return;
	c->received = true;
	if (!client_read(c))
		client_set_state(c, CLIENT_CLOSED);
}

short
client_events(const struct client *c)
{
	short ev = 0;

	if (c->state == CLIENT_LINGERING)
		return POLLIN;
	if (client_owes(c) && c->wake_ms <= c->ctx->now_ms)
		ev |= POLLOUT;
	if (client_reads(c) && !c->peer_eof &&
	    buffer_len(&c->out) < CLIENT_OUT_HIGH &&
	    (c->in.data == NULL || buffer_len(&c->in) < c->in.cap))
		ev |= POLLIN;
	return ev;
}

bool
client_idle(const struct client *c, uint64_t quiet_ms)
{
	return c->state == CLIENT_READING && !client_owes_any(c) && buffer_len(&c->in) == 0 &&
	    !request_partial(&c->parser) && c->ctx->now_ms - c->last_active >= quiet_ms;
}

bool
client_evictable(const struct client *c, uint64_t quiet_ms)
{
	uint64_t rate = c->ctx->conf->request_min_rate, span, expected;

	if (client_idle(c, quiet_ms))
		return true;
	if (rate == 0 || c->state != CLIENT_READING || client_owes_any(c) || c->request_started == 0)
		return false;
	span = c->ctx->now_ms - c->request_started;
	if (span < quiet_ms)
		return false;
	/* what request_min_rate would have brought in the time (no overflow) */
	expected = rate / 1000 * span + rate % 1000 * span / 1000;
	return c->parser.line_len * CLIENT_CRAWL_SHARE < expected;
}

bool
client_stalled(const struct client *c, int seconds)
{
	return c->ctx->now_ms - c->last_active >= (uint64_t)seconds * CLOCK_MS_PER_SEC;
}

/* The tally each expiry is counted in (the lingering close's is not one). */
static const enum tally_kind client_expiry_tally[CLIENT_EXPIRY_KINDS] = {
	[CLIENT_EXPIRY_IDLE]    = TALLY_CLIENT_TIMEOUT,
	[CLIENT_EXPIRY_REQUEST] = TALLY_REQUEST_TIMEOUT,
	[CLIENT_EXPIRY_SEND]    = TALLY_SEND_TIMEOUT,
	[CLIENT_EXPIRY_PROXY]   = TALLY_PROXY_TIMEOUT,
};

/* Which of c's deadlines has passed, if any. */
static enum client_expiry
client_expired(const struct client *c, const struct config *conf, uint64_t now)
{
	uint64_t allowed;

	if (c->state == CLIENT_LINGERING)
		return now >= c->linger_until ? CLIENT_EXPIRY_LINGER : CLIENT_EXPIRY_NONE;
	if (c->state == CLIENT_PROXY)
		return now >= c->proxy_deadline_ms ? CLIENT_EXPIRY_PROXY : CLIENT_EXPIRY_NONE;
	/*
	 * A client slow to read what it is owed is not idle (docs/PROTOCOL.md):
	 * send_timeout counts time without progress draining the output.
	 */
	if (client_owes_any(c))
		return c->rate_short ||
		    now - c->send_progress >= (uint64_t)conf->send_timeout * CLOCK_MS_PER_SEC ?
		    CLIENT_EXPIRY_SEND : CLIENT_EXPIRY_NONE;
	if (conf->client_timeout > 0 &&
	    now - c->last_active >= (uint64_t)conf->client_timeout * CLOCK_MS_PER_SEC)
		return CLIENT_EXPIRY_IDLE;
	if (c->request_started == 0)
		return CLIENT_EXPIRY_NONE;
	/* A second more for every request_min_rate bytes already received. */
	allowed = (uint64_t)conf->request_timeout * CLOCK_MS_PER_SEC;
	if (conf->request_min_rate > 0)
		allowed += c->parser.line_len * CLOCK_MS_PER_SEC / conf->request_min_rate;
	return now - c->request_started >= allowed ? CLIENT_EXPIRY_REQUEST : CLIENT_EXPIRY_NONE;
}

/*
 * send_min_rate: the rate a client owed bytes must drain at, over each
 * window of send_timeout.  A response throttled by limit_rate cannot be
 * drained faster than the limit: it is held to half of it at most.
 */
static uint64_t
client_min_rate(const struct config *conf)
{
	if (conf->limit_rate > 0 && conf->limit_rate / 2 < conf->send_min_rate)
		return conf->limit_rate / 2 > 0 ? conf->limit_rate / 2 : 1;
	return conf->send_min_rate;
}

/*
 * A reader that drains the socket is making progress even while send()
 * has had no room for a while (the kernel wakes a writer only once a third
 * of the buffer is free): the send queue shrinking counts too.  The same
 * sample (bytes sent less bytes queued = bytes the client took) measures
 * its rate over each send_timeout, for send_min_rate.
 */
static void
client_sample_drain(struct client *c)
{
	const struct config *conf = c->ctx->conf;
	uint64_t             now = c->ctx->now_ms, drained, need, span;
	int                  queued;

	if (ioctl(c->fd, SIOCOUTQ, &queued) == -1 || queued < 0)
		return;
	if ((uint32_t)queued < c->send_queued)
		c->send_progress = now;
	c->send_queued = (uint32_t)queued;
	if (queued == 0 && !client_owes(c)) {
		c->kernel_unsent = false;   /* all taken: nothing to judge */
		return;
	}
	if ((need = client_min_rate(conf)) == 0)
		return;
	drained = c->sent > (uint64_t)queued ? c->sent - (uint64_t)queued : 0;
	if (c->rate_mark_ms == 0) {
		c->rate_mark_ms = now;
		c->rate_mark_drained = drained;
		return;
	}
	span = now - c->rate_mark_ms;
	if (span < (uint64_t)conf->send_timeout * CLOCK_MS_PER_SEC)
		return;
	c->rate_short = (drained - c->rate_mark_drained) * CLOCK_MS_PER_SEC / span < need;
	c->rate_mark_ms = now;
	c->rate_mark_drained = drained;
}

enum client_expiry
client_deadline_check(struct client *c)
{
	enum client_expiry why;

	if (client_owes_any(c))
		client_sample_drain(c);
	why = client_expired(c, c->ctx->conf, c->ctx->now_ms);
	if (why == CLIENT_EXPIRY_NONE)
		return why;
	if (why == CLIENT_EXPIRY_LINGER) {
		/* the answer is out and the write side shut: a normal end */
		log_debug("client %" PRIu64 ": lingering close over; closing", c->id);
		client_set_state(c, CLIENT_CLOSED);
		return why;
	}
	log_debug("client %" PRIu64 ": expired in state %s", c->id, client_state_name(c->state));
	client_abort(c, client_expiry_tally[why]);
	return why;
}
