/*
 * statushttp.c — the status listener's request parser (statushttp.h):
 * "METHOD SP TARGET SP HTTP/1.x CRLF", header lines "Name: value" (not
 * interpreted), a blank line.  Bare LF is accepted as a line end.  Any
 * control byte other than the line ends (a CR only right before an LF),
 * and any byte past 0x7e, in the head make the request BAD: a status
 * client sends ASCII.  What follows the head is not looked at.
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

/* The bytes of a line (its end excluded) are all ones a head may hold. */
static int
statushttp_bytes_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!statushttp_byte_ok((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

enum statushttp_result
statushttp_parse(const char *buf, size_t len, struct statushttp_request *req)
{
	size_t off = 0, eol, n = len < STATUSHTTP_HEAD_MAX ? len : STATUSHTTP_HEAD_MAX;
	long   line;

	/* Only the first STATUSHTTP_HEAD_MAX bytes count: an answer other
	 * than MORE never changes as more bytes come. */
	memset(req, 0, sizeof(*req));
	while ((line = statushttp_line(buf + off, n - off, &eol)) != -1) {
		if (!statushttp_bytes_ok(buf + off, (size_t)line))
			return STATUSHTTP_BAD;
		if (off == 0 && statushttp_request_line(buf, (size_t)line, req) != STATUSHTTP_DONE)
			return STATUSHTTP_BAD;
		if (off != 0 && line == 0)
			return STATUSHTTP_DONE;
		if (off != 0 && !statushttp_header_ok(buf + off, (size_t)line))
			return STATUSHTTP_BAD;
		off += (size_t)line + eol;
	}
	/* the line under way: a byte it may not hold is wrong already (a CR may end it) */
	if (n > off && !statushttp_bytes_ok(buf + off, n - off - (buf[n - 1] == '\r')))
		return STATUSHTTP_BAD;
	return len >= STATUSHTTP_HEAD_MAX ? STATUSHTTP_TOO_BIG : STATUSHTTP_MORE;
}
