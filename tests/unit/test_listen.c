/*
 * test_listen.c — unit tests for master/listen.c: a socket systemd passed
 * is never closed, even when setting up its listen line fails.  This file
 * defines setsockopt() for the test program (it takes the place of libc's)
 * so that SO_SNDBUF can be made to fail; every other option goes through.
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
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "master.h"

static struct master m;
static int           fail_sndbuf;

int
setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (fail_sndbuf && level == SOL_SOCKET && name == SO_SNDBUF) {
		errno = ENOBUFS;
		return -1;
	}
	return (int)syscall(SYS_setsockopt, fd, level, name, val, len);
}

/* A listening socket on 127.0.0.1 (a free port), as systemd would pass it. */
static int
passed_listener(char *text, size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t          slen = sizeof(sin);
	int                fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	snprintf(text, len, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	return fd;
}

static void test_passed_socket_survives_a_failed_line(void **state)
{
	static struct config c;
	char                 text[64], err[256];
	int                  fd;

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(&c, 0, sizeof(c));
	fd = passed_listener(text, sizeof(text));
	assert_int_equal(config_parse_listen(text, &m.inherited[0].addr, err, sizeof(err)), 0);
	m.inherited[0].fd = fd;
	m.inherited[0].inherited = true;
	m.ninherited = 1;
	assert_int_equal(config_parse_listen(text, &c.listen[0], err, sizeof(err)), 0);
	c.nlisten = 1;
	c.send_buffer = 65536;

	fail_sndbuf = 1;
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), -1);
	fail_sndbuf = 0;
	assert_non_null(strstr(err, "send_buffer"));
	/* still open, and back in the pool for the next try */
	assert_true(fcntl(fd, F_GETFD) != -1);
	assert_int_equal(m.ninherited, 1);
	assert_int_equal(m.inherited[0].fd, fd);
	assert_int_equal(m.nlisteners, 0);

	/* the next try takes it */
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), 0);
	assert_int_equal(m.nlisteners, 1);
	assert_int_equal(m.listeners[0].fd, fd);
	assert_true(m.listeners[0].inherited);
	assert_int_equal(m.ninherited, 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passed_socket_survives_a_failed_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
