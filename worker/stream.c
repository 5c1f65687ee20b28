/*
 * stream.c — response bodies as producers for the output queue (see
 * stream.h).  A file that shrinks under a slice cannot take back its
 * "0 OK": the producer reports STREAM_SHRANK and the connection is ended.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "log.h"
#include "stream.h"

/* Room worth waiting for before encoding a piece that is not the last. */
#define STREAM_BASE64_MIN_STEP  (3 * 1024)
/* Room worth waiting for before a fragment that is not the last. */
#define STREAM_FRAGMENT_MIN     1024
#define STREAM_FRAGMENT_HEAD    24      /* "LEN " */

/* File bytes on their way to the encoder. */
static unsigned char stream_scratch[STREAM_CHUNK];

void
stream_init(struct stream *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

void
stream_start_slice(struct stream *s, enum stream_kind kind, int fd,
    uint64_t offset, uint64_t size)
{
	stream_init(s);
	s->kind = kind;
	s->fd = fd;
	s->offset = offset;
	s->remaining = size;
}

void
stream_start_listing(struct stream *s, struct files_listing *listing)
{
	stream_init(s);
	s->kind = STREAM_LISTING;
	s->listing = *listing;
	listing->names = NULL;
	listing->count = 0;
	listing->snap = NULL;
}

void
stream_end(struct stream *s)
{
	if (s->fd != -1)
		files_give_back(s->fd);
	files_listing_free(&s->listing);
	stream_init(s);
}

/* pread exactly n bytes at the stream's offset and advance. */
static enum stream_result
stream_read(struct stream *s, void *dst, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(s->fd, (char *)dst + done, n - done, (off_t)(s->offset + done));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return STREAM_ERROR;
		if (r == 0)
			return STREAM_SHRANK;
		done += (size_t)r;
	}
	s->offset += n;
	s->remaining -= n;
	return STREAM_MORE;
}

/*
 * Encodes as much as the queue has room for, a chunk at a time: read into
 * a scratch block that stays in the CPU's cache, then encoded from it.
 * Not from a mapping of the file: the encoder's loads then walk the page
 * tables of the mapping, 4 KiB at a time, and on a virtual machine that
 * made the same request up to twice as dear, once memory had aged, as
 * the copy pread makes through the kernel's own large-page mapping (on
 * fresh memory the copy costs about a sixth at 1 MiB: BENCHMARKS.md, "The
 * base64 read path").  A read stops at the end of file as it is then, so a
 * file cut under a slice ends the body short, never with zeros.
 */
static enum stream_result
stream_fill_base64(struct stream *s, struct buffer *out)
{
	enum stream_result r;

	while (s->remaining > 0) {
		size_t room = buffer_room(out), n;

		/* Whole groups of 3 until the end; the tail may be shorter. */
		n = (room / 4) * 3;
		if (n > STREAM_CHUNK)
			n = STREAM_CHUNK;
		if (n >= s->remaining)
			n = (size_t)s->remaining;
		else if (n < STREAM_BASE64_MIN_STEP && room < out->cap / 4)
			return STREAM_MORE;     /* wait for a useful amount of room */
		if (n == 0)
			return STREAM_MORE;
		if ((r = stream_read(s, stream_scratch, n)) != STREAM_MORE)
			return r;
		buffer_commit(out, base64_encode(buffer_tail(out), stream_scratch, n));
	}
	return buffer_append(out, "\r\n", 2) == 0 ? STREAM_DONE : STREAM_MORE;
}

static enum stream_result
stream_fill_fragments(struct stream *s, struct buffer *out)
{
	enum stream_result r;

	while (s->remaining > 0) {
		size_t room = buffer_room(out), n;

		if (room < STREAM_FRAGMENT_HEAD + 2 + STREAM_FRAGMENT_MIN)
			return STREAM_MORE;
		n = room - STREAM_FRAGMENT_HEAD - 2;
		if (n > STREAM_CHUNK)
			n = STREAM_CHUNK;
		if (n > s->remaining)
			n = (size_t)s->remaining;
		buffer_printf(out, "%zu ", n);
		if ((r = stream_read(s, buffer_tail(out), n)) != STREAM_MORE)
			return r;
		buffer_commit(out, n);
		buffer_append(out, "\r\n", 2);
	}
	return buffer_append(out, "0 \r\n", 4) == 0 ? STREAM_DONE : STREAM_MORE;
}

/*
 * Raw bytes are read into the queue (pread), never sent from a mapping:
 * a read stops at the end of file as it is at that moment, so a file
 * truncated while it is sent ends the response short and can never put
 * zeros in it (a mapping reads zeros past a new end inside its last page,
 * between any check and the send).  Not sendfile either: it queues
 * references to page-cache pages, which a truncation zeroes in place.
 */
static enum stream_result
stream_fill_raw(struct stream *s, struct buffer *out)
{
	enum stream_result r;
	size_t             n;

	if (!s->started) {
		if (buffer_printf(out, "Content-Length: %" PRIu64 "\r\n\r\n", s->remaining) == -1)
			return STREAM_MORE;
		s->started = true;
	}
	n = buffer_room(out);
	if (n > s->remaining)
		n = (size_t)s->remaining;
	if (n > 0) {
		if ((r = stream_read(s, buffer_tail(out), n)) != STREAM_MORE)
			return r;
		buffer_commit(out, n);
	}
	return s->remaining == 0 ? STREAM_DONE : STREAM_MORE;
}

static enum stream_result
stream_fill_listing(struct stream *s, struct buffer *out)
{
	for (; s->listed < s->listing.count; s->listed++) {
		const char *name = s->listing.names[s->listed];
		size_t      len = strlen(name);

		if (buffer_room(out) < len + 2)
			return STREAM_MORE;
		buffer_append(out, name, len);
		buffer_append(out, "\r\n", 2);
	}
	return buffer_append(out, "\r\n", 2) == 0 ? STREAM_DONE : STREAM_MORE;
}

enum stream_result
stream_fill(struct stream *s, struct buffer *out)
{
	switch (s->kind) {
	case STREAM_BASE64:
		return stream_fill_base64(s, out);
	case STREAM_RAW:
		return stream_fill_raw(s, out);
	case STREAM_FRAGMENTS:
		return stream_fill_fragments(s, out);
	case STREAM_LISTING:
		return stream_fill_listing(s, out);
	}
	fatalx("stream: unknown kind %d", (int)s->kind);
}
