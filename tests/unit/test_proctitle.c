/*
 * test_proctitle.c — unit tests for shared/proctitle.c: a title is a no-op
 * before init; init moves argv's strings and the environment to the heap
 * (same text, new places, getenv still answers) and the area they left is
 * the title's, cut to its length; with the process's own argv, ps and
 * /proc/PID/cmdline show the title.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctitle.h"

extern char **environ;

static int    main_argc;
static char **main_argv;

static void test_before_init_and_bad_args(void **state)
{
	char *none[] = { NULL };

	(void)state;
	proctitle_set("nothing %d", 1);     /* no area yet: nothing happens */
	assert_int_equal(proctitle_init(0, none), -1);
	assert_int_equal(proctitle_init(1, none), -1);
}

/*
 * The checks on a made-up area, in a child of its own (proctitle_init is
 * called once per process): 0 when all hold, else the first that failed.
 */
static int
area_checks(void)
{
	/* three strings back to back, then one elsewhere (not in the area) */
	static char  area[] = "prog\0-f\0-d\0";
	static char  apart[] = "elsewhere";
	static char *argv[] = { area, area + 5, area + 8, apart, NULL };
	char       **old_environ = environ;

	setenv("HFTPD_PROCTITLE_TEST", "kept", 1);
	if (proctitle_init(4, argv) != 0)
		return 1;
	/* the strings moved, their text did not */
	if (argv[0] == area || argv[1] == area + 5 || argv[3] == apart)
		return 2;
	if (strcmp(argv[0], "prog") != 0 || strcmp(argv[1], "-f") != 0 ||
	    strcmp(argv[2], "-d") != 0 || strcmp(argv[3], "elsewhere") != 0)
		return 3;
	if (environ == old_environ || getenv("HFTPD_PROCTITLE_TEST") == NULL ||
	    strcmp(getenv("HFTPD_PROCTITLE_TEST"), "kept") != 0)
		return 4;
	/* the title fills the area (11 bytes), cut and terminated */
	proctitle_set("hftpd: %s", "worker process");
	if (strcmp(area, "hftpd: wor") != 0)
		return 5;
	proctitle_set("w%d", 7);
	if (strcmp(area, "w7") != 0 || area[sizeof(area) - 2] != '\0')
		return 6;       /* the rest cleared */
	if (strcmp(apart, "elsewhere") != 0 || strcmp(argv[0], "prog") != 0)
		return 7;       /* never written */
	return 0;
}

static void test_area_is_argv_strings(void **state)
{
	pid_t pid = fork();
	int   st;

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(area_checks());
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_title_shows_in_cmdline(void **state)
{
	char    buf[256];
	ssize_t n;
	int     fd;

	(void)state;
	assert_int_equal(proctitle_init(main_argc, main_argv), 0);
	proctitle_set("hftpd: test title %d", 3);
	assert_true((fd = open("/proc/self/cmdline", O_RDONLY)) >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "hftpd: test title 3");
	assert_non_null(strstr(main_argv[0], "test_proctitle"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_before_init_and_bad_args),
		cmocka_unit_test(test_area_is_argv_strings),
		cmocka_unit_test(test_title_shows_in_cmdline),
	};

	main_argc = argc;
	main_argv = argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
