/*
 * test_tally.c — unit tests for shared/tally.c: the address part of a
 * peer, totals, one line per kind per interval whatever the number of
 * events, the heaviest hitters named first, force at exit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tally.h"

static char log_file[] = "/tmp/test_tally.XXXXXX";

static int setup(void **state)
{
	int fd = mkstemp(log_file);

	(void)state;
	if (fd == -1)
		return -1;
	close(fd);
	log_init("test", LOG_LEVEL_INFO);
	tally_reset();
	return log_open(log_file);
}

static int teardown(void **state)
{
	(void)state;
	log_close();
	unlink(log_file);
	strcpy(log_file, "/tmp/test_tally.XXXXXX");
	return 0;
}

/* The lines logged so far, into buf; their count. */
static int read_log(char *buf, size_t len)
{
	FILE  *fp = fopen(log_file, "r");
	size_t n;
	int    lines = 0;

	assert_non_null(fp);
	n = fread(buf, 1, len - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		lines += buf[i] == '\n';
	return lines;
}

static void test_addr_of(void **state)
{
	char buf[TALLY_ADDR_MAX];

	(void)state;
	tally_addr_of("1.2.3.4:5678", buf, sizeof(buf));
	assert_string_equal(buf, "1.2.3.4");
	tally_addr_of("[::1]:80", buf, sizeof(buf));
	assert_string_equal(buf, "::1");
	tally_addr_of("10.0.0.1", buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.1");
	tally_addr_of("fe80::1", buf, sizeof(buf));
	assert_string_equal(buf, "fe80::1");
	tally_addr_of(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "?");
	tally_addr_of("", buf, sizeof(buf));
	assert_string_equal(buf, "?");
	tally_addr_of("123.123.123.123:1", buf, 5);
	assert_string_equal(buf, "123.");
}

static void test_one_line_per_interval(void **state)
{
	char buf[4096];
	int  i;

	(void)state;
	for (i = 0; i < 100000; i++)
		tally_note(TALLY_REQUEST_TIMEOUT, i % 10 ? "127.0.0.1:4000" : "127.0.0.2:5");
	assert_int_equal(tally_total(TALLY_REQUEST_TIMEOUT), 100000);
	tally_flush(1000, 0);               /* first line at once */
	assert_int_equal(read_log(buf, sizeof(buf)), 1);
	assert_non_null(strstr(buf, "100000 closed mid-request"));
	assert_non_null(strstr(buf, "top: 127.0.0.1 x90000, 127.0.0.2 x10000"));
	for (i = 0; i < 500; i++) {
		tally_note(TALLY_REQUEST_TIMEOUT, "127.0.0.3:1");
		tally_flush(1000 + (uint64_t)i * 10, 0);   /* within the interval */
	}
	assert_int_equal(read_log(buf, sizeof(buf)), 1);
	tally_flush(1000 + TALLY_INTERVAL_MS, 0);
	assert_int_equal(read_log(buf, sizeof(buf)), 2);
	assert_non_null(strstr(buf, "500 closed mid-request (request_timeout) (top: 127.0.0.3 x500); 100500 since start"));
	tally_flush(1000 + 3 * TALLY_INTERVAL_MS, 0);     /* nothing pending */
	assert_int_equal(read_log(buf, sizeof(buf)), 2);
}

static void test_heavy_hitter_found_among_many(void **state)
{
	char buf[4096], peer[32];
	int  i;

	(void)state;
	/* 1,000 one-off addresses interleaved with one host's 2,000 events */
	for (i = 0; i < 3000; i++) {
		if (i % 3 == 0)
			snprintf(peer, sizeof(peer), "10.0.%d.%d:1", i / 256, i % 256);
		else
			snprintf(peer, sizeof(peer), "192.168.1.1:%d", i);
		tally_note(TALLY_ROOM, peer);
	}
	tally_flush(5, 0);
	read_log(buf, sizeof(buf));
	assert_non_null(strstr(buf, "3000 closed idle or crawling to make room (top: 192.168.1.1 x"));
}

static void test_kinds_apart_and_force(void **state)
{
	char buf[4096];

	(void)state;
	tally_note(TALLY_DENIED, "127.0.0.9:1");
	tally_flush(100, 0);
	tally_note(TALLY_DENIED, "127.0.0.9:2");
	tally_note(TALLY_OVER_CAP, "127.0.0.8:2");
	tally_flush(200, 0);                /* OVER_CAP's first line; DENIED waits */
	assert_int_equal(read_log(buf, sizeof(buf)), 2);
	tally_flush(300, 1);                /* exit: everything pending */
	assert_int_equal(read_log(buf, sizeof(buf)), 3);
	assert_int_equal(tally_total(TALLY_DENIED), 2);
	assert_int_equal(tally_total(TALLY_OVER_CAP), 1);
	assert_int_equal(tally_total(TALLY_KINDS), 0);
	tally_note(TALLY_KINDS, "x");       /* out of range: ignored */
	assert_string_equal(tally_kind_name(TALLY_KINDS), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_of),
		cmocka_unit_test_setup_teardown(test_one_line_per_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heavy_hitter_found_among_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kinds_apart_and_force, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
