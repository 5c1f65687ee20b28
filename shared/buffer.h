/*
 * buffer.h — bounded byte buffers: data lives in [start, end) of a fixed
 * capacity block; space at the front is reclaimed by moving the data down
 * when the tail runs out.  Nothing here grows: a full buffer says so.
 */
#ifndef HFTPD_BUFFER_H
#define HFTPD_BUFFER_H

#include <stddef.h>

struct buffer {
	char   *data;
	size_t  start;
	size_t  end;
	size_t  cap;
};

int     buffer_init(struct buffer *b, size_t cap);      /* 0 / -1 (ENOMEM) */
void    buffer_free(struct buffer *b);
size_t  buffer_len(const struct buffer *b);
const char *buffer_head(const struct buffer *b);
void    buffer_consume(struct buffer *b, size_t n);
/* Contiguous free bytes at the tail, compacting first when that helps. */
size_t  buffer_room(struct buffer *b);
char   *buffer_tail(struct buffer *b);
void    buffer_commit(struct buffer *b, size_t n);
/* Appends all of p or nothing: 0, or -1 when it does not fit. */
int     buffer_append(struct buffer *b, const void *p, size_t n);
/*
 * A pool of equal blocks for buffers that hold a block only while they
 * hold bytes: an idle connection then costs no buffer memory, and a busy
 * worker does not go back to malloc for every response.
 */
struct buffer_pool {
	char  **free;       /* blocks ready for reuse */
	int     count;
	int     max;        /* kept at most; more are freed */
	size_t  block_size;
};

int     buffer_pool_init(struct buffer_pool *p, size_t block_size, int max); /* 0 / -1 */
void    buffer_pool_free(struct buffer_pool *p);
/* Gives b an empty block from p (or a new one): 0 / -1 (ENOMEM). */
int     buffer_attach(struct buffer *b, struct buffer_pool *p);
/* Hands b's block back to p, whatever it held; b then holds none. */
void    buffer_detach(struct buffer *b, struct buffer_pool *p);

/* Formats at most 511 bytes (status lines, headers); all or nothing. */
int     buffer_printf(struct buffer *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
