/*
 * test_reload.c — unit tests for master/reload.c short of forking: the
 * checks a config must pass before the master serves with it
 * (reload_config_check: the directory, the workers' user, the log files,
 * the pid file's folder), and reload_run's refusals, after which nothing
 * changes (generation, config, listeners, workers): a config file that
 * cannot be read, one naming a missing directory, and one whose listener
 * cannot be bound.  As root the workers' user is root, so that no probe
 * is forked to prove its reach.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "master.h"

static char                    tmp[64];
static char                    path[256];
static struct config           c;
static struct master           m;
static struct config_overrides opts;

static int tmp_setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/hftpd-test-reload-XXXXXX");
	assert_non_null(mkdtemp(tmp));
	config_defaults(&c);
	snprintf(c.directory, sizeof(c.directory), "%s", tmp);
	snprintf(c.pid_file, sizeof(c.pid_file), "%s/hftpd.pid", tmp);
	if (geteuid() == 0)
		snprintf(c.user, sizeof(c.user), "root");
	return 0;
}

static int tmp_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static const char *in_tmp(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	return path;
}

static void touch(const char *p)
{
	FILE *fp = fopen(p, "w");

	assert_non_null(fp);
	fclose(fp);
}

static void test_check_accepts_a_good_config(void **state)
{
	char err[CONFIG_ERR_MAX] = "";

	(void)state;
	assert_int_equal(reload_config_check(&c, true, err, sizeof(err)), 0);
	/* an access log that does not exist yet, in a folder it may be created in */
	snprintf(c.access_log, sizeof(c.access_log), "%s", in_tmp("access.log"));
	assert_int_equal(reload_config_check(&c, true, err, sizeof(err)), 0);
}

static void test_check_directory(void **state)
{
	char err[CONFIG_ERR_MAX];

	(void)state;
	snprintf(c.directory, sizeof(c.directory), "%s", in_tmp("missing"));
	assert_int_equal(reload_config_check(&c, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "directory"));
	assert_non_null(strstr(err, "No such file"));
	touch(in_tmp("file"));
	snprintf(c.directory, sizeof(c.directory), "%s", in_tmp("file"));
	assert_int_equal(reload_config_check(&c, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a directory"));
}

static void test_check_pid_folder(void **state)
{
	char err[CONFIG_ERR_MAX];

	(void)state;
	snprintf(c.pid_file, sizeof(c.pid_file), "%s/hftpd.pid", in_tmp("missing"));
	assert_int_equal(reload_config_check(&c, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "pid_file"));
	touch(in_tmp("file"));
	snprintf(c.pid_file, sizeof(c.pid_file), "%s/hftpd.pid", in_tmp("file"));
	assert_int_equal(reload_config_check(&c, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a folder"));
	c.pid_file[0] = '\0';       /* none: nothing to check */
	assert_int_equal(reload_config_check(&c, true, err, sizeof(err)), 0);
}

static void test_check_logs_and_users(void **state)
{
	char err[CONFIG_ERR_MAX];

	(void)state;
	snprintf(c.access_log, sizeof(c.access_log), "%s/access.log", in_tmp("missing"));
	assert_int_equal(reload_config_check(&c, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "access_log"));
	snprintf(c.access_log, sizeof(c.access_log), "off");
	snprintf(c.user, sizeof(c.user), "no-such-user-hftpd");
	assert_int_equal(reload_config_check(&c, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no such user"));
}

/* The running master the reload is tried on: generation 4, no workers, no listener. */
static void master_make(const char *config_file)
{
	memset(&m, 0, sizeof(m));
	memset(&opts, 0, sizeof(opts));
	opts.config_file = config_file;
	opts.foreground = true;
	m.options = &opts;
	m.conf = &c;
	m.gen = 4;
	m.phase = MASTER_RUNNING;
	m.ready_fd = -1;
	m.pidfile_fd = -1;
	m.access_fd = -1;
}

static void assert_nothing_changed(void)
{
	assert_int_equal(m.gen, 4);
	assert_ptr_equal(m.conf, &c);
	assert_int_equal(m.nlisteners, 0);
	assert_int_equal(m.nslots, 0);
	assert_null(m.backoff);
	assert_int_equal(m.access_fd, -1);
}

static void write_config(const char *file, const char *text)
{
	FILE *fp = fopen(file, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_reload_refused_config(void **state)
{
	char text[512];

	(void)state;
	master_make(in_tmp("missing.conf"));
	reload_run(&m);
	assert_nothing_changed();

	snprintf(text, sizeof(text), "directory = %s/missing\nlisten = 127.0.0.1:1\n"
	    "pid_file = %s/hftpd.pid\n", tmp, tmp);
	write_config(in_tmp("bad-dir.conf"), text);
	master_make(in_tmp("bad-dir.conf"));
	reload_run(&m);
	assert_nothing_changed();
}

/* A port another socket holds: listen_open fails, and nothing changes. */
static void test_reload_refused_listener(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t          len = sizeof(sin);
	char               text[512];
	int                holder;

	(void)state;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	holder = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(holder >= 0);
	assert_int_equal(bind(holder, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(holder, 1), 0);
	assert_int_equal(getsockname(holder, (struct sockaddr *)&sin, &len), 0);
	snprintf(text, sizeof(text), "directory = %s\nlisten = 127.0.0.1:%u\n"
	    "pid_file = %s/hftpd.pid\nworkers = 1\n%s", tmp, (unsigned)ntohs(sin.sin_port), tmp,
	    geteuid() == 0 ? "user = root\n" : "");
	write_config(in_tmp("busy.conf"), text);
	master_make(in_tmp("busy.conf"));
	reload_run(&m);
	assert_nothing_changed();
	close(holder);
}

#define RT(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		RT(test_check_accepts_a_good_config),
		RT(test_check_directory),
		RT(test_check_pid_folder),
		RT(test_check_logs_and_users),
		RT(test_reload_refused_config),
		RT(test_reload_refused_listener),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
