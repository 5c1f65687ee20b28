/*
 * request.c — the streaming HFTP request-line parser (see request.h).
 *
 * A line may arrive in any number of pieces; each run of ordinary bytes is
 * looked at once (kept, classified and valued in one pass, one NUL after
 * it); what it keeps per element is bounded, so a 5 MiB FILENAME costs no
 * memory.  The command's shape is looked up once per line and kept
 * (p->shape), so the command table need not look the command up again.  Each
 * element's text is carved from the arena when the element starts, as wide
 * as its kind needs; an element the arena cannot hold keeps no text (its
 * length and properties are still counted).
 */
#include <string.h>

#include "request.h"

/* Byte classes, from the one definition of the FILENAME set (protocol.c). */
#define REQUEST_NAME    0x01    /* a FILENAME byte */
#define REQUEST_DIGIT   0x02    /* [0-9] */
#define REQUEST_DELIM   0x04    /* ends a run: SP, CR, LF */
static uint8_t request_class[256];

static void
request_classes(void)
{
	if (request_class[' '] != 0)
		return;
	for (unsigned c = 0; c < 256; c++) {
		request_class[c] = protocol_name_char((unsigned char)c) ? REQUEST_NAME : 0;
		if (c >= '0' && c <= '9')
			request_class[c] |= REQUEST_DIGIT;
	}
	request_class[' '] = request_class['\r'] = request_class['\n'] = REQUEST_DELIM;
}

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

/*
 * The line's command is complete: its shape, looked up once per line (at
 * the first space, or at the line's end), kept for the command table.
 */
static void
request_find_shape(struct request_parser *p)
{
	const struct request_elem *cmd = &p->elem[0];

	if (p->shape_of == NULL || p->shape_known)
		return;
	p->shape_known = true;
	if (!cmd->truncated && cmd->len > 0)
		p->shape = p->shape_of(cmd->text, (size_t)cmd->len);
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
	p->shape_known = false;
	p->arena_used = 0;
	request_elem_start(p, 0, REQUEST_CAP_COMMAND);
}

void
request_init(struct request_parser *p, uint64_t line_max, request_shape_fn shape_of)
{
	memset(p, 0, sizeof(*p));
	p->line_max = line_max;
	p->shape_of = shape_of;
	request_classes();
	request_line_reset(p);
}

/* A digit onto a value: more than 64 bits is an overflow, not a wrap. */
static void
request_digit(uint64_t *value, bool *overflow, unsigned digit)
{
	if (*overflow)
		return;
	if (*value > (UINT64_MAX - digit) / 10)
		*overflow = true;
	else
		*value = *value * 10 + digit;
}

/*
 * The ordinary bytes at data (up to the next SP, CR or LF, at most max) of
 * element e, each looked at once: kept while its text has room (one NUL
 * after them), judged (FILENAME, digits) and valued in the same pass.
 * Returns how many.
 */
static size_t
request_elem_scan(struct request_elem *e, const unsigned char *data, size_t max)
{
	size_t   keep = e->len + 1 < e->cap ? (size_t)(e->cap - 1 - e->len) : 0, i;
	char    *dst = e->text + e->len;
	uint64_t value = e->value;
	bool     overflow = e->overflow;
	/* what every byte so far is; the value only while all are digits */
	uint8_t  all = e->digits_ok ? REQUEST_NAME | REQUEST_DIGIT : REQUEST_NAME, cls;

	for (i = 0; i < max && !((cls = request_class[data[i]]) & REQUEST_DELIM); i++) {
		all &= cls;
		if (i < keep)
			dst[i] = (char)data[i];
		if (all & REQUEST_DIGIT)
			request_digit(&value, &overflow, data[i] - '0');
	}
	if (i > 0 && keep > 0)
		dst[i < keep ? i : keep] = '\0';
	e->truncated |= i > keep;
	e->len += i;
	e->value = value;
	e->overflow = overflow;
	if (!(all & REQUEST_NAME))
		e->name_ok = false;
	if (!(all & REQUEST_DIGIT))
		e->digits_ok = false;
	return i;
}

/* The same for bytes past the elements kept: only counted. */
static size_t
request_skip(const unsigned char *data, size_t max)
{
	size_t i = 0;

	while (i < max && !(request_class[data[i]] & REQUEST_DELIM))
		i++;
	return i;
}

/* A space ends an element: the first one names the command, and so the shape. */
static void
request_next_elem(struct request_parser *p)
{
	if (p->argc == 1)
		request_find_shape(p);
	if (++p->argc <= REQUEST_ELEMS_MAX)
		request_elem_start(p, p->argc - 1, request_arg_cap_at(p, p->argc - 1));
}

/*
 * Ordinary bytes of the line from data[0] (up to the next SP, CR or LF):
 * as many as line_max allows.  Returns how many; *over when the byte
 * after them is an ordinary one past line_max (fatal).
 */
static size_t
request_add_run(struct request_parser *p, const unsigned char *data, size_t len, bool *over)
{
	uint64_t room = p->line_max - p->line_len;
	size_t   max = len < room ? len : (size_t)room, n;

	if (p->argc <= REQUEST_ELEMS_MAX)
		n = request_elem_scan(&p->elem[p->argc - 1], data, max);
	else
		n = request_skip(data, max);
	p->line_len += n;
	if (n > 0)
		p->only_spaces = false;
	*over = n == max && n < len && !(request_class[data[n]] & REQUEST_DELIM);
	if (*over)
		p->status = STATUS_BAD_REQUEST;
	return n;
}

/* A CR not followed by LF: an ordinary byte of the line (line_max checked). */
static void
request_add_cr(struct request_parser *p)
{
	struct request_elem *e;

	p->line_len++;
	p->only_spaces = false;
	if (p->argc > REQUEST_ELEMS_MAX)
		return;
	e = &p->elem[p->argc - 1];
	if (e->len + 1 < e->cap) {
		e->text[e->len] = '\r';
		e->text[e->len + 1] = '\0';
	} else
		e->truncated = true;
	e->len++;
	e->name_ok = false;     /* neither a FILENAME byte nor a digit */
	e->digits_ok = false;
}

/* A space of the line; false when it is past line_max (fatal). */
static bool
request_add_space(struct request_parser *p)
{
	if (++p->line_len > p->line_max) {
		p->status = STATUS_BAD_REQUEST;
		return false;
	}
	request_next_elem(p);
	return true;
}

static enum request_result
request_line_end(struct request_parser *p)
{
	int kept = p->argc < REQUEST_ELEMS_MAX ? p->argc : REQUEST_ELEMS_MAX;

	p->line_done = true;
	if (p->argc == 1)
		request_find_shape(p);
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
	const unsigned char *d = (const unsigned char *)data;
	size_t               i = 0;
	bool                 over;

	if (p->line_done)
		request_line_reset(p);
	while (i < len) {
		if (p->pending_cr) {
			p->pending_cr = false;
			if (d[i] == '\n') {
				*res = request_line_end(p);
				return i + 1;
			}
			/* A CR not followed by LF is an ordinary byte. */
			if (p->line_len == p->line_max) {
				p->status = STATUS_BAD_REQUEST;
				goto fatal;
			}
			request_add_cr(p);
		}
		if (d[i] == '\r') {
			p->pending_cr = true;
			i++;
			continue;
		}
		if (d[i] == '\n') {
			p->status = STATUS_BAD_EOL;
			goto fatal;
		}
		if (d[i] == ' ') {
			if (!request_add_space(p))
				goto fatal;
			i++;
			continue;
		}
		/* a run of ordinary bytes, each looked at once */
		i += request_add_run(p, d + i, len - i, &over);
		if (over)
			goto fatal;     /* at the byte past line_max */
	}
	*res = REQUEST_MORE;
	return len;
fatal:
	p->line_done = true;
	*res = REQUEST_FATAL;
	return i + 1;
}
