/*
 * framing.c — slice and listing bodies as producers for the output queue.
 * Each call makes as much of the body as fits in the client's output buffer
 * and no more, so memory per connection stays bounded whatever SIZE is:
 *
 *   base64     file chunk (a multiple of 3 bytes) -> encoder -> queue; "\r\n"
 *   fragments  "LEN " + file chunk + "\r\n" per chunk; "0 \r\n" to end
 *   raw        the first chunk rides in the queue behind the header (one
 *              send for both); the rest is sent from the mapped file
 *   memory     a prepared block (the listing) copied out piece by piece
 *
 * A file that shrinks under a slice cannot take back its "0 OK": the
 * producer reports it broken and the connection is closed.
 *
 * base64 and raw read the file through a mapping so the encoder (or send)
 * reads the page cache directly, saving the copy that pread makes.  Whole
 * files stay mapped in a small per-worker cache across requests (mapping
 * and unmapping per request cost more than the encoding: page-table setup,
 * faults, TLB flushes); when the cache cannot take a file, a window of
 * FRAMING_WINDOW bytes is mapped for the one response.  A mapped file that
 * shrinks raises SIGBUS on access; the handler jumps back out of the encoder
 * (only while armed around it), and the connection is closed as for a short
 * read.  pread is the fallback.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base64.h"
#include "client.h"
#include "log.h"

/* Bytes of a per-response mapping, when the cache cannot take the file. */
#define FRAMING_WINDOW (4u << 20)

/*
 * The cache of whole-file mappings, keyed by (device, inode).  A file that
 * grew past its mapping is mapped again once no response uses the old one;
 * one unused for FRAMING_MAP_IDLE_MS is unmapped, so the pages of a deleted
 * or replaced file are not held for long.  The key cannot go stale: the
 * mapping holds a reference to its inode, so while it exists no other file
 * can be given the same number on that device.
 */
#define FRAMING_MAPS        8
#define FRAMING_MAP_IDLE_MS 2000

struct file_map {
	dev_t          dev;
	ino_t          ino;
	unsigned char *addr;        /* NULL: slot free */
	size_t         len;
	unsigned       users;       /* responses reading through it */
	uint64_t       last_used_ms;
};

static struct file_map framing_maps[FRAMING_MAPS];

static sigjmp_buf            framing_bus_jmp;
static volatile sig_atomic_t framing_bus_armed;

static void
framing_on_sigbus(int sig)
{
	if (framing_bus_armed) {
		framing_bus_armed = 0;
		siglongjmp(framing_bus_jmp, 1);
	}
	/* not ours: die of it as we would have */
	signal(sig, SIG_DFL);
	raise(sig);
}

void
framing_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = framing_on_sigbus;
	sa.sa_flags = SA_NODEFER;   /* jumping out leaves SIGBUS unblocked */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

static void
framing_map_drop(struct file_map *m)
{
	munmap(m->addr, m->len);
	memset(m, 0, sizeof(*m));
}

/* The cached mapping of the stream's file, holding the range it sends. */
static struct file_map *
framing_map_get(struct stream *s, uint64_t now_ms)
{
	struct file_map *m, *victim = NULL;
	uint64_t         end = s->offset + s->remaining;
	void            *addr;

	for (int i = 0; i < FRAMING_MAPS; i++) {
		m = &framing_maps[i];
		if (m->addr != NULL && m->dev == s->dev && m->ino == s->ino) {
			if (m->len >= end)
				goto found;
			if (m->users > 0)
				return NULL;    /* grown: remap once it is free */
			framing_map_drop(m);
		}
		if (m->users > 0)
			continue;
		/* a free slot, else the idle mapping used least recently */
		if (victim == NULL || (victim->addr != NULL &&
		    (m->addr == NULL || m->last_used_ms < victim->last_used_ms)))
			victim = m;
	}
	if (victim == NULL || s->filesize < end || s->filesize > SIZE_MAX)
		return NULL;
	addr = mmap(NULL, (size_t)s->filesize, PROT_READ, MAP_SHARED, s->fd, 0);
	if (addr == MAP_FAILED)
		return NULL;
	if (victim->addr != NULL)
		framing_map_drop(victim);
	m = victim;
	m->dev = s->dev;
	m->ino = s->ino;
	m->addr = addr;
	m->len = (size_t)s->filesize;
found:
	m->users++;
	m->last_used_ms = now_ms;
	return m;
}

void
framing_maps_sweep(uint64_t now_ms)
{
	for (int i = 0; i < FRAMING_MAPS; i++) {
		struct file_map *m = &framing_maps[i];
		if (m->addr != NULL && m->users == 0 && now_ms - m->last_used_ms >= FRAMING_MAP_IDLE_MS)
			framing_map_drop(m);
	}
}

void
framing_maps_close(void)
{
	for (int i = 0; i < FRAMING_MAPS; i++) {
		if (framing_maps[i].addr != NULL)
			framing_map_drop(&framing_maps[i]);
	}
}

static void
framing_unmap(struct stream *s, uint64_t now_ms)
{
	if (s->shared != NULL) {
		s->shared->users--;
		s->shared->last_used_ms = now_ms;
	} else if (s->map != NULL)
		munmap(s->map, s->maplen);
	s->shared = NULL;
	s->map = NULL;
	s->maplen = 0;
}

/* Maps a view holding [offset, offset + n); false: use pread. */
static bool
framing_map(struct stream *s, size_t n, uint64_t now_ms)
{
	static long page;
	uint64_t    start, end;

	if (s->map != NULL && s->offset >= s->mapoff && s->offset + n <= s->mapoff + s->maplen)
		return true;
	if (s->map == NULL && (s->shared = framing_map_get(s, now_ms)) != NULL) {
		/* the whole file: it holds the rest of the response */
		s->map = s->shared->addr;
		s->mapoff = 0;
		s->maplen = s->shared->len;
		return true;
	}
	framing_unmap(s, now_ms);
	if (page == 0)
		page = sysconf(_SC_PAGESIZE);
	start = s->offset & ~((uint64_t)page - 1);
	end = s->offset + s->remaining;
	if (end - start > FRAMING_WINDOW)
		end = start + FRAMING_WINDOW;
	if (end < s->offset + n)
		return false;
	s->map = mmap(NULL, (size_t)(end - start), PROT_READ, MAP_SHARED | MAP_POPULATE,
	    s->fd, (off_t)start);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		return false;
	}
	s->mapoff = start;
	s->maplen = (size_t)(end - start);
	return true;
}

/* Encodes n bytes at the stream's offset from the mapped window; -1: shrank. */
static int
framing_encode_mapped(struct client *c, size_t n)
{
	struct stream *s = &c->stream;
	size_t         len;

	if (sigsetjmp(framing_bus_jmp, 0) != 0) {
		log_error("client %" PRIu64 ": file shrank while being sent; "
		    "closing the connection", c->id);
		framing_unmap(s, c->worker->now_ms);
		return -1;
	}
	framing_bus_armed = 1;
	len = base64_encode(buffer_tail(&c->out), s->map + (s->offset - s->mapoff), n);
	framing_bus_armed = 0;
	buffer_commit(&c->out, len);
	s->offset += n;
	s->remaining -= n;
	return 0;
}

/* Ends the body, finished or not, and writes its access-log line. */
void
framing_end(struct client *c)
{
	struct stream *s = &c->stream;

	if (s->access != NULL) {
		access_record(s->access->peer, s->access->request,
		    c->status,
		    s->access->bytes, &s->access->start);
		free(s->access);
		s->access = NULL;
	}
	framing_unmap(s, c->worker->now_ms);
	if (s->fd != -1)
		close(s->fd);
	free(s->mem);
	s->kind = STREAM_NONE;
	s->done = false;
	s->fd = -1;
	s->mem = NULL;
	s->remaining = 0;
}

/* pread exactly n bytes at the stream's offset; -1 on error or a short file. */
static int
framing_read(struct client *c, void *dst, size_t n)
{
	struct stream *s = &c->stream;
	size_t         done = 0;

	while (done < n) {
		ssize_t r = pread(s->fd, (char *)dst + done, n - done, (off_t)(s->offset + done));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			log_warn("client %" PRIu64 ": read", c->id);
			return -1;
		}
		if (r == 0) {
			log_error("client %" PRIu64 ": file shrank while being sent; "
			    "closing the connection", c->id);
			return -1;
		}
		done += (size_t)r;
	}
	s->offset += n;
	s->remaining -= n;
	return 0;
}

static int
framing_fill_base64(struct client *c)
{
	struct stream *s = &c->stream;

	while (s->remaining > 0) {
		size_t room = buffer_room(&c->out), n;

		/* Whole groups of 3 until the end; the tail may be shorter. */
		n = (room / 4) * 3;
		if (n > CLIENT_CHUNK)
			n = CLIENT_CHUNK;
		if (n >= s->remaining)
			n = (size_t)s->remaining;
		else if (n < 3 * 1024 && room < CLIENT_OUT_CAP / 4)
			return 0;   /* wait for a useful amount of room */
		if (n == 0)
			return 0;
		if (framing_map(s, n, c->worker->now_ms)) {
			if (framing_encode_mapped(c, n) == -1)
				return -1;
			continue;
		}
		if (framing_read(c, c->worker->scratch, n) == -1)
			return -1;
		buffer_commit(&c->out, base64_encode(buffer_tail(&c->out), c->worker->scratch, n));
	}
	if (buffer_room(&c->out) < 2)
		return 0;
	buffer_append(&c->out, "\r\n", 2);
	s->done = true;
	return 0;
}

static int
framing_fill_fragments(struct client *c)
{
	struct stream *s = &c->stream;
	char           head[24];

	while (s->remaining > 0) {
		size_t room = buffer_room(&c->out), n;
		int    hl;

		if (room < sizeof(head) + 2 + 1024)
			return 0;
		n = room - sizeof(head) - 2;
		if (n > CLIENT_CHUNK)
			n = CLIENT_CHUNK;
		if (n > s->remaining)
			n = (size_t)s->remaining;
		hl = snprintf(head, sizeof(head), "%zu ", n);
		buffer_append(&c->out, head, (size_t)hl);
		if (framing_read(c, buffer_tail(&c->out), n) == -1)
			return -1;
		buffer_commit(&c->out, n);
		buffer_append(&c->out, "\r\n", 2);
	}
	if (buffer_room(&c->out) < 4)
		return 0;
	buffer_append(&c->out, "0 \r\n", 4);
	s->done = true;
	return 0;
}

static int
framing_fill_raw(struct client *c)
{
	struct stream *s = &c->stream;
	size_t         n;

	/* Only the first piece goes through the queue, behind the header. */
	if (buffer_len(&c->out) == 0)
		return 0;
	n = buffer_room(&c->out);
	if (n > CLIENT_CHUNK)
		n = CLIENT_CHUNK;
	if (n > s->remaining)
		n = (size_t)s->remaining;
	if (n == 0)
		return 0;
	if (framing_read(c, buffer_tail(&c->out), n) == -1)
		return -1;
	buffer_commit(&c->out, n);
	if (s->remaining == 0)
		s->done = true;
	return 0;
}

static int
framing_fill_memory(struct client *c)
{
	struct stream *s = &c->stream;
	size_t         n = buffer_room(&c->out);

	if (n > s->memlen - s->mempos)
		n = s->memlen - s->mempos;
	buffer_append(&c->out, s->mem + s->mempos, n);
	s->mempos += n;
	if (s->mempos == s->memlen)
		s->done = true;
	return 0;
}

static int
framing_produce(struct client *c)
{
	switch (c->stream.kind) {
	case STREAM_NONE:
		return 0;
	case STREAM_BASE64:
		return framing_fill_base64(c);
	case STREAM_FRAGMENTS:
		return framing_fill_fragments(c);
	case STREAM_RAW:
		return framing_fill_raw(c);
	case STREAM_MEMORY:
		return framing_fill_memory(c);
	}
	return -1;
}

int
framing_fill(struct client *c)
{
	size_t before = c->out.data ? buffer_len(&c->out) : 0;
	int    rc;

	rc = framing_produce(c);
	if (c->stream.access != NULL && c->out.data != NULL)
		c->stream.access->bytes += buffer_len(&c->out) - before;
	if (c->stream.done)
		framing_end(c);
	return rc;
}

/*
 * Raw bodies past the first chunk: one send straight from the mapped window
 * (the kernel copies at send time).  Not sendfile: it queues references to
 * page-cache pages, and a file truncated while they wait in the socket
 * delivers zeros where a short response is due.  Without a mapping the
 * chunk goes through the output buffer.
 */
long
framing_send_raw(struct client *c)
{
	struct stream *s = &c->stream;
	size_t         n = s->remaining > (1u << 20) ? (1u << 20) : (size_t)s->remaining;
	ssize_t        r;

	if (framing_map(s, 1, c->worker->now_ms)) {
		uint64_t window_left = s->mapoff + s->maplen - s->offset;
		if (n > window_left)
			n = (size_t)window_left;
		r = send(c->fd, s->map + (s->offset - s->mapoff), n, MSG_NOSIGNAL);
		if (r == -1 && errno == EFAULT) {
			log_error("client %" PRIu64 ": file shrank while being sent; "
			    "closing the connection", c->id);
			return -1;
		}
	} else {
		if (client_out_reserve(c) == -1)
			return -1;
		if (n > buffer_room(&c->out))
			n = buffer_room(&c->out);
		if (framing_read(c, buffer_tail(&c->out), n) == -1)
			return -1;
		buffer_commit(&c->out, n);
		s->offset -= n;     /* counted below, once sent */
		s->remaining += n;
		r = send(c->fd, buffer_head(&c->out), buffer_len(&c->out), MSG_NOSIGNAL);
		if (r > 0)
			buffer_consume(&c->out, (size_t)r);
		/* what the buffer still holds is sent by later turns */
		if (r >= 0)
			r = (ssize_t)n;
	}
	if (r == -1)
		return -1;
	s->offset += (uint64_t)r;
	s->remaining -= (uint64_t)r;
	if (s->access != NULL)
		s->access->bytes += (uint64_t)r;
	if (s->remaining == 0)
		framing_end(c);
	return r;
}
