/*
 * request.c — the streaming HFTP request-line parser (see request.h).
 *
 * A byte at a time, so a line may arrive in any number of pieces; what it
 * keeps per element is bounded, so a 5 MiB FILENAME costs no memory.
 */
#include <string.h>

#include "request.h"

/* How much text each element keeps: command, FILENAME, OFFSET, SIZE, "raw". */
static const unsigned request_text_caps[REQUEST_ELEMS_MAX] = { 32, 256, 24, 24, 8 };

static void
request_elem_reset(struct request_elem *e)
{
	e->text[0] = '\0';
	e->len = 0;
	e->value = 0;
	e->truncated = false;
	e->name_ok = true;
	e->digits_ok = true;
	e->overflow = false;
}

static void
request_line_reset(struct request_parser *p)
{
	p->line_len = 0;
	p->argc = 1;
	p->pending_cr = false;
	p->line_done = false;
	p->only_spaces = true;
	p->status = 0;
	request_elem_reset(&p->elem[0]);
}

void
request_init(struct request_parser *p, uint64_t line_max)
{
	char *text = p->arena;

	memset(p, 0, sizeof(*p));
	p->line_max = line_max;
	for (int i = 0; i < REQUEST_ELEMS_MAX; i++) {
		p->elem[i].text = text;
		p->elem[i].cap = request_text_caps[i];
		text += request_text_caps[i];
	}
	request_line_reset(p);
}

static bool
request_is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static void
request_elem_add(struct request_elem *e, unsigned char c)
{
	if (e->len + 1 < e->cap) {
		e->text[e->len] = (char)c;
		e->text[e->len + 1] = '\0';
	} else
		e->truncated = true;
	e->len++;
	if (!request_is_name_char(c))
		e->name_ok = false;
	if (c >= '0' && c <= '9') {
		unsigned digit = c - '0';
		if (!e->overflow) {
			if (e->value > (UINT64_MAX - digit) / 10)
				e->overflow = true;
			else
				e->value = e->value * 10 + digit;
		}
	} else
		e->digits_ok = false;
}

/* One byte of the line proper (not part of the CR LF); false when fatal. */
static bool
request_add_byte(struct request_parser *p, unsigned char c)
{
	if (++p->line_len > p->line_max) {
		p->status = 101;
		return false;
	}
	if (c == ' ') {
		if (++p->argc <= REQUEST_ELEMS_MAX)
			request_elem_reset(&p->elem[p->argc - 1]);
		return true;
	}
	p->only_spaces = false;
	if (p->argc <= REQUEST_ELEMS_MAX)
		request_elem_add(&p->elem[p->argc - 1], c);
	return true;
}

static enum request_result
request_line_end(struct request_parser *p)
{
	int kept = p->argc < REQUEST_ELEMS_MAX ? p->argc : REQUEST_ELEMS_MAX;

	p->line_done = true;
	if (p->only_spaces) {
		p->status = 101;
		return REQUEST_FATAL;
	}
	for (int i = 0; i < kept; i++) {
		if (p->elem[i].len == 0) {
			p->elem[i].name_ok = false;
			p->elem[i].digits_ok = false;
		}
	}
	return REQUEST_LINE;
}

size_t
request_feed(struct request_parser *p, const char *data, size_t len,
    enum request_result *res)
{
	size_t i;

	if (p->line_done)
		request_line_reset(p);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (p->pending_cr) {
			p->pending_cr = false;
			if (c == '\n') {
				*res = request_line_end(p);
				return i + 1;
			}
			/* A CR not followed by LF is an ordinary byte. */
			if (!request_add_byte(p, '\r'))
				goto fatal;
		}
		if (c == '\r') {
			p->pending_cr = true;
			continue;
		}
		if (c == '\n') {
			p->status = 100;
			goto fatal;
		}
		if (!request_add_byte(p, c))
			goto fatal;
	}
	*res = REQUEST_MORE;
	return len;
fatal:
	p->line_done = true;
	*res = REQUEST_FATAL;
	return i + 1;
}
