/*
 * access.h — the access log: one line per request, buffered in the worker
 * and written at least once a second, so logging never blocks serving.
 */
#ifndef HFTPD_ACCESS_H
#define HFTPD_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct request_parser;

#define ACCESS_REQUEST_MAX 200

/* path "off" disables it; 0 / -1 (logged). */
int  access_open(const char *path);
bool access_enabled(void);
int  access_reopen(void);
/* Writes what is buffered when forced, when a second passed, or when full. */
void access_flush(bool force);
void access_close(void);
/* The request as text: cut at ACCESS_REQUEST_MAX bytes, non-printables escaped. */
void access_request_text(const struct request_parser *p, char *buf, size_t len);
void access_record(const char *peer, const char *request, int status, uint64_t bytes,
	    const struct timespec *start);

#endif
