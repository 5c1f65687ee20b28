/*
 * test_net.c — unit tests for shared/net.c: address text for IPv4, IPv6
 * and other families; a listener on a loopback port (non-blocking,
 * close-on-exec, TCP_NODELAY and SO_KEEPALIVE that accepted sockets
 * inherit, IPv6 only on an IPv6 address), the error kept when the port is
 * taken; the send-buffer cap; the abortive close that the peer sees as a
 * reset, and a peer's text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "net.h"

static struct config_listen
loopback4(void)
{
	struct config_listen l;
	struct sockaddr_in  *sin = (struct sockaddr_in *)&l.addr;

	memset(&l, 0, sizeof(l));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = 0;              /* any free port */
	l.addrlen = sizeof(*sin);
	return l;
}

static int
sockopt(int fd, int level, int name)
{
	int       v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

/* A client connected to listener lfd, and the server's side of it. */
static void
connect_pair(int lfd, int *client, int *server)
{
	struct sockaddr_storage ss;
	socklen_t               len = sizeof(ss);
	struct pollfd           pfd = { .fd = lfd, .events = POLLIN };

	assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
	*client = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*client >= 0);
	assert_int_equal(connect(*client, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	*server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*server >= 0);
}

static void test_addr_text(void **state)
{
	struct sockaddr_in  sin = { .sin_family = AF_INET, .sin_port = htons(19500) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct sockaddr_un  sun = { .sun_family = AF_UNIX };
	char                buf[64], tiny[6];

	(void)state;
	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	net_addr_text((struct sockaddr *)&sin, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.7:19500");
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	net_addr_text((struct sockaddr *)&sin6, buf, sizeof(buf));
	assert_string_equal(buf, "[2001:db8::1]:443");
	net_addr_text((struct sockaddr *)&sun, buf, sizeof(buf));
	assert_string_equal(buf, "?");
	/* truncated, never overrun */
	net_addr_text((struct sockaddr *)&sin, tiny, sizeof(tiny));
	assert_string_equal(tiny, "192.0");
}

static void test_listen_loopback(void **state)
{
	struct config_listen l = loopback4(), taken;
	struct sockaddr_in   bound;
	socklen_t            len = sizeof(bound);
	int                  lfd, lfd2, client, server;
	char                 peer[64], want[64];

	(void)state;
	lfd = net_listen(&l, 16);
	assert_true(lfd >= 0);
	assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(sockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	assert_int_equal(sockopt(lfd, SOL_SOCKET, SO_REUSEADDR), 1);
	/* the port is taken: -1 with the bind's errno, no descriptor leaked */
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&bound, &len), 0);
	taken = l;
	memcpy(&taken.addr, &bound, sizeof(bound));
	lfd2 = net_listen(&taken, 16);
	assert_int_equal(lfd2, -1);
	assert_int_equal(errno, EADDRINUSE);
	/* accepted sockets inherit TCP_NODELAY and SO_KEEPALIVE */
	connect_pair(lfd, &client, &server);
	assert_int_equal(sockopt(server, IPPROTO_TCP, TCP_NODELAY) != 0, 1);
	assert_int_equal(sockopt(server, SOL_SOCKET, SO_KEEPALIVE) != 0, 1);
	/* the server's view of its peer is the client's own address */
	len = sizeof(bound);
	assert_int_equal(getsockname(client, (struct sockaddr *)&bound, &len), 0);
	net_addr_text((struct sockaddr *)&bound, want, sizeof(want));
	net_peer_text(server, peer, sizeof(peer));
	assert_string_equal(peer, want);
	assert_int_equal(strncmp(peer, "127.0.0.1:", 10), 0);
	close(client);
	close(server);
	close(lfd);
}

static void test_listen_ipv6_only(void **state)
{
	struct config_listen l;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l.addr;
	int                  lfd;

	(void)state;
	memset(&l, 0, sizeof(l));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = in6addr_loopback;
	l.addrlen = sizeof(*sin6);
	if ((lfd = net_listen(&l, 4)) == -1) {
		/* no IPv6 loopback here: nothing to check */
		assert_true(errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT);
		skip();
	}
	assert_int_equal(sockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
	close(lfd);
}

static void test_send_buffer(void **state)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), before, after;

	(void)state;
	assert_true(fd >= 0);
	before = sockopt(fd, SOL_SOCKET, SO_SNDBUF);
	assert_int_equal(net_send_buffer(fd, 0), 0);        /* 0: the kernel's */
	assert_int_equal(sockopt(fd, SOL_SOCKET, SO_SNDBUF), before);
	assert_int_equal(net_send_buffer(fd, 8192), 0);
	after = sockopt(fd, SOL_SOCKET, SO_SNDBUF);
	assert_int_equal(after, 2 * 8192);      /* Linux doubles what it is given */
	/* a huge cap is clamped, not wrapped to a negative int */
	assert_int_equal(net_send_buffer(fd, UINT64_MAX), 0);
	assert_true(sockopt(fd, SOL_SOCKET, SO_SNDBUF) > after);
	close(fd);
	assert_int_equal(net_send_buffer(fd, 4096), -1);     /* closed: the error shows */
}

static void test_abortive_close_resets(void **state)
{
	struct config_listen l = loopback4();
	int                  lfd, client, server;
	char                 buf[16];
	struct pollfd        pfd;
	ssize_t              n;

	(void)state;
	assert_true((lfd = net_listen(&l, 4)) >= 0);
	connect_pair(lfd, &client, &server);
	assert_int_equal(write(server, "unread", 6), 6);
	net_close_abortive(server);
	pfd.fd = client;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	/* a reset, not an orderly end of file */
	n = recv(client, buf, sizeof(buf), 0);
	if (n > 0)
		n = recv(client, buf, sizeof(buf), 0);
	assert_int_equal(n, -1);
	assert_int_equal(errno, ECONNRESET);
	/* a peer that is gone has no text */
	net_peer_text(client, buf, sizeof(buf));
	assert_string_equal(buf, "?");
	close(client);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_text),
		cmocka_unit_test(test_listen_loopback),
		cmocka_unit_test(test_listen_ipv6_only),
		cmocka_unit_test(test_send_buffer),
		cmocka_unit_test(test_abortive_close_resets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
