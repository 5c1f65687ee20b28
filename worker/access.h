/*
 * access.h — the access log: one line per response, buffered in the worker
 * and written at least once a second, so logging never blocks serving.
 * Every access-log call of the worker goes through here: a response's
 * record is begun with its request, counts its bytes as they are produced,
 * and is written when the response ends.
 */
#ifndef HFTPD_ACCESS_H
#define HFTPD_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "protocol.h"

struct request_parser;

#define ACCESS_REQUEST_MAX  200     /* request text kept, escaped */
#define ACCESS_PEER_MAX     80      /* "[v6addr]:port" */

/*
 * The record of one response, from its request to its last byte; the
 * client holds it (no memory per response).  The peer text and the
 * parser are the connection's: they stay as they are until the response
 * ends (the parser reads no next line while a response is under way), so
 * the line is formatted from them once, when it ends.
 */
struct access_pending {
	bool                         on;        /* begun and not yet ended */
	uint64_t                     start_ns;  /* monotonic: the turn that read the request */
	uint64_t                     bytes;     /* response bytes produced so far */
	const char                  *peer;
	const struct request_parser *p;
};

/*
 * Writes to fd, the access log the master opened (path names it in
 * warnings), lines of the given format; fd -1: off.  The worker never
 * opens the file itself.
 */
void access_open(int fd, const char *path, enum access_log_format format);
/* fd replaces the file (after a rotation); the buffer is flushed first. */
void access_reopen(int fd);
bool access_enabled(void);
/* Writes what is buffered when forced, when a second passed, or when full. */
void access_flush(bool force);
void access_close(void);
/* Lines dropped in the current failing episode (0 when it writes). */
uint64_t access_lost_lines(void);
/* Lines dropped since the worker started (for its counters). */
uint64_t access_lost_total(void);

/*
 * Begins the record a of the response to the request p holds, from the
 * client whose address text is peer (the connection's, or the one a PROXY
 * header carried), started at start_ns (the turn's clock: no clock read).
 * When the log is off a stays off and the other calls do nothing with it.
 */
void access_begin(struct access_pending *a, const char *peer, const struct request_parser *p,
    uint64_t start_ns);
void access_count(struct access_pending *a, uint64_t bytes);
/* Writes the line with the response's status (one clock read); a is then off. */
void access_end(struct access_pending *a, enum status status);

#endif
