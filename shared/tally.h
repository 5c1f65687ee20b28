/*
 * tally.h — events that an attacker can repeat at will (deadline expiries,
 * room-making closes, refusals at accept) are counted, never logged one by
 * one: each kind gets at most one info line per TALLY_INTERVAL_MS, with
 * its count and the addresses seen most in that interval.  The log grows
 * with time, not with the attack.  The totals are kept for reports.
 */
#ifndef HFTPD_TALLY_H
#define HFTPD_TALLY_H

#include <stddef.h>
#include <stdint.h>

enum tally_kind {
	TALLY_CLIENT_TIMEOUT,   /* idle past client_timeout */
	TALLY_REQUEST_TIMEOUT,  /* request line not complete in time */
	TALLY_SEND_TIMEOUT,     /* owed bytes, drained too slowly */
	TALLY_PROXY_TIMEOUT,    /* PROXY header not complete in time */
	TALLY_PROXY_BAD,        /* PROXY header malformed */
	TALLY_ROOM,             /* closed to make room (idle, or a line crawling in) */
	TALLY_DENIED,           /* refused by allow / deny */
	TALLY_OVER_CAP,         /* refused: max_clients_per_address */
	TALLY_UNTRUSTED,        /* PROXY header from outside proxy_trusted */
	TALLY_KINDS
};

#define TALLY_INTERVAL_MS   10000
/* Addresses reported per line; candidates tracked per kind and interval. */
#define TALLY_TOP           3
#define TALLY_TRACKED       16
/* Room for an address without its port: an IPv6 text. */
#define TALLY_ADDR_MAX      48

/*
 * Counts one event of kind from peer ("1.2.3.4:5678", "[::1]:80" or a bare
 * address; the port is dropped so that one host counts as one).  NULL or
 * "" counts under "?".
 */
void     tally_note(enum tally_kind kind, const char *peer);
/*
 * Logs one line per kind with events since its last line, if
 * TALLY_INTERVAL_MS has passed since then (now_ms monotonic); force logs
 * every pending kind at once (at exit).  Cheap when nothing is pending:
 * call it from a periodic sweep.
 */
void     tally_flush(uint64_t now_ms, int force);
/* Events of kind since the process started. */
uint64_t tally_total(enum tally_kind kind);
const char *tally_kind_name(enum tally_kind kind);
/* Forgets everything (a forked worker starts from zero; tests). */
void     tally_reset(void);
/* The address part of peer, into buf (for tests and callers). */
void     tally_addr_of(const char *peer, char *buf, size_t len);

#endif
