/*
 * listen.c — the master's listening sockets.  On reload the listeners of
 * the new config are opened, except that one already open on the same
 * address keeps its descriptor (no window where connections are refused);
 * the ones the new config no longer names are closed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "net.h"

/* listen(2) backlog: clients wait here while every worker is full. */
#define LISTEN_BACKLOG  4096

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

int
listen_open(struct master *m, const struct config *c, char *err, size_t errlen)
{
	struct listener next[CONFIG_LISTEN_MAX];
	int             n = 0;

	/* config_load refuses duplicate addresses: each old one matches once */
	for (int i = 0; i < c->nlisten; i++) {
		int j = listen_find(m, c->listen[i].text);
		int fd = j == -1 ? -1 : m->listeners[j].fd;

		if (fd == -1 && (fd = net_listen(&c->listen[i], LISTEN_BACKLOG)) == -1) {
			snprintf(err, errlen, "listen %s: %s", c->listen[i].text, strerror(errno));
			goto fail;
		}
		/* Accepted sockets inherit it: no system call per connection. */
		if (net_send_buffer(fd, c->send_buffer) == -1) {
			snprintf(err, errlen, "listen %s: send_buffer: %s", c->listen[i].text,
			    strerror(errno));
			if (j == -1)
				close(fd);
			goto fail;
		}
		next[n].fd = fd;
		next[n].addr = c->listen[i];
		n++;
	}
	for (int j = 0; j < m->nlisteners; j++) {
		bool kept = false;
		for (int i = 0; i < n; i++)
			kept |= next[i].fd == m->listeners[j].fd;
		if (!kept) {
			log_info("closing listener %s", m->listeners[j].addr.text);
			close(m->listeners[j].fd);
		}
	}
	for (int i = 0; i < n; i++) {
		if (!listen_is_open(m, next[i].fd))
			log_info("listening on %s%s", next[i].addr.text,
			    next[i].addr.proxy_protocol ? " (PROXY protocol)" : "");
	}
	memcpy(m->listeners, next, sizeof(next[0]) * (size_t)n);
	m->nlisteners = n;
	return 0;
fail:
	/* close only what this call opened */
	for (int i = 0; i < n; i++) {
		if (!listen_is_open(m, next[i].fd))
			close(next[i].fd);
	}
	return -1;
}

void
listen_close_all(struct master *m)
{
	for (int i = 0; i < m->nlisteners; i++)
		close(m->listeners[i].fd);
	m->nlisteners = 0;
}
