/*
 * fscache.h — the worker's exact cache of what the served directory's
 * names are (metadata_cache inotify): per file name the fstatat result and,
 * for a few, an open descriptor; invalidated by inotify events on the
 * directory, and the directory's own replacement seen by a watch on its
 * parent.  Only files.c uses it.
 */
#ifndef HFTPD_FSCACHE_H
#define HFTPD_FSCACHE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#define FSCACHE_ENTRIES     1024    /* names remembered, clock-evicted */
#define FSCACHE_BUCKETS     2048    /* hash chains, a power of two */
/*
 * Open descriptors kept: counted in the open-file reserve (config.h's
 * CONFIG_FDS_RESERVE, 16) with the inotify descriptor, so never a client's.
 */
#define FSCACHE_FDS         4

struct fscache_entry {
	char        *name;      /* NULL: the slot is free */
	int          next;      /* the next entry in its bucket, -1 none */
	int          result;    /* 0: a servable file (st); -1: nothing servable */
	struct stat  st;
	int          fd;        /* an open descriptor of the file, -1 none */
	bool         used;      /* the clock's bit: looked up since the hand passed */
};

struct fscache {
	int                   ifd;          /* inotify, non-blocking */
	int                   wd_dir;       /* the served directory, -1 none */
	int                   wd_parent;    /* its parent, for its own name; -1 none */
	char                  base[NAME_MAX + 1];   /* the directory's name in its parent */
	int                   count;
	int                   hand;         /* the clock's */
	int                   buckets[FSCACHE_BUCKETS];
	struct fscache_entry  entries[FSCACHE_ENTRIES];
	int                   fds[FSCACHE_FDS];     /* entries holding a descriptor, -1 */
	int                   fd_next;      /* the slot replaced next, round robin */
	uint64_t              flushes;      /* whole-cache flushes, for tests */
};

/* A cache with its inotify descriptor; NULL with errno (inotify limits). */
struct fscache *fscache_open(void);
void fscache_close(struct fscache *c);
/*
 * Watches the directory at path (re-adding it: the path may name another
 * one now) and its parent for the directory's name, and forgets every entry:
 * 0; -1 when a watch the cache needs could not be added (not exact then),
 * ELOOP when path is a symbolic link.
 */
int  fscache_watch(struct fscache *c, const char *path);
/*
 * Reads every queued event (until EAGAIN) and applies it: true when the
 * directory itself may have changed (files.c reopens it).
 */
bool fscache_drain(struct fscache *c);
/* Applies one event: true when the directory itself may have changed. */
bool fscache_event(struct fscache *c, const struct inotify_event *ev);
void fscache_flush(struct fscache *c);
/* The entry of name, NULL when none. */
const struct fscache_entry *fscache_get(struct fscache *c, const char *name);
/* Remembers name: result 0 with st, or -1 (st NULL). */
void fscache_put(struct fscache *c, const char *name, int result, const struct stat *st);
/*
 * A new descriptor of name's cached one, with its stat: fd; -1 when no
 * descriptor is cached (or dup failed).
 */
int  fscache_dup(struct fscache *c, const char *name, struct stat *st);
/*
 * name's cached descriptor itself, lent with its stat: fd, to be given back
 * with fscache_give_back, never closed; -1 when none is cached (or no loan
 * slot is free).
 */
int  fscache_lend(struct fscache *c, const char *name, struct stat *st);
/* Gives back a lent descriptor (closed once neither cache nor borrower
 * holds it); any other descriptor is closed. */
void fscache_give_back(int fd);
/* Keeps a copy (dup) of fd, just opened for name's entry, when room allows. */
void fscache_keep_fd(struct fscache *c, const char *name, int fd);

#endif
