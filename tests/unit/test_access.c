/*
 * test_access.c — unit tests for worker/access.c's writes: a short write
 * (here RLIMIT_FSIZE cuts the file, as a full file system would) never
 * leaves a torn line in the file; what the file did not take waits whole
 * and is written later; once the buffer is full, new lines are dropped
 * whole and counted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "request.h"

static char path[] = "/tmp/hftpd-test-access-XXXXXX";

static void
log_lines(int n)
{
	static struct request_parser p;

	request_init(&p, 1024, NULL);
	for (int i = 0; i < n; i++)
		access_end(access_begin("127.0.0.1:4242", &p), STATUS_OK);
}

static void
limit_file_size(rlim_t bytes)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = bytes;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

/* The file's text; asserts it is whole lines only and returns how many. */
static int
whole_lines(void)
{
	static char buf[1 << 20];
	int         fd = open(path, O_RDONLY), lines = 0;
	ssize_t     n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	if (n > 0)
		assert_int_equal(buf[n - 1], '\n');
	for (char *line = buf, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		assert_non_null(strstr(line, " 127.0.0.1:4242 \"\" 0 0 "));
		assert_true(strstr(line, " 127.0.0.1:4242 ") < nl);
		lines++;
	}
	return lines;
}

static int
setup(void **state)
{
	int fd = mkstemp(path);

	(void)state;
	signal(SIGXFSZ, SIG_IGN);   /* a write past the limit fails with EFBIG */
	if (fd == -1)
		return -1;
	close(fd);
	/* as the master opens it for the workers */
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) == -1)
		return -1;
	access_open(fd, path);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	limit_file_size(RLIM_INFINITY);
	access_close();
	unlink(path);
	return 0;
}

static void test_short_write_keeps_whole_lines(void **state)
{
	struct stat st;
	int         first;

	(void)state;
	log_lines(40);
	limit_file_size(1000);      /* a line is ~50 bytes: cut mid-line */
	access_flush(true);
	limit_file_size(RLIM_INFINITY);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 0 && st.st_size <= 1000);
	first = whole_lines();
	assert_true(first > 0 && first < 40);
	assert_int_equal(access_lost_lines(), 0);
	/* the rest waited, whole, for the next flush */
	access_flush(true);
	assert_int_equal(whole_lines(), 40);
	assert_int_equal(access_lost_lines(), 0);
}

static void test_full_buffer_drops_whole_lines_counted(void **state)
{
	struct stat st;
	int         before = whole_lines();

	(void)state;
	assert_int_equal(stat(path, &st), 0);
	limit_file_size((rlim_t)st.st_size);    /* nothing more fits */
	log_lines(3000);                        /* more than the buffer holds */
	access_flush(true);
	assert_true(access_lost_lines() > 0);
	limit_file_size(RLIM_INFINITY);
	access_flush(true);
	/* written again: every line is in the file or was counted lost */
	assert_int_equal(access_lost_lines(), 0);
	assert_true(whole_lines() > before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_write_keeps_whole_lines),
		cmocka_unit_test(test_full_buffer_drops_whole_lines_counted),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
