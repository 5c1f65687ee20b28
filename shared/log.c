/*
 * log.c — hftpd's logging: one line per event with an ISO-8601 timestamp,
 * the level, the process role, its generation and pid.  Lines go to stderr,
 * syslog or a file: the master reopens it by its path for log rotation; a
 * worker never opens it, and is given the new file's descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_role = "hftpd";
static unsigned    log_generation;
static int         log_level_max = LOG_LEVEL_INFO;
static int         log_fd = STDERR_FILENO;
static int         log_to_syslog;
static char        log_path[4096];

static const char *const log_level_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *role, enum log_level level)
{
	log_role = role;
	log_level_max = level;
}

void
log_set_role(const char *role, unsigned generation)
{
	log_role = role;
	log_generation = generation;
}

void
log_set_level(enum log_level level)
{
	log_level_max = level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	size_t i = (size_t)level;

	return i < sizeof(log_level_names) / sizeof(log_level_names[0]) ?
	    log_level_names[i] : "?";
}

static int
log_open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int
log_open(const char *target)
{
	int fd;

	if (strcmp(target, "stderr") == 0) {
		log_close();
		log_fd = STDERR_FILENO;
		return 0;
	}
	if (strcmp(target, "syslog") == 0) {
		log_close();
		openlog("hftpd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_to_syslog = 1;
		return 0;
	}
	if ((fd = log_open_file(target)) == -1)
		return -1;
	log_close();
	log_fd = fd;
	snprintf(log_path, sizeof(log_path), "%s", target);
	return 0;
}

int
log_reopen(void)
{
	int fd;

	if (log_path[0] == '\0')
		return 0;
	if ((fd = log_open_file(log_path)) == -1)
		return -1;
	if (dup2(fd, log_fd) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
log_file_fd(void)
{
	return log_path[0] != '\0' ? log_fd : -1;
}

void
log_reopen_fd(int fd)
{
	/* stderr or syslog: nothing to replace */
	if (log_path[0] == '\0' || log_fd == STDERR_FILENO) {
		close(fd);
		return;
	}
	if (dup2(fd, log_fd) == -1)
		log_warn("error_log %s: keeping the old file", log_path);
	close(fd);
}

void
log_close(void)
{
	if (log_to_syslog) {
		closelog();
		log_to_syslog = 0;
	}
	if (log_fd != STDERR_FILENO && log_fd != -1)
		close(log_fd);
	log_fd = STDERR_FILENO;
	log_path[0] = '\0';
}

static void
log_vwrite(int level, int with_errno, const char *fmt, va_list ap)
{
	static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char             msg[2048], line[2300];
	int              saved_errno = errno, n;

	if (level > log_level_max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		size_t used = strlen(msg);
		snprintf(msg + used, sizeof(msg) - used, ": %s", strerror(saved_errno));
	}
	if (log_to_syslog) {
		syslog(syslog_prio[level], "%s[%u]: %s", log_role, log_generation, msg);
		errno = saved_errno;
		return;
	}

	struct timespec ts;
	struct tm       tm;
	char            stamp[40];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s[%ld] gen %u: %s\n",
	    stamp, ts.tv_nsec / 1000000, log_level_names[level], log_role,
	    (long)getpid(), log_generation, msg);
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	/* One write per line keeps lines from different processes whole. */
	if (write(log_fd, line, (size_t)n) == -1) {
		/* nowhere left to report it */
	}
	errno = saved_errno;
}

#define LOG_FN(name, level, with_errno)                 \
void                                                    \
name(const char *fmt, ...)                              \
{                                                       \
	va_list ap;                                     \
	va_start(ap, fmt);                              \
	log_vwrite(level, with_errno, fmt, ap);         \
	va_end(ap);                                     \
}

LOG_FN(log_error, LOG_LEVEL_ERROR, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)

/* Broken invariants only: logged, then the process exits. */
#define LOG_FATAL_FN(name, with_errno)                  \
void                                                    \
name(const char *fmt, ...)                              \
{                                                       \
	va_list ap;                                     \
	va_start(ap, fmt);                              \
	log_vwrite(LOG_LEVEL_ERROR, with_errno, fmt, ap); \
	va_end(ap);                                     \
	exit(1);                                        \
}

LOG_FATAL_FN(fatal, 1)
LOG_FATAL_FN(fatalx, 0)
