/*
 * request.h — the streaming HFTP request-line parser.  Bytes go in, in any
 * pieces; out come complete request lines split into elements, or a fatal
 * status (100 BAD EOL, 101 BAD REQUEST).  Memory is constant: each element
 * keeps at most a short prefix of its text plus what the commands need to
 * judge it (its length, whether it is a valid FILENAME, its numeric value).
 * The parser does no I/O and knows no command.
 */
#ifndef HFTPD_REQUEST_H
#define HFTPD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQUEST_ELEMS_MAX   5       /* command + up to 4 arguments kept */
#define REQUEST_NAME_MAX    255     /* longest FILENAME kept (NAME_MAX) */

/* Text kept per element: command 32, FILENAME 256, numbers 24, "raw" 8. */
#define REQUEST_TEXT_ARENA  (32 + 256 + 24 + 24 + 8)

struct request_elem {
	char    *text;          /* NUL-terminated prefix, in the parser's arena */
	uint32_t cap;           /* bytes text can hold, NUL included */
	uint64_t len;           /* full length of the element */
	uint64_t value;         /* numeric value when digits */
	bool     truncated;     /* len > what text holds */
	bool     name_ok;       /* non-empty, only [A-Za-z0-9._-] */
	bool     digits_ok;     /* non-empty, only [0-9] */
	bool     overflow;      /* digits, but more than 64 bits */
};

enum request_result {
	REQUEST_MORE,           /* every byte consumed, no complete line yet */
	REQUEST_LINE,           /* a complete line: see p->argc, p->elem */
	REQUEST_FATAL           /* p->status is 100 or 101 */
};

struct request_parser {
	uint64_t            line_max;   /* bytes before CR LF */
	uint64_t            line_len;
	int                 argc;       /* elements seen, may exceed ELEMS_MAX */
	bool                pending_cr;
	bool                line_done;  /* reset before the next byte */
	bool                only_spaces;
	int                 status;     /* with REQUEST_FATAL */
	struct request_elem elem[REQUEST_ELEMS_MAX];
	char                arena[REQUEST_TEXT_ARENA];
};

void   request_init(struct request_parser *p, uint64_t line_max);

/*
 * Consumes bytes from data until a line completes, a fatal error occurs or
 * the data ends; returns how many bytes were consumed (the CR LF of a
 * complete line included) and the outcome in *res.  After REQUEST_LINE the
 * caller reads p->argc / p->elem, then calls request_feed again (the parser
 * resets itself at the start of the next line).  After REQUEST_FATAL the
 * connection is to be closed.
 */
size_t request_feed(struct request_parser *p, const char *data, size_t len,
	    enum request_result *res);

/* Elements of the line, capped at REQUEST_ELEMS_MAX for access. */
static inline const struct request_elem *
request_arg(const struct request_parser *p, int i)
{
	return (i < REQUEST_ELEMS_MAX) ? &p->elem[i] : NULL;
}

#endif
