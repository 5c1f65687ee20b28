/*
 * logfiles.c — the error and access log files.  The master creates them
 * (at start, on reload and on reopen), owned by `user` when it runs as
 * root, because workers may not create files where the logs live: they
 * only reopen what the master created.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "master.h"
#include "privsep.h"

#define LOGFILES_MODE   0640

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

const char *
logfiles_error_target(const struct config *c, bool foreground)
{
	/* A daemon has no terminal: "stderr" means syslog there. */
	if (!foreground && logfiles_kind(c->error_log) == LOGFILES_STDERR)
		return "syslog";
	return c->error_log;
}

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
	close(fd);
	return 0;
}

int
logfiles_create_all(const struct config *c, char *err, size_t errlen)
{
	char msg[CONFIG_ERR_MAX];
	int  rc = 0;

	/* both are tried; err tells the first failure */
	if (logfiles_kind(c->error_log) == LOGFILES_FILE &&
	    logfiles_create(c, c->error_log, msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "error_log %s", msg);
		rc = -1;
	}
	if (logfiles_kind(c->access_log) == LOGFILES_FILE &&
	    logfiles_create(c, c->access_log, msg, sizeof(msg)) == -1) {
		if (rc == 0)
			snprintf(err, errlen, "access_log %s", msg);
		rc = -1;
	}
	return rc;
}
