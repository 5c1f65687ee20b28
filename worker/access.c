/*
 * access.c — the access log (see access.h).  Line format (text):
 *
 *   TIME CLIENT "REQUEST" STATUS BYTES USEC
 *
 * TIME is ISO-8601 UTC, CLIENT is ADDR:PORT, REQUEST is rebuilt from what
 * the parser kept (each element's prefix; "..." marks a cut), BYTES counts
 * the response as produced, USEC runs from the start of the poll turn in
 * which the request line was parsed to the end of the response.  access_log_format = json
 * writes the same fields as one JSON object a line (RFC 8259: strings
 * escaped, bytes outside printable ASCII as \u00XX):
 *
 *   {"time":"...","client":"...","request":"...","status":0,"bytes":18,"usec":52}
 *
 * Per line: no memory, one clock read (the end); the time text is made
 * once a second (as nginx caches it), the rest by hand.  Lines collect in
 * a buffer written with one write(2) when it fills, once a second, and at
 * exit.  The file only ever gets whole lines: what a failing or short
 * write leaves stays buffered (see access_write); once the buffer is full,
 * new lines are dropped whole, counted, and the episode is warned once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "log.h"
#include "protocol.h"
#include "request.h"

#define ACCESS_BUF      65536
/* The longest line (JSON, a peer text all escaped) is well under this. */
#define ACCESS_LINE_MAX 1024
#define ACCESS_STAMP_MAX 32

static int      access_fd = -1;
static char     access_path[4096];
static char     access_buf[ACCESS_BUF];
static size_t   access_len;
static uint64_t access_last_flush_s;
static uint64_t access_lost;        /* lines dropped in this failing episode */
static uint64_t access_lost_all;    /* lines dropped since the worker started */
static bool     access_failing;     /* warned once; info when it writes again */
static enum access_log_format access_format;
/* The time text of the current second, and when (monotonic) that second ends. */
static char     access_stamp[ACCESS_STAMP_MAX];
static size_t   access_stamp_len;
static uint64_t access_stamp_until_ns;

void
access_open(int fd, const char *path, enum access_log_format format)
{
	access_fd = fd;
	access_format = format;
	snprintf(access_path, sizeof(access_path), "%s", path);
}

bool
access_enabled(void)
{
	return access_fd != -1;
}

void
access_reopen(int fd)
{
	/* a log that is off stays off (a draining worker of an older config) */
	if (access_fd == -1) {
		close(fd);
		return;
	}
	access_flush(true);
	/* the same number: nothing else holds it */
	if (dup2(fd, access_fd) == -1)
		log_warn("access_log %s: keeping the old file", access_path);
	close(fd);
}

/*
 * The file holds the written part of a line that a short write cut (the
 * file system filled up mid-write): take it back, so the file only ever
 * holds whole lines.  An O_APPEND write leaves the offset at its own end:
 * the cut part is taken back only while it is still the file's end (no
 * other worker appended behind it since), never someone else's line.  -1
 * when it cannot be taken back (the rest of the line must then follow it).
 */
static int
access_take_back(size_t cut)
{
	struct stat st;
	off_t       end = lseek(access_fd, 0, SEEK_CUR);

	if (end == -1 || fstat(access_fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size != end || (uint64_t)end < cut)
		return -1;
	return ftruncate(access_fd, end - (off_t)cut);
}

/* Lines the buffer holds (each ends in a newline). */
static uint64_t
access_lines(const char *buf, size_t len)
{
	uint64_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\n';
	return n;
}

/* Entering or leaving a failing episode: warned once, told when it ends. */
static void
access_episode(bool failing, const char *why)
{
	if (failing && !access_failing)
		log_warnx("access_log %s: %s; lines wait in memory, and new ones are lost "
		    "once it is full, until the file can be written again", access_path, why);
	else if (!failing && access_failing)
		log_info("access_log %s: written again; %" PRIu64 " lines were lost",
		    access_path, access_lost);
	if (access_failing != failing)
		access_lost = 0;
	access_failing = failing;
}

/*
 * Writes the buffer.  What the file does not take stays for the next
 * flush, from the start of a line: a short write's cut line is taken back
 * from the file (access_take_back) and kept whole here; only if that fails
 * does the rest of the cut line stay, to complete it.  A full disk must not
 * stop serving, nor flood the error log.
 */
static void
access_write(void)
{
	ssize_t n;
	size_t  done;

	do
		n = write(access_fd, access_buf, access_len);
	while (n == -1 && errno == EINTR);
	if (n == (ssize_t)access_len) {
		access_len = 0;
		access_episode(false, NULL);
		return;
	}
	if (n == -1) {
		access_episode(true, strerror(errno));
		return;
	}
	done = (size_t)n;
	while (done > 0 && access_buf[done - 1] != '\n')
		done--;
	if (done < (size_t)n && access_take_back((size_t)n - done) == -1)
		done = (size_t)n;
	memmove(access_buf, access_buf + done, access_len - done);
	access_len -= done;
	access_episode(true, "short write (file system full?)");
}

void
access_flush(bool force)
{
	uint64_t now_s;

	if (access_fd == -1 || access_len == 0)
		return;
	now_s = clock_now_ms() / CLOCK_MS_PER_SEC;
	if (!force && now_s == access_last_flush_s && access_len < ACCESS_BUF / 2)
		return;
	access_last_flush_s = now_s;
	access_write();
}

uint64_t
access_lost_lines(void)
{
	return access_lost;
}

uint64_t
access_lost_total(void)
{
	return access_lost_all;
}

void
access_close(void)
{
	access_flush(true);
	if (access_fd != -1 && access_len > 0) {
		access_lost += access_lines(access_buf, access_len);
		access_lost_all += access_lines(access_buf, access_len);
		log_warnx("access_log %s: %" PRIu64 " lines were lost", access_path, access_lost);
	}
	if (access_fd != -1)
		close(access_fd);
	access_fd = -1;
	access_len = 0;
	access_lost = 0;
	access_failing = false;
}

/* A line being formatted: bytes past cap are dropped (the bounds keep it whole). */
struct access_line {
	char   text[ACCESS_LINE_MAX];
	size_t len;
};

static void
access_put(struct access_line *l, const char *p, size_t n)
{
	if (n > sizeof(l->text) - l->len)
		n = sizeof(l->text) - l->len;
	memcpy(l->text + l->len, p, n);
	l->len += n;
}

static void
access_put_u64(struct access_line *l, uint64_t v)
{
	char digits[PROTOCOL_DECIMAL_MAX];

	access_put(l, digits, protocol_decimal(digits, v));
}

static const char access_hex[] = "0123456789abcdef";

static size_t
access_escape(char *dst, size_t room, const char *src, size_t n)
{
	size_t used = 0;

	for (size_t i = 0; i < n && used + 5 < room; i++) {
		unsigned char ch = (unsigned char)src[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
			dst[used++] = (char)ch;
			continue;
		}
		dst[used++] = '\\';
		dst[used++] = 'x';
		dst[used++] = access_hex[ch >> 4];
		dst[used++] = access_hex[ch & 15];
	}
	dst[used] = '\0';
	return used;
}

/* Appends "..." (with a space first when spaced) if it fits the request text. */
static size_t
access_cut_mark(char *buf, size_t used, size_t len, bool spaced)
{
	const char *mark = spaced ? " ..." : "...";
	size_t      n = spaced ? 4 : 3;

	if (used + 4 >= len)
		return used;
	memcpy(buf + used, mark, n + 1);
	return used + n;
}

/* The request as text: cut at ACCESS_REQUEST_MAX bytes, non-printables escaped. */
static size_t
access_request_text(const struct request_parser *p, char *buf, size_t len)
{
	size_t used = 0;
	int    kept = p->argc < REQUEST_ELEMS_MAX ? p->argc : REQUEST_ELEMS_MAX;

	buf[0] = '\0';
	if (len > ACCESS_REQUEST_MAX + 1)
		len = ACCESS_REQUEST_MAX + 1;
	for (int i = 0; i < kept && used + 1 < len; i++) {
		const struct request_elem *e = &p->elem[i];
		size_t n = strlen(e->text);
		if (i > 0)
			buf[used++] = ' ';
		used += access_escape(buf + used, len - used, e->text, n);
		if (e->truncated || n < e->len)
			used = access_cut_mark(buf, used, len, false);
	}
	if (p->argc > kept)
		used = access_cut_mark(buf, used, len, true);
	return used;
}

/* Whether a byte goes into a JSON string as it is. */
static bool
access_json_plain(unsigned char ch)
{
	return ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
}

/* A JSON string (RFC 8259): quotes, backslashes and bytes outside printable ASCII escaped. */
static void
access_put_json(struct access_line *l, const char *s, size_t n)
{
	char   esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	size_t run;

	access_put(l, "\"", 1);
	for (size_t i = 0; i < n; i += run) {
		unsigned char ch = (unsigned char)s[i];

		/* runs of plain bytes in one copy */
		for (run = 0; i + run < n && access_json_plain((unsigned char)s[i + run]); run++)
			;
		if (run > 0) {
			access_put(l, s + i, run);
			continue;
		}
		run = 1;
		if (ch == '"' || ch == '\\') {
			esc[1] = (char)ch;
			access_put(l, esc, 2);
			esc[1] = 'u';
			continue;
		}
		esc[4] = access_hex[ch >> 4];
		esc[5] = access_hex[ch & 15];
		access_put(l, esc, sizeof(esc));
	}
	access_put(l, "\"", 1);
}

/*
 * The time text of the second now_ns falls in: made when a second ends
 * (one CLOCK_REALTIME read and a strftime a second), else the one made.
 */
static void
access_stamp_refresh(uint64_t now_ns)
{
	struct timespec wall;
	struct tm       tm;

	if (now_ns < access_stamp_until_ns && access_stamp_len > 0)
		return;
	clock_gettime(CLOCK_REALTIME, &wall);
	gmtime_r(&wall.tv_sec, &tm);
	access_stamp_len = strftime(access_stamp, sizeof(access_stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	access_stamp_until_ns = now_ns + (CLOCK_NS_PER_SEC - (uint64_t)wall.tv_nsec);
}

/* TIME CLIENT "REQUEST" STATUS BYTES USEC */
static void
access_format_text(struct access_line *l, const struct access_pending *a,
    const char *req, size_t reqlen, enum status status, uint64_t usec)
{
	access_put(l, access_stamp, access_stamp_len);
	access_put(l, " ", 1);
	access_put(l, a->peer, strlen(a->peer));
	access_put(l, " \"", 2);
	access_put(l, req, reqlen);
	access_put(l, "\" ", 2);
	access_put_u64(l, (uint64_t)status);
	access_put(l, " ", 1);
	access_put_u64(l, a->bytes);
	access_put(l, " ", 1);
	access_put_u64(l, usec);
	access_put(l, "\n", 1);
}

/* The same fields as one JSON object. */
static void
access_format_json(struct access_line *l, const struct access_pending *a,
    const char *req, size_t reqlen, enum status status, uint64_t usec)
{
	access_put(l, "{\"time\":", 8);
	access_put_json(l, access_stamp, access_stamp_len);
	access_put(l, ",\"client\":", 10);
	access_put_json(l, a->peer, strlen(a->peer));
	access_put(l, ",\"request\":", 11);
	access_put_json(l, req, reqlen);
	access_put(l, ",\"status\":", 10);
	access_put_u64(l, (uint64_t)status);
	access_put(l, ",\"bytes\":", 9);
	access_put_u64(l, a->bytes);
	access_put(l, ",\"usec\":", 8);
	access_put_u64(l, usec);
	access_put(l, "}\n", 2);
}

void
access_begin(struct access_pending *a, const char *peer, const struct request_parser *p,
    uint64_t start_ns)
{
	a->on = access_fd != -1;
	a->start_ns = start_ns;
	a->bytes = 0;
	a->peer = peer;
	a->p = p;
}

void
access_count(struct access_pending *a, uint64_t bytes)
{
	a->bytes += bytes;
}

/* Appends a whole line to the buffer, or counts it lost. */
static void
access_append(const struct access_line *l)
{
	if (access_len + l->len > sizeof(access_buf))
		access_flush(true);
	if (access_len + l->len > sizeof(access_buf)) {
		access_lost++;      /* the file takes nothing: this line is lost whole */
		access_lost_all++;
		return;
	}
	memcpy(access_buf + access_len, l->text, l->len);
	access_len += l->len;
}

void
access_end(struct access_pending *a, enum status status)
{
	struct access_line line;
	char               req[ACCESS_REQUEST_MAX + 1];
	size_t             reqlen;
	uint64_t           now_ns, usec;

	if (!a->on)
		return;
	a->on = false;
	if (access_fd == -1)
		return;
	now_ns = clock_now_ns();
	usec = now_ns > a->start_ns ? (now_ns - a->start_ns) / 1000 : 0;
	access_stamp_refresh(now_ns);
	reqlen = access_request_text(a->p, req, sizeof(req));
	line.len = 0;
	if (access_format == ACCESS_LOG_JSON)
		access_format_json(&line, a, req, reqlen, status, usec);
	else
		access_format_text(&line, a, req, reqlen, status, usec);
	access_append(&line);
}
