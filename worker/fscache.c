/*
 * fscache.c — the exact metadata / open-file cache (see fscache.h), one
 * per worker, used by files.c when metadata_cache is inotify.
 *
 * Why it is exact.  The kernel queues an inotify event for a change (write,
 * truncate, chmod, create, unlink, rename) before the system call that made
 * it returns.  A client that asks after a writer's write() returned sends
 * its request after the event was queued; the worker answers it only after
 * receiving it, and files.c drains this descriptor (fscache_drain: read
 * until EAGAIN) after that receive and before the first lookup it answers
 * from the cache: whenever the worker made a recv() since the last drain
 * (files_sync compares the worker's count of receives), so the drain
 * follows the receive of every request it answers; a turn that first
 * receives from every ready client then answers them drains once.  So
 * every change that happened
 * before the request was sent has been applied when the answer is taken
 * from the cache.  An entry filled after the drain reflects the file at
 * its fstatat, later than any event already read; a change after it queues
 * an event the next drain applies.  An overflowed queue (IN_Q_OVERFLOW) or
 * a watch that ends (IN_IGNORED) forgets everything.
 *
 * The directory itself: its watch reports its deletion or move
 * (IN_DELETE_SELF, IN_MOVE_SELF); the watch on its parent reports a new
 * directory under its name (IN_CREATE, IN_MOVED_TO) or the name going
 * (IN_DELETE, IN_MOVED_FROM).  Either makes files.c reopen the path instead
 * of a stat of it every turn.  The parent is watched before the directory
 * is, so a replacement between the two is reported too.
 *
 * What inotify cannot see, so the cache does not either: writes through a
 * shared mapping of another process, changes made on another machine (a
 * network file system), the directory replaced by a mount over it (a bind
 * mount), a parent further up renamed, and writes through a hard link made
 * from outside the directory; files with more than one link when looked up
 * are therefore never cached.  A directory path that is itself a symbolic
 * link is not watched (fscache_watch fails): files.c serves it uncached.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fscache.h"
#include "log.h"

#define FSCACHE_DIR_MASK    (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | \
	IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define FSCACHE_PARENT_MASK (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | \
	IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define FSCACHE_GONE        (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)

/*
 * Kept descriptors lent to responses (fscache_lend), so a slice costs no
 * dup and no close.  A lent descriptor the cache lets go of (evicted,
 * forgotten, the cache closed) stays open until its last borrower gives it
 * back: per process, not per cache, since a loan can outlive both.  Never
 * more descriptors than with a dup per response: an orphan has a borrower
 * that would have held its own copy.  No free slot: the caller dups.
 */
#define FSCACHE_LOANS       32

struct fscache_loan {
	int      fd;
	unsigned count;     /* borrowers; 0: the slot is free */
	bool     kept;      /* a cache entry still holds fd */
};

static struct fscache_loan fscache_loans[FSCACHE_LOANS];

/* The loan of fd (count > 0), or with fd -1 a free slot; NULL when none. */
static struct fscache_loan *
fscache_loan_find(int fd)
{
	for (int k = 0; k < FSCACHE_LOANS; k++) {
		struct fscache_loan *l = &fscache_loans[k];

		if (fd == -1 ? l->count == 0 : (l->count > 0 && l->fd == fd))
			return l;
	}
	return NULL;
}

/* The cache lets go of fd: closed now, or by its last borrower. */
static void
fscache_fd_close(int fd)
{
	struct fscache_loan *l = fscache_loan_find(fd);

	if (l != NULL)
		l->kept = false;
	else
		close(fd);
}

struct fscache *
fscache_open(void)
{
	struct fscache *c;
	int             saved;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		saved = errno;
		free(c);
		errno = saved;
		return NULL;
	}
	c->wd_dir = -1;
	c->wd_parent = -1;
	for (int i = 0; i < FSCACHE_BUCKETS; i++)
		c->buckets[i] = -1;
	for (int i = 0; i < FSCACHE_FDS; i++)
		c->fds[i] = -1;
	return c;
}

void
fscache_close(struct fscache *c)
{
	if (c == NULL)
		return;
	fscache_flush(c);
	close(c->ifd);
	free(c);
}

/* FNV-1a */
static unsigned
fscache_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h & (FSCACHE_BUCKETS - 1);
}

static int
fscache_find(const struct fscache *c, const char *name)
{
	int i;

	for (i = c->buckets[fscache_hash(name)]; i != -1; i = c->entries[i].next)
		if (strcmp(c->entries[i].name, name) == 0)
			return i;
	return -1;
}

static void
fscache_fd_drop(struct fscache *c, int i)
{
	struct fscache_entry *e = &c->entries[i];

	if (e->fd == -1)
		return;
	fscache_fd_close(e->fd);
	e->fd = -1;
	for (int k = 0; k < FSCACHE_FDS; k++)
		if (c->fds[k] == i)
			c->fds[k] = -1;
}

static void
fscache_remove(struct fscache *c, int i)
{
	struct fscache_entry *e = &c->entries[i];
	int                  *link = &c->buckets[fscache_hash(e->name)];

	while (*link != i)
		link = &c->entries[*link].next;
	*link = e->next;
	fscache_fd_drop(c, i);
	free(e->name);
	memset(e, 0, sizeof(*e));
	e->fd = -1;
	c->count--;
}

void
fscache_flush(struct fscache *c)
{
	for (int i = 0; i < FSCACHE_ENTRIES && c->count > 0; i++)
		if (c->entries[i].name != NULL)
			fscache_remove(c, i);
	c->flushes++;
}

static void
fscache_forget(struct fscache *c, const char *name)
{
	int i = fscache_find(c, name);

	if (i != -1)
		fscache_remove(c, i);
}

/* Splits path into its parent folder and last name; false when it has none ("/"). */
static bool
fscache_split(const char *path, char *parent, size_t plen, char *base, size_t blen)
{
	size_t end = strlen(path), start;

	while (end > 1 && path[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	if (end - start == 0 || end - start >= blen || start >= plen)
		return false;
	memcpy(base, path + start, end - start);
	base[end - start] = '\0';
	while (start > 1 && path[start - 1] == '/')
		start--;
	if (start == 0)
		snprintf(parent, plen, ".");
	else
		snprintf(parent, plen, "%.*s", (int)start, path);
	return true;
}

int
fscache_watch(struct fscache *c, const char *path)
{
	struct stat st;
	char        parent[PATH_MAX];
	int         wd;

	fscache_flush(c);
	/*
	 * A symbolic link: its target's parent is not the link's, so the
	 * target removed and recreated would go unseen.  (Replaced by a link
	 * later: the parent's watch reports the name, and this runs again.)
	 */
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		errno = ELOOP;
		return -1;
	}
	if (fscache_split(path, parent, sizeof(parent), c->base, sizeof(c->base))) {
		if (c->wd_parent == -1 &&
		    (c->wd_parent = inotify_add_watch(c->ifd, parent, FSCACHE_PARENT_MASK)) == -1)
			return -1;
	} else
		c->base[0] = '\0';
	wd = inotify_add_watch(c->ifd, path, FSCACHE_DIR_MASK);
	/* no directory there: the parent's watch reports one appearing */
	if (wd == -1 && errno != ENOENT && errno != ENOTDIR)
		return -1;
	if (c->wd_dir != -1 && c->wd_dir != wd)
		inotify_rm_watch(c->ifd, c->wd_dir);
	c->wd_dir = wd;
	return 0;
}

/* A watch that no longer stands for the path: dropped, re-added by fscache_watch. */
static void
fscache_unwatch(struct fscache *c, int *wd, uint32_t mask)
{
	if (!(mask & IN_IGNORED))
		inotify_rm_watch(c->ifd, *wd);
	*wd = -1;
}

bool
fscache_event(struct fscache *c, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		fscache_flush(c);
		return true;        /* the parent's events may be lost too */
	}
	if (ev->wd == c->wd_parent && ev->wd != -1) {
		if (ev->mask & FSCACHE_GONE) {
			fscache_unwatch(c, &c->wd_parent, ev->mask);
			fscache_flush(c);
			return true;
		}
		if (ev->len > 0 && strcmp(ev->name, c->base) == 0) {
			fscache_flush(c);
			return true;
		}
		return false;
	}
	if (ev->wd != c->wd_dir || ev->wd == -1)
		return false;       /* a watch given up, its last events */
	if (ev->mask & FSCACHE_GONE) {
		fscache_unwatch(c, &c->wd_dir, ev->mask);
		fscache_flush(c);
		return true;
	}
	if (ev->len > 0 && ev->name[0] != '\0')
		fscache_forget(c, ev->name);
	else
		fscache_flush(c);   /* the directory's own attributes: who may read */
	return false;
}

bool
fscache_drain(struct fscache *c)
{
	_Alignas(struct inotify_event) char buf[8192];
	ssize_t n;
	bool    dir = false;

	for (;;) {
		n = read(c->ifd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n; ) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
			dir |= fscache_event(c, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
		/* events may be lost: nothing cached can be trusted */
		log_warn("metadata cache: inotify read");
		fscache_flush(c);
		return true;
	}
	return dir;
}

const struct fscache_entry *
fscache_get(struct fscache *c, const char *name)
{
	int i = fscache_find(c, name);

	if (i == -1)
		return NULL;
	c->entries[i].used = true;
	return &c->entries[i];
}

/* A free slot: the clock's hand passes used entries once, takes the next. */
static int
fscache_slot(struct fscache *c)
{
	struct fscache_entry *e;

	if (c->count < FSCACHE_ENTRIES) {
		while (c->entries[c->hand].name != NULL)
			c->hand = (c->hand + 1) % FSCACHE_ENTRIES;
		return c->hand;
	}
	for (;;) {
		e = &c->entries[c->hand];
		if (!e->used)
			break;
		e->used = false;
		c->hand = (c->hand + 1) % FSCACHE_ENTRIES;
	}
	fscache_remove(c, c->hand);
	return c->hand;
}

void
fscache_put(struct fscache *c, const char *name, int result, const struct stat *st)
{
	struct fscache_entry *e;
	unsigned              h;
	int                   i;
	char                 *copy;

	fscache_forget(c, name);
	if ((copy = strdup(name)) == NULL)
		return;             /* not remembered: looked up again */
	i = fscache_slot(c);
	e = &c->entries[i];
	h = fscache_hash(name);
	e->name = copy;
	e->result = result;
	if (result == 0)
		e->st = *st;
	e->fd = -1;
	e->used = true;
	e->next = c->buckets[h];
	c->buckets[h] = i;
	c->count++;
	c->hand = (i + 1) % FSCACHE_ENTRIES;
}

int
fscache_dup(struct fscache *c, const char *name, struct stat *st)
{
	int i = fscache_find(c, name), fd;

	if (i == -1 || c->entries[i].fd == -1)
		return -1;
	if ((fd = fcntl(c->entries[i].fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return -1;
	c->entries[i].used = true;
	*st = c->entries[i].st;
	return fd;
}

int
fscache_lend(struct fscache *c, const char *name, struct stat *st)
{
	int                  i = fscache_find(c, name);
	struct fscache_loan *l;

	if (i == -1 || c->entries[i].fd == -1)
		return -1;
	if ((l = fscache_loan_find(c->entries[i].fd)) == NULL) {
		if ((l = fscache_loan_find(-1)) == NULL)
			return -1;
		l->fd = c->entries[i].fd;
		l->kept = true;
	}
	l->count++;
	c->entries[i].used = true;
	*st = c->entries[i].st;
	return l->fd;
}

void
fscache_give_back(int fd)
{
	struct fscache_loan *l = fscache_loan_find(fd);

	if (l == NULL) {
		close(fd);              /* not a loan: the borrower's own */
		return;
	}
	if (--l->count == 0 && !l->kept)
		close(fd);
}

void
fscache_keep_fd(struct fscache *c, const char *name, int fd)
{
	int i = fscache_find(c, name), k = c->fd_next, copy;

	if (i == -1 || c->entries[i].result != 0 || c->entries[i].fd != -1)
		return;
	if ((copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return;
	if (c->fds[k] != -1)
		fscache_fd_drop(c, c->fds[k]);
	c->fds[k] = i;
	c->entries[i].fd = copy;
	c->fd_next = (k + 1) % FSCACHE_FDS;
}
