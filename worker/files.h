/*
 * files.h — the served directory, as a worker sees it: a directory
 * descriptor kept in step with the configured path, the openat/fstat rules
 * for what is servable, and the listing.
 */
#ifndef HFTPD_FILES_H
#define HFTPD_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

struct files {
	char   path[4096];
	int    dirfd;       /* -1 while the path names no directory */
	dev_t  dev;
	ino_t  ino;
	uint64_t checked;   /* poll turn of the last check */
	int    open_errno;  /* the path names a directory that could not be opened */
	struct files_snapshot *snapshot;   /* the last listing built, for reuse */
	/* metadata_cache inotify: NULL when off (or inotify could not start) */
	struct fscache *cache;
	bool   cache_stale;     /* the directory may have changed: reopen it */
	bool   watch_failed;    /* a watch is missing: no cache, the path checked per turn */
	uint64_t synced_turn;   /* the last drain: in this turn, */
	uint64_t synced_recvs;  /* after this many receives */
};

void files_init(struct files *f, const char *path);
/* Closes the directory descriptor (the snapshot stays for reuse). */
void files_close(struct files *f);
/* Closes and frees everything: at the worker's exit. */
void files_free(struct files *f);
/* Re-checks the path and reopens the directory when it changed. */
void files_refresh(struct files *f);
/*
 * The same, at most once per poll turn: requests answered in one turn
 * arrived together, so one check of the path serves them all.
 */
void files_refresh_turn(struct files *f, uint64_t turn);
/*
 * metadata_cache inotify: starts the worker's cache (fscache.c); -1 when
 * inotify cannot start (logged), and everything stays uncached.
 */
int  files_cache_start(struct files *f);
/*
 * Before answering a request in poll turn turn, the worker having made
 * recvs receives so far: without the cache, files_refresh_turn; with it,
 * the inotify events queued so far applied (again only once a receive was
 * made since the last drain, so after the receive of every request being
 * answered) and the directory reopened when they say it changed.
 */
void files_sync(struct files *f, uint64_t turn, uint64_t recvs);
/*
 * A servable (regular, not a symlink) file named name: 0 with *st, -1 if
 * none.  With the cache, from it when it knows the name.
 */
int  files_stat(struct files *f, const char *name, struct stat *st);
/*
 * Opens a servable file for reading: fd; -1 with errno (ENOENT: not
 * servable).  With the cache, a copy of a descriptor it keeps, if any.
 */
int  files_open(struct files *f, const char *name, struct stat *st);
/*
 * files_open for a reader that gives the descriptor back with
 * files_give_back (never close): with the cache, the descriptor it keeps
 * is lent, no copy made.
 */
int  files_borrow(struct files *f, const char *name, struct stat *st);
void files_give_back(int fd);
/*
 * The names of one state of the directory, built once and shared by every
 * response listing it until the directory changes (reference-counted), so
 * a large directory costs one copy per worker, not one per connection.
 */
struct files_snapshot {
	unsigned         refs;
	char           **names;     /* sorted by byte value */
	size_t           count;
	dev_t            dev;       /* the directory, as it was then */
	ino_t            ino;
	struct timespec  mtime;
	bool             reusable;  /* taken a second or more after its last change */
};

/* The names get_file_listing shows: a reference to a snapshot's. */
struct files_listing {
	char                 **names;
	size_t                 count;
	struct files_snapshot *snap;    /* NULL: an empty list (no directory) */
};

/*
 * Lists the regular files whose names are valid FILENAMEs: 0; -1 with errno
 * when the directory exists but cannot be read (a missing one lists empty).
 * The names are shared with the worker's snapshot while the directory is
 * unchanged; files_listing_free gives them back.
 */
int  files_list(struct files *f, struct files_listing *out);
void files_listing_free(struct files_listing *l);

#endif
