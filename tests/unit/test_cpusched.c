/*
 * test_cpusched.c — unit tests for master/cpusched.c (master_scheduling):
 * the master's policy follows the config at start and on reload, a forked
 * worker goes back to SCHED_OTHER, and a policy outside the normal class
 * (here SCHED_IDLE, which an unprivileged process may enter but not leave)
 * is left alone by both; that case runs in a child process.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sched.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "master.h"

static struct config conf;

static void set_policy(int policy)
{
	struct sched_param sp;

	memset(&sp, 0, sizeof(sp));
	assert_int_equal(sched_setscheduler(0, policy, &sp), 0);
}

static void test_master_follows_config(void **state)
{
	(void)state;
	set_policy(SCHED_OTHER);
	config_defaults(&conf);
	assert_int_equal(conf.master_scheduling, MASTER_SCHED_BATCH);
	assert_int_equal(cpusched_master(&conf), 0);
	assert_int_equal(sched_getscheduler(0), SCHED_BATCH);
	assert_int_equal(cpusched_master(&conf), 0);        /* again: no change */
	assert_int_equal(sched_getscheduler(0), SCHED_BATCH);
	conf.master_scheduling = MASTER_SCHED_NORMAL;        /* a reload to normal */
	assert_int_equal(cpusched_master(&conf), 0);
	assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
	conf.master_scheduling = MASTER_SCHED_BATCH;         /* and back */
	assert_int_equal(cpusched_master(&conf), 0);
	assert_int_equal(sched_getscheduler(0), SCHED_BATCH);
	set_policy(SCHED_OTHER);
}

static void test_worker_back_to_other(void **state)
{
	(void)state;
	set_policy(SCHED_BATCH);                /* as forked from a batch master */
	assert_int_equal(cpusched_worker(), 0);
	assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
	assert_int_equal(cpusched_worker(), 0); /* already: no change */
	assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
}

/* In a child: SCHED_IDLE cannot be left without privilege. 0 when kept. */
static int idle_child(void)
{
	struct sched_param sp;

	memset(&sp, 0, sizeof(sp));
	if (sched_setscheduler(0, SCHED_IDLE, &sp) == -1)
		return 10;
	config_defaults(&conf);
	if (cpusched_master(&conf) != 0 || sched_getscheduler(0) != SCHED_IDLE)
		return 11;
	if (cpusched_worker() != 0 || sched_getscheduler(0) != SCHED_IDLE)
		return 12;
	return 0;
}

static void test_launcher_policy_left_alone(void **state)
{
	pid_t pid;
	int   status;

	(void)state;
	assert_true((pid = fork()) != -1);
	if (pid == 0)
		_exit(idle_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_master_follows_config),
		cmocka_unit_test(test_worker_back_to_other),
		cmocka_unit_test(test_launcher_policy_left_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
