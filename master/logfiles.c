/*
 * logfiles.c — the error and access log files.  The master creates them
 * (at start, on reload and on reopen), owned by the workers' user when it
 * runs as root, and opens them: workers never open a log by its path (they
 * may be chrooted, and may not create files where the logs live).  They
 * inherit the master's descriptors at fork and get fresh ones with REOPEN.
 * logfiles_check tells, without creating anything, whether they could be
 * (for -t and before a reload).
 *
 * Logs are never lost: a daemon whose error_log is "stderr" logs to syslog
 * when /dev/log answers, else to HFTPD_ERROR_LOG_FALLBACK (as nginx logs to
 * its prefix's logs/error.log); "syslog" written in the config is taken at
 * its word.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "master.h"
#include "privsep.h"

#define LOGFILES_MODE   0640
#define LOGFILES_FOLDER_MODE    0755
/* The local syslog daemon's socket. */
#define LOGFILES_SYSLOG_SOCKET  "/dev/log"

enum logfiles_kind
logfiles_kind(const char *target)
{
	if (strcmp(target, "stderr") == 0)
		return LOGFILES_STDERR;
	if (strcmp(target, "syslog") == 0)
		return LOGFILES_SYSLOG;
	if (strcmp(target, "off") == 0)
		return LOGFILES_OFF;
	return LOGFILES_FILE;
}

/* True when a syslog daemon listens on /dev/log. */
static bool
logfiles_syslog_reachable(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int                fd, rc;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", LOGFILES_SYSLOG_SOCKET);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return false;
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	return rc == 0;
}

const char *
logfiles_error_target(const struct config *c, bool foreground)
{
	/* A daemon has no terminal: "stderr" means syslog there, or a file. */
	if (!foreground && logfiles_kind(c->error_log) == LOGFILES_STDERR)
		return logfiles_syslog_reachable() ? "syslog" : HFTPD_ERROR_LOG_FALLBACK;
	return c->error_log;
}

/* Whether path could be opened for appending (created if missing); the
 * fallback's own folder may be missing when it can be created. */
static int
logfiles_check_one(const char *what, const char *path, char *err, size_t errlen)
{
	char        copy[PATH_MAX];
	const char *folder;
	struct stat st;
	int         fd;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY)) != -1) {
		close(fd);
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	snprintf(copy, sizeof(copy), "%s", path);
	folder = dirname(copy);
	if (strcmp(path, HFTPD_ERROR_LOG_FALLBACK) == 0 && stat(folder, &st) == -1 &&
	    errno == ENOENT)
		folder = dirname(copy);     /* created by logfiles_create_all */
	if (stat(folder, &st) == -1) {
		snprintf(err, errlen, "%s %s: folder %s: %s", what, path, folder, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s %s: %s is not a folder", what, path, folder);
		return -1;
	}
	if (access(folder, W_OK | X_OK) == -1) {
		snprintf(err, errlen, "%s %s: cannot create it in %s: %s", what, path,
		    folder, strerror(errno));
		return -1;
	}
	return 0;
}

int
logfiles_check(const struct config *c, bool foreground, char *err, size_t errlen)
{
	const char *target = logfiles_error_target(c, foreground);

	if (logfiles_kind(target) == LOGFILES_FILE &&
	    logfiles_check_one(target == c->error_log ? "error_log" :
	    "error_log (no syslog at " LOGFILES_SYSLOG_SOCKET ": the fallback)",
	    target, err, errlen) == -1)
		return -1;
	if (logfiles_kind(c->access_log) == LOGFILES_FILE &&
	    logfiles_check_one("access_log", c->access_log, err, errlen) == -1)
		return -1;
	return 0;
}

/* Creates path if missing, owned by the workers' user; its descriptor, or -1. */
static int
logfiles_create(const struct config *c, const char *path, char *err, size_t errlen)
{
	uid_t uid;
	gid_t gid;
	int   fd;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, LOGFILES_MODE)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (geteuid() == 0 && privsep_ids(c, &uid, &gid) == 0 && fchown(fd, uid, gid) == -1) {
		snprintf(err, errlen, "%s: chown: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
logfiles_create_all(const struct config *c, bool foreground, int *access_fd,
    char *err, size_t errlen)
{
	const char *target = logfiles_error_target(c, foreground);
	char        msg[CONFIG_ERR_MAX];
	int         rc = 0, fd;

	*access_fd = -1;
	/* the fallback's folder is hftpd's own: made when missing */
	if (strcmp(target, HFTPD_ERROR_LOG_FALLBACK) == 0) {
		char copy[PATH_MAX];
		snprintf(copy, sizeof(copy), "%s", target);
		if (mkdir(dirname(copy), LOGFILES_FOLDER_MODE) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "error_log (no syslog at %s: the fallback) %s: %s",
			    LOGFILES_SYSLOG_SOCKET, target, strerror(errno));
			return -1;
		}
	}
	/* both are tried; err tells the first failure */
	if (logfiles_kind(target) == LOGFILES_FILE) {
		if ((fd = logfiles_create(c, target, msg, sizeof(msg))) == -1) {
			snprintf(err, errlen, "error_log %s", msg);
			rc = -1;
		} else
			close(fd);      /* log_open opens it for the master */
	}
	if (logfiles_kind(c->access_log) == LOGFILES_FILE &&
	    (*access_fd = logfiles_create(c, c->access_log, msg, sizeof(msg))) == -1) {
		if (rc == 0)
			snprintf(err, errlen, "access_log %s", msg);
		rc = -1;
	}
	return rc;
}
