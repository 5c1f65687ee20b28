/*
 * buffer.c — bounded byte buffers (see buffer.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"

int
buffer_init(struct buffer *b, size_t cap)
{
	b->start = b->end = 0;
	b->cap = cap;
	if ((b->data = malloc(cap)) == NULL) {
		b->cap = 0;
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
buffer_free(struct buffer *b)
{
	free(b->data);
	b->data = NULL;
	b->start = b->end = b->cap = 0;
}

size_t
buffer_len(const struct buffer *b)
{
	return b->end - b->start;
}

const char *
buffer_head(const struct buffer *b)
{
	return b->data + b->start;
}

void
buffer_consume(struct buffer *b, size_t n)
{
	if (n > b->end - b->start)
		n = b->end - b->start;
	b->start += n;
	if (b->start == b->end)
		b->start = b->end = 0;
}

size_t
buffer_room(struct buffer *b)
{
	if (b->start > 0 && b->cap - b->end < b->cap / 2) {
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
	return b->cap - b->end;
}

char *
buffer_tail(struct buffer *b)
{
	return b->data + b->end;
}

void
buffer_commit(struct buffer *b, size_t n)
{
	b->end += n;
}

int
buffer_append(struct buffer *b, const void *p, size_t n)
{
	if (buffer_room(b) < n) {
		/* compact fully before giving up */
		if (b->start > 0) {
			memmove(b->data, b->data + b->start, b->end - b->start);
			b->end -= b->start;
			b->start = 0;
		}
		if (b->cap - b->end < n)
			return -1;
	}
	memcpy(b->data + b->end, p, n);
	b->end += n;
	return 0;
}

int
buffer_printf(struct buffer *b, const char *fmt, ...)
{
	char    tmp[512];
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	return buffer_append(b, tmp, (size_t)n);
}

int
buffer_pool_init(struct buffer_pool *p, size_t block_size, int max)
{
	p->count = 0;
	p->max = max;
	p->block_size = block_size;
	if ((p->free = calloc((size_t)max, sizeof(*p->free))) == NULL)
		return -1;
	return 0;
}

void
buffer_pool_free(struct buffer_pool *p)
{
	while (p->count > 0)
		free(p->free[--p->count]);
	free(p->free);
	p->free = NULL;
}

int
buffer_attach(struct buffer *b, struct buffer_pool *p)
{
	b->start = b->end = 0;
	if (p->count > 0)
		b->data = p->free[--p->count];
	else if ((b->data = malloc(p->block_size)) == NULL) {
		b->cap = 0;
		errno = ENOMEM;
		return -1;
	}
	b->cap = p->block_size;
	return 0;
}

void
buffer_detach(struct buffer *b, struct buffer_pool *p)
{
	if (b->data == NULL)
		return;
	if (p->count < p->max)
		p->free[p->count++] = b->data;
	else
		free(b->data);
	b->data = NULL;
	b->start = b->end = b->cap = 0;
}
