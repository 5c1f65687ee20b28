/*
 * access.c — the access log (see access.h).  Line format:
 *
 *   TIME CLIENT "REQUEST" STATUS BYTES USEC
 *
 * TIME is ISO-8601 UTC, CLIENT is ADDR:PORT, REQUEST is rebuilt from what
 * the parser kept (each element's prefix; "..." marks a cut), BYTES counts
 * the response as produced, USEC runs from the end of the request line to
 * the end of the response.  Lines collect in a buffer written with one
 * write(2) when it fills, once a second, and at exit.  The file only ever
 * gets whole lines: what a failing or short write leaves stays buffered
 * (see access_write); once the buffer is full, new lines are dropped whole,
 * counted, and the episode is warned once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "log.h"
#include "request.h"

#define ACCESS_BUF      65536
#define ACCESS_LINE_MAX 512

static int      access_fd = -1;
static char     access_path[4096];
static char     access_buf[ACCESS_BUF];
static size_t   access_len;
static uint64_t access_last_flush_s;
static uint64_t access_lost;        /* lines dropped in this failing episode */
static uint64_t access_lost_all;    /* lines dropped since the worker started */
static bool     access_failing;     /* warned once; info when it writes again */

void
access_open(int fd, const char *path)
{
	access_fd = fd;
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

static size_t
access_escape(char *dst, size_t room, const char *src, size_t n)
{
	size_t used = 0;

	for (size_t i = 0; i < n && used + 5 < room; i++) {
		unsigned char ch = (unsigned char)src[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			dst[used++] = (char)ch;
		else
			used += (size_t)snprintf(dst + used, room - used, "\\x%02x", ch);
	}
	dst[used] = '\0';
	return used;
}

/* The request as text: cut at ACCESS_REQUEST_MAX bytes, non-printables escaped. */
static void
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
		if ((e->truncated || n < e->len) && used + 4 < len)
			used += (size_t)snprintf(buf + used, len - used, "...");
	}
	if (p->argc > kept && used + 4 < len)
		snprintf(buf + used, len - used, " ...");
}

struct access_pending *
access_begin(const char *peer, const struct request_parser *p)
{
	struct access_pending *a;

	if (access_fd == -1 || (a = malloc(sizeof(*a))) == NULL)
		return NULL;
	a->start_ns = clock_now_ns();
	a->bytes = 0;
	snprintf(a->peer, sizeof(a->peer), "%s", peer);
	access_request_text(p, a->request, sizeof(a->request));
	return a;
}

void
access_count(struct access_pending *a, uint64_t bytes)
{
	if (a != NULL)
		a->bytes += bytes;
}

void
access_end(struct access_pending *a, enum status status)
{
	struct timespec wall;
	struct tm       tm;
	char            stamp[32], line[ACCESS_LINE_MAX];
	int             n;

	if (a == NULL)
		return;
	if (access_fd == -1)
		goto done;
	clock_gettime(CLOCK_REALTIME, &wall);
	gmtime_r(&wall.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line), "%s %s \"%s\" %d %" PRIu64 " %" PRIu64 "\n",
	    stamp, a->peer, a->request, (int)status, a->bytes,
	    (clock_now_ns() - a->start_ns) / 1000);
	if (n < 0)
		goto done;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (access_len + (size_t)n > sizeof(access_buf))
		access_flush(true);
	if (access_len + (size_t)n > sizeof(access_buf)) {
		access_lost++;      /* the file takes nothing: this line is lost whole */
		access_lost_all++;
		goto done;
	}
	memcpy(access_buf + access_len, line, (size_t)n);
	access_len += (size_t)n;
done:
	free(a);
}
