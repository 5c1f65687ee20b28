/*
 * test_privsep.c — unit tests for master/privsep.c with no privilege
 * dropped: whom the workers run as (privsep_user, privsep_ids,
 * privsep_effective: what -T prints), and the checks a config's user,
 * group and chroot must pass, each refusal with its own message.  Root and
 * another user see different defaults; each case says which it expects.
 * privsep_drop is not called (it would drop this process).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "privsep.h"

static struct config c;

static int conf_setup(void **state)
{
	(void)state;
	config_defaults(&c);
	snprintf(c.directory, sizeof(c.directory), "/");
	return 0;
}

static void set(char *field, size_t len, const char *value)
{
	snprintf(field, len, "%s", value);
}
#define SET(f, v) set(c.f, sizeof(c.f), (v))

/* The name of the group gid, which exists on any system: root's. */
static const char *root_group(void)
{
	struct group *gr = getgrgid(0);

	assert_non_null(gr);
	return gr->gr_name;
}

static void test_user(void **state)
{
	(void)state;
	/* no `user`: nobody when root, else no change ("") */
	assert_string_equal(privsep_user(&c), geteuid() == 0 ? "nobody" : "");
	SET(user, "daemon");
	assert_string_equal(privsep_user(&c), "daemon");
}

static void test_ids(void **state)
{
	uid_t uid = 1;
	gid_t gid = 1;

	(void)state;
	SET(user, "root");
	assert_int_equal(privsep_ids(&c, &uid, &gid), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	SET(user, "no-such-user-hftpd");
	assert_int_equal(privsep_ids(&c, &uid, &gid), -1);
	SET(user, "root");
	SET(group, "no-such-group-hftpd");
	assert_int_equal(privsep_ids(&c, &uid, &gid), -1);
	SET(group, root_group());
	assert_int_equal(privsep_ids(&c, &uid, &gid), 0);
	assert_int_equal(gid, 0);
	if (geteuid() != 0) {
		/* not root and no `user`: no one to become */
		SET(user, "");
		SET(group, "");
		assert_int_equal(privsep_ids(&c, &uid, &gid), -1);
	}
}

/* Each refusal of privsep_check, with the words that explain it. */
static void expect_refused(const char *words)
{
	char err[CONFIG_ERR_MAX] = "";

	assert_int_equal(privsep_check(&c, err, sizeof(err)), -1);
	if (strstr(err, words) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", words, err);
}

static void test_check_refusals(void **state)
{
	(void)state;
	SET(user, "no-such-user-hftpd");
	expect_refused("no such user");
	SET(user, "root");
	SET(group, "no-such-group-hftpd");
	expect_refused("no such group");
	SET(user, "");
	SET(group, root_group());
	expect_refused("is set but user is not");
	SET(group, "");
	c.chroot = true;
	if (geteuid() != 0) {
		expect_refused("needs hftpd started as root");
		return;
	}
	expect_refused("needs `user`");
	SET(user, "root");
	expect_refused("confines nothing");
}

/* user = root (or no user when not root): nothing to drop, no probe forked. */
static void test_check_passes(void **state)
{
	char err[CONFIG_ERR_MAX] = "";

	(void)state;
	if (geteuid() == 0)
		SET(user, "root");
	SET(group, "");
	assert_int_equal(privsep_check(&c, err, sizeof(err)), 0);
	assert_int_equal(privsep_check_reach(&c, err, sizeof(err)), 0);
}

/* Whom -T names when the config names nobody. */
static void test_effective(void **state)
{
	struct config_ids ids;
	struct passwd    *pw;

	(void)state;
	privsep_effective(&c, &ids);
	if (geteuid() == 0) {
		assert_string_equal(ids.user, "nobody");
		assert_non_null(strstr(ids.why, "without `user`"));
	} else {
		pw = getpwuid(geteuid());
		assert_non_null(pw);
		assert_string_equal(ids.user, pw->pw_name);
		assert_non_null(strstr(ids.why, "not root"));
	}
	assert_true(ids.group[0] != '\0');
	SET(user, "root");
	SET(group, root_group());
	privsep_effective(&c, &ids);
	assert_string_equal(ids.user, "root");
	assert_string_equal(ids.group, root_group());
}

#define PT(f) cmocka_unit_test_setup(f, conf_setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		PT(test_user),
		PT(test_ids),
		PT(test_check_refusals),
		PT(test_check_passes),
		PT(test_effective),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
