/*
 * filemap.h — the worker's views of files through mmap: a small cache of
 * whole-file mappings shared by the responses that read the same file, a
 * per-response window when the cache cannot take a file, and the SIGBUS
 * guard that turns a read past the end of a file that shrank into an error.
 */
#ifndef HFTPD_FILEMAP_H
#define HFTPD_FILEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A file being read, as fstat saw it when it was opened. */
struct filemap_file {
	int      fd;            /* -1: none */
	dev_t    dev;
	ino_t    ino;
	uint64_t size;
};

struct filemap_entry;

/* A mapped view of part (or all) of a file. */
struct filemap_view {
	unsigned char        *addr;     /* NULL: nothing mapped */
	size_t                len;
	uint64_t              off;      /* file offset of addr[0] */
	struct filemap_entry *cached;   /* the view is this cache entry's */
};

/* Installs the SIGBUS guard (once, in the worker). */
void filemap_init(void);
/*
 * Makes v map [offset, offset + n) of f, for a response that reads up to
 * end; true when it does, false when the caller must pread instead.
 */
bool filemap_cover(struct filemap_view *v, const struct filemap_file *f,
	    uint64_t offset, size_t n, uint64_t end, uint64_t now_ms);
/* Gives the view back (the cached mapping stays for later responses). */
void filemap_release(struct filemap_view *v, uint64_t now_ms);
/* Unmaps cached files no response used for a while (called once a second). */
void filemap_sweep(uint64_t now_ms);
void filemap_close_all(void);
/* Runs fn(arg); -1 instead when it touched a mapped page past a file's end. */
int  filemap_guarded(void (*fn)(void *), void *arg);

#endif
