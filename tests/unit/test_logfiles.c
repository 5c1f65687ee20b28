/*
 * test_logfiles.c — unit tests for master/logfiles.c: what an error_log /
 * access_log value names; the error log a daemon really uses for
 * "stderr" (syslog when /dev/log answers, else the fallback file) and a
 * foreground master's; logfiles_check creating nothing and naming what is
 * wrong (a missing folder, a file where a folder should be, a folder
 * where the file should be); and
 * logfiles_create_all making both files (0640, owned by the workers' user
 * when root), the access log open for appending, both tried when one fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "master.h"

static char dir[] = "/tmp/hftpd-test-logfiles-XXXXXX";
static struct config conf;

static void
set_path(char *field, const char *name)
{
	snprintf(field, PATH_MAX, "%s/%s", dir, name);
}

static bool
exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

static void test_kinds(void **state)
{
	(void)state;
	assert_int_equal(logfiles_kind("stderr"), LOGFILES_STDERR);
	assert_int_equal(logfiles_kind("syslog"), LOGFILES_SYSLOG);
	assert_int_equal(logfiles_kind("off"), LOGFILES_OFF);
	assert_int_equal(logfiles_kind("/var/log/hftpd/access.log"), LOGFILES_FILE);
	assert_int_equal(logfiles_kind("Stderr"), LOGFILES_FILE);  /* words are exact */
}

static void test_error_target(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	int                fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	bool               syslog_up;

	(void)state;
	assert_true(fd >= 0);
	syslog_up = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	snprintf(conf.error_log, sizeof(conf.error_log), "stderr");
	assert_string_equal(logfiles_error_target(&conf, true), "stderr");
	assert_string_equal(logfiles_error_target(&conf, false),
	    syslog_up ? "syslog" : HFTPD_ERROR_LOG_FALLBACK);
	/* what the config wrote is taken at its word, daemon or not */
	snprintf(conf.error_log, sizeof(conf.error_log), "syslog");
	assert_string_equal(logfiles_error_target(&conf, false), "syslog");
	set_path(conf.error_log, "error.log");
	assert_ptr_equal(logfiles_error_target(&conf, false), conf.error_log);
}

static void test_check_creates_nothing(void **state)
{
	char err[CONFIG_ERR_MAX] = "";

	(void)state;
	set_path(conf.error_log, "error.log");
	set_path(conf.access_log, "access.log");
	assert_int_equal(logfiles_check(&conf, true, err, sizeof(err)), 0);
	assert_false(exists(conf.error_log));
	assert_false(exists(conf.access_log));
	/* a missing folder */
	set_path(conf.access_log, "nodir/access.log");
	assert_int_equal(logfiles_check(&conf, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "access_log "));
	assert_non_null(strstr(err, "nodir/access.log: folder "));
	assert_non_null(strstr(err, "No such file or directory"));
	/* a file where the folder should be */
	set_path(conf.access_log, "error.log/access.log");
	set_path(conf.error_log, "error.log");
	close(open(conf.error_log, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(logfiles_check(&conf, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "access_log "));
	/* the error log is checked first, and off / stderr / syslog need nothing */
	set_path(conf.error_log, "nodir/error.log");
	assert_int_equal(logfiles_check(&conf, true, err, sizeof(err)), -1);
	assert_int_equal(strncmp(err, "error_log ", 10), 0);
	snprintf(conf.error_log, sizeof(conf.error_log), "stderr");
	snprintf(conf.access_log, sizeof(conf.access_log), "off");
	assert_int_equal(logfiles_check(&conf, true, err, sizeof(err)), 0);
	set_path(conf.error_log, "error.log");
	unlink(conf.error_log);
}

static void test_check_not_a_folder(void **state)
{
	char err[CONFIG_ERR_MAX] = "", file[PATH_MAX];

	(void)state;
	/* ENOTDIR opening through a file: the file is named */
	set_path(file, "plain");
	close(open(file, O_WRONLY | O_CREAT, 0600));
	set_path(conf.access_log, "plain/access.log");
	snprintf(conf.error_log, sizeof(conf.error_log), "stderr");
	assert_int_equal(logfiles_check(&conf, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "plain/access.log"));
	unlink(file);
	/* a folder where the file should be: said as such, by check and create */
	snprintf(conf.access_log, sizeof(conf.access_log), "%s", dir);
	assert_int_equal(logfiles_check(&conf, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Is a directory"));
	int afd = -2;
	assert_int_equal(logfiles_create_all(&conf, true, &afd, err, sizeof(err)), -1);
	assert_int_equal(afd, -1);
	assert_int_equal(strncmp(err, "access_log ", 11), 0);
	assert_non_null(strstr(err, "Is a directory"));
}

static void test_create_all(void **state)
{
	char        err[CONFIG_ERR_MAX] = "";
	struct stat st;
	int         afd = -2;

	(void)state;
	set_path(conf.error_log, "error.log");
	set_path(conf.access_log, "access.log");
	if (geteuid() == 0)
		snprintf(conf.user, sizeof(conf.user), "nobody");
	assert_int_equal(logfiles_create_all(&conf, true, &afd, err, sizeof(err)), 0);
	assert_true(afd >= 0);
	assert_true(fcntl(afd, F_GETFL) & O_APPEND);
	assert_true(fcntl(afd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(afd, "x\n", 2), 2);
	close(afd);
	assert_int_equal(stat(conf.access_log, &st), 0);
	assert_int_equal(st.st_size, 2);
	assert_int_equal(st.st_mode & 0137, 0);      /* 0640 at most */
	if (geteuid() == 0 && getpwnam("nobody") != NULL)
		assert_int_equal(st.st_uid, getpwnam("nobody")->pw_uid);
	assert_int_equal(stat(conf.error_log, &st), 0);
	/* a second run appends to what is there */
	assert_int_equal(logfiles_create_all(&conf, true, &afd, err, sizeof(err)), 0);
	assert_int_equal(write(afd, "y\n", 2), 2);
	close(afd);
	assert_int_equal(stat(conf.access_log, &st), 0);
	assert_int_equal(st.st_size, 4);
	conf.user[0] = '\0';
	unlink(conf.error_log);
	unlink(conf.access_log);
}

static void test_create_all_tries_both(void **state)
{
	char err[CONFIG_ERR_MAX] = "";
	int  afd = -2;

	(void)state;
	/* the error log fails, the access log is still opened */
	set_path(conf.error_log, "nodir/error.log");
	set_path(conf.access_log, "access.log");
	assert_int_equal(logfiles_create_all(&conf, true, &afd, err, sizeof(err)), -1);
	assert_int_equal(strncmp(err, "error_log ", 10), 0);
	assert_true(afd >= 0);
	close(afd);
	unlink(conf.access_log);
	/* only the access log fails: it is named, and no descriptor leaks */
	set_path(conf.error_log, "error.log");
	set_path(conf.access_log, "nodir/access.log");
	assert_int_equal(logfiles_create_all(&conf, true, &afd, err, sizeof(err)), -1);
	assert_int_equal(afd, -1);
	assert_int_equal(strncmp(err, "access_log ", 11), 0);
	assert_true(exists(conf.error_log));
	unlink(conf.error_log);
	/* off and stderr: nothing made */
	snprintf(conf.error_log, sizeof(conf.error_log), "stderr");
	snprintf(conf.access_log, sizeof(conf.access_log), "off");
	assert_int_equal(logfiles_create_all(&conf, true, &afd, err, sizeof(err)), 0);
	assert_int_equal(afd, -1);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	config_defaults(&conf);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_error_target),
		cmocka_unit_test(test_check_creates_nothing),
		cmocka_unit_test(test_check_not_a_folder),
		cmocka_unit_test(test_create_all),
		cmocka_unit_test(test_create_all_tries_both),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
