/*
 * test_listen.c — unit tests for master/listen.c: a socket systemd passed
 * is never closed, even when setting up its listen line fails; a reload
 * keeps the descriptor of an unchanged address, opens the new ones and
 * closes the removed ones; a line that cannot be opened (its port taken)
 * fails the whole set and leaves what was open as it was; socket
 * activation takes the TCP listeners of LISTEN_FDS for this pid (others
 * ignored), keeps one no line names for a later reload, and clears the
 * variables; an upgrade's sockets are taken by their lines, the others
 * closed at start unless systemd passed them.  This file
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
#include <stdlib.h>
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

static bool
is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* A free loopback port's "127.0.0.1:PORT". */
static void
free_addr(char *text, size_t len)
{
	int fd = passed_listener(text, len);

	close(fd);
}

static void
set_lines(struct config *c, int n, char texts[][64])
{
	char err[256];

	memset(c, 0, sizeof(*c));
	for (int i = 0; i < n; i++)
		assert_int_equal(config_parse_listen(texts[i], &c->listen[i], err, sizeof(err)), 0);
	c->nlisten = n;
}

static void test_reload_keeps_unchanged_addresses(void **state)
{
	static struct config c;
	char                 a[3][64], err[256];
	int                  fd_a, fd_b;

	(void)state;
	memset(&m, 0, sizeof(m));
	for (int i = 0; i < 3; i++)
		free_addr(a[i], sizeof(a[i]));
	set_lines(&c, 2, a);
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), 0);
	assert_int_equal(m.nlisteners, 2);
	fd_a = m.listeners[0].fd;
	fd_b = m.listeners[1].fd;
	assert_string_equal(m.listeners[0].addr.text, a[0]);
	assert_false(m.listeners[0].inherited);
	/* reload: a kept (same descriptor), b removed (closed), c new */
	snprintf(a[1], sizeof(a[1]), "%s", a[2]);
	set_lines(&c, 2, a);
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), 0);
	assert_int_equal(m.nlisteners, 2);
	assert_int_equal(m.listeners[0].fd, fd_a);
	assert_true(m.listeners[1].fd != fd_b);     /* opened before b was closed */
	assert_false(is_open(fd_b));
	assert_string_equal(m.listeners[1].addr.text, a[2]);
	assert_true(is_open(m.listeners[1].fd));
	listen_close_all(&m);
	assert_int_equal(m.nlisteners, 0);
	assert_false(is_open(fd_a));
}

static void test_taken_port_changes_nothing(void **state)
{
	static struct config c;
	char                 a[3][64], err[256];
	int                  busy, fd_a, before;

	(void)state;
	memset(&m, 0, sizeof(m));
	free_addr(a[0], sizeof(a[0]));
	set_lines(&c, 1, a);
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), 0);
	fd_a = m.listeners[0].fd;
	/* a new line whose port someone else holds, after another new one */
	free_addr(a[1], sizeof(a[1]));
	busy = passed_listener(a[2], sizeof(a[2]));
	set_lines(&c, 3, a);
	before = dup(0);        /* the lowest free descriptor now */
	close(before);
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, a[2]));
	assert_non_null(strstr(err, "Address already in use"));
	/* the old set stands; the socket opened for a[1] was closed again */
	assert_int_equal(m.nlisteners, 1);
	assert_int_equal(m.listeners[0].fd, fd_a);
	assert_true(is_open(fd_a));
	assert_false(is_open(before));
	close(busy);
	listen_close_all(&m);
}

/* fd as descriptor `to` (which must be free or fd itself). */
static int
move_to(int fd, int to)
{
	int high = fcntl(fd, F_DUPFD, 64);

	assert_true(high >= 64);
	close(fd);
	assert_int_equal(dup2(high, to), to);
	close(high);
	return to;
}

static void test_socket_activation(void **state)
{
	static struct config c;
	char                 a[2][64], other[64], err[256], pid[32];
	int                  s0, s1, udp;

	(void)state;
	if (is_open(3) || is_open(4) || is_open(5))
		skip();     /* descriptors 3-5 are the launcher's to pass */
	memset(&m, 0, sizeof(m));
	s0 = passed_listener(a[0], sizeof(a[0]));
	s1 = passed_listener(a[1], sizeof(a[1]));
	udp = socket(AF_INET, SOCK_DGRAM, 0);
	/* moved to 3, 4, 5 (where they may have been made) */
	s0 = move_to(s0, 3);
	s1 = move_to(s1, 4);
	udp = move_to(udp, 5);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "3", 1);
	setenv("LISTEN_FDNAMES", "a:b:c", 1);
	assert_int_equal(listen_inherit(&m), 2);       /* the datagram socket is not one */
	assert_null(getenv("LISTEN_PID"));
	assert_null(getenv("LISTEN_FDS"));
	assert_null(getenv("LISTEN_FDNAMES"));
	assert_true(fcntl(3, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(4, F_GETFL) & O_NONBLOCK);
	close(5);
	/* one line names the first: taken, not opened anew */
	set_lines(&c, 1, a);
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), 0);
	assert_int_equal(m.listeners[0].fd, 3);
	assert_true(m.listeners[0].inherited);
	assert_int_equal(m.ninherited, 1);
	/* a reload that names another address: the passed one waits, open */
	free_addr(other, sizeof(other));
	snprintf(a[0], sizeof(a[0]), "%s", other);
	set_lines(&c, 1, a);
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), 0);
	assert_true(m.listeners[0].fd != 3);
	assert_true(is_open(3));
	assert_int_equal(m.ninherited, 2);
	listen_close_all(&m);
	assert_false(is_open(3) || is_open(4));
	assert_int_equal(m.ninherited, 0);
}

/*
 * An upgrade's sockets: one named by a line is taken (and stays the
 * master's own, closed when a later reload drops it); one no line names
 * is closed at start, unless systemd passed it.
 */
static void test_upgrade_adoption(void **state)
{
	static struct config c;
	char                 named[64], unnamed[64], sd[64], err[256];
	int                  fd_named, fd_unnamed, fd_sd;

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(&c, 0, sizeof(c));
	fd_named = passed_listener(named, sizeof(named));
	fd_unnamed = passed_listener(unnamed, sizeof(unnamed));
	fd_sd = passed_listener(sd, sizeof(sd));
	assert_int_equal(listen_adopt(&m, fd_named, false, "upgrade"), 0);
	assert_int_equal(listen_adopt(&m, fd_unnamed, false, "upgrade"), 0);
	assert_int_equal(listen_adopt(&m, fd_sd, true, "upgrade"), 0);
	assert_int_equal(listen_adopt(&m, STDIN_FILENO, false, "upgrade"), -1);
	assert_int_equal(m.ninherited, 3);
	assert_int_equal(config_parse_listen(named, &c.listen[0], err, sizeof(err)), 0);
	c.nlisten = 1;
	c.send_buffer = 65536;
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), 0);
	listen_drop_unnamed(&m);
	assert_int_equal(m.nlisteners, 1);
	assert_int_equal(m.listeners[0].fd, fd_named);
	assert_false(m.listeners[0].inherited);
	assert_false(is_open(fd_unnamed));
	assert_true(is_open(fd_sd));
	assert_int_equal(m.ninherited, 1);
	assert_int_equal(m.inherited[0].fd, fd_sd);
	/* a reload without the line closes the adopted socket, keeps systemd's */
	c.nlisten = 0;
	assert_int_equal(listen_open(&m, &c, err, sizeof(err)), 0);
	assert_false(is_open(fd_named));
	assert_true(is_open(fd_sd));
	listen_close_all(&m);
	assert_false(is_open(fd_sd));
}

static void test_activation_for_another_pid(void **state)
{
	(void)state;
	memset(&m, 0, sizeof(m));
	setenv("LISTEN_PID", "1", 1);
	setenv("LISTEN_FDS", "1", 1);
	assert_int_equal(listen_inherit(&m), 0);
	assert_null(getenv("LISTEN_FDS"));
	unsetenv("LISTEN_PID");
	assert_int_equal(listen_inherit(&m), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passed_socket_survives_a_failed_line),
		cmocka_unit_test(test_reload_keeps_unchanged_addresses),
		cmocka_unit_test(test_taken_port_changes_nothing),
		cmocka_unit_test(test_socket_activation),
		cmocka_unit_test(test_activation_for_another_pid),
		cmocka_unit_test(test_upgrade_adoption),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
