/*
 * test_protocol.c — unit tests for worker/protocol.c: every status's text
 * (the protocol's exact words) and its ready-made line, which statuses are
 * fatal, an unknown code answered as an internal error, decimal numbers,
 * and the FILENAME character set.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "protocol.h"

static void test_status_texts(void **state)
{
	(void)state;
	assert_string_equal(protocol_status_text(STATUS_OK), "OK");
	assert_string_equal(protocol_status_text(STATUS_BAD_EOL), "BAD EOL");
	assert_string_equal(protocol_status_text(STATUS_BAD_REQUEST), "BAD REQUEST");
	assert_string_equal(protocol_status_text(STATUS_INTERNAL_ERROR), "INTERNAL SERVER ERROR");
	assert_string_equal(protocol_status_text(STATUS_NO_SUCH_COMMAND), "NO SUCH COMMAND");
	assert_string_equal(protocol_status_text(STATUS_INVALID_ARGUMENTS),
	    "INVALID ARGUMENTS FOR COMMAND");
	assert_string_equal(protocol_status_text(STATUS_FILE_NOT_FOUND), "FILE NOT FOUND");
	assert_string_equal(protocol_status_text(STATUS_BAD_OFFSET), "OFFSET EXCEEDS FILE SIZE");
	/* a code no row names is never sent as an empty or made-up text */
	assert_string_equal(protocol_status_text((enum status)42), "INTERNAL SERVER ERROR");
}

static void test_status_lines(void **state)
{
	static const enum status all[] = {
		STATUS_OK, STATUS_BAD_EOL, STATUS_BAD_REQUEST, STATUS_INTERNAL_ERROR,
		STATUS_NO_SUCH_COMMAND, STATUS_INVALID_ARGUMENTS, STATUS_FILE_NOT_FOUND,
		STATUS_BAD_OFFSET,
	};
	char        want[64];
	const char *line;
	size_t      len;

	(void)state;
	/* "CODE TEXT\r\n" for each, its length without a NUL */
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		snprintf(want, sizeof(want), "%d %s\r\n", (int)all[i], protocol_status_text(all[i]));
		line = protocol_status_line(all[i], &len);
		assert_int_equal(len, strlen(want));
		assert_memory_equal(line, want, len);
	}
	line = protocol_status_line(STATUS_OK, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(line, "0 OK\r\n", 6);
	line = protocol_status_line((enum status)42, &len);
	assert_memory_equal(line, "199 INTERNAL SERVER ERROR\r\n", len);
}

static void test_decimal(void **state)
{
	static const uint64_t values[] = { 0, 1, 9, 10, 41, 100, 1000000007, UINT64_MAX };
	char   got[PROTOCOL_DECIMAL_MAX + 1], want[32];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		memset(got, 'x', sizeof(got));
		n = protocol_decimal(got, values[i]);
		snprintf(want, sizeof(want), "%llu", (unsigned long long)values[i]);
		assert_int_equal(n, strlen(want));
		assert_memory_equal(got, want, n);
		assert_int_equal(got[n], 'x');      /* nothing past its digits */
	}
	assert_int_equal(protocol_decimal(got, UINT64_MAX), PROTOCOL_DECIMAL_MAX);
}

static void test_fatal_is_1xx(void **state)
{
	(void)state;
	assert_false(protocol_status_fatal(STATUS_OK));
	assert_true(protocol_status_fatal(STATUS_BAD_EOL));
	assert_true(protocol_status_fatal(STATUS_BAD_REQUEST));
	assert_true(protocol_status_fatal(STATUS_INTERNAL_ERROR));
	assert_false(protocol_status_fatal(STATUS_NO_SUCH_COMMAND));
	assert_false(protocol_status_fatal(STATUS_BAD_OFFSET));
	assert_false(protocol_status_fatal((enum status)99));
	assert_false(protocol_status_fatal((enum status)200));
}

static void test_name_chars(void **state)
{
	int n = 0;

	(void)state;
	for (int c = 0; c < 256; c++)
		n += protocol_name_char((unsigned char)c);
	assert_int_equal(n, 26 + 26 + 10 + 3);
	assert_true(protocol_name_char('.') && protocol_name_char('_') && protocol_name_char('-'));
	assert_false(protocol_name_char('/') || protocol_name_char(' ') ||
	    protocol_name_char('\0') || protocol_name_char(0xc3));
}

static void test_name_valid(void **state)
{
	(void)state;
	assert_true(protocol_name_valid("archivo.txt"));
	assert_true(protocol_name_valid("a-B_9"));
	assert_true(protocol_name_valid(".."));     /* the character set only: files.c judges */
	assert_false(protocol_name_valid(""));
	assert_false(protocol_name_valid("a b"));
	assert_false(protocol_name_valid("dir/file"));
	assert_false(protocol_name_valid("ma\xc3\xb1" "ana"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_texts),
		cmocka_unit_test(test_status_lines),
		cmocka_unit_test(test_decimal),
		cmocka_unit_test(test_fatal_is_1xx),
		cmocka_unit_test(test_name_chars),
		cmocka_unit_test(test_name_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
