/*
 * fuzz_request.c — libFuzzer harness for the request parser and command
 * dispatch (worker/request.c, worker/commands.c, worker/client.c): a
 * request stream goes into a real client over a socketpair, as the worker
 * would run it, and the response bytes come out.  The served directory is
 * a temporary one holding a few small files, so every answer can be
 * checked exactly.
 *
 * Input: byte 0 picks the request_line_max and the slice framing in force
 * and seeds the way the stream is cut into pieces; the rest is the request stream.  The stream is
 * fed twice, on fresh clients: whole, then piece by piece, each piece
 * answered before the next is sent.  Invariants (abort on a violation):
 *   - both runs produce the same bytes (in fragments framing, where the
 *     fragments end may differ, the same content): the answer does not
 *     depend on how the input is split;
 *   - every CR LF terminated line gets one response, in order, starting
 *     with a known status line; 0 OK bodies are exactly what the files
 *     hold (metadata, listing, help, slices raw, base64 and fragments);
 *     an unknown command is 200 and only an unknown command is;
 *   - a bare LF is 100, a line over request_line_max or of spaces only is
 *     101, and nothing follows a fatal status or quit's 0 OK;
 *   - a trailing half line gets nothing, even once the peer shuts down
 *     its side; after that shutdown the client closes.
 *
 * Built by `make fuzz` (see the Makefile); seeds in tests/fuzz/corpus/.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "client.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "protocol.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Poll turns one exchange may take; more means the client is stuck. */
#define TURNS_MAX       10000
#define POOL_KEEP       4
/* The two request_line_max values byte 0 chooses between. */
#define LINE_MAX_SMALL  64
#define LINE_MAX_LARGE  4096
#define LINE_MAX_BIT    0x80
/* Byte 0's bit that picks slice_encoding = fragments over base64. */
#define FRAGMENTS_BIT   0x40
/* Pieces are 1 .. PIECE_MAX bytes long. */
#define PIECE_MAX       32
#define BIN_SIZE        300
/* More than a client's output buffer holds: backpressure, several fragments. */
#define BIG_SIZE        (CLIENT_OUT_CAP + 50000)

#define ARCHIVO         "Qu\xc3\xa9 calor que hace hoy, pinta una birra"
#define HELP_BODY       "get_file_listing\r\nget_metadata\r\nget_slice\r\nhelp\r\nquit\r\n\r\n"

struct served_file {
	const char          *name;
	const unsigned char *data;
	size_t               size;
};

struct bytes {
	char  *p;
	size_t len;
	size_t cap;
};

static char                 fuzz_dir[64];
static struct config        fuzz_conf;
static struct client_ctx    fuzz_ctx;
static unsigned char        fuzz_bin[BIN_SIZE];
static unsigned char        fuzz_big[BIG_SIZE];
static char                 fuzz_b64[BASE64_ENCODED_LEN(BIG_SIZE) + 1];
static struct served_file   fuzz_files[] = {
	{ "archivo.txt", (const unsigned char *)ARCHIVO, sizeof(ARCHIVO) - 1 },
	{ "big", fuzz_big, sizeof(fuzz_big) },
	{ "bin", fuzz_bin, sizeof(fuzz_bin) },
	{ "empty", (const unsigned char *)"", 0 },
};
/* The listing of the files above, in the order the server sorts them. */
static const char fuzz_listing[] = "0 OK\r\narchivo.txt\r\nbig\r\nbin\r\nempty\r\n\r\n";

static void
fuzz_die(const char *what, const uint8_t *req, size_t len, const struct bytes *got)
{
	fprintf(stderr, "fuzz_request: %s\n  request (%zu bytes): \"%.*s\"\n"
	    "  response (%zu bytes): \"%.*s\"\n", what, len, (int)(len > 300 ? 300 : len),
	    (const char *)req, got->len, (int)(got->len > 300 ? 300 : got->len),
	    got->p != NULL ? got->p : "");
	abort();
}

static void
bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((b->p = realloc(b->p, cap)) == NULL)
			abort();
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fuzz_cleanup(void)
{
	nftw(fuzz_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[128];

	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_LEVEL_ERROR);
	for (size_t i = 0; i < sizeof(fuzz_bin); i++)
		fuzz_bin[i] = (unsigned char)(i * 7 + 3);
	for (size_t i = 0; i < sizeof(fuzz_big); i++)
		fuzz_big[i] = (unsigned char)(i * 13 + (i >> 10));
	snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/hftpd-fuzz-request.XXXXXX");
	if (mkdtemp(fuzz_dir) == NULL)
		abort();
	atexit(fuzz_cleanup);
	for (size_t i = 0; i < sizeof(fuzz_files) / sizeof(fuzz_files[0]); i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", fuzz_dir, fuzz_files[i].name);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 ||
		    write(fd, fuzz_files[i].data, fuzz_files[i].size) != (ssize_t)fuzz_files[i].size)
			abort();
		close(fd);
	}
	/* not listed, not servable */
	snprintf(path, sizeof(path), "%s/subdir", fuzz_dir);
	if (mkdir(path, 0755) == -1)
		abort();
	snprintf(path, sizeof(path), "%s/link", fuzz_dir);
	if (symlink("archivo.txt", path) == -1)
		abort();

	config_defaults(&fuzz_conf);
	snprintf(fuzz_conf.directory, sizeof(fuzz_conf.directory), "%s", fuzz_dir);
	fuzz_ctx.conf = &fuzz_conf;
	fuzz_ctx.now_ms = clock_now_ms();
	files_init(&fuzz_ctx.files, fuzz_dir);
	if (buffer_pool_init(&fuzz_ctx.in_pool, CLIENT_IN_CAP, POOL_KEEP) == -1 ||
	    buffer_pool_init(&fuzz_ctx.out_pool, CLIENT_OUT_CAP, POOL_KEEP) == -1)
		abort();
	return 0;
}

/* One turn of the client as the worker runs it; the peer's side drained. */
static void
fuzz_turn(struct client *c, int peer, struct bytes *got)
{
	char    buf[65536];
	ssize_t n;

	fuzz_ctx.now_ms = clock_now_ms();
	fuzz_ctx.turn++;
	client_turn(c, POLLIN);
	while ((n = recv(peer, buf, sizeof(buf), 0)) > 0)
		bytes_add(got, buf, (size_t)n);
}

/* Turns until closed, or nothing unread, nothing owed and nothing new. */
static void
fuzz_settle(struct client *c, int peer, struct bytes *got)
{
	for (int i = 0; i < TURNS_MAX; i++) {
		size_t before = got->len;
		int    unread = 0;

		fuzz_turn(c, peer, got);
		if (c->state == CLIENT_CLOSED)
			return;
		if (ioctl(c->fd, FIONREAD, &unread) == -1)
			abort();
		if (unread == 0 && !(client_events(c) & POLLOUT) && got->len == before)
			return;
	}
	fprintf(stderr, "fuzz_request: the client did not settle in %d turns\n", TURNS_MAX);
	abort();
}

/* Sends all n bytes, letting the client take them when the socket is full. */
static void
fuzz_send(struct client *c, int peer, const uint8_t *p, size_t n, struct bytes *got)
{
	while (n > 0 && c->state != CLIENT_CLOSED) {
		ssize_t w = send(peer, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			fuzz_turn(c, peer, got);
		} else {
			return;     /* the client closed: the rest is not read */
		}
	}
}

/*
 * Runs one client over the stream: whole when seed is 0, else in pieces
 * whose lengths come from seed.  Ends with the peer shutting down its side;
 * *tail gets what arrived after that shutdown.
 */
static void
fuzz_run(const uint8_t *req, size_t len, uint32_t seed, struct bytes *got, size_t *tail)
{
	struct client *c;
	int            sv[2];
	size_t         off = 0, before;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	for (int i = 0; i < 2; i++)
		if (fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK) == -1)
			abort();
	if ((c = client_new(&fuzz_ctx, sv[0], 1, false)) == NULL)
		abort();
	while (off < len && c->state != CLIENT_CLOSED) {
		size_t n = len - off;

		if (seed != 0) {
			/* xorshift32 */
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			if (n > 1 + seed % PIECE_MAX)
				n = 1 + seed % PIECE_MAX;
		}
		fuzz_send(c, sv[1], req + off, n, got);
		off += n;
		fuzz_settle(c, sv[1], got);
	}
	before = got->len;
	if (c->state != CLIENT_CLOSED) {
		shutdown(sv[1], SHUT_WR);
		fuzz_settle(c, sv[1], got);
		if (c->state != CLIENT_CLOSED) {
			fprintf(stderr, "fuzz_request: still %s after the peer's EOF\n",
			    client_state_name(c->state));
			abort();
		}
	}
	*tail = got->len - before;
	client_free(c);
	close(sv[1]);
}

static const struct served_file *
fuzz_file(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(fuzz_files) / sizeof(fuzz_files[0]); i++)
		if (strlen(fuzz_files[i].name) == len && memcmp(fuzz_files[i].name, name, len) == 0)
			return &fuzz_files[i];
	return NULL;
}

/* Splits line into at most max space-separated words; the count. */
static int
fuzz_words(const char *line, size_t len, const char **w, size_t *wl, int max)
{
	int    n = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || line[i] == ' ') {
			if (n < max) {
				w[n] = line + start;
				wl[n] = i - start;
			}
			n++;
			start = i + 1;
		}
	}
	return n;
}

static int
fuzz_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * The exact 0 OK answer line (a complete, non-fatal request) must get;
 * for a slice in fragments, want is the status line and *frag the bytes
 * the fragments after it must carry.
 */
static int
fuzz_ok_answer(const char *line, size_t len, struct bytes *want, int *closes,
    const unsigned char **frag, size_t *frag_len)
{
	const char               *w[5];
	size_t                    wl[5];
	int                       n = fuzz_words(line, len, w, wl, 5);
	const struct served_file *f;
	char                      head[64];
	uint64_t                  off, size;

	*closes = 0;
	*frag = NULL;
	*frag_len = 0;
	if (n == 1 && wl[0] == 4 && memcmp(w[0], "help", 4) == 0) {
		bytes_add(want, "0 OK\r\n" HELP_BODY, strlen("0 OK\r\n" HELP_BODY));
		return 0;
	}
	if (n == 1 && wl[0] == 4 && memcmp(w[0], "quit", 4) == 0) {
		bytes_add(want, "0 OK\r\n", 6);
		*closes = 1;
		return 0;
	}
	if (n == 1 && wl[0] == 16 && memcmp(w[0], "get_file_listing", 16) == 0) {
		bytes_add(want, fuzz_listing, sizeof(fuzz_listing) - 1);
		return 0;
	}
	if (n == 2 && wl[0] == 12 && memcmp(w[0], "get_metadata", 12) == 0 &&
	    (f = fuzz_file(w[1], wl[1])) != NULL) {
		snprintf(head, sizeof(head), "0 OK\r\n%zu\r\n", f->size);
		bytes_add(want, head, strlen(head));
		return 0;
	}
	if ((n == 4 || (n == 5 && wl[4] == 3 && memcmp(w[4], "raw", 3) == 0)) &&
	    wl[0] == 9 && memcmp(w[0], "get_slice", 9) == 0 &&
	    (f = fuzz_file(w[1], wl[1])) != NULL &&
	    fuzz_number(w[2], wl[2], &off) == 0 && fuzz_number(w[3], wl[3], &size) == 0 &&
	    off <= f->size && size <= f->size - off) {
		if (n == 5) {
			snprintf(head, sizeof(head), "0 OK\r\nContent-Length: %llu\r\n\r\n",
			    (unsigned long long)size);
			bytes_add(want, head, strlen(head));
			bytes_add(want, f->data + off, (size_t)size);
		} else if (fuzz_conf.slice_encoding == SLICE_FRAGMENTS) {
			/* where fragments end depends on the room left: see fuzz_fragments */
			bytes_add(want, "0 OK\r\n", 6);
			*frag = f->data + off;
			*frag_len = (size_t)size;
		} else {
			bytes_add(want, "0 OK\r\n", 6);
			bytes_add(want, fuzz_b64, base64_encode(fuzz_b64, f->data + off, (size_t)size));
			bytes_add(want, "\r\n", 2);
		}
		return 0;
	}
	return -1;
}

/*
 * Fragments ("LEN BYTES\r\n" ... "0 \r\n") at p carrying exactly the n
 * bytes at data: their total length, or 0 if they do not.
 */
static size_t
fuzz_fragments(const char *p, size_t len, const unsigned char *data, size_t n)
{
	size_t at = 0, done = 0;

	for (;;) {
		size_t flen = 0, digits = 0;

		while (at < len && p[at] >= '0' && p[at] <= '9' && digits < 20) {
			flen = flen * 10 + (size_t)(p[at++] - '0');
			digits++;
		}
		if (digits == 0 || at >= len || p[at++] != ' ')
			return 0;
		if (flen == 0)
			break;
		if (flen > n - done || len - at < flen + 2 ||
		    memcmp(p + at, data + done, flen) != 0 || memcmp(p + at + flen, "\r\n", 2) != 0)
			return 0;
		at += flen + 2;
		done += flen;
	}
	if (done != n || len - at < 2 || memcmp(p + at, "\r\n", 2) != 0)
		return 0;
	return at + 2;
}

static int
fuzz_known_command(const char *line, size_t len)
{
	static const char *const cmds[] = {
		"get_file_listing", "get_metadata", "get_slice", "help", "quit",
	};
	size_t n = 0;

	while (n < len && line[n] != ' ')
		n++;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strlen(cmds[i]) == n && memcmp(cmds[i], line, n) == 0)
			return 1;
	return 0;
}

/* Length of the status line at p ("CODE TEXT\r\n"), 0 if none known; *st its code. */
static size_t
fuzz_status_line(const char *p, size_t len, int *st)
{
	static const int codes[] = { 0, 100, 101, 199, 200, 201, 202, 203 };
	char             line[64];

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		snprintf(line, sizeof(line), "%d %s\r\n", codes[i],
		    protocol_status_text((enum status)codes[i]));
		if (len >= strlen(line) && memcmp(p, line, strlen(line)) == 0) {
			*st = codes[i];
			return strlen(line);
		}
	}
	return 0;
}

/* The fatal status a line (or a half line when complete is 0) must get, or 0. */
static int
fuzz_fatal_for(const char *line, size_t len, int complete, uint64_t line_max)
{
	int only_spaces = 1;

	/* a half line's last CR waits for its LF: not a byte of the line yet */
	if (!complete && len > 0 && line[len - 1] == '\r')
		len--;
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\n')
			return i > line_max ? 101 : 100;
		if (i + 1 > line_max)
			return 101;
		if (line[i] != ' ')
			only_spaces = 0;
	}
	return complete && only_spaces ? 101 : 0;
}

/* Walks the stream's lines and the responses side by side. */
static void
fuzz_check(const uint8_t *req, size_t len, const struct bytes *got, uint64_t line_max)
{
	const char *in = (const char *)req;
	size_t      pos = 0, at = 0;

	while (pos < len) {
		const char  *eol = memmem(in + pos, len - pos, "\r\n", 2);
		size_t       llen = eol != NULL ? (size_t)(eol - (in + pos)) : len - pos;
		int          fatal = fuzz_fatal_for(in + pos, llen, eol != NULL, line_max);
		int          st = -1, closes = 0;
		size_t       sl, frag_len, fl;
		const unsigned char *frag;
		struct bytes want = { 0 };

		if (eol == NULL && fatal == 0)
			break;      /* a half line: nothing */
		if ((sl = fuzz_status_line(got->p + at, got->len - at, &st)) == 0)
			fuzz_die("no known status line where a response must start", req, len, got);
		if (fatal != 0) {
			if (st != fatal)
				fuzz_die("wrong fatal status", req, len, got);
			at += sl;
			break;
		}
		if (st == 0) {
			if (fuzz_ok_answer(in + pos, llen, &want, &closes, &frag, &frag_len) == -1)
				fuzz_die("0 OK to a request that cannot succeed", req, len, got);
			if (got->len - at < want.len || memcmp(got->p + at, want.p, want.len) != 0)
				fuzz_die("wrong 0 OK answer", req, len, got);
			at += want.len;
			if (frag != NULL) {
				fl = fuzz_fragments(got->p + at, got->len - at, frag, frag_len);
				if (fl == 0)
					fuzz_die("wrong fragments", req, len, got);
				at += fl;
			}
		} else {
			if (st < 200)
				fuzz_die("fatal status for a well-formed line", req, len, got);
			if ((st == 200) == fuzz_known_command(in + pos, llen))
				fuzz_die("200 for a known command or not for an unknown one",
				    req, len, got);
			at += sl;
		}
		free(want.p);
		if (closes)
			break;
		pos += llen + 2;
	}
	if (at != got->len)
		fuzz_die("bytes after the last response owed", req, len, got);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bytes whole = { 0 }, pieces = { 0 };
	size_t       tail_whole, tail_pieces;
	uint32_t     seed;

	if (size == 0)
		return 0;
	fuzz_conf.request_line_max = (data[0] & LINE_MAX_BIT) ? LINE_MAX_LARGE : LINE_MAX_SMALL;
	fuzz_conf.slice_encoding = (data[0] & FRAGMENTS_BIT) ? SLICE_FRAGMENTS : SLICE_BASE64;
	/* never 0: that is the whole run */
	seed = 0x9e3779b9u * ((uint32_t)data[0] + 1);
	data++;
	size--;

	fuzz_run(data, size, 0, &whole, &tail_whole);
	fuzz_run(data, size, seed, &pieces, &tail_pieces);
	/*
	 * Fragment boundaries follow the room left in the output buffer, so
	 * in fragments the two runs need only carry the same content, which
	 * fuzz_check verifies of each; otherwise they must be the same bytes.
	 */
	if (fuzz_conf.slice_encoding != SLICE_FRAGMENTS && (whole.len != pieces.len ||
	    (whole.len > 0 && memcmp(whole.p, pieces.p, whole.len) != 0)))
		fuzz_die("the answer depends on how the input is split", data, size, &whole);
	if (tail_whole != 0 || tail_pieces != 0)
		fuzz_die("bytes sent after the peer's EOF (for a half line?)", data, size, &whole);
	fuzz_check(data, size, &whole, fuzz_conf.request_line_max);
	fuzz_check(data, size, &pieces, fuzz_conf.request_line_max);
	free(whole.p);
	free(pieces.p);
	return 0;
}
