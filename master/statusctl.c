/*
 * statusctl.c — `hftpd -s status [--json]`: asks the running master for
 * GET /status on its status listener (the first status_listen line of the
 * config; a wildcard address is asked on loopback) and prints the answer
 * as a table, one line per worker and the master's, or the JSON as it came.
 * The same view a scraper gets, over the listener that already exists: no
 * second control socket to secure.  A client of the master, run in its own
 * process; it reads only the fixed shape status.c writes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "master.h"

#define STATUSCTL_TIMEOUT_MS    5000
#define STATUSCTL_ANSWER_MAX    (4u << 20)

/* Where to ask: the listener's address, a wildcard turned into loopback. */
static void
statusctl_address(const struct config_listen *l, struct sockaddr_storage *ss)
{
	memcpy(ss, &l->addr, sizeof(*ss));
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			sin6->sin6_addr = in6addr_loopback;
	}
}

/* Waits for fd to be ready for events until deadline; false on timeout. */
static bool
statusctl_wait(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	uint64_t      now = clock_now_ms();

	return now < deadline && poll(&pfd, 1, (int)(deadline - now)) == 1;
}

/*
 * Connects fd (non-blocking) within the deadline: a status port behind a
 * firewall that drops packets must not hang the command; 0 / -1 with errno.
 */
static int
statusctl_connect(int fd, const struct sockaddr_storage *ss, socklen_t len, uint64_t deadline)
{
	int       soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	if (!statusctl_wait(fd, POLLOUT, deadline)) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
		return -1;
	errno = soerr;
	return soerr == 0 ? 0 : -1;
}

/* GET /status; the whole answer (head and body) in a new string, or NULL with err. */
static char *
statusctl_fetch(const struct config_listen *l, char *err, size_t errlen)
{
	static const char       req[] = "GET /status HTTP/1.0\r\nHost: hftpd\r\n\r\n";
	struct sockaddr_storage ss;
	uint64_t                deadline = clock_now_ms() + STATUSCTL_TIMEOUT_MS;
	char                   *buf = NULL;
	size_t                  len = 0;
	ssize_t                 n;
	int                     fd;

	statusctl_address(l, &ss);
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    statusctl_connect(fd, &ss, l->addrlen, deadline) == -1 ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		snprintf(err, errlen, "status listener %s: %s", l->text, strerror(errno));
		goto fail;
	}
	if ((buf = malloc(STATUSCTL_ANSWER_MAX + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (len < STATUSCTL_ANSWER_MAX && statusctl_wait(fd, POLLIN, deadline) &&
	    (n = recv(fd, buf + len, STATUSCTL_ANSWER_MAX - len, 0)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	if (len == 0 || strstr(buf, "\r\n\r\n") == NULL) {
		snprintf(err, errlen, "status listener %s: no answer", l->text);
		goto fail;
	}
	close(fd);
	return buf;
fail:
	if (fd != -1)
		close(fd);
	free(buf);
	return NULL;
}

/* The value of "key" in the JSON text [obj, end) as text (quotes dropped), or "?". */
static void
statusctl_field(const char *obj, const char *end, const char *key, char *out, size_t outlen)
{
	char        pat[64];
	const char *p, *v;
	size_t      n;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	snprintf(out, outlen, "?");
	if ((p = strstr(obj, pat)) == NULL || p >= end)
		return;
	v = p + strlen(pat);
	if (*v == '"')
		v++;
	n = strcspn(v, "\",}");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static void
statusctl_table(const char *json)
{
	const char *w = strstr(json, "\"workers\":["), *end = json + strlen(json), *o, *e;
	char        f[7][32];
	static const char *const wkeys[] = { "slot", "pid", "generation", "state", "clients",
		"capacity", "requests" };

	printf("%-8s %-8s %-4s %-9s %-17s %10s %14s\n", "WORKER", "PID", "GEN", "STATE",
	    "CLIENTS/CAPACITY", "REQUESTS", "BYTES");
	for (o = w; o != NULL && (o = strchr(o, '{')) != NULL; o = e) {
		char bytes[32], cc[sizeof(f[0]) * 2 + 2];

		if ((e = strchr(o, '}')) == NULL)
			break;
		for (size_t k = 0; k < sizeof(wkeys) / sizeof(wkeys[0]); k++)
			statusctl_field(o, e, wkeys[k], f[k], sizeof(f[k]));
		statusctl_field(o, e, "sent_bytes", bytes, sizeof(bytes));
		snprintf(cc, sizeof(cc), "%s/%s", f[4], f[5]);
		printf("%-8s %-8s %-4s %-9s %-17s %10s %14s\n", f[0], f[1], f[2], f[3], cc, f[6],
		    bytes);
	}
	end = w != NULL ? w : end;
	statusctl_field(json, end, "pid", f[0], sizeof(f[0]));
	statusctl_field(json, end, "generation", f[1], sizeof(f[1]));
	statusctl_field(json, end, "state", f[2], sizeof(f[2]));
	statusctl_field(json, end, "accepted", f[3], sizeof(f[3]));
	statusctl_field(json, end, "refused", f[4], sizeof(f[4]));
	statusctl_field(json, end, "reloads", f[5], sizeof(f[5]));
	statusctl_field(json, end, "uptime_seconds", f[6], sizeof(f[6]));
	printf("%-8s %-8s %-4s %-9s accepted %s, refused %s, reloads %s, up %s s\n", "master",
	    f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
}

int
statusctl_run(const struct config *c, bool json)
{
	char  err[CONFIG_ERR_MAX];
	char *answer, *body;

	if (c->nstatus_listen == 0) {
		fprintf(stderr, "hftpd: %s: status_listen is not set\n",
		    c->path[0] != '\0' ? c->path : "no config file");
		return 1;
	}
	if ((answer = statusctl_fetch(&c->status_listen[0], err, sizeof(err))) == NULL) {
		fprintf(stderr, "hftpd: %s\n", err);
		return 1;
	}
	body = strstr(answer, "\r\n\r\n") + 4;
	if (strncmp(answer, "HTTP/1.1 200 ", 13) != 0) {
		fprintf(stderr, "hftpd: status listener %s: %.*s\n", c->status_listen[0].text,
		    (int)strcspn(answer, "\r\n"), answer);
		free(answer);
		return 1;
	}
	if (json)
		fputs(body, stdout);
	else
		statusctl_table(body);
	free(answer);
	return 0;
}
