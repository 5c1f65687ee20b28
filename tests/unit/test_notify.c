/*
 * test_notify.c — unit tests for master/notify.c: the sd_notify datagram
 * reaches a socket the test binds, at a path and at an abstract ('@')
 * name; nothing is sent (and nothing fails) without NOTIFY_SOCKET, with a
 * relative or too long one, or a message too long for one datagram.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "master.h"

static char dir[] = "/tmp/hftpd-test-notify-XXXXXX";
static char path[sizeof(dir) + 16];

/* A datagram socket bound at name (abstract when it starts with '@'). */
static int
bind_dgram(const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t          len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	int                fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memcpy(sun.sun_path, name, strlen(name));
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	else
		unlink(name);   /* an earlier test's */
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	return fd;
}

/* The next datagram on fd as a string, "" when none waits. */
static const char *
received(int fd)
{
	static char buf[1024];
	ssize_t     n = recv(fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_path_socket(void **state)
{
	int fd = bind_dgram(path);

	(void)state;
	setenv("NOTIFY_SOCKET", path, 1);
	notify_send("READY=1\nMAINPID=%d\nSTATUS=%s", 42, "serving");
	assert_string_equal(received(fd), "READY=1\nMAINPID=42\nSTATUS=serving");
	notify_send("RELOADING=1");
	assert_string_equal(received(fd), "RELOADING=1");
	assert_string_equal(received(fd), "");
	close(fd);
}

static void test_abstract_socket(void **state)
{
	char name[64];
	int  fd;

	(void)state;
	snprintf(name, sizeof(name), "@hftpd-test-notify-%d", (int)getpid());
	fd = bind_dgram(name);
	setenv("NOTIFY_SOCKET", name, 1);
	notify_send("STOPPING=1");
	assert_string_equal(received(fd), "STOPPING=1");
	close(fd);
}

static void test_silent_cases(void **state)
{
	char long_path[200], big[600];
	int  fd = bind_dgram(path);

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	notify_send("READY=1");
	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	notify_send("READY=1");
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	setenv("NOTIFY_SOCKET", long_path, 1);
	notify_send("READY=1");
	/* too long for the message buffer: not sent cut */
	setenv("NOTIFY_SOCKET", path, 1);
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	notify_send("STATUS=%s", big);
	assert_string_equal(received(fd), "");
	/* nobody listening: the send fails quietly */
	close(fd);
	unlink(path);
	notify_send("READY=1");
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/notify", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_silent_cases),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
