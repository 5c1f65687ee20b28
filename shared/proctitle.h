/*
 * proctitle.h — what ps shows for a process: nginx's way, by rewriting the
 * argument area (and the environment that follows it) with libc only.
 */
#ifndef HFTPD_PROCTITLE_H
#define HFTPD_PROCTITLE_H

/*
 * Moves argv's strings and environ to the heap (argv[i] and environ then
 * point at the copies), leaving their old area free for titles.  Call once,
 * first thing in main; 0 / -1 (out of memory: titles stay unchanged).
 */
int  proctitle_init(int argc, char **argv);

/* Sets the title (truncated to the area); a no-op before proctitle_init. */
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
