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

#include "protocol.h"

struct request_parser;

#define ACCESS_REQUEST_MAX  200     /* request text kept, escaped */
#define ACCESS_PEER_MAX     80      /* "[v6addr]:port" */

/* The record of one response, from its request to its last byte. */
struct access_pending {
	uint64_t start_ns;      /* monotonic, at the end of the request line */
	uint64_t bytes;         /* response bytes produced so far */
	char     peer[ACCESS_PEER_MAX];
	char     request[ACCESS_REQUEST_MAX + 1];
};

/*
 * Writes to fd, the access log the master opened (path names it in
 * warnings); fd -1: off.  The worker never opens the file itself.
 */
void access_open(int fd, const char *path);
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
 * Begins the record of the response to the request p holds, from the
 * client whose address text is peer (the connection's, or the one a PROXY
 * header carried): NULL when the log is off (or memory is short: the line
 * is then not written).  The other calls accept NULL and do nothing.
 */
struct access_pending *access_begin(const char *peer, const struct request_parser *p);
void access_count(struct access_pending *a, uint64_t bytes);
/* Writes the line with the response's status, and frees the record. */
void access_end(struct access_pending *a, enum status status);

#endif
