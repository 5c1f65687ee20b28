/*
 * make coverage only: linked into every coverage binary with
 * -Wl,--wrap=_exit, so a process that leaves by _exit (a worker, the
 * daemonizing parents, the privilege probe) still writes its counts; exit()
 * and a return from main write them anyway.  A process that may not write
 * the folder of the counts ($GCOV_PREFIX followed by COVERAGE_OBJ_DIR, the
 * build's object folder) skips its dump, quietly instead of libgcov's
 * complaint on stderr: a chrooted worker, which cannot reach it, and a
 * unit test's child that dropped root (the unit tests write their counts
 * in the build tree, root's).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef COVERAGE_OBJ_DIR
#error "COVERAGE_OBJ_DIR: the absolute path of the object folder"
#endif

void __gcov_dump(void);
void __real__exit(int) __attribute__((noreturn));
void __wrap__exit(int) __attribute__((noreturn));

void
__wrap__exit(int status)
{
	const char *prefix = getenv("GCOV_PREFIX");
	char        dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s%s", prefix != NULL ? prefix : "", COVERAGE_OBJ_DIR);
	if (access(dir, W_OK | X_OK) == 0)
		__gcov_dump();
	__real__exit(status);
}
