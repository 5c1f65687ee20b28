/*
 * stats.h — the worker's counters for the master's /metrics and /status:
 * requests by command and status, bytes written by framing, connections
 * received, closes by reason (the tally's totals), lost access-log lines.
 * Counting is arithmetic only; they reach the master in one CHANNEL_STATS
 * message at most once a second when they changed (the worker's sweep),
 * and at drain and exit.
 */
#ifndef HFTPD_STATS_H
#define HFTPD_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "channel.h"
#include "protocol.h"
#include "request.h"
#include "stream.h"

/* Framing rows of struct channel_stats' sent[]. */
enum stats_framing { STATS_BASE64, STATS_RAW, STATS_OTHER };

/*
 * Which framing the bytes queued for one connection belong to: the spans
 * of its output (positions counted from its first byte) that are body
 * bytes; a send counts the bytes it wrote in each span under the span's
 * framing, the rest (status lines, small bodies, listings) as other.
 * STATS_SPANS spans at most: with more bodies queued at once (pipelined
 * slices of both framings), a new body extends the last span, so such a
 * mix may be counted under one framing; the total stays exact.  Kept small:
 * it lives in every connection (the idle connection's memory budget).
 */
#define STATS_SPANS 2
struct stats_out {
	struct {
		uint64_t start, end;
	}        span[STATS_SPANS];
	uint8_t  framing[STATS_SPANS];
	uint8_t  n;
};

/* A complete request line (or a fatal parse) answered with status. */
void stats_request(const struct request_parser *p, enum status status);
/* Bytes [start, end) of a connection's output are body bytes of kind. */
void stats_out_body(struct stats_out *o, enum stream_kind kind, uint64_t start, uint64_t end);
/* A send wrote bytes [from, from + n) of a connection's output. */
void stats_out_sent(struct stats_out *o, uint64_t from, uint64_t n);
/* A connection arrived from the master. */
void stats_received(void);
/*
 * Sends CHANNEL_STATS on chan when something changed since the last
 * message (or force: at drain and exit, whatever changed).
 */
void stats_report(int chan, unsigned gen, bool force);
/* What the next message would say (tests). */
void stats_snapshot(struct channel_stats *out);
/* Forgets everything (a forked worker starts from zero; tests). */
void stats_reset(void);

#endif
