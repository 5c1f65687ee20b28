/*
 * make coverage only: linked into every coverage binary with
 * -Wl,--wrap=_exit, so a process that leaves by _exit (a worker, the
 * daemonizing parents, the privilege probe) still writes its counts; exit()
 * and a return from main write them anyway.  A process that cannot
 * reach $GCOV_PREFIX (a chrooted worker) skips its dump: its lines are not
 * counted, and libgcov prints no complaint on a client's stderr.
 */
#include <stdlib.h>
#include <unistd.h>

void __gcov_dump(void);
void __real__exit(int) __attribute__((noreturn));
void __wrap__exit(int) __attribute__((noreturn));

void
__wrap__exit(int status)
{
	const char *prefix = getenv("GCOV_PREFIX");

	if (prefix == NULL || access(prefix, X_OK) == 0)
		__gcov_dump();
	__real__exit(status);
}
