/*
 * request.h — the streaming HFTP request-line parser.  Bytes go in, in any
 * pieces; out come complete request lines split into elements, or a fatal
 * status (100 BAD EOL, 101 BAD REQUEST).  Memory is constant: each element
 * keeps at most a short prefix of its text plus what the commands need to
 * judge it (its length, whether it is a valid FILENAME, its numeric value).
 *
 * The parser does no I/O and knows no command: once a line's first element
 * (the command) is complete, it asks the shape function it was given what
 * kind each argument is, and keeps as much text of each as that kind needs
 * (a FILENAME all of NAME_MAX, a number its 20 digits, a keyword its word).
 */
#ifndef HFTPD_REQUEST_H
#define HFTPD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define REQUEST_ARGS_MAX    4       /* arguments kept after the command */
#define REQUEST_ELEMS_MAX   (1 + REQUEST_ARGS_MAX)

/* What an argument is, and so how much of its text is kept. */
enum request_arg {
	REQUEST_ARG_NONE,       /* not a known position: a few bytes, for the log */
	REQUEST_ARG_NAME,       /* a FILENAME */
	REQUEST_ARG_NUMBER,     /* decimal digits */
	REQUEST_ARG_KEYWORD     /* a short fixed word, such as "raw" */
};

/* Text kept per element kind, NUL included. */
#define REQUEST_CAP_COMMAND 32
#define REQUEST_CAP_NAME    256     /* NAME_MAX + 1 */
#define REQUEST_CAP_NUMBER  24      /* UINT64_MAX has 20 digits */
#define REQUEST_CAP_KEYWORD 16
#define REQUEST_CAP_NONE    8
/*
 * Room for the command plus the widest shape (a name, two numbers, a
 * keyword), and one byte: the empty text of elements kept without text.
 */
#define REQUEST_TEXT_ARENA  (REQUEST_CAP_COMMAND + REQUEST_CAP_NAME + \
	2 * REQUEST_CAP_NUMBER + REQUEST_CAP_KEYWORD + 1)

/* The arguments a command takes, as far as the parser needs to know. */
struct request_shape {
	int              nargs;     /* positions described in arg[] */
	enum request_arg arg[REQUEST_ARGS_MAX];
};

/* The shape of the command whose complete text is cmd (len bytes); NULL: unknown. */
typedef const struct request_shape *(*request_shape_fn)(const char *cmd, size_t len);

struct request_elem {
	char    *text;          /* NUL-terminated prefix, in the parser's arena */
	uint64_t len;           /* full length of the element */
	uint64_t value;         /* numeric value when digits */
	uint32_t cap;           /* bytes text can hold, NUL included */
	bool     truncated;     /* len > what text holds */
	bool     name_ok;       /* non-empty, only FILENAME bytes */
	bool     digits_ok;     /* non-empty, only [0-9] */
	bool     overflow;      /* digits, but more than 64 bits */
};

enum request_result {
	REQUEST_MORE,           /* every byte consumed, no complete line yet */
	REQUEST_LINE,           /* a complete line: see p->argc, p->elem */
	REQUEST_FATAL           /* p->status is 100 or 101 */
};

struct request_parser {
	uint64_t                    line_max;   /* bytes before CR LF */
	uint64_t                    line_len;
	request_shape_fn            shape_of;
	const struct request_shape *shape;      /* of this line's command, or NULL */
	uint32_t                    arena_used;
	int                         argc;       /* elements seen, may exceed ELEMS_MAX */
	enum status                 status;     /* with REQUEST_FATAL */
	bool                        shape_known; /* shape_of was asked (NULL: unknown) */
	bool                        pending_cr;
	bool                        line_done;  /* reset before the next byte */
	bool                        only_spaces;
	struct request_elem         elem[REQUEST_ELEMS_MAX];
	char                        arena[REQUEST_TEXT_ARENA];
};

/* shape_of may be NULL: every argument is then kept as REQUEST_ARG_NONE. */
void   request_init(struct request_parser *p, uint64_t line_max, request_shape_fn shape_of);

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

/* Whether a line has begun and not ended; its bytes so far in p->line_len. */
bool   request_partial(const struct request_parser *p);

/* Text bytes an element of this kind keeps, NUL included. */
uint32_t request_arg_cap(enum request_arg kind);
/* Whether a command of this shape fits the arena with its command text. */
bool   request_shape_fits(const struct request_shape *shape);

#endif
