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
/* Formats at most 511 bytes (status lines, headers); all or nothing. */
int     buffer_printf(struct buffer *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
