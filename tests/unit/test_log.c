/*
 * test_log.c — unit tests for shared/log.c: the line format (UTC
 * timestamp with milliseconds, level, role[pid], generation, message),
 * the level filter, strerror appended by log_warn and errno kept, level
 * names parsed, log rotation (log_reopen by the path; log_reopen_fd with a
 * descriptor of the new file, as a worker is given it), stderr and syslog
 * targets, and fatal/fatalx logging before they exit 1.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

static char dir[] = "/tmp/hftpd-test-log-XXXXXX";
static char path[sizeof(dir) + 16], rotated[sizeof(dir) + 16];

/* The text of file p ("" when it does not exist). */
static const char *
text_of(const char *p)
{
	static char buf[16384];
	int         fd = open(p, O_RDONLY);
	ssize_t     n = fd == -1 ? 0 : read(fd, buf, sizeof(buf) - 1);

	if (fd != -1)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static int
lines_in(const char *text)
{
	int n = 0;

	for (; *text != '\0'; text++)
		n += *text == '\n';
	return n;
}

static void test_line_format(void **state)
{
	regex_t re;
	char    want[256];

	(void)state;
	assert_int_equal(log_open(path), 0);
	assert_int_equal(log_file_fd() >= 0, 1);
	log_init("master", LOG_LEVEL_INFO);
	log_set_role("worker", 3);
	log_info("served %s in %d ms", "archivo.txt", 12);
	snprintf(want, sizeof(want), "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
	    "\\.[0-9]{3}Z info worker\\[%ld\\] gen 3: served archivo\\.txt in 12 ms\n$",
	    (long)getpid());
	assert_int_equal(regcomp(&re, want, REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&re, text_of(path), 0, NULL, 0), 0);
	regfree(&re);
	/* the file is created 0640 */
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	log_close();
	assert_int_equal(log_file_fd(), -1);
	unlink(path);
}

static void test_levels_and_errno(void **state)
{
	const char *t;

	(void)state;
	assert_int_equal(log_open(path), 0);
	log_set_level(LOG_LEVEL_WARN);
	log_info("not shown");
	log_debug("not shown");
	errno = ENOENT;
	log_warn("open %s", "x");
	assert_int_equal(errno, ENOENT);        /* kept for the caller */
	log_warnx("plain");
	log_error("bad");
	t = text_of(path);
	assert_int_equal(lines_in(t), 3);
	assert_null(strstr(t, "not shown"));
	assert_non_null(strstr(t, " warn worker["));
	assert_non_null(strstr(t, ": open x: No such file or directory\n"));
	assert_non_null(strstr(t, ": plain\n"));
	assert_non_null(strstr(t, " error worker["));
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("now shown");
	assert_non_null(strstr(text_of(path), " debug worker["));
	log_close();
	unlink(path);
}

static void test_level_names(void **state)
{
	enum log_level l = LOG_LEVEL_INFO;

	(void)state;
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_LEVEL_ERROR);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("info", &l), 0);
	assert_int_equal(l, LOG_LEVEL_INFO);
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("warning", &l), -1);
	assert_int_equal(log_level_parse("", &l), -1);
	assert_int_equal(l, LOG_LEVEL_DEBUG);   /* untouched on error */
}

static void test_rotation_by_path(void **state)
{
	int fd;

	(void)state;
	log_set_level(LOG_LEVEL_INFO);
	assert_int_equal(log_open(path), 0);
	fd = log_file_fd();
	log_info("before");
	assert_int_equal(rename(path, rotated), 0);
	assert_int_equal(log_reopen(), 0);
	assert_int_equal(log_file_fd(), fd);    /* same descriptor, new file */
	log_info("after");
	assert_non_null(strstr(text_of(rotated), "before"));
	assert_null(strstr(text_of(rotated), "after"));
	assert_non_null(strstr(text_of(path), "after"));
	/* the folder gone: the reopen fails and the old file stays in use */
	unlink(rotated);
	assert_int_equal(rename(path, rotated), 0);
	assert_int_equal(chmod(dir, 0500) == 0, 1);
	if (geteuid() != 0) {
		assert_int_equal(log_reopen(), -1);
		log_info("still");
		assert_non_null(strstr(text_of(rotated), "still"));
	}
	chmod(dir, 0700);
	log_close();
	unlink(rotated);
	unlink(path);
}

static void test_rotation_by_descriptor(void **state)
{
	int fd;

	(void)state;
	assert_int_equal(log_open(path), 0);
	log_info("old");
	assert_int_equal(rename(path, rotated), 0);
	/* what the master sends a worker: a descriptor of the fresh file */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0640);
	assert_true(fd >= 0);
	log_reopen_fd(fd);
	assert_int_equal(fcntl(fd, F_GETFD), -1);      /* taken: closed */
	log_info("new");
	assert_null(strstr(text_of(rotated), "new"));
	assert_non_null(strstr(text_of(path), "new"));
	log_close();
	/* with stderr as the log there is nothing to replace: fd is closed */
	assert_int_equal(log_open("stderr"), 0);
	assert_int_equal(log_file_fd(), -1);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	log_reopen_fd(fd);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(fcntl(STDERR_FILENO, F_GETFD) >= 0, 1);
	assert_int_equal(log_reopen(), 0);      /* no path: nothing to do */
	unlink(rotated);
	unlink(path);
}

static void test_bad_target_keeps_old(void **state)
{
	(void)state;
	assert_int_equal(log_open(path), 0);
	assert_int_equal(log_open("/nonexistent-hftpd-dir/error.log"), -1);
	log_info("kept");
	assert_non_null(strstr(text_of(path), "kept"));
	/* syslog: the file is closed, lines go elsewhere */
	assert_int_equal(log_open("syslog"), 0);
	assert_int_equal(log_file_fd(), -1);
	log_set_level(LOG_LEVEL_ERROR);     /* nothing reaches the machine's syslog */
	log_info("to syslog");
	log_close();
	log_set_level(LOG_LEVEL_INFO);
	assert_null(strstr(text_of(path), "to syslog"));
	unlink(path);
}

static void
fatal_child(int with_errno)
{
	pid_t pid = fork();
	int   st;

	assert_true(pid >= 0);
	if (pid == 0) {
		if (log_open(path) == -1)
			_exit(2);
		errno = EBADF;
		if (with_errno)
			fatal("broken %d", 1);
		fatalx("broken %d", 2);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
}

static void test_fatal_logs_then_exits(void **state)
{
	const char *t;

	(void)state;
	fatal_child(1);
	fatal_child(0);
	t = text_of(path);
	assert_non_null(strstr(t, " error worker["));
	assert_non_null(strstr(t, ": broken 1: Bad file descriptor\n"));
	assert_non_null(strstr(t, ": broken 2\n"));
	unlink(path);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/error.log", dir);
	snprintf(rotated, sizeof(rotated), "%s/error.log.1", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	log_close();
	unlink(path);
	unlink(rotated);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_levels_and_errno),
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_rotation_by_path),
		cmocka_unit_test(test_rotation_by_descriptor),
		cmocka_unit_test(test_bad_target_keeps_old),
		cmocka_unit_test(test_fatal_logs_then_exits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
