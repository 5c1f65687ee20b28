/*
 * request.c — the streaming HFTP request-line parser (see request.h).
 *
 * A byte at a time, so a line may arrive in any number of pieces; what it
 * keeps per element is bounded, so a 5 MiB FILENAME costs no memory.  Each
 * element's text is carved from the arena when the element starts, as wide
 * as its kind needs; an element the arena cannot hold keeps no text (its
 * length and properties are still counted).
 */
#include <string.h>

#include "request.h"

uint32_t
request_arg_cap(enum request_arg kind)
{
	switch (kind) {
	case REQUEST_ARG_NAME:
		return REQUEST_CAP_NAME;
	case REQUEST_ARG_NUMBER:
		return REQUEST_CAP_NUMBER;
	case REQUEST_ARG_KEYWORD:
		return REQUEST_CAP_KEYWORD;
	case REQUEST_ARG_NONE:
		break;
	}
	return REQUEST_CAP_NONE;
}

bool
request_shape_fits(const struct request_shape *shape)
{
	uint32_t used = REQUEST_CAP_COMMAND;

	if (shape->nargs < 0 || shape->nargs > REQUEST_ARGS_MAX)
		return false;
	for (int i = 0; i < shape->nargs; i++)
		used += request_arg_cap(shape->arg[i]);
	return used <= REQUEST_TEXT_ARENA - 1;
}

/* Starts element i with room for its kind, or none when the arena is spent. */
static void
request_elem_start(struct request_parser *p, int i, uint32_t cap)
{
	struct request_elem *e = &p->elem[i];

	/* The arena's last byte is the shared empty text of elements kept without text. */
	if (p->arena_used + cap > REQUEST_TEXT_ARENA - 1) {
		e->text = &p->arena[REQUEST_TEXT_ARENA - 1];
		e->cap = 1;
	} else {
		e->text = &p->arena[p->arena_used];
		e->cap = cap;
		p->arena_used += cap;
	}
	e->text[0] = '\0';
	e->len = 0;
	e->value = 0;
	e->truncated = false;
	e->name_ok = true;
	e->digits_ok = true;
	e->overflow = false;
}

/* The capacity of argument position i (1-based) of this line's command. */
static uint32_t
request_arg_cap_at(const struct request_parser *p, int i)
{
	if (p->shape == NULL || i > p->shape->nargs)
		return REQUEST_CAP_NONE;
	return request_arg_cap(p->shape->arg[i - 1]);
}

static void
request_line_reset(struct request_parser *p)
{
	p->line_len = 0;
	p->argc = 1;
	p->pending_cr = false;
	p->line_done = false;
	p->only_spaces = true;
	p->status = STATUS_OK;
	p->shape = NULL;
	p->arena_used = 0;
	request_elem_start(p, 0, REQUEST_CAP_COMMAND);
}

void
request_init(struct request_parser *p, uint64_t line_max, request_shape_fn shape_of)
{
	memset(p, 0, sizeof(*p));
	p->line_max = line_max;
	p->shape_of = shape_of;
	request_line_reset(p);
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
	if (!protocol_name_char(c))
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

/* A space ends an element: the first one names the command, and so the shape. */
static void
request_next_elem(struct request_parser *p)
{
	const struct request_elem *cmd = &p->elem[0];

	if (p->argc == 1 && p->shape_of != NULL && !cmd->truncated && cmd->len > 0)
		p->shape = p->shape_of(cmd->text, (size_t)cmd->len);
	if (++p->argc <= REQUEST_ELEMS_MAX)
		request_elem_start(p, p->argc - 1, request_arg_cap_at(p, p->argc - 1));
}

/* One byte of the line proper (not part of the CR LF); false when fatal. */
static bool
request_add_byte(struct request_parser *p, unsigned char c)
{
	if (++p->line_len > p->line_max) {
		p->status = STATUS_BAD_REQUEST;
		return false;
	}
	if (c == ' ') {
		request_next_elem(p);
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
		p->status = STATUS_BAD_REQUEST;
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

bool
request_partial(const struct request_parser *p)
{
	return !p->line_done && (p->line_len > 0 || p->pending_cr);
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
			p->status = STATUS_BAD_EOL;
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
