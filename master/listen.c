/*
 * listen.c — the master's listening sockets.  On reload the listeners of
 * the new config are opened, except that one already open on the same
 * address keeps its descriptor (no window where connections are refused);
 * the ones the new config no longer names are closed.
 *
 * Socket activation: sockets passed by systemd (LISTEN_PID, LISTEN_FDS,
 * descriptors from 3 on) are taken for the listen lines whose address they
 * are bound to; lines without one are opened as usual.  A passed socket is
 * never closed while the master runs: one no line names (yet, or any more)
 * waits in m->inherited, so a reload can name it again.
 *
 * status_listen lines live in the same list, marked addr.status: kept,
 * passed and inherited alike; the master polls them apart (status.c).
 *
 * Upgrade: the old master's sockets are adopted the same way (upgrade.c
 * reads which); those systemd passed stay never closed, the others are
 * the new master's own, and one no line names is closed at start.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "net.h"

/* listen(2) backlog: clients wait here while every worker is full. */
#define LISTEN_BACKLOG  4096
/* sd_listen_fds(3): the first passed descriptor */
#define LISTEN_FDS_START    3

/* The canonical "ADDR:PORT" of a bound TCP socket (as config spells it). */
static int
listen_sock_text(int fd, struct config_listen *out)
{
	struct sockaddr_storage ss;
	socklen_t               len = sizeof(ss);
	char                    host[INET6_ADDRSTRLEN], text[sizeof(out->text)], err[128];
	int                     type, listening;
	socklen_t               optlen = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) == -1 || type != SOCK_STREAM)
		return -1;
	optlen = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == -1 || !listening)
		return -1;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(text, sizeof(text), "%s:%u", host, (unsigned)ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(text, sizeof(text), "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
	} else
		return -1;
	return config_parse_listen(text, out, err, sizeof(err));
}

int
listen_adopt(struct master *m, int fd, bool never_close, const char *how)
{
	struct config_listen addr;

	if (listen_sock_text(fd, &addr) == -1 || m->ninherited == MASTER_LISTENERS_MAX) {
		log_warnx("%s: descriptor %d is not a TCP listener hftpd can use; ignored",
		    how, fd);
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	m->inherited[m->ninherited].fd = fd;
	m->inherited[m->ninherited].addr = addr;
	m->inherited[m->ninherited].inherited = never_close;
	m->ninherited++;
	log_info("%s: %s passed as descriptor %d", how, addr.text, fd);
	return 0;
}

void
listen_drop_unnamed(struct master *m)
{
	for (int j = 0; j < m->ninherited; j++) {
		if (m->inherited[j].inherited)
			continue;
		log_info("inherited listener %s no longer named: closed", m->inherited[j].addr.text);
		close(m->inherited[j].fd);
		m->inherited[j--] = m->inherited[--m->ninherited];
	}
}

int
listen_inherit(struct master *m)
{
	const char *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
	long        n;

	if (pid_text == NULL || fds_text == NULL || atol(pid_text) != (long)getpid())
		goto done;
	n = atol(fds_text);
	for (long i = 0; i < n; i++)
		listen_adopt(m, LISTEN_FDS_START + (int)i, true, "socket activation");
done:
	/* the workers and anything they start must not take them for theirs */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return m->ninherited;
}

/* A passed socket bound to addr_text, taken out of the pool (*never_close:
 * systemd's); or -1. */
static int
listen_take_inherited(struct master *m, const char *addr_text, bool *never_close)
{
	for (int j = 0; j < m->ninherited; j++) {
		int fd = m->inherited[j].fd;
		if (strcmp(m->inherited[j].addr.text, addr_text) != 0)
			continue;
		*never_close = m->inherited[j].inherited;
		m->inherited[j] = m->inherited[--m->ninherited];
		return fd;
	}
	return -1;
}

/* Index in m->listeners of the one open on addr, or -1. */
static int
listen_find(const struct master *m, const char *addr_text)
{
	for (int j = 0; j < m->nlisteners; j++) {
		if (strcmp(m->listeners[j].addr.text, addr_text) == 0)
			return j;
	}
	return -1;
}

/* True when fd is one of m's open listeners (kept by listen_open). */
static bool
listen_is_open(const struct master *m, int fd)
{
	for (int j = 0; j < m->nlisteners; j++) {
		if (m->listeners[j].fd == fd)
			return true;
	}
	return false;
}

/*
 * The listener for line l: the one open on its address, else a passed one,
 * else a new socket; 0 / -1 with err, and then nothing of it is left open
 * but what was open before (a passed socket goes back to the pool).
 */
static int
listen_line(struct master *m, const struct config *c, const struct config_listen *l,
    struct listener *out, char *err, size_t errlen)
{
	int  j = listen_find(m, l->text);
	int  fd = j == -1 ? -1 : m->listeners[j].fd;
	bool from_pool = false;

	out->inherited = j != -1 && m->listeners[j].inherited;
	if (fd == -1 && (fd = listen_take_inherited(m, l->text, &out->inherited)) != -1)
		from_pool = true;
	if (fd == -1 && (fd = net_listen(l, LISTEN_BACKLOG)) == -1) {
		snprintf(err, errlen, "listen %s: %s", l->text, strerror(errno));
		return -1;
	}
	/* Accepted sockets inherit it: no system call per connection. */
	if (net_send_buffer(fd, c->send_buffer) == -1) {
		snprintf(err, errlen, "listen %s: send_buffer: %s", l->text, strerror(errno));
		/* a socket systemd passed goes back to the pool, never closed */
		if (from_pool)
			m->inherited[m->ninherited++] = (struct listener){
			    .fd = fd, .addr = *l, .inherited = out->inherited };
		else if (j == -1)
			close(fd);
		return -1;
	}
	out->fd = fd;
	out->addr = *l;
	return 0;
}

/* Line i of c's listen lines, then of its status_listen lines. */
static const struct config_listen *
listen_nth(const struct config *c, int i)
{
	return i < c->nlisten ? &c->listen[i] : &c->status_listen[i - c->nlisten];
}

int
listen_open(struct master *m, const struct config *c, char *err, size_t errlen)
{
	struct listener next[MASTER_LISTENERS_MAX];
	int             n = 0;

	/* config_load refuses duplicate addresses: each old one matches once */
	for (int i = 0; i < c->nlisten + c->nstatus_listen; i++, n++) {
		if (listen_line(m, c, listen_nth(c, i), &next[n], err, errlen) == -1)
			goto fail;
	}
	for (int j = 0; j < m->nlisteners; j++) {
		bool kept = false;
		for (int i = 0; i < n; i++)
			kept |= next[i].fd == m->listeners[j].fd;
		if (kept)
			continue;
		if (m->listeners[j].inherited) {
			log_info("listener %s no longer named: kept for a later reload",
			    m->listeners[j].addr.text);
			m->inherited[m->ninherited++] = m->listeners[j];
			continue;
		}
		log_info("closing listener %s", m->listeners[j].addr.text);
		close(m->listeners[j].fd);
	}
	for (int i = 0; i < n; i++) {
		if (!listen_is_open(m, next[i].fd))
			log_info("listening on %s%s", next[i].addr.text,
			    next[i].addr.proxy_protocol ? " (PROXY protocol)" :
			    next[i].addr.status ? " (status)" : "");
	}
	memcpy(m->listeners, next, sizeof(next[0]) * (size_t)n);
	m->nlisteners = n;
	return 0;
fail:
	/* close only what this call opened; passed sockets go back */
	for (int i = 0; i < n; i++) {
		if (listen_is_open(m, next[i].fd))
			continue;
		if (next[i].inherited)
			m->inherited[m->ninherited++] = next[i];
		else
			close(next[i].fd);
	}
	return -1;
}

void
listen_close_hftp(struct master *m)
{
	int kept = 0;

	for (int i = 0; i < m->nlisteners; i++) {
		if (m->listeners[i].addr.status)
			m->listeners[kept++] = m->listeners[i];
		else
			close(m->listeners[i].fd);
	}
	m->nlisteners = kept;
}

void
listen_close_all(struct master *m)
{
	for (int i = 0; i < m->nlisteners; i++)
		close(m->listeners[i].fd);
	m->nlisteners = 0;
	for (int i = 0; i < m->ninherited; i++)
		close(m->inherited[i].fd);
	m->ninherited = 0;
}
