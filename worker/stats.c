/*
 * stats.c — the worker's counters (stats.h): one static struct
 * channel_stats, changed here only, and sent to the master as it is.
 * Closes by reason and lost log lines are read from their owners (the
 * tally, the access log) when a message is made.
 */
#include <errno.h>
#include <string.h>

#include "access.h"
#include "channel.h"
#include "log.h"
#include "stats.h"
#include "tally.h"

_Static_assert(TALLY_KINDS == CHANNEL_STATS_CLOSES, "a tally kind without a stats row");

static struct channel_stats stats_now;
static struct channel_stats stats_told;    /* the last message sent */

void
stats_request(const struct request_parser *p, enum status status)
{
	unsigned cmd = CHANNEL_STATS_COMMANDS - 1;

	if (p->argc >= 1 && p->elem[0].text != NULL && !p->elem[0].truncated)
		cmd = channel_stats_command_row(p->elem[0].text, strlen(p->elem[0].text));
	stats_now.requests[cmd][channel_stats_status_row((int)status)]++;
}

static enum stats_framing
stats_framing_of(enum stream_kind kind)
{
	switch (kind) {
	case STREAM_BASE64:
	case STREAM_FRAGMENTS:
		return STATS_BASE64;
	case STREAM_RAW:
		return STATS_RAW;
	case STREAM_LISTING:
		break;
	}
	return STATS_OTHER;
}

void
stats_out_body(struct stats_out *o, enum stream_kind kind, uint64_t start, uint64_t end)
{
	enum stats_framing f = stats_framing_of(kind);

	if (f == STATS_OTHER || end <= start)
		return;
	if (o->n > 0 && ((o->framing[o->n - 1] == f && o->span[o->n - 1].end == start) ||
	    o->n == STATS_SPANS)) {
		/* the same body going on, or no room: the last span grows */
		o->span[o->n - 1].end = end;
		return;
	}
	o->span[o->n].start = start;
	o->span[o->n].end = end;
	o->framing[o->n] = (uint8_t)f;
	o->n++;
}

void
stats_out_sent(struct stats_out *o, uint64_t from, uint64_t n)
{
	uint64_t to = from + n, body = 0;
	unsigned done = 0;

	for (unsigned i = 0; i < o->n; i++) {
		uint64_t s = o->span[i].start > from ? o->span[i].start : from;
		uint64_t e = o->span[i].end < to ? o->span[i].end : to;

		if (e > s) {
			stats_now.sent[o->framing[i]] += e - s;
			body += e - s;
		}
		if (o->span[i].end <= to)
			done = i + 1;   /* spans end in order: all sent up to here */
	}
	if (done > 0) {
		memmove(o->span, o->span + done, (o->n - done) * sizeof(o->span[0]));
		memmove(o->framing, o->framing + done, (o->n - done) * sizeof(o->framing[0]));
		o->n = (uint8_t)(o->n - done);
	}
	stats_now.sent[STATS_OTHER] += n - body;
}

void
stats_received(void)
{
	stats_now.received++;
}

void
stats_snapshot(struct channel_stats *out)
{
	for (unsigned k = 0; k < CHANNEL_STATS_CLOSES; k++)
		stats_now.closed[k] = tally_total((enum tally_kind)k);
	stats_now.log_lost = access_lost_total();
	*out = stats_now;
}

void
stats_report(int chan, unsigned gen, bool force)
{
	struct channel_stats msg;

	stats_snapshot(&msg);
	if (!force && memcmp(&msg, &stats_told, sizeof(msg)) == 0)
		return;
	if (channel_send(chan, CHANNEL_STATS, gen, &msg, sizeof(msg), -1) == 0) {
		stats_told = msg;
		return;
	}
	/* the channel is full: the totals go with the next report; the master
	 * gone (the worker exits on its own then): nobody to tell */
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != EPIPE &&
	    errno != ECONNRESET)
		log_warn("channel: send STATS");
}

void
stats_reset(void)
{
	memset(&stats_now, 0, sizeof(stats_now));
	memset(&stats_told, 0, sizeof(stats_told));
}
