/*
 * test_stats.c — unit tests for worker/stats.c: requests counted by
 * command and status (an unknown or unparsable command as "other"),
 * written bytes split by the framing of the body they belong to however
 * the sends cut them (status lines and listings as "other"), and a STATS
 * message sent only when something changed (or forced).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "commands.h"
#include "request.h"
#include "stats.h"

static int reset(void **state)
{
	(void)state;
	stats_reset();
	return 0;
}

/* Feeds line to a fresh parser and counts its answer as the client does. */
static void
count_line(const char *line, enum status status)
{
	struct request_parser p;
	enum request_result   res;

	request_init(&p, 1024, commands_shape);
	request_feed(&p, line, strlen(line), &res);
	assert_int_not_equal(res, REQUEST_MORE);
	stats_request(&p, res == REQUEST_FATAL ? p.status : status);
}

static void test_requests_by_command_and_status(void **state)
{
	struct channel_stats s;

	(void)state;
	for (int i = 0; i < 3; i++)
		count_line("get_metadata a.txt\r\n", STATUS_OK);
	count_line("get_metadata missing\r\n", STATUS_FILE_NOT_FOUND);
	count_line("get_slice a.txt 0 10\r\n", STATUS_OK);
	count_line("bogus\r\n", STATUS_NO_SUCH_COMMAND);
	count_line("get_metadata a\nb\r\n", STATUS_OK);  /* BAD EOL: fatal */
	stats_snapshot(&s);
	assert_int_equal(s.requests[channel_stats_command_row("get_metadata", 12)]
	    [channel_stats_status_row(0)], 3);
	assert_int_equal(s.requests[1][channel_stats_status_row(202)], 1);
	assert_int_equal(s.requests[2][0], 1);
	assert_int_equal(s.requests[CHANNEL_STATS_COMMANDS - 1][channel_stats_status_row(200)], 1);
	assert_int_equal(s.requests[1][channel_stats_status_row(100)], 1);
	assert_string_equal(channel_stats_command_name(1), "get_metadata");
	assert_int_equal(channel_stats_status_code(channel_stats_status_row(203)), 203);
}

static void test_sent_bytes_by_framing(void **state)
{
	struct stats_out     o;
	struct channel_stats s;

	(void)state;
	memset(&o, 0, sizeof(o));
	/* "0 OK\r\n" (6 bytes), then a base64 body of 100, then a raw body of 50
	 * behind another status line: positions 0-6 other, 6-106 base64,
	 * 106-112 other, 112-162 raw */
	stats_out_body(&o, STREAM_BASE64, 6, 60);
	stats_out_body(&o, STREAM_BASE64, 60, 106);     /* the same body goes on */
	stats_out_body(&o, STREAM_LISTING, 106, 106);
	stats_out_body(&o, STREAM_RAW, 112, 162);
	assert_int_equal(o.n, 2);
	stats_out_sent(&o, 0, 10);      /* 6 other + 4 base64 */
	stats_out_sent(&o, 10, 100);    /* 96 base64 + 4 other */
	stats_out_sent(&o, 110, 52);    /* 2 other + 50 raw */
	stats_snapshot(&s);
	assert_int_equal(s.sent[STATS_BASE64], 100);
	assert_int_equal(s.sent[STATS_RAW], 50);
	assert_int_equal(s.sent[STATS_OTHER], 12);
	assert_int_equal(o.n, 0);
	/* a listing is "other"; fragments count with base64 */
	stats_out_body(&o, STREAM_LISTING, 162, 200);
	stats_out_body(&o, STREAM_FRAGMENTS, 200, 300);
	stats_out_sent(&o, 162, 138);
	stats_snapshot(&s);
	assert_int_equal(s.sent[STATS_BASE64], 200);
	assert_int_equal(s.sent[STATS_OTHER], 12 + 38);
	/* two base64 bodies with a status line between: the line is other */
	stats_out_body(&o, STREAM_BASE64, 306, 406);
	stats_out_body(&o, STREAM_BASE64, 412, 512);
	stats_out_sent(&o, 300, 212);
	stats_snapshot(&s);
	assert_int_equal(s.sent[STATS_BASE64], 400);
	assert_int_equal(s.sent[STATS_OTHER], 12 + 38 + 12);
}

static void test_many_bodies_queued(void **state)
{
	struct stats_out     o;
	struct channel_stats s;
	uint64_t             pos = 0;

	(void)state;
	memset(&o, 0, sizeof(o));
	/* more bodies queued than spans: the total is still exact */
	for (int i = 0; i < 10; i++) {
		pos += 6;
		stats_out_body(&o, i % 2 ? STREAM_RAW : STREAM_BASE64, pos, pos + 10);
		pos += 10;
	}
	assert_true(o.n <= STATS_SPANS);
	stats_out_sent(&o, 0, pos);
	stats_snapshot(&s);
	assert_int_equal(s.sent[0] + s.sent[1] + s.sent[2], pos);
	assert_true(s.sent[STATS_BASE64] >= 10 && s.sent[STATS_RAW] >= 10);
	assert_int_equal(o.n, 0);
}

static void test_report_only_when_changed(void **state)
{
	struct channel_stats got;
	struct channel_hdr   hdr;
	int                  sv[2], fd;

	(void)state;
	assert_int_equal(channel_pair(sv), 0);
	stats_received();
	stats_report(sv[0], 3, false);
	assert_int_equal(channel_recv(sv[1], &hdr, &got, sizeof(got), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_STATS);
	assert_int_equal(hdr.gen, 3);
	assert_int_equal(got.received, 1);
	stats_report(sv[0], 3, false);          /* nothing new: nothing sent */
	errno = 0;
	assert_int_equal(channel_recv(sv[1], &hdr, &got, sizeof(got), &fd), -1);
	assert_int_equal(errno, EAGAIN);
	stats_report(sv[0], 3, true);           /* at drain and exit: always */
	assert_int_equal(channel_recv(sv[1], &hdr, &got, sizeof(got), &fd), 1);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_requests_by_command_and_status, reset),
		cmocka_unit_test_setup(test_sent_bytes_by_framing, reset),
		cmocka_unit_test_setup(test_many_bodies_queued, reset),
		cmocka_unit_test_setup(test_report_only_when_changed, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
