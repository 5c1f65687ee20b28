/*
 * test_signals.c — unit tests for master/signals.c: a signal sets its bit
 * and wakes the self-pipe; signals_take returns the bits once and drains
 * the pipe; many signals before a take leave one wake-up pending, never a
 * blocked handler; SIGPIPE is ignored; signals_close closes the pipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "master.h"

static int
readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms);
}

static void test_signal_sets_bit_and_wakes(void **state)
{
	int fd = signals_fd();

	(void)state;
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(signals_take(), 0);
	assert_int_equal(readable(fd, 0), 0);
	assert_int_equal(raise(SIGHUP), 0);
	assert_int_equal(readable(fd, 1000), 1);
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(signals_take(), SIGNALS_BIT(SIGHUP) | SIGNALS_BIT(SIGUSR1));
	/* taken once: the bits are clear and the pipe drained */
	assert_int_equal(signals_take(), 0);
	assert_int_equal(readable(fd, 0), 0);
}

static void test_each_signal_of_the_set(void **state)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD };

	(void)state;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		assert_int_equal(raise(sigs[i]), 0);
		assert_int_equal(signals_take(), SIGNALS_BIT(sigs[i]));
	}
	/* ignored, so a write to a closed peer cannot kill the master */
	assert_int_equal(raise(SIGPIPE), 0);
	assert_int_equal(signals_take(), 0);
}

/* USR2 (upgrade) remembers who sent it: `-s upgrade` waits for its answer. */
static void test_usr2_sender(void **state)
{
	(void)state;
	assert_int_equal(kill(getpid(), SIGUSR2), 0);
	assert_int_equal(signals_take(), SIGNALS_BIT(SIGUSR2));
	assert_int_equal(signals_usr2_sender(), getpid());
}

static void test_full_pipe_never_blocks(void **state)
{
	(void)state;
	/* far more than a pipe holds: the handler's write fails, it goes on */
	for (int i = 0; i < 100000; i++)
		assert_int_equal(raise(SIGCHLD), 0);
	assert_int_equal(readable(signals_fd(), 0), 1);
	assert_int_equal(signals_take(), SIGNALS_BIT(SIGCHLD));
	assert_int_equal(readable(signals_fd(), 0), 0);
}

static void test_close(void **state)
{
	int fd = signals_fd();

	(void)state;
	signals_close();
	assert_int_equal(signals_fd(), -1);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	/* init again: a fresh pipe that works */
	assert_int_equal(signals_init(), 0);
	assert_int_equal(raise(SIGTERM), 0);
	assert_int_equal(signals_take(), SIGNALS_BIT(SIGTERM));
}

static int
setup(void **state)
{
	(void)state;
	return signals_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signal_sets_bit_and_wakes),
		cmocka_unit_test(test_each_signal_of_the_set),
		cmocka_unit_test(test_usr2_sender),
		cmocka_unit_test(test_full_pipe_never_blocks),
		cmocka_unit_test(test_close),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
