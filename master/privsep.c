/*
 * privsep.c — workers drop root: when the master runs as root and `user`
 * is set, each worker takes that user's groups (initgroups), then the group
 * (`group`, or the user's primary group), then the user, and checks that
 * root cannot be regained.  A worker that cannot drop refuses to run.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privsep.h"

int
privsep_ids(const struct config *c, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;
	struct group  *gr;

	if (c->user[0] == '\0')
		return -1;
	if ((pw = getpwnam(c->user)) == NULL)
		return -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (c->group[0] != '\0') {
		if ((gr = getgrnam(c->group)) == NULL)
			return -1;
		*gid = gr->gr_gid;
	}
	return 0;
}

int
privsep_check(const struct config *c, char *err, size_t errlen)
{
	if (c->user[0] != '\0' && getpwnam(c->user) == NULL) {
		snprintf(err, errlen, "user '%s': no such user", c->user);
		return -1;
	}
	if (c->group[0] != '\0' && getgrnam(c->group) == NULL) {
		snprintf(err, errlen, "group '%s': no such group", c->group);
		return -1;
	}
	if (c->group[0] != '\0' && c->user[0] == '\0') {
		snprintf(err, errlen, "group '%s' is set but user is not", c->group);
		return -1;
	}
	return 0;
}

int
privsep_drop(const struct config *c)
{
	uid_t uid;
	gid_t gid;

	if (c->user[0] == '\0' || geteuid() != 0)
		return 0;
	if (privsep_ids(c, &uid, &gid) == -1) {
		log_warnx("user '%s' / group '%s' not found; refusing to run as root",
		    c->user, c->group);
		return -1;
	}
	if (initgroups(c->user, gid) == -1 || setgid(gid) == -1 || setuid(uid) == -1) {
		log_warn("cannot become %s; refusing to run as root", c->user);
		return -1;
	}
	if (uid != 0 && (setuid(0) != -1 || geteuid() == 0)) {
		log_warnx("root could be regained after dropping to %s; refusing to run", c->user);
		return -1;
	}
	return 0;
}
