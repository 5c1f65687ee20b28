/*
 * test_access.c — unit tests for worker/access.c.  Writes: a short write
 * (here RLIMIT_FSIZE cuts the file, as a full file system would) never
 * leaves a torn line in the file; what the file did not take waits whole
 * and is written later; once the buffer is full, new lines are dropped
 * whole and counted; where a cut line cannot be taken back (a pipe) its
 * rest follows it.  The line format: time, client, the request rebuilt
 * from what the parser kept (cut elements and lines marked "...", bytes
 * outside printable ASCII, quotes and backslashes escaped), status, bytes
 * counted, microseconds.  Buffering: a non-forced flush writes once a
 * second or when the buffer is half full, a line that would overflow it
 * flushes first; a reopen flushes into the old file, then writes the new
 * one; a log that is off takes nothing.  access_log_format = json: the
 * same fields as one JSON object a line, every string escaped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "commands.h"
#include "request.h"

static char path[] = "/tmp/hftpd-test-access-XXXXXX";

static void
log_lines(int n)
{
	static struct request_parser p;

	struct access_pending        a;

	request_init(&p, 1024, NULL);
	for (int i = 0; i < n; i++) {
		access_begin(&a, "127.0.0.1:4242", &p, clock_now_ns());
		access_end(&a, STATUS_OK);
	}
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
	access_open(fd, path, ACCESS_LOG_TEXT);
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

/* The log file's text. */
static const char *
file_text(void)
{
	static char buf[1 << 20];
	int         fd = open(path, O_RDONLY);
	ssize_t     n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Empties the buffer and the file. */
static void
start_empty(void)
{
	access_flush(true);
	assert_int_equal(truncate(path, 0), 0);
}

/* Logs the response to request line `line` (CR LF added) with status and bytes. */
static void
log_request(const char *line, size_t len, enum status status, uint64_t bytes)
{
	static struct request_parser p;
	struct access_pending        a;
	enum request_result          res = REQUEST_MORE;

	request_init(&p, 4096, commands_shape);
	request_feed(&p, line, len, &res);
	assert_int_equal(res, REQUEST_MORE);
	request_feed(&p, "\r\n", 2, &res);
	assert_int_equal(res, REQUEST_LINE);
	access_begin(&a, "[::1]:5000", &p, clock_now_ns());
	assert_true(a.on);
	access_count(&a, bytes / 2);
	access_count(&a, bytes - bytes / 2);
	access_end(&a, status);
	assert_false(a.on);
}

static void
assert_matches(const char *text, const char *pattern)
{
	regex_t re;
	int     rc;

	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&re, text, 0, NULL, 0);
	regfree(&re);
	if (rc != 0)
		fail_msg("%s does not match %s", text, pattern);
}

static void test_line_format(void **state)
{
	static struct request_parser p;
	struct access_pending        a;
	struct timespec              ms3 = { 0, 3 * 1000 * 1000 };
	enum request_result          res;
	const char                  *t;

	(void)state;
	start_empty();
	request_init(&p, 4096, commands_shape);
	request_feed(&p, "get_slice archivo.txt 0 10\r\n", 28, &res);
	assert_int_equal(res, REQUEST_LINE);
	access_begin(&a, "192.0.2.1:4242", &p, clock_now_ns());
	access_count(&a, 6);
	access_count(&a, 12);
	nanosleep(&ms3, NULL);
	access_end(&a, STATUS_OK);
	access_flush(true);
	t = file_text();
	assert_matches(t, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z "
	    "192\\.0\\.2\\.1:4242 \"get_slice archivo\\.txt 0 10\" 0 18 [0-9]+\n$");
	/* microseconds from the request to the end: the 3 ms sleep shows */
	assert_true(strtoull(strrchr(t, ' ') + 1, NULL, 10) >= 3000);
}

static void test_request_text(void **state)
{
	char long_name[400], line[512];

	(void)state;
	start_empty();
	/* bytes outside printable ASCII, quotes and backslashes: escaped */
	log_request("he\"l\\p\x01", 7, STATUS_NO_SUCH_COMMAND, 0);
	/* a name longer than what is kept: marked as cut */
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	snprintf(line, sizeof(line), "get_metadata %s", long_name);
	log_request(line, strlen(line), STATUS_FILE_NOT_FOUND, 0);
	/* more elements than the parser keeps */
	log_request("quit a b c d e f", 16, STATUS_INVALID_ARGUMENTS, 19);
	access_flush(true);
	assert_non_null(strstr(file_text(),
	    " [::1]:5000 \"he\\x22l\\x5cp\\x01\" 200 0 "));
	assert_non_null(strstr(file_text(), "\"get_metadata nnnnnnnn"));
	assert_non_null(strstr(file_text(), "...\" 202 0 "));
	/* the request text is bounded: the line stays short */
	assert_null(strstr(file_text(), long_name + sizeof(long_name) - 1 - ACCESS_REQUEST_MAX));
	assert_non_null(strstr(file_text(), "\"quit a b c d ...\" 201 19 "));
}

/* Runs fn within one second of the monotonic clock, retried at a boundary. */
static void
within_one_second(void (*fn)(void))
{
	uint64_t s0, s1;

	do {
		s0 = clock_now_ms() / CLOCK_MS_PER_SEC;
		fn();
		s1 = clock_now_ms() / CLOCK_MS_PER_SEC;
	} while (s1 != s0);
}

static void
one_line_unforced(void)
{
	start_empty();
	access_flush(true);     /* this second's flush is done */
	log_lines(1);
	access_flush(false);
	assert_int_equal(whole_lines(), 0);
}

static void test_flush_once_a_second(void **state)
{
	uint64_t s0 = clock_now_ms() / CLOCK_MS_PER_SEC;

	(void)state;
	within_one_second(one_line_unforced);
	/* waits in the buffer; a second later a non-forced flush writes it */
	s0 = clock_now_ms() / CLOCK_MS_PER_SEC;
	while (clock_now_ms() / CLOCK_MS_PER_SEC == s0)
		usleep(10000);
	access_flush(false);
	assert_int_equal(whole_lines(), 1);
}

static void
half_full_unforced(void)
{
	start_empty();
	access_flush(true);
	log_lines(900);         /* ~45 bytes each: past half of the 64 KiB */
	access_flush(false);
	assert_int_equal(whole_lines(), 900);
}

static void
full_buffer_flushes_itself(void)
{
	start_empty();
	access_flush(true);
	log_lines(2000);        /* ~100 KB: more than the buffer holds */
	assert_true(whole_lines() > 0);
	access_flush(true);
	assert_int_equal(whole_lines(), 2000);
	assert_int_equal(access_lost_lines(), 0);
}

static void test_flush_when_half_or_full(void **state)
{
	(void)state;
	within_one_second(half_full_unforced);
	within_one_second(full_buffer_flushes_itself);
}

static void test_reopen_flushes_into_old_file(void **state)
{
	char rotated[sizeof(path) + 4];
	int  fd;

	(void)state;
	start_empty();
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	log_lines(3);
	assert_int_equal(rename(path, rotated), 0);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	access_reopen(fd);
	assert_int_equal(fcntl(fd, F_GETFD), -1);       /* taken: closed */
	assert_int_equal(whole_lines(), 0);             /* the new file */
	log_lines(2);
	access_flush(true);
	assert_int_equal(whole_lines(), 2);
	/* the old file got the three lines logged before the reopen */
	assert_int_equal(rename(rotated, path), 0);
	assert_int_equal(whole_lines(), 3);
	assert_int_equal(truncate(path, 0), 0);
	/* the current file is the new one (unlinked now by the rename) */
	access_close();
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	access_open(fd, path, ACCESS_LOG_TEXT);
}

static void test_off_takes_nothing(void **state)
{
	static struct request_parser p;
	struct access_pending        a;
	int                          fds[2];

	(void)state;
	start_empty();
	access_close();
	assert_false(access_enabled());
	request_init(&p, 64, NULL);
	access_begin(&a, "127.0.0.1:1", &p, clock_now_ns());
	assert_false(a.on);
	access_count(&a, 10);
	access_end(&a, STATUS_OK);
	access_flush(true);
	/* a log that is off stays off: the new descriptor is closed */
	assert_int_equal(pipe(fds), 0);
	access_reopen(fds[1]);
	assert_int_equal(fcntl(fds[1], F_GETFD), -1);
	assert_false(access_enabled());
	close(fds[0]);
	assert_int_equal(whole_lines(), 0);
	access_open(open(path, O_WRONLY | O_APPEND | O_CLOEXEC), path, ACCESS_LOG_TEXT);
	assert_true(access_enabled());
}

static void test_pipe_cut_line_completed(void **state)
{
	static char buf[1 << 20];
	size_t      got = 0;
	ssize_t     n;
	int         fds[2], lines = 0;

	(void)state;
	start_empty();
	access_close();
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	assert_true(fcntl(fds[1], F_SETPIPE_SZ, 4096) > 0);
	access_open(fds[1], "pipe", ACCESS_LOG_TEXT);
	log_lines(200);                 /* ~10 KB: the pipe takes 4 KiB */
	access_flush(true);
	/* the pipe cannot take a cut line back: the rest follows it */
	for (int round = 0; round < 100 && lines < 200; round++) {
		while ((n = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0)
			got += (size_t)n;
		access_flush(true);
		buf[got] = '\0';
		lines = 0;
		for (size_t i = 0; i < got; i++)
			lines += buf[i] == '\n';
	}
	assert_int_equal(lines, 200);
	assert_int_equal(buf[got - 1], '\n');
	for (char *line = buf, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
		assert_true(strstr(line, " 127.0.0.1:4242 \"\" 0 0 ") != NULL &&
		    strstr(line, " 127.0.0.1:4242 ") < nl);
	assert_int_equal(access_lost_lines(), 0);
	access_close();
	close(fds[0]);
	access_open(open(path, O_WRONLY | O_APPEND | O_CLOEXEC), path, ACCESS_LOG_TEXT);
}

/* Reopens the log file in the given format (the buffer flushed first). */
static void
reopen_as(enum access_log_format format)
{
	start_empty();
	access_close();
	access_open(open(path, O_WRONLY | O_APPEND | O_CLOEXEC), path, format);
}

static void test_json_lines(void **state)
{
	static struct request_parser p;
	struct access_pending        a;
	enum request_result          res;
	const char                  *t;

	(void)state;
	reopen_as(ACCESS_LOG_JSON);
	request_init(&p, 4096, commands_shape);
	request_feed(&p, "he\"l\\p\x01\r\n", 9, &res);
	assert_int_equal(res, REQUEST_LINE);
	/* a peer text no address has, to prove every string is escaped */
	access_begin(&a, "a\"b\\c\x01\xff:1", &p, clock_now_ns());
	access_count(&a, 20);
	access_end(&a, STATUS_NO_SUCH_COMMAND);
	access_flush(true);
	t = file_text();
	assert_matches(t, "^\\{\"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\","
	    "\"client\":\"a\\\\\"b\\\\\\\\c\\\\u0001\\\\u00ff:1\","
	    "\"request\":\"he\\\\\\\\x22l\\\\\\\\x5cp\\\\\\\\x01\","
	    "\"status\":200,\"bytes\":20,\"usec\":[0-9]+\\}\n$");
	reopen_as(ACCESS_LOG_TEXT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_write_keeps_whole_lines),
		cmocka_unit_test(test_full_buffer_drops_whole_lines_counted),
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_request_text),
		cmocka_unit_test(test_json_lines),
		cmocka_unit_test(test_flush_once_a_second),
		cmocka_unit_test(test_flush_when_half_or_full),
		cmocka_unit_test(test_reopen_flushes_into_old_file),
		cmocka_unit_test(test_off_takes_nothing),
		cmocka_unit_test(test_pipe_cut_line_completed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
