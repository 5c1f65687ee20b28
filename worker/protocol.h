/*
 * protocol.h — HFTP's vocabulary as the worker speaks it: the status codes
 * with their texts and ready-made lines, decimal numbers, and the FILENAME
 * character set.  One definition each,
 * used by the parser, the command handlers and the served directory.
 */
#ifndef HFTPD_PROTOCOL_H
#define HFTPD_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum status {
	STATUS_OK                = 0,
	STATUS_BAD_EOL           = 100,    /* fatal: the connection closes */
	STATUS_BAD_REQUEST       = 101,    /* fatal */
	STATUS_INTERNAL_ERROR    = 199,    /* fatal */
	STATUS_NO_SUCH_COMMAND   = 200,
	STATUS_INVALID_ARGUMENTS = 201,
	STATUS_FILE_NOT_FOUND    = 202,
	STATUS_BAD_OFFSET        = 203
};

/* "OK", "BAD EOL", ...: the text that follows the code on a status line. */
const char *protocol_status_text(enum status status);
/* "0 OK\r\n", ...: the whole status line, *len its bytes (no NUL). */
const char *protocol_status_line(enum status status, size_t *len);
/* 1xx statuses end the connection. */
bool        protocol_status_fatal(enum status status);
/* Digits of UINT64_MAX. */
#define PROTOCOL_DECIMAL_MAX 20
/* v in decimal at dst (at most PROTOCOL_DECIMAL_MAX bytes, no NUL): its length. */
size_t      protocol_decimal(char *dst, uint64_t v);
/* [A-Za-z0-9._-]: the bytes a FILENAME may hold. */
bool        protocol_name_char(unsigned char c);
/* A non-empty string of FILENAME bytes. */
bool        protocol_name_valid(const char *name);

#endif
