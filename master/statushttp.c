/*
 * statushttp.c — the status listener's request parser (statushttp.h):
 * "METHOD SP TARGET SP HTTP/1.x CRLF", header lines "Name: value" (not
 * interpreted), a blank line.  Bare LF is accepted as a line end.  Any
 * control byte other than the line ends, and any byte past 0x7e, make
 * the request BAD: a status client sends ASCII.
 */
#include <string.h>

#include "statushttp.h"

/* A byte a request head may hold, CR and LF aside. */
static int
statushttp_byte_ok(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t';
}

/* The method token: upper-case letters. */
static enum statushttp_result
statushttp_method(const char *s, size_t n, enum statushttp_method *out)
{
	if (n == 0 || n > 16)
		return STATUSHTTP_BAD;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 'A' || s[i] > 'Z')
			return STATUSHTTP_BAD;
	}
	if (n == 3 && memcmp(s, "GET", 3) == 0)
		*out = STATUSHTTP_GET;
	else if (n == 4 && memcmp(s, "HEAD", 4) == 0)
		*out = STATUSHTTP_HEAD;
	else
		*out = STATUSHTTP_OTHER;
	return STATUSHTTP_DONE;
}

/* The target: origin form; only the exact names mean anything. */
static enum statushttp_result
statushttp_target(const char *s, size_t n, enum statushttp_target *out)
{
	static const struct { const char *name; enum statushttp_target t; } names[] = {
		{ "/", STATUSHTTP_ROOT }, { "/metrics", STATUSHTTP_METRICS },
		{ "/status", STATUSHTTP_STATUS }, { "/health", STATUSHTTP_HEALTH },
	};
	const char *q = memchr(s, '?', n);

	if (n == 0 || s[0] != '/')
		return STATUSHTTP_BAD;
	if (q != NULL)
		n = (size_t)(q - s);
	*out = STATUSHTTP_UNKNOWN;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0)
			*out = names[i].t;
	}
	return STATUSHTTP_DONE;
}

/* The request line, without its line end. */
static enum statushttp_result
statushttp_request_line(const char *s, size_t n, struct statushttp_request *req)
{
	const char *sp1 = memchr(s, ' ', n), *sp2;

	if (sp1 == NULL || (sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - s))) == NULL)
		return STATUSHTTP_BAD;
	if (statushttp_method(s, (size_t)(sp1 - s), &req->method) != STATUSHTTP_DONE ||
	    statushttp_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), &req->target) != STATUSHTTP_DONE)
		return STATUSHTTP_BAD;
	n -= (size_t)(sp2 + 1 - s);
	s = sp2 + 1;
	if (n != 8 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1'))
		return STATUSHTTP_BAD;
	req->minor = s[7] - '0';
	return STATUSHTTP_DONE;
}

/* A header line: a name of token bytes, a colon; obsolete folding is BAD. */
static int
statushttp_header_ok(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);

	if (colon == NULL || colon == s)
		return 0;
	for (const char *p = s; p < colon; p++) {
		if (*p == ' ' || *p == '\t')
			return 0;
	}
	return 1;
}

/* Length of the line at s (without its CR LF or LF), or -1 when it has no end yet. */
static long
statushttp_line(const char *s, size_t n, size_t *eol_len)
{
	const char *lf = memchr(s, '\n', n);

	if (lf == NULL)
		return -1;
	*eol_len = lf > s && lf[-1] == '\r' ? 2 : 1;
	return (long)(lf - s) + 1 - (long)*eol_len;
}

enum statushttp_result
statushttp_parse(const char *buf, size_t len, struct statushttp_request *req)
{
	size_t off = 0, eol;
	long   n;
	int    first = 1;

	memset(req, 0, sizeof(*req));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (!statushttp_byte_ok(c) && c != '\r' && c != '\n')
			return STATUSHTTP_BAD;
		if (c == '\r' && (i + 1 < len && buf[i + 1] != '\n'))
			return STATUSHTTP_BAD;
	}
	while ((n = statushttp_line(buf + off, len - off, &eol)) != -1) {
		if (first && statushttp_request_line(buf + off, (size_t)n, req) != STATUSHTTP_DONE)
			return STATUSHTTP_BAD;
		if (!first && n == 0)
			return off + eol <= STATUSHTTP_HEAD_MAX ? STATUSHTTP_DONE : STATUSHTTP_TOO_BIG;
		if (!first && !statushttp_header_ok(buf + off, (size_t)n))
			return STATUSHTTP_BAD;
		first = 0;
		off += (size_t)n + eol;
	}
	return len >= STATUSHTTP_HEAD_MAX ? STATUSHTTP_TOO_BIG : STATUSHTTP_MORE;
}
