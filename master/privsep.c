/*
 * privsep.c — workers drop root.  When the master runs as root, each worker
 * becomes the workers' user: `user` when the config sets it, else nobody
 * (group nogroup), as nginx does; `user = root` keeps root, and only when
 * written.  The worker takes the user's groups (initgroups), then the group
 * (`group`, or the user's primary group), optionally confines itself to the
 * served directory (`chroot = yes`), then becomes the user, and checks that
 * root cannot be regained.  A worker that cannot drop refuses to run.
 *
 * privsep_check_reach proves, before any worker starts (at start, -t and
 * reload), that the workers' user can open the served directory: a forked
 * probe drops exactly as a worker would and opens it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privsep.h"

/* The user and group workers take when root starts hftpd without `user`. */
#define PRIVSEP_DEFAULT_USER    "nobody"
#define PRIVSEP_DEFAULT_GROUP   "nogroup"

const char *
privsep_user(const struct config *c)
{
	if (c->user[0] != '\0')
		return c->user;
	return geteuid() == 0 ? PRIVSEP_DEFAULT_USER : "";
}

/* The group named by the config, the default one, or "" (user's primary). */
static const char *
privsep_group(const struct config *c)
{
	if (c->group[0] != '\0')
		return c->group;
	if (c->user[0] == '\0' && geteuid() == 0 && getgrnam(PRIVSEP_DEFAULT_GROUP) != NULL)
		return PRIVSEP_DEFAULT_GROUP;
	return "";
}

int
privsep_ids(const struct config *c, uid_t *uid, gid_t *gid)
{
	const char    *user = privsep_user(c), *group = privsep_group(c);
	struct passwd *pw;
	struct group  *gr;

	if (user[0] == '\0')
		return -1;
	if ((pw = getpwnam(user)) == NULL)
		return -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (group[0] != '\0') {
		if ((gr = getgrnam(group)) == NULL)
			return -1;
		*gid = gr->gr_gid;
	}
	return 0;
}

int
privsep_check(const struct config *c, char *err, size_t errlen)
{
	const char *user = privsep_user(c);

	if (user[0] != '\0' && getpwnam(user) == NULL) {
		if (c->user[0] == '\0')
			snprintf(err, errlen, "started as root without `user`, but the default "
			    "user '%s' does not exist: give -u USER or set `user` in the config", user);
		else
			snprintf(err, errlen, "user '%s': no such user", user);
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
	if (c->chroot && geteuid() != 0) {
		snprintf(err, errlen, "chroot = yes needs hftpd started as root");
		return -1;
	}
	if (c->chroot && c->user[0] == '\0') {
		snprintf(err, errlen, "chroot = yes needs `user` (a user other than root)");
		return -1;
	}
	if (c->chroot && strcmp(c->user, "root") == 0) {
		snprintf(err, errlen, "chroot = yes with user = root confines nothing: "
		    "set `user` to an unprivileged user");
		return -1;
	}
	return privsep_check_reach(c, err, errlen);
}

/* Becomes uid/gid (with user's groups), in c's chroot if set; 0 / -1. */
static int
privsep_become(const struct config *c, const char *user, uid_t uid, gid_t gid)
{
	/* initgroups reads /etc/group: before the chroot hides it */
	if (initgroups(user, gid) == -1 || setgid(gid) == -1)
		return -1;
	if (c->chroot && (chroot(c->directory) == -1 || chdir("/") == -1))
		return -1;
	if (setuid(uid) == -1)
		return -1;
	return 0;
}

int
privsep_check_reach(const struct config *c, char *err, size_t errlen)
{
	const char *user = privsep_user(c);
	uid_t       uid;
	gid_t       gid;
	pid_t       pid;
	int         status, saved;
	DIR        *dir;

	if (geteuid() != 0 || privsep_ids(c, &uid, &gid) == -1 || uid == 0)
		return 0;
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "directory %s: cannot check it as user %s: fork: %s",
		    c->directory, user, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* the probe: drop as a worker does, then open the directory */
		if (privsep_become(c, user, uid, gid) == -1)
			_exit(errno & 0xff);
		if ((dir = opendir(c->chroot ? "/" : c->directory)) == NULL)
			_exit(errno & 0xff);
		errno = 0;
		saved = readdir(dir) == NULL ? errno : 0;
		_exit(saved & 0xff);
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			snprintf(err, errlen, "directory %s: waitpid: %s", c->directory, strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	saved = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
	snprintf(err, errlen, "directory %s: the workers' user %s cannot open it (%s); "
	    "make the directory and every folder above it reachable by %s, "
	    "or give -u USER (or `user` in the config) naming a user who can read it",
	    c->directory, user, strerror(saved), user);
	return -1;
}

int
privsep_drop(const struct config *c)
{
	const char *user = privsep_user(c);
	uid_t       uid;
	gid_t       gid;

	if (user[0] == '\0' || geteuid() != 0)
		return 0;
	if (privsep_ids(c, &uid, &gid) == -1) {
		log_warnx("user '%s' / group '%s' not found; refusing to run as root",
		    user, privsep_group(c));
		return -1;
	}
	if (privsep_become(c, user, uid, gid) == -1) {
		log_warn("cannot become %s%s; refusing to run as root", user,
		    c->chroot ? " in a chroot" : "");
		return -1;
	}
	if (uid != 0 && (setuid(0) != -1 || geteuid() == 0)) {
		log_warnx("root could be regained after dropping to %s; refusing to run", user);
		return -1;
	}
	return 0;
}

void
privsep_announce(const struct config *c)
{
	const char *user = privsep_user(c);

	if (geteuid() != 0)
		return;
	if (strcmp(user, "root") == 0)
		log_warnx("user = root: workers keep every privilege of root");
	else if (c->user[0] == '\0')
		log_info("started as root without `user`: workers run as %s:%s",
		    user, privsep_group(c)[0] != '\0' ? privsep_group(c) : "(primary group)");
	else
		log_info("workers run as %s%s%s%s", user,
		    c->group[0] != '\0' ? ":" : "", c->group,
		    c->chroot ? ", chrooted to the served directory" : "");
}

/*
 * Whom the workers run as when the config names no user or group, for
 * -T: nobody:nogroup when root, else the user hftpd runs as (no drop).
 */
void
privsep_effective(const struct config *c, struct config_ids *ids)
{
	const char    *user = privsep_user(c), *group = privsep_group(c);
	struct passwd *pw;
	struct group  *gr;
	gid_t          gid;

	memset(ids, 0, sizeof(*ids));
	if (user[0] == '\0') {
		/* not root, no `user`: the workers stay who hftpd is */
		pw = getpwuid(geteuid());
		gid = getegid();
		ids->why = "not root: workers run as the user who started hftpd";
	} else {
		pw = getpwnam(user);
		gid = pw != NULL ? pw->pw_gid : (gid_t)-1;
		ids->why = c->user[0] == '\0' ? "started as root without `user`" :
		    "the primary group of the workers' user";
	}
	if (pw != NULL)
		snprintf(ids->user, sizeof(ids->user), "%s", pw->pw_name);
	if (group[0] != '\0')
		snprintf(ids->group, sizeof(ids->group), "%s", group);
	else if ((gr = getgrgid(gid)) != NULL)
		snprintf(ids->group, sizeof(ids->group), "%s", gr->gr_name);
}
