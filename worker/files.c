/*
 * files.c — the served directory (see files.h).  Files are only ever opened
 * relative to the directory descriptor, never following a symlink, never
 * blocking on a FIFO, and only served when fstat says regular file.
 *
 * The path is what is served at the time of each request: operators (and
 * the course test suites) delete and recreate the directory while the server
 * runs, so every poll turn compares the path's device and inode with those
 * of the descriptor held and reopens on a change.
 *
 * With metadata_cache inotify, fscache.c remembers what each name is (and
 * keeps a few open descriptors) and its inotify watches replace the stat of
 * the path each turn: files_sync drains the events after the connection's
 * receive and reopens the directory only when they say it changed (the
 * ordering argument is in fscache.c).  When a watch cannot be added the
 * cache is left aside and the path checked each turn, as without it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "fscache.h"
#include "log.h"
#include "protocol.h"

void
files_init(struct files *f, const char *path)
{
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->dirfd = -1;
	f->dev = 0;
	f->ino = 0;
	f->checked = 0;
	f->snapshot = NULL;
	f->cache = NULL;
	f->cache_stale = false;
	f->watch_failed = false;
	f->synced_turn = 0;
	f->synced_recvs = 0;
	files_refresh(f);
}

static void
files_snapshot_release(struct files_snapshot *snap)
{
	if (snap == NULL || --snap->refs > 0)
		return;
	for (size_t i = 0; i < snap->count; i++)
		free(snap->names[i]);
	free(snap->names);
	free(snap);
}

void
files_close(struct files *f)
{
	if (f->dirfd != -1)
		close(f->dirfd);
	f->dirfd = -1;
}

void
files_free(struct files *f)
{
	files_close(f);
	files_snapshot_release(f->snapshot);
	f->snapshot = NULL;
	fscache_close(f->cache);
	f->cache = NULL;
}

void
files_refresh(struct files *f)
{
	struct stat st;
	int         fd;

	f->open_errno = 0;
	if (stat(f->path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		files_close(f);
		return;
	}
	if (f->dirfd != -1 && st.st_dev == f->dev && st.st_ino == f->ino)
		return;
	files_close(f);
	if ((fd = open(f->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		f->open_errno = errno;
		log_warn("served directory %s", f->path);
		return;
	}
	if (fstat(fd, &st) == -1) {
		f->open_errno = errno;
		close(fd);
		return;
	}
	f->dirfd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
}

void
files_refresh_turn(struct files *f, uint64_t turn)
{
	if (f->checked == turn && turn != 0)
		return;
	f->checked = turn;
	files_refresh(f);
}

int
files_cache_start(struct files *f)
{
	if ((f->cache = fscache_open()) == NULL) {
		log_warn("metadata_cache inotify: cannot start, serving uncached");
		return -1;
	}
	f->cache_stale = true;      /* watches added at the first request */
	return 0;
}

/* The watches (re-)added and the directory reopened. */
static void
files_cache_reopen(struct files *f, uint64_t turn)
{
	bool failed;

	f->checked = turn;
	f->cache_stale = false;
	failed = fscache_watch(f->cache, f->path) == -1;
	if (failed && !f->watch_failed && errno == ELOOP)
		log_warnx("metadata_cache: %s is a symbolic link, serving uncached", f->path);
	else if (failed && !f->watch_failed)
		log_warn("metadata_cache: watching %s, serving uncached", f->path);
	else if (!failed && f->watch_failed)
		log_info("metadata_cache: watching %s again", f->path);
	f->watch_failed = failed;
	files_refresh(f);
}

void
files_sync(struct files *f, uint64_t turn, uint64_t recvs)
{
	if (f->cache == NULL) {
		files_refresh_turn(f, turn);
		return;
	}
	/* nothing received since the last drain: no request can be newer */
	if (turn != 0 && turn == f->synced_turn && recvs == f->synced_recvs)
		return;
	f->synced_turn = turn;
	f->synced_recvs = recvs;
	if (fscache_drain(f->cache))
		f->cache_stale = true;
	/* without a watch: the path's check once a turn, as without the cache */
	if (f->cache_stale || (f->watch_failed && (f->checked != turn || turn == 0)))
		files_cache_reopen(f, turn);
}

static bool
files_cached(const struct files *f)
{
	return f->cache != NULL && !f->cache_stale && !f->watch_failed;
}

static int
files_servable_name(const char *name)
{
	return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/*
 * A file with more than one link may be written through a name outside the
 * directory, which its watch does not see: such a file is never cached.
 */
static void
files_remember(struct files *f, const char *name, const struct stat *st)
{
	if (S_ISREG(st->st_mode) && st->st_nlink == 1)
		fscache_put(f->cache, name, 0, st);
	else if (!S_ISREG(st->st_mode))
		fscache_put(f->cache, name, -1, NULL);
}

static int
files_stat_cached(struct files *f, const char *name, struct stat *st)
{
	const struct fscache_entry *e = fscache_get(f->cache, name);

	if (e != NULL) {
		if (e->result == 0)
			*st = e->st;
		return e->result;
	}
	if (fstatat(f->dirfd, name, st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			fscache_put(f->cache, name, -1, NULL);
		return -1;
	}
	files_remember(f, name, st);
	return S_ISREG(st->st_mode) ? 0 : -1;
}

int
files_stat(struct files *f, const char *name, struct stat *st)
{
	if (f->dirfd == -1 || !files_servable_name(name))
		return -1;
	if (files_cached(f))
		return files_stat_cached(f, name, st);
	if (fstatat(f->dirfd, name, st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	return S_ISREG(st->st_mode) ? 0 : -1;
}

int
files_open(struct files *f, const char *name, struct stat *st)
{
	int fd;

	if (f->dirfd == -1 || !files_servable_name(name)) {
		errno = ENOENT;
		return -1;
	}
	if (files_cached(f) && (fd = fscache_dup(f->cache, name, st)) != -1)
		return fd;
	fd = openat(f->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		if (errno == ELOOP)
			errno = ENOENT;
		return -1;
	}
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	if (files_cached(f)) {
		files_remember(f, name, st);
		fscache_keep_fd(f->cache, name, fd);
	}
	return fd;
}

int
files_borrow(struct files *f, const char *name, struct stat *st)
{
	int fd;

	if (f->dirfd != -1 && files_servable_name(name) && files_cached(f) &&
	    (fd = fscache_lend(f->cache, name, st)) != -1)
		return fd;
	return files_open(f, name, st);
}

void
files_give_back(int fd)
{
	fscache_give_back(fd);
}

static int
files_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the entry is listed: a valid FILENAME naming a regular file. */
static bool
files_listed(const struct files *f, const struct dirent *de)
{
	struct stat st;

	if (!protocol_name_valid(de->d_name) || !files_servable_name(de->d_name))
		return false;
	if (de->d_type == DT_REG)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(f->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

static int
files_names_add(struct files_snapshot *snap, size_t *cap, const char *name)
{
	if (snap->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		char **tmp = realloc(snap->names, ncap * sizeof(*snap->names));
		if (tmp == NULL)
			return -1;
		snap->names = tmp;
		*cap = ncap;
	}
	if ((snap->names[snap->count] = strdup(name)) == NULL)
		return -1;
	snap->count++;
	return 0;
}

/* Reads the directory into a new snapshot (one reference); NULL with errno. */
static struct files_snapshot *
files_snapshot_build(const struct files *f, const struct stat *dir)
{
	struct files_snapshot *snap;
	struct timespec        now;
	DIR                   *d;
	struct dirent         *de;
	size_t                 cap = 0;
	int                    fd, saved;

	if ((snap = calloc(1, sizeof(*snap))) == NULL)
		return NULL;
	snap->refs = 1;
	snap->dev = dir->st_dev;
	snap->ino = dir->st_ino;
	snap->mtime = dir->st_mtim;
	/*
	 * A change within the timestamp's granularity of the last one may
	 * leave mtime as it was: trust the snapshot only when it was taken a
	 * second or more after the directory last changed.
	 */
	clock_gettime(CLOCK_REALTIME, &now);
	snap->reusable = now.tv_sec - dir->st_mtim.tv_sec >= 2 ||
	    (now.tv_sec - dir->st_mtim.tv_sec == 1 && now.tv_nsec >= dir->st_mtim.tv_nsec);
	if ((fd = openat(f->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		goto fail;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (files_listed(f, de) && files_names_add(snap, &cap, de->d_name) == -1)
			break;
		errno = 0;
	}
	saved = errno;
	closedir(d);
	if (saved != 0) {
		errno = saved;
		goto fail;
	}
	if (snap->count > 1)
		qsort(snap->names, snap->count, sizeof(*snap->names), files_cmp);
	return snap;
fail:
	saved = errno;
	files_snapshot_release(snap);
	errno = saved;
	return NULL;
}

int
files_list(struct files *f, struct files_listing *out)
{
	struct files_snapshot *snap = f->snapshot;
	struct stat            st;

	out->names = NULL;
	out->count = 0;
	out->snap = NULL;
	if (f->dirfd == -1) {
		if (f->open_errno == 0)
			return 0;       /* no directory at the path: an empty list */
		errno = f->open_errno;
		return -1;
	}
	if (fstat(f->dirfd, &st) == -1)
		return -1;
	if (snap == NULL || !snap->reusable || snap->dev != st.st_dev || snap->ino != st.st_ino ||
	    snap->mtime.tv_sec != st.st_mtim.tv_sec || snap->mtime.tv_nsec != st.st_mtim.tv_nsec) {
		if ((snap = files_snapshot_build(f, &st)) == NULL)
			return -1;
		files_snapshot_release(f->snapshot);
		f->snapshot = snap;
	}
	snap->refs++;
	out->snap = snap;
	out->names = snap->names;
	out->count = snap->count;
	return 0;
}

void
files_listing_free(struct files_listing *l)
{
	files_snapshot_release(l->snap);
	l->names = NULL;
	l->count = 0;
	l->snap = NULL;
}
