/*
 * net.c — socket helpers shared by master, workers and the benchmark.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "net.h"

int
net_send_buffer(int fd, uint64_t bytes)
{
	int size = bytes > INT_MAX / 2 ? INT_MAX / 2 : (int)bytes;

	if (bytes == 0)
		return 0;
	return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

int
net_listen(const struct config_listen *l, int backlog)
{
	int fd, one = 1, saved;

	fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	/* [::]:PORT means IPv6 only, so 0.0.0.0:PORT can be listed beside it. */
	if (l->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	/*
	 * Linux copies both to every socket accepted from this one, which
	 * saves two system calls per connection in the worker.
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == -1)
		goto fail;
	if (listen(fd, backlog) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

void
net_close_abortive(int fd)
{
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };

	/* If it fails the close is graceful: nothing worse than before. */
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	close(fd);
}

void
net_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else
		snprintf(buf, len, "?");
}

void
net_peer_text(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t               sslen = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sslen) == -1)
		snprintf(buf, len, "?");
	else
		net_addr_text((const struct sockaddr *)&ss, buf, len);
}
