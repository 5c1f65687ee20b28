/*
 * log.h — the one logging vocabulary of hftpd.
 * log_warn/fatal append strerror(errno); log_warnx/fatalx do not.
 * fatal and fatalx are for broken internal invariants only.
 */
#ifndef HFTPD_LOG_H
#define HFTPD_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* role: "master" / "worker"; generation is printed with each line. */
void log_init(const char *role, enum log_level level);
void log_set_role(const char *role, unsigned generation);
void log_set_level(enum log_level level);
/* Send lines to path ("stderr", "syslog" or a file); 0 / -1. */
int  log_open(const char *target);
int  log_reopen(void);
/* The file's descriptor when lines go to a file, else -1 (stderr, syslog). */
int  log_file_fd(void);
/* fd (another descriptor of the log file) takes the current one's place. */
void log_reopen_fd(int fd);
void log_close(void);
/* The one table of level names ("error", "warn", "info", "debug"). */
int  log_level_parse(const char *s, enum log_level *out);
/* A level's name; "?" for a value outside the enum. */
const char *log_level_name(enum log_level level);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
