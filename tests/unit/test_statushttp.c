/*
 * test_statushttp.c — unit tests for master/statushttp.c: the requests the
 * status listener answers (GET and HEAD, HTTP/1.0 and 1.1, a query string
 * ignored), the ones it refuses (garbage, an HFTP command, a bad version,
 * control bytes, a head over 4 KiB) and that an answer once given never
 * changes as more bytes come.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statushttp.h"

static enum statushttp_result
parse(const char *text, struct statushttp_request *req)
{
	return statushttp_parse(text, strlen(text), req);
}

static void test_good_requests(void **state)
{
	struct statushttp_request req;

	(void)state;
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &req), STATUSHTTP_DONE);
	assert_int_equal(req.method, STATUSHTTP_GET);
	assert_int_equal(req.target, STATUSHTTP_METRICS);
	assert_int_equal(req.minor, 1);
	assert_int_equal(parse("HEAD /status?pretty=1 HTTP/1.0\r\n\r\n", &req), STATUSHTTP_DONE);
	assert_int_equal(req.method, STATUSHTTP_HEAD);
	assert_int_equal(req.target, STATUSHTTP_STATUS);
	assert_int_equal(req.minor, 0);
	assert_int_equal(parse("GET /health HTTP/1.0\n\n", &req), STATUSHTTP_DONE);
	assert_int_equal(req.target, STATUSHTTP_HEALTH);
	assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &req), STATUSHTTP_DONE);
	assert_int_equal(req.target, STATUSHTTP_ROOT);
	/* what follows the head is not looked at */
	assert_int_equal(parse("POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\n\x01\x02", &req),
	    STATUSHTTP_DONE);
	assert_int_equal(req.method, STATUSHTTP_OTHER);
}

static void test_no_path_handling(void **state)
{
	static const char *const others[] = {
		"/../www/file", "/metrics/", "/METRICS", "/metrics/../status", "//status",
		"/status%00", "/healthz", "/index.html",
	};
	struct statushttp_request req;
	char                      text[128];

	(void)state;
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\n\r\n", others[i]);
		assert_int_equal(parse(text, &req), STATUSHTTP_DONE);
		assert_int_equal(req.target, STATUSHTTP_UNKNOWN);
	}
}

static void test_bad_requests(void **state)
{
	static const char *const bad[] = {
		"get_file_listing\r\n",                 /* an HFTP command */
		"get_slice big 0 10\r\n",
		"GET /metrics\r\n",                     /* HTTP/0.9 */
		"GET /metrics HTTP/2.0\r\n\r\n",
		"GET metrics HTTP/1.1\r\n\r\n",         /* not origin form */
		"GET  /metrics HTTP/1.1\r\n\r\n",
		"get /metrics HTTP/1.1\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nName : x\r\n\r\n",
		"\r\n",
		"\x16\x03\x01\x02\x00",                 /* a TLS hello: bad at once */
		"GET /\x01",
		"GET /a\rb HTTP/1.1\r\n\r\n",
	};
	struct statushttp_request req;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &req), STATUSHTTP_BAD);
}

static void test_more_and_too_big(void **state)
{
	struct statushttp_request req;
	char                     *big = malloc(1 << 20);

	(void)state;
	assert_non_null(big);
	assert_int_equal(parse("", &req), STATUSHTTP_MORE);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r", &req), STATUSHTTP_MORE);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &req), STATUSHTTP_MORE);
	/* a 1 MiB request line, and a head of many lines, both over 4 KiB */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', (1 << 20) - 5);
	assert_int_equal(statushttp_parse(big, 1 << 20, &req), STATUSHTTP_TOO_BIG);
	assert_int_equal(statushttp_parse(big, STATUSHTTP_HEAD_MAX - 1, &req), STATUSHTTP_MORE);
	for (size_t off = (size_t)snprintf(big, 64, "GET / HTTP/1.1\r\n"); off + 8 < 8192; off += 8)
		memcpy(big + off, "A: bcd\r\n", 8);
	assert_int_equal(statushttp_parse(big, 8192, &req), STATUSHTTP_TOO_BIG);
	free(big);
}

/* An answer other than MORE stays the same whatever bytes follow. */
static void test_answer_is_final(void **state)
{
	static const char *const texts[] = {
		"GET /metrics HTTP/1.1\r\n\r\nGET /status HTTP/1.1\r\n\r\n",
		"garbage\r\nGET /metrics HTTP/1.1\r\n\r\n",
		"GET /x HTTP/1.0\r\n\r\n\x01\x02\x03",
	};
	struct statushttp_request whole, req;

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		size_t                 len = strlen(texts[i]);
		enum statushttp_result w = statushttp_parse(texts[i], len, &whole);

		assert_int_not_equal(w, STATUSHTTP_MORE);
		for (size_t k = 0; k < len; k++) {
			enum statushttp_result r = statushttp_parse(texts[i], k, &req);
			if (r == STATUSHTTP_MORE)
				continue;
			assert_int_equal(r, w);
			if (r == STATUSHTTP_DONE)
				assert_memory_equal(&req, &whole, sizeof(req));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_requests),
		cmocka_unit_test(test_no_path_handling),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_more_and_too_big),
		cmocka_unit_test(test_answer_is_final),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
