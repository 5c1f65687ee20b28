/*
 * access.c — the access log (see access.h).  Line format:
 *
 *   TIME CLIENT "REQUEST" STATUS BYTES USEC
 *
 * TIME is ISO-8601 UTC, CLIENT is ADDR:PORT, REQUEST is rebuilt from what
 * the parser kept (each element's prefix; "..." marks a cut), BYTES counts
 * the response as produced, USEC runs from the end of the request line to
 * the end of the response.  Lines collect in a buffer written with one
 * write(2) when it fills, once a second, and at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
static uint64_t access_lost;        /* bytes dropped in this failing episode */
static bool     access_failing;     /* warned once; info when it writes again */

static int
access_open_file(void)
{
	return open(access_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
}

int
access_open(const char *path)
{
	if (strcmp(path, "off") == 0)
		return 0;
	snprintf(access_path, sizeof(access_path), "%s", path);
	if ((access_fd = access_open_file()) == -1) {
		log_warn("access_log %s", access_path);
		return -1;
	}
	return 0;
}

bool
access_enabled(void)
{
	return access_fd != -1;
}

int
access_reopen(void)
{
	int fd;

	if (access_fd == -1)
		return 0;
	access_flush(true);
	if ((fd = access_open_file()) == -1) {
		log_warn("reopening access_log %s", access_path);
		return -1;
	}
	dup2(fd, access_fd);
	close(fd);
	return 0;
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
	/* A full disk must not stop serving, nor flood the error log. */
	if (write(access_fd, access_buf, access_len) == -1) {
		if (!access_failing)
			log_warn("access_log %s: lines are lost until it can be written again",
			    access_path);
		access_failing = true;
		access_lost += access_len;
	} else if (access_failing) {
		log_info("access_log %s: written again; %" PRIu64 " bytes were lost",
		    access_path, access_lost);
		access_failing = false;
		access_lost = 0;
	}
	access_len = 0;
}

void
access_close(void)
{
	access_flush(true);
	if (access_fd != -1)
		close(access_fd);
	access_fd = -1;
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
	memcpy(access_buf + access_len, line, (size_t)n);
	access_len += (size_t)n;
done:
	free(a);
}
