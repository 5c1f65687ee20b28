/*
 * statushttp.h — the status listener's HTTP request parser: a pure
 * function over the bytes received so far (no I/O, no allocation), as the
 * fuzz target and the unit tests drive it.  HTTP/1.0 and 1.1; the request
 * head is at most STATUSHTTP_HEAD_MAX bytes; the target is one of the
 * exact names (a query string is ignored), no path is ever resolved.
 */
#ifndef HFTPD_STATUSHTTP_H
#define HFTPD_STATUSHTTP_H

#include <stddef.h>

#define STATUSHTTP_HEAD_MAX 4096

enum statushttp_result {
	STATUSHTTP_MORE,        /* no complete head yet, nothing wrong so far */
	STATUSHTTP_DONE,        /* a complete head: see the request */
	STATUSHTTP_BAD,         /* not an HTTP/1.x request: 400 */
	STATUSHTTP_TOO_BIG      /* no head within STATUSHTTP_HEAD_MAX bytes: 431 */
};

enum statushttp_method { STATUSHTTP_GET, STATUSHTTP_HEAD, STATUSHTTP_OTHER };

enum statushttp_target {
	STATUSHTTP_ROOT,        /* /: the status page */
	STATUSHTTP_METRICS,     /* /metrics: Prometheus text format */
	STATUSHTTP_STATUS,      /* /status: JSON */
	STATUSHTTP_HEALTH,      /* /health: "ok" or "draining" */
	STATUSHTTP_UNKNOWN      /* anything else: 404 */
};

struct statushttp_request {
	enum statushttp_method method;
	enum statushttp_target target;
	int                    minor;   /* HTTP/1.minor */
};

/*
 * Parses the len bytes received so far.  A broken request line is BAD as
 * soon as it is seen (before the rest of the head comes).
 */
enum statushttp_result statushttp_parse(const char *buf, size_t len,
	    struct statushttp_request *req);

#endif
