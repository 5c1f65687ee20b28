/*
 * proctitle.c — process titles by rewriting the argument area, as nginx
 * does: the kernel shows /proc/PID/cmdline (and ps shows) whatever lies
 * there.  The area is argv's strings plus the environment strings right
 * after them; both are first copied to the heap so nothing still points
 * into what the titles overwrite.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proctitle.h"

extern char **environ;

static char  *proctitle_area;   /* start of the writable area, or NULL */
static size_t proctitle_size;   /* its length in bytes */
/*
 * What proctitle_init allocated stays owned (and reachable) here: unsetenv
 * drops entries from environ, and glibc's clearenv at exit (run by valgrind)
 * forgets a vector it did not allocate.  volatile: the compiler may not drop
 * stores nothing reads.
 */
static char **volatile proctitle_env_vector;
static char **volatile proctitle_env_copies;

/* Copies every string of the NULL-terminated vector v to the heap. */
static int
proctitle_move(char **v, int n)
{
	for (int i = 0; i < n; i++) {
		char *copy = strdup(v[i]);
		if (copy == NULL)
			return -1;
		v[i] = copy;
	}
	return 0;
}

int
proctitle_init(int argc, char **argv)
{
	char  *start, *end, **env;
	int    nenv = 0;

	if (argc < 1 || argv[0] == NULL)
		return -1;
	start = argv[0];
	end = argv[0] + strlen(argv[0]) + 1;
	/* only strings that follow each other belong to the area */
	for (int i = 1; i < argc; i++) {
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	}
	for (; environ != NULL && environ[nenv] != NULL; nenv++) {
		if (environ[nenv] == end)
			end = environ[nenv] + strlen(environ[nenv]) + 1;
	}
	/* a fresh environ vector: setenv may grow it later */
	if ((env = calloc((size_t)nenv + 1, sizeof(*env))) == NULL)
		return -1;
	memcpy(env, environ, (size_t)nenv * sizeof(*env));
	if ((proctitle_env_copies = calloc((size_t)nenv + 1, sizeof(*env))) == NULL) {
		free(env);
		return -1;
	}
	if (proctitle_move(argv, argc) == -1 || proctitle_move(env, nenv) == -1)
		return -1;
	memcpy(proctitle_env_copies, env, (size_t)nenv * sizeof(*env));
	proctitle_env_vector = env;
	environ = env;
	proctitle_area = start;
	proctitle_size = (size_t)(end - start);
	return 0;
}

void
proctitle_set(const char *fmt, ...)
{
	va_list ap;

	if (proctitle_area == NULL)
		return;
	memset(proctitle_area, '\0', proctitle_size);
	va_start(ap, fmt);
	vsnprintf(proctitle_area, proctitle_size, fmt, ap);
	va_end(ap);
}
