/*
 * test_stream.c — unit tests for worker/stream.c, the response-body
 * producers, driven directly with a queue from buffer_init and a temporary
 * file: each framing's bytes (base64 checked against a reference RFC 4648
 * encoder, raw, fragments, listing) for many queue sizes, SIZE 0, a file
 * truncated under a running slice (STREAM_SHRANK from each framing's
 * read), and stream_end closing the file exactly once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream.h"

/* Bigger than two production steps, and not a multiple of 3. */
#define FILE_SIZE           (2 * STREAM_CHUNK + 12345)
/* No body here needs more fills than this; more means a stuck producer. */
#define FILLS_MAX           200000

struct fixture {
	char           dir[64];
	char           path[128];
	unsigned char *content;     /* FILE_SIZE bytes, also in the file */
	int            sv[2];       /* [0] the stream's socket, [1] the peer */
};

/* A growing byte string: what a client would have received. */
struct bytes {
	unsigned char *p;
	size_t         len;
	size_t         cap;
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void bytes_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* RFC 4648 with padding, written independently of shared/base64.c. */
static void ref_base64(struct bytes *out, const unsigned char *src, size_t n)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16;
		char     q[4];

		if (i + 1 < n)
			v |= (uint32_t)src[i + 1] << 8;
		if (i + 2 < n)
			v |= src[i + 2];
		q[0] = abc[(v >> 18) & 63];
		q[1] = abc[(v >> 12) & 63];
		q[2] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? abc[v & 63] : '=';
		bytes_add(out, q, 4);
	}
}

static int setup(void **state)
{
	static struct fixture fx;
	uint32_t x = 2463534242u;
	int      fd;

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/hftpd-test-stream.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	snprintf(fx.path, sizeof(fx.path), "%s/data", fx.dir);
	if ((fx.content = malloc(FILE_SIZE)) == NULL)
		return -1;
	for (size_t i = 0; i < FILE_SIZE; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		fx.content[i] = (unsigned char)x;
	}
	fd = open(fx.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd == -1 || write(fd, fx.content, FILE_SIZE) != FILE_SIZE)
		return -1;
	close(fd);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fx.sv) == -1)
		return -1;
	for (int i = 0; i < 2; i++)
		fcntl(fx.sv[i], F_SETFL, fcntl(fx.sv[i], F_GETFL) | O_NONBLOCK);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	close(fx->sv[0]);
	close(fx->sv[1]);
	free(fx->content);
	unlink(fx->path);
	rmdir(fx->dir);
	return 0;
}

/* Starts a slice of the fixture's file; returns the stream's fd. */
static int start_slice(struct fixture *fx, struct stream *s, enum stream_kind kind,
    uint64_t offset, uint64_t size)
{
	int fd = open(fx->path, O_RDONLY);

	assert_true(fd >= 0);
	stream_start_slice(s, kind, fd, offset, size);
	return fd;
}

/*
 * Runs s to its end as a client connection does: fill the queue, hand what
 * it holds to the "socket" (got) — taking only half when half_consume, so
 * fills also meet a partly full queue.  Returns the last result.
 */
static enum stream_result run_stream(struct stream *s, size_t cap,
    bool half_consume, struct bytes *got)
{
	struct buffer      out;
	enum stream_result r = STREAM_MORE;

	assert_int_equal(buffer_init(&out, cap), 0);
	for (int i = 0; i < FILLS_MAX; i++) {
		size_t take;

		r = stream_fill(s, &out);
		take = buffer_len(&out);
		if (half_consume && r == STREAM_MORE && take > 1)
			take /= 2;
		bytes_add(got, buffer_head(&out), take);
		buffer_consume(&out, take);
		if (r != STREAM_MORE && buffer_len(&out) == 0)
			break;
	}
	buffer_free(&out);
	return r;
}

static void assert_bytes(const struct bytes *got, const void *want, size_t n, const char *what)
{
	if (got->len != n)
		fail_msg("%s: %zu bytes, want %zu", what, got->len, n);
	for (size_t i = 0; i < n; i++) {
		if (got->p[i] != ((const unsigned char *)want)[i])
			fail_msg("%s: first difference at byte %zu of %zu", what, i, n);
	}
}

/* Queue sizes from a few bytes to the client's, each forcing other splits. */
static const size_t small_caps[] = { 4, 5, 7, 64, 1000, 4096, 65536, 256 * 1024 };
/* Fragments need room for a head and a useful piece before producing. */
static const size_t fragment_caps[] = { 1100, 4096, 65537, 256 * 1024 };

struct slice_case {
	uint64_t offset, size;
};

static const struct slice_case slices[] = {
	{ 0, FILE_SIZE },
	{ 7, FILE_SIZE - 7 },
	{ 4097, 1 },
	{ 1, 2 },
	{ 5, STREAM_CHUNK + 1 },
};

static void check_base64(struct fixture *fx, const struct slice_case *sc, size_t cap, bool half)
{
	struct stream s;
	struct bytes  got = { 0 }, want = { 0 };
	char          what[96];

	start_slice(fx, &s, STREAM_BASE64, sc->offset, sc->size);
	assert_int_equal(run_stream(&s, cap, half, &got), STREAM_DONE);
	stream_end(&s);
	ref_base64(&want, fx->content + sc->offset, (size_t)sc->size);
	bytes_add(&want, "\r\n", 2);
	snprintf(what, sizeof(what), "base64 %ju+%ju cap %zu%s", (uintmax_t)sc->offset,
	    (uintmax_t)sc->size, cap, half ? " half" : "");
	assert_bytes(&got, want.p, want.len, what);
	bytes_free(&got);
	bytes_free(&want);
}

static void test_base64_any_room(void **state)
{
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(slices) / sizeof(slices[0]); i++) {
		for (size_t j = 0; j < sizeof(small_caps) / sizeof(small_caps[0]); j++) {
			/* a few bytes of room and the whole file: too slow to be worth it */
			if (small_caps[j] < 64 && slices[i].size > 4096)
				continue;
			check_base64(fx, &slices[i], small_caps[j], false);
			check_base64(fx, &slices[i], small_caps[j], true);
		}
	}
}

/* The one line of a base64 body: exactly one CR LF, at its end. */
static void test_base64_one_line(void **state)
{
	struct fixture *fx = *state;
	struct stream   s;
	struct bytes    got = { 0 };

	start_slice(fx, &s, STREAM_BASE64, 0, FILE_SIZE);
	assert_int_equal(run_stream(&s, 4096, false, &got), STREAM_DONE);
	stream_end(&s);
	assert_true(got.len >= 2);
	assert_memory_equal(got.p + got.len - 2, "\r\n", 2);
	for (size_t i = 0; i + 2 < got.len; i++) {
		if (got.p[i] == '\r' || got.p[i] == '\n')
			fail_msg("line break inside the base64 body at %zu", i);
	}
	assert_int_equal(got.len, (FILE_SIZE + 2) / 3 * 4 + 2);
	bytes_free(&got);
}

static void check_raw(struct fixture *fx, const struct slice_case *sc, size_t cap, bool half)
{
	struct stream s;
	struct bytes  got = { 0 }, want = { 0 };
	char          head[64], what[96];

	start_slice(fx, &s, STREAM_RAW, sc->offset, sc->size);
	assert_int_equal(run_stream(&s, cap, half, &got), STREAM_DONE);
	stream_end(&s);
	snprintf(head, sizeof(head), "Content-Length: %ju\r\n\r\n", (uintmax_t)sc->size);
	bytes_add(&want, head, strlen(head));
	bytes_add(&want, fx->content + sc->offset, (size_t)sc->size);
	snprintf(what, sizeof(what), "raw %ju+%ju cap %zu%s", (uintmax_t)sc->offset,
	    (uintmax_t)sc->size, cap, half ? " half" : "");
	assert_bytes(&got, want.p, want.len, what);
	bytes_free(&got);
	bytes_free(&want);
}

static void test_raw_any_room(void **state)
{
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(slices) / sizeof(slices[0]); i++) {
		/* the header needs its room: from 64 bytes on */
		for (size_t j = 3; j < sizeof(small_caps) / sizeof(small_caps[0]); j++) {
			check_raw(fx, &slices[i], small_caps[j], false);
			check_raw(fx, &slices[i], small_caps[j], true);
		}
	}
}

/*
 * Parses a fragments body: "LEN " + LEN bytes + "\r\n" per chunk (LEN
 * decimal, no leading zero, at most STREAM_CHUNK), "0 \r\n" last, nothing
 * after it; the payload goes to data.
 */
static void parse_fragments(const struct bytes *got, struct bytes *data, const char *what)
{
	size_t i = 0;

	for (;;) {
		uint64_t len = 0;
		size_t   digits = 0;

		while (i < got->len && got->p[i] >= '0' && got->p[i] <= '9') {
			len = len * 10 + (uint64_t)(got->p[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || i >= got->len || got->p[i] != ' ')
			fail_msg("%s: bad fragment head at %zu", what, i);
		if (digits > 1 && got->p[i - digits] == '0')
			fail_msg("%s: leading zero at %zu", what, i - digits);
		i++;
		if (len == 0)
			break;
		if (len > STREAM_CHUNK)
			fail_msg("%s: fragment of %ju bytes", what, (uintmax_t)len);
		if (got->len - i < len + 2)
			fail_msg("%s: fragment at %zu runs past the body", what, i);
		bytes_add(data, got->p + i, (size_t)len);
		i += (size_t)len;
		if (memcmp(got->p + i, "\r\n", 2) != 0)
			fail_msg("%s: no CR LF after the fragment ending at %zu", what, i);
		i += 2;
	}
	if (got->len - i != 2 || memcmp(got->p + i, "\r\n", 2) != 0)
		fail_msg("%s: the end is not \"0 \\r\\n\" alone (%zu bytes left)", what, got->len - i);
}

static void check_fragments(struct fixture *fx, const struct slice_case *sc, size_t cap, bool half)
{
	struct stream s;
	struct bytes  got = { 0 }, data = { 0 };
	char          what[96];

	snprintf(what, sizeof(what), "fragments %ju+%ju cap %zu%s", (uintmax_t)sc->offset,
	    (uintmax_t)sc->size, cap, half ? " half" : "");
	start_slice(fx, &s, STREAM_FRAGMENTS, sc->offset, sc->size);
	assert_int_equal(run_stream(&s, cap, half, &got), STREAM_DONE);
	stream_end(&s);
	parse_fragments(&got, &data, what);
	assert_bytes(&data, fx->content + sc->offset, (size_t)sc->size, what);
	bytes_free(&got);
	bytes_free(&data);
}

static void test_fragments_any_room(void **state)
{
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(slices) / sizeof(slices[0]); i++) {
		for (size_t j = 0; j < sizeof(fragment_caps) / sizeof(fragment_caps[0]); j++) {
			check_fragments(fx, &slices[i], fragment_caps[j], false);
			check_fragments(fx, &slices[i], fragment_caps[j], true);
		}
	}
}

/* Exact bytes of a small fragments body: the framing, not just its parse. */
static void test_fragments_exact(void **state)
{
	struct fixture *fx = *state;
	struct stream   s;
	struct bytes    got = { 0 }, want = { 0 };

	start_slice(fx, &s, STREAM_FRAGMENTS, 10, 5);
	assert_int_equal(run_stream(&s, 4096, false, &got), STREAM_DONE);
	stream_end(&s);
	bytes_add(&want, "5 ", 2);
	bytes_add(&want, fx->content + 10, 5);
	bytes_add(&want, "\r\n0 \r\n", 6);
	assert_bytes(&got, want.p, want.len, "fragments 10+5");
	bytes_free(&got);
	bytes_free(&want);
}

static void test_size_zero(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		enum stream_kind kind;
		const char      *body;
	} cases[] = {
		{ STREAM_BASE64,    "\r\n" },
		{ STREAM_RAW,       "Content-Length: 0\r\n\r\n" },
		{ STREAM_FRAGMENTS, "0 \r\n" },
	};
	static const uint64_t offsets[] = { 0, 3, FILE_SIZE };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t j = 0; j < sizeof(offsets) / sizeof(offsets[0]); j++) {
			struct stream s;
			struct bytes  got = { 0 };

			start_slice(fx, &s, cases[i].kind, offsets[j], 0);
			assert_int_equal(run_stream(&s, 4096, false, &got), STREAM_DONE);
			stream_end(&s);
			assert_bytes(&got, cases[i].body, strlen(cases[i].body), cases[i].body);
			bytes_free(&got);
		}
	}
}

/* A listing as files_list makes it: one reference to a snapshot of names. */
static void make_listing(struct files_listing *l, const char *const *names, size_t n)
{
	struct files_snapshot *snap = calloc(1, sizeof(*snap));

	assert_non_null(snap);
	snap->refs = 1;
	snap->count = n;
	snap->names = n ? calloc(n, sizeof(*snap->names)) : NULL;
	for (size_t i = 0; i < n; i++) {
		snap->names[i] = strdup(names[i]);
		assert_non_null(snap->names[i]);
	}
	l->snap = snap;
	l->names = snap->names;
	l->count = n;
}

static void test_listing(void **state)
{
	static const char *const names[] = { "a", "b.txt", "longer-name_0", "z" };
	static const char        want[] = "a\r\nb.txt\r\nlonger-name_0\r\nz\r\n\r\n";
	/* from just the longest line to plenty */
	static const size_t caps[] = { 15, 16, 17, 64, 4096 };

	(void)state;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		for (int half = 0; half < 2; half++) {
			struct files_listing l;
			struct stream        s;
			struct bytes         got = { 0 };
			char                 what[64];

			make_listing(&l, names, 4);
			stream_start_listing(&s, &l);
			/* the stream took the names */
			assert_null(l.names);
			assert_int_equal(l.count, 0);
			assert_int_equal(run_stream(&s, caps[i], half, &got), STREAM_DONE);
			stream_end(&s);
			snprintf(what, sizeof(what), "listing cap %zu%s", caps[i], half ? " half" : "");
			assert_bytes(&got, want, sizeof(want) - 1, what);
			bytes_free(&got);
		}
	}
}

static void test_listing_empty(void **state)
{
	struct files_listing l;
	struct stream        s;
	struct bytes         got = { 0 };

	(void)state;
	make_listing(&l, NULL, 0);
	stream_start_listing(&s, &l);
	assert_int_equal(run_stream(&s, 64, false, &got), STREAM_DONE);
	stream_end(&s);
	assert_bytes(&got, "\r\n", 2, "empty listing");
	bytes_free(&got);
}

/* Fills once into a fresh queue of cap bytes, keeping what it made in got. */
static enum stream_result fill_once(struct stream *s, struct buffer *out, struct bytes *got)
{
	enum stream_result r = stream_fill(s, out);

	bytes_add(got, buffer_head(out), buffer_len(out));
	buffer_consume(out, buffer_len(out));
	return r;
}

/* Fills until the producer stops; the result that stopped it. */
static enum stream_result fill_to_end(struct stream *s, struct buffer *out, struct bytes *got)
{
	enum stream_result r = STREAM_MORE;

	for (int i = 0; i < FILLS_MAX && r == STREAM_MORE; i++)
		r = fill_once(s, out, got);
	return r;
}

/*
 * base64 reads with pread: a file cut inside the last page of the slice
 * ends the body short, and what was produced encodes the file's own bytes
 * (never zeros past the new end, as a mapping would read).
 */
static void test_shrink_base64_inside_last_page(void **state)
{
	struct fixture *fx = *state;
	struct stream   s;
	struct buffer   out;
	struct bytes    got = { 0 }, want = { 0 };

	assert_int_equal(buffer_init(&out, 4096), 0);
	start_slice(fx, &s, STREAM_BASE64, 0, FILE_SIZE);
	assert_int_equal(fill_once(&s, &out, &got), STREAM_MORE);
	assert_true(got.len > 0);
	assert_int_equal(truncate(fx->path, FILE_SIZE - 100), 0);
	assert_int_equal(fill_to_end(&s, &out, &got), STREAM_SHRANK);
	/* whole groups of 4 for whole groups of 3 bytes, none past the cut */
	assert_int_equal(got.len % 4, 0);
	assert_true(got.len / 4 * 3 <= FILE_SIZE - 100);
	ref_base64(&want, fx->content, got.len / 4 * 3);
	assert_bytes(&got, want.p, want.len, "base64 body cut inside its last page");
	stream_end(&s);
	buffer_free(&out);
	bytes_free(&got);
	bytes_free(&want);
}

/* The same cut far before the stream's offset: the next read finds the end. */
static void test_shrink_base64_pread(void **state)
{
	struct fixture *fx = *state;
	struct stream   s;
	struct buffer   out;
	struct bytes    got = { 0 };

	assert_int_equal(buffer_init(&out, 4096), 0);
	start_slice(fx, &s, STREAM_BASE64, 0, FILE_SIZE);
	assert_int_equal(fill_once(&s, &out, &got), STREAM_MORE);
	assert_int_equal(truncate(fx->path, 100), 0);
	assert_int_equal(fill_to_end(&s, &out, &got), STREAM_SHRANK);
	/* nothing past the first fill was produced */
	assert_true(got.len <= 4096);
	stream_end(&s);
	buffer_free(&out);
	bytes_free(&got);
}

/* fragments read with pread: a read at the new end returns 0. */
static void test_shrink_fragments_pread(void **state)
{
	struct fixture *fx = *state;
	struct stream   s;
	struct buffer   out;
	struct bytes    got = { 0 };

	assert_int_equal(buffer_init(&out, 4096), 0);
	start_slice(fx, &s, STREAM_FRAGMENTS, 0, FILE_SIZE);
	assert_int_equal(fill_once(&s, &out, &got), STREAM_MORE);
	assert_true(got.len > 0);
	assert_int_equal(truncate(fx->path, 1000), 0);
	assert_int_equal(fill_to_end(&s, &out, &got), STREAM_SHRANK);
	/* nothing past the new end was produced */
	assert_true(got.len < 4096);
	stream_end(&s);
	buffer_free(&out);
	bytes_free(&got);
}

/* raw bytes that ride in the queue behind the header are read with pread. */
static void test_shrink_raw_pread(void **state)
{
	struct fixture *fx = *state;
	struct stream   s;
	struct buffer   out;

	assert_int_equal(buffer_init(&out, 4096), 0);
	start_slice(fx, &s, STREAM_RAW, 0, FILE_SIZE);
	/* header and the first bytes fill the queue */
	assert_int_equal(stream_fill(&s, &out), STREAM_MORE);
	assert_int_equal(buffer_len(&out), 4096);
	/* part of it sent: the queue still holds some, so the next fill reads */
	buffer_consume(&out, 1000);
	assert_int_equal(truncate(fx->path, 100), 0);
	assert_int_equal(stream_fill(&s, &out), STREAM_SHRANK);
	stream_end(&s);
	buffer_free(&out);
}

/*
 * Raw bytes are read, never sent from a mapping: a file cut inside the
 * last page of the slice ends the body short, every byte the file's, never
 * the zeros a mapping reads past the new end.
 */
static void test_shrink_raw_inside_last_page(void **state)
{
	struct fixture    *fx = *state;
	struct stream      s;
	struct buffer      out;
	struct bytes       got = { 0 };
	enum stream_result r = STREAM_MORE;
	size_t             head;

	assert_int_equal(buffer_init(&out, 4096), 0);
	start_slice(fx, &s, STREAM_RAW, 0, FILE_SIZE);
	assert_int_equal(fill_once(&s, &out, &got), STREAM_MORE);
	head = got.len - (size_t)s.offset;     /* the Content-Length line */
	assert_int_equal(truncate(fx->path, FILE_SIZE - 100), 0);
	for (int i = 0; i < FILLS_MAX && r == STREAM_MORE; i++) {
		r = stream_fill(&s, &out);
		bytes_add(&got, buffer_head(&out), buffer_len(&out));
		buffer_consume(&out, buffer_len(&out));
	}
	assert_int_equal(r, STREAM_SHRANK);
	assert_true(got.len - head <= FILE_SIZE - 100);
	assert_bytes(&(struct bytes){ .p = got.p + head, .len = got.len - head },
	    fx->content, got.len - head, "raw body cut inside its last page");
	stream_end(&s);
	buffer_free(&out);
	bytes_free(&got);
}

static void test_end_closes_once(void **state)
{
	struct fixture *fx = *state;
	struct stream   s;
	struct buffer   out;
	int             fd, other;

	assert_int_equal(buffer_init(&out, 4096), 0);
	fd = start_slice(fx, &s, STREAM_BASE64, 0, FILE_SIZE);
	/* mid-body */
	assert_int_equal(stream_fill(&s, &out), STREAM_MORE);
	assert_int_not_equal(fcntl(fd, F_GETFD), -1);
	stream_end(&s);
	errno = 0;
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(s.fd, -1);
	/* The number is free again; a second end must not close its new owner. */
	other = open(fx->path, O_RDONLY);
	assert_true(other >= 0);
	stream_end(&s);
	assert_int_not_equal(fcntl(other, F_GETFD), -1);
	close(other);
	buffer_free(&out);
}

/* A stream never started, and a listing ended early, end cleanly. */
static void test_end_unstarted_and_listing(void **state)
{
	static const char *const names[] = { "a", "b" };
	struct files_listing     l;
	struct stream            s;

	(void)state;
	stream_init(&s);
	stream_end(&s);
	stream_end(&s);
	make_listing(&l, names, 2);
	stream_start_listing(&s, &l);
	/* frees the names (valgrind would see them leak otherwise) */
	stream_end(&s);
	assert_null(s.listing.names);
	assert_int_equal(s.listing.count, 0);
	stream_end(&s);
}

#define ST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		ST(test_base64_any_room),
		ST(test_base64_one_line),
		ST(test_raw_any_room),
		ST(test_fragments_any_room),
		ST(test_fragments_exact),
		ST(test_size_zero),
		ST(test_listing),
		ST(test_listing_empty),
		ST(test_shrink_base64_inside_last_page),
		ST(test_shrink_base64_pread),
		ST(test_shrink_fragments_pread),
		ST(test_shrink_raw_pread),
		ST(test_shrink_raw_inside_last_page),
		ST(test_end_closes_once),
		ST(test_end_unstarted_and_listing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
