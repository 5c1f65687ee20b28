/*
 * pidfile.c — the pid file: written atomically (a temporary file renamed
 * into place) and kept locked by the master it names, so that `-s` asks the
 * lock, not the text, who runs; its hand-over in an upgrade (the new
 * master's file renamed over it, the old one kept as PIDFILE.oldbin while
 * it drains); and its removal, by inode, so that a master never removes a
 * file that names another.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

long
pidfile_holder(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int          fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (fcntl(fd, F_GETLK, &fl) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return fl.l_type == F_UNLCK ? 0 : (long)fl.l_pid;
}

void
pidfile_sibling(const char *path, const char *suffix, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s", path, suffix);
}

/* A locked temporary file holding our pid, renamed to path; its fd or -1. */
static int
pidfile_put(const char *path, char *err, size_t errlen)
{
	char         tmp[PATH_MAX + 32], text[32];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int          fd, n;

	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1) {
		snprintf(err, errlen, "pid file %s: %s", tmp, strerror(errno));
		return -1;
	}
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (fcntl(fd, F_SETLK, &fl) == -1 || write(fd, text, (size_t)n) != n ||
	    rename(tmp, path) == -1) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	return fd;
}

int
pidfile_write(struct master *m, char *err, size_t errlen)
{
	long holder;

	if (m->conf->pid_file[0] == '\0')
		return 0;
	if ((holder = pidfile_holder(m->conf->pid_file)) > 0) {
		snprintf(err, errlen, "already running as pid %ld (pid file %s)", holder,
		    m->conf->pid_file);
		return -1;
	}
	if ((m->pidfile_fd = pidfile_put(m->conf->pid_file, err, errlen)) == -1)
		return -1;
	return 0;
}

/*
 * The new master of an upgrade, ready: the old file becomes PIDFILE.oldbin
 * (a hard link renamed over any stale one, so the old master keeps its
 * lock on it), then ours is renamed over PIDFILE.  At every moment PIDFILE
 * names a live master.
 */
int
pidfile_takeover(struct master *m, char *err, size_t errlen)
{
	char oldbin[PATH_MAX + 16], tmp[PATH_MAX + 32];

	if (m->conf->pid_file[0] == '\0')
		return 0;
	pidfile_sibling(m->conf->pid_file, PIDFILE_OLDBIN, oldbin, sizeof(oldbin));
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", oldbin, (long)getpid());
	unlink(tmp);
	if (link(m->conf->pid_file, tmp) == 0 ? rename(tmp, oldbin) == -1 : errno != ENOENT) {
		snprintf(err, errlen, "pid file %s: %s", oldbin, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if ((m->pidfile_fd = pidfile_put(m->conf->pid_file, err, errlen)) == -1)
		return -1;
	return 0;
}

/* True when path is the very file m's pid file descriptor holds. */
static bool
pidfile_is_ours(const struct master *m, const char *path)
{
	struct stat a, b;

	return m->pidfile_fd != -1 && fstat(m->pidfile_fd, &a) == 0 && stat(path, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* An upgrade failed: PIDFILE.oldbin, if it is ours, goes back to PIDFILE. */
void
pidfile_restore(struct master *m)
{
	char oldbin[PATH_MAX + 16];

	if (m->conf->pid_file[0] == '\0')
		return;
	pidfile_sibling(m->conf->pid_file, PIDFILE_OLDBIN, oldbin, sizeof(oldbin));
	if (pidfile_is_ours(m, oldbin) && rename(oldbin, m->conf->pid_file) == -1)
		log_warn("pid file: restoring %s", m->conf->pid_file);
}

/* At exit: whichever of PIDFILE and PIDFILE.oldbin is ours goes. */
void
pidfile_remove(struct master *m)
{
	char oldbin[PATH_MAX + 16];

	if (m->pidfile_fd == -1)
		return;
	pidfile_sibling(m->conf->pid_file, PIDFILE_OLDBIN, oldbin, sizeof(oldbin));
	if (pidfile_is_ours(m, m->conf->pid_file))
		unlink(m->conf->pid_file);
	else if (pidfile_is_ours(m, oldbin))
		unlink(oldbin);
	close(m->pidfile_fd);
	m->pidfile_fd = -1;
}
