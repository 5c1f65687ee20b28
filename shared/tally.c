/*
 * tally.c — aggregated logging of repeatable events (see tally.h).  The
 * heaviest hitters of an interval are found with the space-saving scheme:
 * TALLY_TRACKED counters per kind; an address not tracked takes over the
 * smallest counter, plus one, so a host that causes most events is always
 * among the tracked (its count may be over-estimated by at most the count
 * it displaced).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "tally.h"

struct tally_hitter {
	char     addr[TALLY_ADDR_MAX];
	uint64_t count;
};

struct tally_slot {
	uint64_t            total;          /* since start */
	uint64_t            pending;        /* since the last line */
	uint64_t            last_line_ms;   /* 0 = never logged */
	struct tally_hitter top[TALLY_TRACKED];
};

static struct tally_slot tally_slots[TALLY_KINDS];

static const char *const tally_names[TALLY_KINDS] = {
	[TALLY_CLIENT_TIMEOUT]  = "closed idle (client_timeout)",
	[TALLY_REQUEST_TIMEOUT] = "closed mid-request (request_timeout)",
	[TALLY_SEND_TIMEOUT]    = "closed draining too slowly (send_timeout)",
	[TALLY_PROXY_TIMEOUT]   = "closed without a PROXY header in time",
	[TALLY_PROXY_BAD]       = "closed on a bad PROXY header",
	[TALLY_ROOM]            = "closed idle or crawling to make room",
	[TALLY_DENIED]          = "refused by allow/deny",
	[TALLY_OVER_CAP]        = "refused over max_clients_per_address",
	[TALLY_UNTRUSTED]       = "refused: PROXY from outside proxy_trusted",
};

const char *
tally_kind_name(enum tally_kind kind)
{
	return (unsigned)kind < TALLY_KINDS ? tally_names[kind] : "?";
}

void
tally_addr_of(const char *peer, char *buf, size_t len)
{
	const char *start = peer, *end;
	size_t      n;

	if (len == 0)
		return;
	if (peer == NULL || *peer == '\0') {
		snprintf(buf, len, "?");
		return;
	}
	if (*peer == '[' && (end = strchr(peer, ']')) != NULL)
		start = peer + 1;                       /* "[v6]:port" */
	else if ((end = strrchr(peer, ':')) == NULL || strchr(peer, ':') != end)
		end = peer + strlen(peer);              /* bare v4 or bare v6 */
	n = (size_t)(end - start);
	if (n >= len)
		n = len - 1;
	memcpy(buf, start, n);
	buf[n] = '\0';
}

static void
tally_count_addr(struct tally_slot *s, const char *addr)
{
	struct tally_hitter *min = &s->top[0];
	int                  i;

	for (i = 0; i < TALLY_TRACKED; i++) {
		if (s->top[i].count != 0 && strcmp(s->top[i].addr, addr) == 0) {
			s->top[i].count++;
			return;
		}
		if (s->top[i].count < min->count)
			min = &s->top[i];
	}
	snprintf(min->addr, sizeof(min->addr), "%s", addr);
	min->count++;
}

void
tally_note(enum tally_kind kind, const char *peer)
{
	struct tally_slot *s;
	char               addr[TALLY_ADDR_MAX];

	if ((unsigned)kind >= TALLY_KINDS)
		return;
	s = &tally_slots[kind];
	s->total++;
	s->pending++;
	tally_addr_of(peer, addr, sizeof(addr));
	tally_count_addr(s, addr);
}

/* The TALLY_TOP largest counters, "a x12, b x3", into buf. */
static void
tally_top_text(struct tally_slot *s, char *buf, size_t len)
{
	size_t used = 0;
	int    n, i, best;

	buf[0] = '\0';
	for (n = 0; n < TALLY_TOP; n++) {
		best = -1;
		for (i = 0; i < TALLY_TRACKED; i++)
			if (s->top[i].count != 0 &&
			    (best == -1 || s->top[i].count > s->top[best].count))
				best = i;
		if (best == -1)
			break;
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s x%" PRIu64,
			    n ? ", " : "", s->top[best].addr, s->top[best].count);
		s->top[best].count = 0;
	}
}

void
tally_flush(uint64_t now_ms, int force)
{
	char top[TALLY_TOP * (TALLY_ADDR_MAX + 24)];
	int  k;

	for (k = 0; k < TALLY_KINDS; k++) {
		struct tally_slot *s = &tally_slots[k];

		if (s->pending == 0)
			continue;
		if (!force && s->last_line_ms != 0 &&
		    now_ms - s->last_line_ms < TALLY_INTERVAL_MS)
			continue;
		tally_top_text(s, top, sizeof(top));
		log_info("%" PRIu64 " %s (top: %s); %" PRIu64 " since start",
		    s->pending, tally_names[k], top, s->total);
		memset(s->top, 0, sizeof(s->top));
		s->pending = 0;
		s->last_line_ms = now_ms ? now_ms : 1;
	}
}

uint64_t
tally_total(enum tally_kind kind)
{
	return (unsigned)kind < TALLY_KINDS ? tally_slots[kind].total : 0;
}

void
tally_reset(void)
{
	memset(tally_slots, 0, sizeof(tally_slots));
}
