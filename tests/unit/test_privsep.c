/*
 * test_privsep.c — unit tests for master/privsep.c: whom the workers run
 * as (`user`, else nobody:nogroup for root, else no change) and their ids;
 * the config checks (unknown user or group, a group without a user,
 * chroot without a user or with root); the forked probe that proves the
 * workers' user can open the directory; a worker's drop (in a child: the
 * new ids, root not regained, the chroot); the -T names and the start-up
 * log line.  The tests of an actual drop need root and skip without it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privsep.h"

static char          dir[] = "/tmp/hftpd-test-privsep-XXXXXX";
static char          logpath[sizeof(dir) + 16];
static struct config conf;

static void
reset_conf(void)
{
	config_defaults(&conf);
	snprintf(conf.directory, sizeof(conf.directory), "%s", dir);
}

static void
need_root_and_nobody(void)
{
	if (geteuid() != 0 || getpwnam("nobody") == NULL)
		skip();
}

static void test_whom_the_workers_run_as(void **state)
{
	uid_t uid;
	gid_t gid;

	(void)state;
	reset_conf();
	assert_string_equal(privsep_user(&conf), geteuid() == 0 ? "nobody" : "");
	snprintf(conf.user, sizeof(conf.user), "root");
	assert_string_equal(privsep_user(&conf), "root");
	assert_int_equal(privsep_ids(&conf, &uid, &gid), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, getpwnam("root")->pw_gid);
	snprintf(conf.group, sizeof(conf.group), "%s", getgrgid(0)->gr_name);
	assert_int_equal(privsep_ids(&conf, &uid, &gid), 0);
	assert_int_equal(gid, 0);
	snprintf(conf.group, sizeof(conf.group), "hftpd-no-such-group");
	assert_int_equal(privsep_ids(&conf, &uid, &gid), -1);
	snprintf(conf.user, sizeof(conf.user), "hftpd-no-such-user");
	conf.group[0] = '\0';
	assert_int_equal(privsep_ids(&conf, &uid, &gid), -1);
	reset_conf();
	if (geteuid() != 0)
		assert_int_equal(privsep_ids(&conf, &uid, &gid), -1);  /* no drop: no ids */
	else if (getpwnam("nobody") != NULL && getgrnam("nogroup") != NULL) {
		assert_int_equal(privsep_ids(&conf, &uid, &gid), 0);
		assert_int_equal(uid, getpwnam("nobody")->pw_uid);
		assert_int_equal(gid, getgrnam("nogroup")->gr_gid);
	}
}

static void
check_fails_with(const char *want)
{
	char err[CONFIG_ERR_MAX] = "";

	assert_int_equal(privsep_check(&conf, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", err, want);
}

static void test_config_checks(void **state)
{
	char err[CONFIG_ERR_MAX] = "";

	(void)state;
	reset_conf();
	snprintf(conf.user, sizeof(conf.user), "hftpd-no-such-user");
	check_fails_with("user 'hftpd-no-such-user': no such user");
	snprintf(conf.user, sizeof(conf.user), "root");
	snprintf(conf.group, sizeof(conf.group), "hftpd-no-such-group");
	check_fails_with("group 'hftpd-no-such-group': no such group");
	conf.user[0] = '\0';
	snprintf(conf.group, sizeof(conf.group), "%s", getgrgid(0)->gr_name);
	check_fails_with("is set but user is not");
	conf.group[0] = '\0';
	conf.chroot = true;
	check_fails_with(geteuid() == 0 ? "needs `user`" : "needs hftpd started as root");
	if (geteuid() == 0) {
		snprintf(conf.user, sizeof(conf.user), "root");
		check_fails_with("confines nothing");
	}
	/* root keeps root: nothing to probe */
	reset_conf();
	snprintf(conf.user, sizeof(conf.user), "root");
	assert_int_equal(privsep_check(&conf, err, sizeof(err)), 0);
}

static void test_reach_probe(void **state)
{
	char err[CONFIG_ERR_MAX] = "";

	(void)state;
	need_root_and_nobody();
	reset_conf();
	snprintf(conf.user, sizeof(conf.user), "nobody");
	/* mkdtemp made it 0700, root's: nobody cannot open it */
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(privsep_check(&conf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, dir));
	assert_non_null(strstr(err, "the workers' user nobody cannot open it (Permission denied)"));
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(privsep_check_reach(&conf, err, sizeof(err)), 0);
	/* the same, chrooted: the probe opens "/" inside it */
	conf.chroot = true;
	assert_int_equal(privsep_check(&conf, err, sizeof(err)), 0);
	assert_int_equal(chmod(dir, 0700), 0);
}

/* In a child: privsep_drop, then a few facts as the exit code's bits. */
static int
drop_in_child(void)
{
	pid_t pid = fork();
	int   st;

	assert_true(pid >= 0);
	if (pid == 0) {
		int bits = 0;

		if (privsep_drop(&conf) == -1)
			_exit(0x80);
		bits |= geteuid() == getpwnam("nobody")->pw_uid ? 1 : 0;
		bits |= setuid(0) == -1 ? 2 : 0;
		bits |= access("/marker", F_OK) == 0 ? 4 : 0;   /* only inside the chroot */
		_exit(bits);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_drop(void **state)
{
	char marker[sizeof(dir) + 16];

	(void)state;
	need_root_and_nobody();
	reset_conf();
	assert_int_equal(drop_in_child(), 1 | 2);
	/* chrooted to the directory: its files are at / */
	snprintf(marker, sizeof(marker), "%s/marker", dir);
	close(open(marker, O_WRONLY | O_CREAT, 0644));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(conf.user, sizeof(conf.user), "nobody");
	conf.chroot = true;
	assert_int_equal(drop_in_child(), 1 | 2 | 4);
	assert_int_equal(chmod(dir, 0700), 0);
	unlink(marker);
	/* a user that does not exist: refused, root is not kept */
	snprintf(conf.user, sizeof(conf.user), "hftpd-no-such-user");
	conf.chroot = false;
	assert_int_equal(drop_in_child(), 0x80);
}

static void test_effective_and_announce(void **state)
{
	struct config_ids ids;
	char              text[4096] = "";
	int               fd;
	ssize_t           n;

	(void)state;
	reset_conf();
	privsep_effective(&conf, &ids);
	if (geteuid() == 0) {
		assert_string_equal(ids.user, "nobody");
		assert_string_equal(ids.why, "started as root without `user`");
	} else {
		assert_string_equal(ids.user, getpwuid(geteuid())->pw_name);
		assert_non_null(strstr(ids.why, "not root"));
	}
	assert_true(ids.group[0] != '\0');
	snprintf(conf.user, sizeof(conf.user), "root");
	privsep_effective(&conf, &ids);
	assert_string_equal(ids.user, "root");
	assert_string_equal(ids.group, getgrgid(getpwnam("root")->pw_gid)->gr_name);
	assert_string_equal(ids.why, "the primary group of the workers' user");
	/* the start-up line: a warning for root, said once */
	assert_int_equal(log_open(logpath), 0);
	privsep_announce(&conf);
	reset_conf();
	privsep_announce(&conf);
	snprintf(conf.user, sizeof(conf.user), "nobody");
	conf.chroot = true;
	privsep_announce(&conf);
	log_close();
	assert_true((fd = open(logpath, O_RDONLY)) >= 0);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	if (geteuid() != 0) {
		assert_string_equal(text, "");      /* no drop, nothing to say */
		return;
	}
	assert_non_null(strstr(text, "warn hftpd["));
	assert_non_null(strstr(text, "user = root: workers keep every privilege of root"));
	assert_non_null(strstr(text, "started as root without `user`: workers run as nobody:"));
	assert_non_null(strstr(text, "workers run as nobody, chrooted to the served directory"));
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(logpath, sizeof(logpath), "%s.log", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(logpath);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whom_the_workers_run_as),
		cmocka_unit_test(test_config_checks),
		cmocka_unit_test(test_reach_probe),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_effective_and_announce),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
