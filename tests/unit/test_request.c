/*
 * test_request.c — unit tests for worker/request.c, the streaming HFTP
 * request-line parser: element properties (text prefix, len, name_ok,
 * digits_ok, value, overflow, truncated), empty elements, the fatal cases
 * (101 empty / spaces-only line and line over line_max, 100 stray LF, each
 * reported on the byte that causes it), CR as an ordinary byte, pipelined
 * lines, and that any split of the input gives the same result as one piece.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

#define LINE_MAX_BIG (16u * 1024 * 1024)

/*
 * The parser knows no command: it asks a shape function.  This one mirrors
 * the real table's get_metadata and get_slice, plus shapes that put a
 * FILENAME elsewhere and one too wide for the arena.
 */
static const struct request_shape shape_metadata = { 1, { REQUEST_ARG_NAME } };
static const struct request_shape shape_slice = { 4, { REQUEST_ARG_NAME,
	REQUEST_ARG_NUMBER, REQUEST_ARG_NUMBER, REQUEST_ARG_KEYWORD } };
static const struct request_shape shape_name_last = { 3, { REQUEST_ARG_NUMBER,
	REQUEST_ARG_KEYWORD, REQUEST_ARG_NAME } };
static const struct request_shape shape_two_names = { 2, { REQUEST_ARG_NAME,
	REQUEST_ARG_NAME } };

static const struct request_shape *test_shape(const char *cmd, size_t len)
{
	static const struct { const char *name; const struct request_shape *shape; } t[] = {
		{ "get_metadata", &shape_metadata },
		{ "get_slice", &shape_slice },
		{ "name_last", &shape_name_last },
		{ "two_names", &shape_two_names },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (len == strlen(t[i].name) && strcmp(cmd, t[i].name) == 0)
			return t[i].shape;
	}
	return NULL;
}

/* Everything observable about one outcome, for comparing feed strategies. */
struct snap {
	enum request_result res;
	int                 status;
	int                 argc;
	size_t              consumed;
	struct {
		uint64_t len, value;
		bool     truncated, name_ok, digits_ok, overflow;
		char     text[256];
	} e[REQUEST_ELEMS_MAX];
};

static void take_snap(const struct request_parser *p, enum request_result res,
    size_t consumed, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->res = res;
	s->consumed = consumed;
	if (res == REQUEST_FATAL) {
		s->status = p->status;
		return;
	}
	if (res != REQUEST_LINE)
		return;
	s->argc = p->argc;
	for (int i = 0; i < p->argc && i < REQUEST_ELEMS_MAX; i++) {
		const struct request_elem *e = &p->elem[i];
		size_t kept = e->len < e->cap - 1 ? (size_t)e->len : e->cap - 1;
		s->e[i].len = e->len;
		s->e[i].value = e->value;
		s->e[i].truncated = e->truncated;
		s->e[i].name_ok = e->name_ok;
		s->e[i].digits_ok = e->digits_ok;
		s->e[i].overflow = e->overflow;
		memcpy(s->e[i].text, e->text, kept);
	}
}

/* Feeds one piece; returns the result, *consumed the bytes taken. */
static enum request_result feed(struct request_parser *p, const char *s,
    size_t len, size_t *consumed)
{
	enum request_result res = (enum request_result)-1;
	size_t n = request_feed(p, s, len, &res);

	if (consumed)
		*consumed = n;
	return res;
}

/* Feeds the whole of s in one call on a fresh parser. */
static void one_piece(const char *s, size_t len, uint64_t line_max, struct snap *out)
{
	struct request_parser p;
	size_t n;
	enum request_result res;

	request_init(&p, line_max, test_shape);
	res = feed(&p, s, len, &n);
	take_snap(&p, res, n, out);
}

/*
 * Feeds s one byte at a time until something other than MORE comes back;
 * each MORE must consume its byte.  consumed is the total.
 */
static void byte_by_byte(const char *s, size_t len, uint64_t line_max, struct snap *out)
{
	struct request_parser p;
	enum request_result res = REQUEST_MORE;
	size_t total = 0;

	request_init(&p, line_max, test_shape);
	for (size_t i = 0; i < len; i++) {
		size_t n;
		res = feed(&p, s + i, 1, &n);
		assert_int_equal(n, 1);
		total += n;
		if (res != REQUEST_MORE)
			break;
	}
	take_snap(&p, res, total, out);
}

/* Feeds s in pieces of the given size (the last may be shorter). */
static void in_pieces(const char *s, size_t len, size_t piece, uint64_t line_max,
    struct snap *out)
{
	struct request_parser p;
	enum request_result res = REQUEST_MORE;
	size_t total = 0, off = 0;

	request_init(&p, line_max, test_shape);
	while (off < len) {
		size_t k = len - off < piece ? len - off : piece, n;
		res = feed(&p, s + off, k, &n);
		total += n;
		off += n;
		if (res != REQUEST_MORE)
			break;
		assert_int_equal(n, k);
	}
	take_snap(&p, res, total, out);
}

static void assert_snap_equal(const struct snap *a, const struct snap *b)
{
	assert_int_equal(a->res, b->res);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->consumed, b->consumed);
	assert_int_equal(a->argc, b->argc);
	assert_memory_equal(a->e, b->e, sizeof(a->e));
}

static void assert_elem(const struct request_parser *p, int i, const char *text)
{
	const struct request_elem *e;

	assert_true(i < REQUEST_ELEMS_MAX);
	e = &p->elem[i];
	assert_int_equal(e->len, strlen(text));
	assert_false(e->truncated);
	assert_string_equal(e->text, text);
}

/* Parses a full line in one piece and requires REQUEST_LINE consuming it all. */
static void parse_line(struct request_parser *p, const char *s, size_t len)
{
	size_t n;

	request_init(p, LINE_MAX_BIG, test_shape);
	assert_int_equal(feed(p, s, len, &n), REQUEST_LINE);
	assert_int_equal(n, len);
}

#define PARSE(p, lit) parse_line((p), (lit), sizeof(lit) - 1)

/* ---- simple commands ---- */

static void test_simple_commands(void **state)
{
	struct request_parser p;

	(void)state;
	PARSE(&p, "get_file_listing\r\n");
	assert_int_equal(p.argc, 1);
	assert_elem(&p, 0, "get_file_listing");
	assert_true(p.elem[0].name_ok);
	assert_false(p.elem[0].digits_ok);

	PARSE(&p, "quit\r\n");
	assert_int_equal(p.argc, 1);
	assert_elem(&p, 0, "quit");

	PARSE(&p, "help\r\n");
	assert_int_equal(p.argc, 1);
	assert_elem(&p, 0, "help");

	PARSE(&p, "get_metadata archivo.txt\r\n");
	assert_int_equal(p.argc, 2);
	assert_elem(&p, 0, "get_metadata");
	assert_elem(&p, 1, "archivo.txt");
	assert_true(p.elem[1].name_ok);
	assert_false(p.elem[1].digits_ok);

	PARSE(&p, "get_slice archivo.txt 5 20\r\n");
	assert_int_equal(p.argc, 4);
	assert_elem(&p, 0, "get_slice");
	assert_elem(&p, 1, "archivo.txt");
	assert_elem(&p, 2, "5");
	assert_elem(&p, 3, "20");
	assert_true(p.elem[2].digits_ok);
	assert_int_equal(p.elem[2].value, 5);
	assert_true(p.elem[3].digits_ok);
	assert_int_equal(p.elem[3].value, 20);
	assert_false(p.elem[2].overflow);
	assert_false(p.elem[3].overflow);

	PARSE(&p, "get_slice f 0 0 raw\r\n");
	assert_int_equal(p.argc, 5);
	assert_elem(&p, 4, "raw");
	assert_int_equal(p.elem[2].value, 0);
	assert_true(p.elem[2].digits_ok);
	assert_false(p.elem[4].digits_ok);
}

static void test_unknown_commands_are_lines(void **state)
{
	struct request_parser p;

	(void)state;
	/* The parser knows no command: anything non-empty is a line. */
	PARSE(&p, "GET_FILE_LISTING\r\n");
	assert_int_equal(p.argc, 1);
	assert_elem(&p, 0, "GET_FILE_LISTING");
	PARSE(&p, "x\r\n");
	assert_elem(&p, 0, "x");
}

/* ---- element properties ---- */

static void test_name_ok(void **state)
{
	static const char *good[] = {
		"a", "Z", "0", "archivo.txt", "aZ09._-", ".", "..", "-", "_",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
	};
	static const char bad_chars[] = "/\\@?:*~!\"'$%&()+,;<=>[]^`{|}\t\x01\x7f\x80\xff";
	struct request_parser p;
	char line[512];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int n = snprintf(line, sizeof(line), "get_metadata %s\r\n", good[i]);
		parse_line(&p, line, (size_t)n);
		assert_int_equal(p.argc, 2);
		assert_elem(&p, 1, good[i]);
		assert_true(p.elem[1].name_ok);
	}
	/* One bad byte anywhere in the name spoils it. */
	for (size_t i = 0; i < sizeof(bad_chars) - 1; i++) {
		for (int pos = 0; pos < 3; pos++) {
			char name[4] = "abc";
			name[pos] = bad_chars[i];
			int n = snprintf(line, sizeof(line), "get_metadata %s\r\n", name);
			parse_line(&p, line, (size_t)n);
			assert_int_equal(p.argc, 2);
			assert_int_equal(p.elem[1].len, 3);
			assert_false(p.elem[1].name_ok);
			assert_false(p.elem[1].digits_ok);
		}
	}
	/* ../etc/passwd */
	PARSE(&p, "get_metadata ../etc/passwd\r\n");
	assert_false(p.elem[1].name_ok);
	/* An embedded NUL is an ordinary (invalid) byte that counts in len. */
	PARSE(&p, "get_metadata a\0b\r\n");
	assert_int_equal(p.argc, 2);
	assert_int_equal(p.elem[1].len, 3);
	assert_memory_equal(p.elem[1].text, "a\0b", 4);
	assert_false(p.elem[1].name_ok);
	/* A name of digits is both a valid name and a valid number. */
	PARSE(&p, "get_metadata 123\r\n");
	assert_true(p.elem[1].name_ok);
	assert_true(p.elem[1].digits_ok);
	assert_int_equal(p.elem[1].value, 123);
}

static void test_digits_ok(void **state)
{
	static const char *bad[] = {
		"+5", "-5", "5a", "a5", "0x10", "1_000", "1.5", "1e3", "\xd9\xa3" /* Arabic-Indic 3 */,
	};
	struct request_parser p;
	char line[128];

	(void)state;
	PARSE(&p, "get_slice f 007 0000\r\n");
	assert_true(p.elem[2].digits_ok);
	assert_int_equal(p.elem[2].value, 7);
	assert_elem(&p, 2, "007");
	assert_true(p.elem[3].digits_ok);
	assert_int_equal(p.elem[3].value, 0);

	PARSE(&p, "get_slice f 1234567890 9876543210\r\n");
	assert_int_equal(p.elem[2].value, 1234567890ull);
	assert_int_equal(p.elem[3].value, 9876543210ull);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(line, sizeof(line), "get_slice f %s 1\r\n", bad[i]);
		parse_line(&p, line, (size_t)n);
		assert_int_equal(p.argc, 4);
		assert_int_equal(p.elem[2].len, strlen(bad[i]));
		assert_false(p.elem[2].digits_ok);
		assert_true(p.elem[3].digits_ok);
	}
}

static void test_overflow(void **state)
{
	struct request_parser p;

	(void)state;
	/* 2^64 - 1 fits exactly. */
	PARSE(&p, "get_slice f 18446744073709551615 1\r\n");
	assert_true(p.elem[2].digits_ok);
	assert_false(p.elem[2].overflow);
	assert_int_equal(p.elem[2].value, UINT64_MAX);

	/* 2^64 does not. */
	PARSE(&p, "get_slice f 18446744073709551616 1\r\n");
	assert_true(p.elem[2].digits_ok);
	assert_true(p.elem[2].overflow);

	/* 20 nines, 30 nines, and a huge number in the SIZE position. */
	PARSE(&p, "get_slice f 99999999999999999999 999999999999999999999999999999\r\n");
	assert_true(p.elem[2].digits_ok);
	assert_true(p.elem[2].overflow);
	assert_true(p.elem[3].digits_ok);
	assert_true(p.elem[3].overflow);
	assert_int_equal(p.elem[3].len, 30);

	/* Leading zeros do not overflow, even past the kept text. */
	PARSE(&p, "get_slice f 000000000000000000000000000000000042 1\r\n");
	assert_true(p.elem[2].digits_ok);
	assert_false(p.elem[2].overflow);
	assert_int_equal(p.elem[2].value, 42);
	assert_int_equal(p.elem[2].len, 36);
	assert_true(p.elem[2].truncated);

	/* Overflow then a non-digit: not digits at all. */
	PARSE(&p, "get_slice f 99999999999999999999x 1\r\n");
	assert_false(p.elem[2].digits_ok);
}

static void test_truncated_prefixes(void **state)
{
	struct request_parser p;
	char line[1024], name[300];

	(void)state;
	/* FILENAME: 255 characters are kept whole, 256 are truncated to 255. */
	memset(name, 'n', sizeof(name));
	name[255] = '\0';
	int n = snprintf(line, sizeof(line), "get_metadata %s\r\n", name);
	parse_line(&p, line, (size_t)n);
	assert_int_equal(p.elem[1].len, 255);
	assert_false(p.elem[1].truncated);
	assert_string_equal(p.elem[1].text, name);

	name[255] = 'n';
	name[256] = '\0';
	n = snprintf(line, sizeof(line), "get_metadata %s\r\n", name);
	parse_line(&p, line, (size_t)n);
	assert_int_equal(p.elem[1].len, 256);
	assert_true(p.elem[1].truncated);
	assert_true(p.elem[1].name_ok);
	assert_int_equal(strlen(p.elem[1].text), 255);
	assert_memory_equal(p.elem[1].text, name, 255);

	/* Command: 31 kept, a 40-character command is truncated but counted. */
	PARSE(&p, "abcdefghijklmnopqrstuvwxyz01234\r\n");
	assert_int_equal(p.elem[0].len, 31);
	assert_false(p.elem[0].truncated);
	PARSE(&p, "abcdefghijklmnopqrstuvwxyz0123456789ABCD x\r\n");
	assert_int_equal(p.elem[0].len, 40);
	assert_true(p.elem[0].truncated);
	assert_string_equal(p.elem[0].text, "abcdefghijklmnopqrstuvwxyz01234");
	assert_elem(&p, 1, "x");

	/* A keyword: 15 bytes kept, 16 truncated. */
	PARSE(&p, "get_slice f 1 2 rawrawrawrawraw\r\n");
	assert_false(p.elem[4].truncated);
	PARSE(&p, "get_slice f 1 2 rawrawrawrawrawr\r\n");
	assert_true(p.elem[4].truncated);
	assert_int_equal(p.elem[4].len, 16);
	assert_string_equal(p.elem[4].text, "rawrawrawrawraw");

	/* Text pointers stay inside the parser: no memory outside it. */
	for (int i = 0; i < REQUEST_ELEMS_MAX; i++) {
		assert_true(p.elem[i].text >= p.arena);
		assert_true(p.elem[i].text + p.elem[i].cap <= p.arena + sizeof(p.arena));
	}
}

static void test_huge_name_constant_memory(void **state)
{
	const size_t big = 5u * 1024 * 1024, chunk = 4096;
	struct request_parser p;
	char *buf;
	size_t n;

	(void)state;
	/* The parser is a fixed-size object with no heap: the 5 MiB name can
	 * only cost the counters.  Feed it in 4 KiB pieces from one reused
	 * chunk buffer, so the test itself never holds 5 MiB either. */
	assert_true(sizeof(struct request_parser) < 2048);
	buf = malloc(chunk);
	assert_non_null(buf);
	memset(buf, 'x', chunk);

	request_init(&p, LINE_MAX_BIG, test_shape);
	assert_int_equal(feed(&p, "get_metadata ", 13, &n), REQUEST_MORE);
	assert_int_equal(n, 13);
	for (size_t done = 0; done < big; done += chunk) {
		assert_int_equal(feed(&p, buf, chunk, &n), REQUEST_MORE);
		assert_int_equal(n, chunk);
	}
	assert_int_equal(feed(&p, "\r\n", 2, &n), REQUEST_LINE);
	assert_int_equal(n, 2);
	assert_int_equal(p.argc, 2);
	assert_elem(&p, 0, "get_metadata");
	assert_int_equal(p.elem[1].len, big);
	assert_true(p.elem[1].truncated);
	assert_true(p.elem[1].name_ok);
	assert_false(p.elem[1].digits_ok);
	assert_int_equal(strlen(p.elem[1].text), (REQUEST_CAP_NAME - 1));
	for (size_t i = 0; i < (REQUEST_CAP_NAME - 1); i++)
		assert_int_equal(p.elem[1].text[i], 'x');

	/* A 5 MiB number: digits, overflowed, truncated. */
	memset(buf, '9', chunk);
	request_init(&p, LINE_MAX_BIG, test_shape);
	feed(&p, "get_slice f ", 12, &n);
	for (size_t done = 0; done < big; done += chunk)
		assert_int_equal(feed(&p, buf, chunk, &n), REQUEST_MORE);
	assert_int_equal(feed(&p, " 1\r\n", 4, &n), REQUEST_LINE);
	assert_int_equal(p.argc, 4);
	assert_int_equal(p.elem[2].len, big);
	assert_true(p.elem[2].digits_ok);
	assert_true(p.elem[2].overflow);
	assert_true(p.elem[2].truncated);
	assert_int_equal(p.elem[3].value, 1);
	free(buf);
}

/* ---- empty elements ---- */

static void test_empty_elements(void **state)
{
	struct request_parser p;

	(void)state;
	/* Double space: an empty element in the middle. */
	PARSE(&p, "get_metadata  foo\r\n");
	assert_int_equal(p.argc, 3);
	assert_elem(&p, 0, "get_metadata");
	assert_int_equal(p.elem[1].len, 0);
	assert_string_equal(p.elem[1].text, "");
	assert_false(p.elem[1].name_ok);
	assert_false(p.elem[1].digits_ok);
	assert_elem(&p, 2, "foo");
	assert_true(p.elem[2].name_ok);

	/* Trailing space: an empty last element. */
	PARSE(&p, "get_metadata foo \r\n");
	assert_int_equal(p.argc, 3);
	assert_elem(&p, 1, "foo");
	assert_int_equal(p.elem[2].len, 0);
	assert_false(p.elem[2].name_ok);
	assert_false(p.elem[2].digits_ok);

	/* quit + trailing space. */
	PARSE(&p, "quit \r\n");
	assert_int_equal(p.argc, 2);
	assert_elem(&p, 0, "quit");
	assert_int_equal(p.elem[1].len, 0);
	assert_false(p.elem[1].name_ok);

	/* Empty SIZE position. */
	PARSE(&p, "get_slice f 1 \r\n");
	assert_int_equal(p.argc, 4);
	assert_int_equal(p.elem[3].len, 0);
	assert_false(p.elem[3].digits_ok);
	assert_int_equal(p.elem[3].value, 0);

	/* Three spaces between: two empty elements. */
	PARSE(&p, "get_slice   f\r\n");
	assert_int_equal(p.argc, 4);
	assert_int_equal(p.elem[1].len, 0);
	assert_int_equal(p.elem[2].len, 0);
	assert_false(p.elem[1].name_ok);
	assert_false(p.elem[2].digits_ok);
	assert_elem(&p, 3, "f");
}

static void test_leading_space(void **state)
{
	struct request_parser p;

	(void)state;
	PARSE(&p, " quit\r\n");
	assert_int_equal(p.argc, 2);
	assert_int_equal(p.elem[0].len, 0);
	assert_string_equal(p.elem[0].text, "");
	assert_false(p.elem[0].name_ok);
	assert_false(p.elem[0].digits_ok);
	assert_elem(&p, 1, "quit");

	PARSE(&p, "  x \r\n");
	assert_int_equal(p.argc, 4);
	assert_int_equal(p.elem[0].len, 0);
	assert_int_equal(p.elem[1].len, 0);
	assert_elem(&p, 2, "x");
	assert_int_equal(p.elem[3].len, 0);
}

/* ---- fatal lines ---- */

static void assert_fatal(const char *s, size_t len, uint64_t line_max, int status,
    size_t consumed)
{
	struct snap a, b;

	one_piece(s, len, line_max, &a);
	assert_int_equal(a.res, REQUEST_FATAL);
	assert_int_equal(a.status, status);
	assert_int_equal(a.consumed, consumed);
	/* Byte by byte: MORE for every earlier byte, FATAL on the same byte. */
	byte_by_byte(s, len, line_max, &b);
	assert_snap_equal(&a, &b);
}

#define ASSERT_FATAL(lit, max, status, consumed) \
	assert_fatal((lit), sizeof(lit) - 1, (max), (status), (consumed))

static void test_empty_and_space_lines(void **state)
{
	(void)state;
	ASSERT_FATAL("\r\n", LINE_MAX_BIG, 101, 2);
	ASSERT_FATAL(" \r\n", LINE_MAX_BIG, 101, 3);
	ASSERT_FATAL("     \r\n", LINE_MAX_BIG, 101, 7);
	/* Even with more requests behind it. */
	ASSERT_FATAL("\r\nquit\r\n", LINE_MAX_BIG, 101, 2);
	ASSERT_FATAL("  \r\nquit\r\n", LINE_MAX_BIG, 101, 4);
}

static void test_empty_line_after_good_line(void **state)
{
	static const char in[] = "quit\r\n\r\n";
	struct request_parser p;
	size_t n;

	(void)state;
	request_init(&p, LINE_MAX_BIG, test_shape);
	assert_int_equal(feed(&p, in, sizeof(in) - 1, &n), REQUEST_LINE);
	assert_int_equal(n, 6);
	assert_int_equal(feed(&p, in + 6, sizeof(in) - 1 - 6, &n), REQUEST_FATAL);
	assert_int_equal(n, 2);
	assert_int_equal(p.status, 101);
}

static void test_stray_lf(void **state)
{
	(void)state;
	ASSERT_FATAL("\n", LINE_MAX_BIG, 100, 1);
	ASSERT_FATAL("quit\n", LINE_MAX_BIG, 100, 5);
	/* No waiting for a later CR LF: the answer comes on the LF itself. */
	ASSERT_FATAL("get_file_listing\nmore bytes\r\n", LINE_MAX_BIG, 100, 17);
	ASSERT_FATAL("get_metadata fo\no\r\n", LINE_MAX_BIG, 100, 16);
	ASSERT_FATAL(" \n", LINE_MAX_BIG, 100, 2);
	/* LF CR is not a terminator either. */
	ASSERT_FATAL("quit\n\r", LINE_MAX_BIG, 100, 5);
	/* CR CR LF is fine (see test_cr_*), but CR x LF is not. */
	ASSERT_FATAL("quit\rx\n", LINE_MAX_BIG, 100, 7);
}

static void test_stray_lf_after_good_line(void **state)
{
	static const char in[] = "quit\r\n\n";
	struct request_parser p;
	size_t n;

	(void)state;
	request_init(&p, LINE_MAX_BIG, test_shape);
	assert_int_equal(feed(&p, in, sizeof(in) - 1, &n), REQUEST_LINE);
	assert_int_equal(n, 6);
	assert_int_equal(feed(&p, in + 6, 1, &n), REQUEST_FATAL);
	assert_int_equal(n, 1);
	assert_int_equal(p.status, 100);
}

/* ---- CR not followed by LF ---- */

static void test_cr_in_command(void **state)
{
	struct request_parser p;

	(void)state;
	PARSE(&p, "qu\rit\r\n");
	assert_int_equal(p.argc, 1);
	assert_int_equal(p.elem[0].len, 5);
	assert_memory_equal(p.elem[0].text, "qu\rit", 6);
	assert_false(p.elem[0].name_ok);

	/* A lone CR line is not empty: a line whose command is "\r". */
	PARSE(&p, "\r\r\n");
	assert_int_equal(p.argc, 1);
	assert_int_equal(p.elem[0].len, 1);
	assert_string_equal(p.elem[0].text, "\r");
	assert_false(p.elem[0].name_ok);

	/* CR CR LF ends a line whose command holds the first CR. */
	PARSE(&p, "quit\r\r\n");
	assert_int_equal(p.argc, 1);
	assert_int_equal(p.elem[0].len, 5);
	assert_string_equal(p.elem[0].text, "quit\r");

	/* Several CRs. */
	PARSE(&p, "a\r\r\r\r\n");
	assert_int_equal(p.elem[0].len, 4);
	assert_string_equal(p.elem[0].text, "a\r\r\r");

	/* CR before a space belongs to the command. */
	PARSE(&p, "quit\r x\r\n");
	assert_int_equal(p.argc, 2);
	assert_string_equal(p.elem[0].text, "quit\r");
	assert_elem(&p, 1, "x");
}

static void test_cr_in_argument(void **state)
{
	struct request_parser p;

	(void)state;
	PARSE(&p, "get_metadata fo\ro\r\n");
	assert_int_equal(p.argc, 2);
	assert_elem(&p, 0, "get_metadata");
	assert_int_equal(p.elem[1].len, 4);
	assert_string_equal(p.elem[1].text, "fo\ro");
	assert_false(p.elem[1].name_ok);

	PARSE(&p, "get_metadata foo\r\r\n");
	assert_int_equal(p.argc, 2);
	assert_string_equal(p.elem[1].text, "foo\r");
	assert_false(p.elem[1].name_ok);

	PARSE(&p, "get_slice f 1\r 2\r\n");
	assert_int_equal(p.argc, 4);
	assert_string_equal(p.elem[2].text, "1\r");
	assert_false(p.elem[2].digits_ok);
	assert_true(p.elem[3].digits_ok);
}

static void test_cr_split_across_pieces(void **state)
{
	struct request_parser p;
	size_t n;

	(void)state;
	/* CR at the end of a piece waits for the next byte. */
	request_init(&p, LINE_MAX_BIG, test_shape);
	assert_int_equal(feed(&p, "quit\r", 5, &n), REQUEST_MORE);
	assert_int_equal(n, 5);
	assert_int_equal(feed(&p, "\n", 1, &n), REQUEST_LINE);
	assert_int_equal(n, 1);
	assert_int_equal(p.argc, 1);
	assert_elem(&p, 0, "quit");

	request_init(&p, LINE_MAX_BIG, test_shape);
	assert_int_equal(feed(&p, "quit\r", 5, &n), REQUEST_MORE);
	assert_int_equal(feed(&p, "x\r\n", 3, &n), REQUEST_LINE);
	assert_int_equal(n, 3);
	assert_string_equal(p.elem[0].text, "quit\rx");

	request_init(&p, LINE_MAX_BIG, test_shape);
	assert_int_equal(feed(&p, "quit\r", 5, &n), REQUEST_MORE);
	assert_int_equal(feed(&p, "\r", 1, &n), REQUEST_MORE);
	assert_int_equal(feed(&p, "\n", 1, &n), REQUEST_LINE);
	assert_string_equal(p.elem[0].text, "quit\r");

	/* Empty feeds change nothing. */
	request_init(&p, LINE_MAX_BIG, test_shape);
	assert_int_equal(feed(&p, "", 0, &n), REQUEST_MORE);
	assert_int_equal(n, 0);
	assert_int_equal(feed(&p, "help\r", 5, &n), REQUEST_MORE);
	assert_int_equal(feed(&p, "", 0, &n), REQUEST_MORE);
	assert_int_equal(n, 0);
	assert_int_equal(feed(&p, "\n", 1, &n), REQUEST_LINE);
	assert_elem(&p, 0, "help");
}

/* ---- any split gives the same answer ---- */

static void test_splits_agree(void **state)
{
	static const struct { const char *s; size_t len; uint64_t max; } in[] = {
#define IN(lit, max) { lit, sizeof(lit) - 1, max }
		IN("get_file_listing\r\n", LINE_MAX_BIG),
		IN("get_slice archivo.txt 5 20\r\n", LINE_MAX_BIG),
		IN("get_slice f 18446744073709551616 0007 raw extra more\r\n", LINE_MAX_BIG),
		IN("get_metadata  foo \r\n", LINE_MAX_BIG),
		IN(" quit\r\n", LINE_MAX_BIG),
		IN("qu\rit a\r\r\n", LINE_MAX_BIG),
		IN("\r\r\n", LINE_MAX_BIG),
		IN("   \r\n", LINE_MAX_BIG),
		IN("\r\n", LINE_MAX_BIG),
		IN("get_metadata x\ny\r\n", LINE_MAX_BIG),
		IN("get_metadata a\tb\r\n", LINE_MAX_BIG),
		IN("0123456789\r\n", 10),
		IN("0123456789a\r\n", 10),
		IN("012345678\r\r\n", 10),
		IN("0123456789\r\r\n", 10),
		IN("get_metadata aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
		   LINE_MAX_BIG),
#undef IN
	};
	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct snap whole, piece;

		one_piece(in[i].s, in[i].len, in[i].max, &whole);
		assert_int_not_equal(whole.res, REQUEST_MORE);
		byte_by_byte(in[i].s, in[i].len, in[i].max, &piece);
		assert_snap_equal(&whole, &piece);
		for (size_t k = 2; k < in[i].len; k++) {
			in_pieces(in[i].s, in[i].len, k, in[i].max, &piece);
			assert_snap_equal(&whole, &piece);
		}
	}
}

/* ---- pipelining ---- */

static void test_pipelined(void **state)
{
	static const char in[] =
	    "help\r\nget_metadata a.txt\r\nget_slice f 1 2 raw\r\nquit\r\nget_me";
	struct request_parser p;
	const char *s = in;
	size_t left = sizeof(in) - 1, n;

	(void)state;
	request_init(&p, LINE_MAX_BIG, test_shape);

	assert_int_equal(feed(&p, s, left, &n), REQUEST_LINE);
	assert_int_equal(n, 6);
	assert_int_equal(p.argc, 1);
	assert_elem(&p, 0, "help");
	s += n, left -= n;

	assert_int_equal(feed(&p, s, left, &n), REQUEST_LINE);
	assert_int_equal(n, 20);
	assert_int_equal(p.argc, 2);
	assert_elem(&p, 0, "get_metadata");
	assert_elem(&p, 1, "a.txt");
	s += n, left -= n;

	assert_int_equal(feed(&p, s, left, &n), REQUEST_LINE);
	assert_int_equal(n, 21);
	assert_int_equal(p.argc, 5);
	assert_elem(&p, 4, "raw");
	s += n, left -= n;

	/* A shorter line after a longer one: nothing left over from before. */
	assert_int_equal(feed(&p, s, left, &n), REQUEST_LINE);
	assert_int_equal(n, 6);
	assert_int_equal(p.argc, 1);
	assert_elem(&p, 0, "quit");
	assert_true(p.elem[0].name_ok);
	s += n, left -= n;

	/* The incomplete tail is consumed and kept. */
	assert_int_equal(feed(&p, s, left, &n), REQUEST_MORE);
	assert_int_equal(n, 6);
	assert_int_equal(feed(&p, "tadata b\r\n", 10, &n), REQUEST_LINE);
	assert_int_equal(n, 10);
	assert_int_equal(p.argc, 2);
	assert_elem(&p, 0, "get_metadata");
	assert_elem(&p, 1, "b");
}

static void test_pipelined_line_max_per_line(void **state)
{
	static const char in[] = "0123456789\r\nabcdefghij\r\nABCDEFGHIJK\r\n";
	struct request_parser p;
	size_t n, off = 0;

	(void)state;
	/* The limit counts per line, not across the pipeline. */
	request_init(&p, 10, test_shape);
	assert_int_equal(feed(&p, in + off, sizeof(in) - 1 - off, &n), REQUEST_LINE);
	assert_int_equal(n, 12);
	off += n;
	assert_int_equal(feed(&p, in + off, sizeof(in) - 1 - off, &n), REQUEST_LINE);
	assert_int_equal(n, 12);
	assert_elem(&p, 0, "abcdefghij");
	off += n;
	assert_int_equal(feed(&p, in + off, sizeof(in) - 1 - off, &n), REQUEST_FATAL);
	assert_int_equal(n, 11);
	assert_int_equal(p.status, 101);
}

/* ---- line_max ---- */

static void test_line_max(void **state)
{
	struct request_parser p;
	size_t n;

	(void)state;
	/* Exactly line_max bytes before CR LF: fine. */
	request_init(&p, 10, test_shape);
	assert_int_equal(feed(&p, "0123456789\r\n", 12, &n), REQUEST_LINE);
	assert_int_equal(n, 12);
	assert_elem(&p, 0, "0123456789");

	request_init(&p, 10, test_shape);
	assert_int_equal(feed(&p, "a b c d ef\r\n", 12, &n), REQUEST_LINE);
	assert_int_equal(p.argc, 5);

	/* One more: fatal on the 11th byte, no CR LF needed. */
	ASSERT_FATAL("0123456789a", 10, 101, 11);
	ASSERT_FATAL("0123456789abcdefghij\r\n", 10, 101, 11);
	/* Spaces count. */
	ASSERT_FATAL("a b c d e f\r\n", 10, 101, 11);
	ASSERT_FATAL("           \r\n", 10, 101, 11);
	/* A CR that is not a terminator counts (reported once it is known). */
	ASSERT_FATAL("0123456789\rx", 10, 101, 12);
	ASSERT_FATAL("0123456789\r\r\n", 10, 101, 12);
	request_init(&p, 10, test_shape);
	assert_int_equal(feed(&p, "012345678\r\r\n", 12, &n), REQUEST_LINE);
	assert_string_equal(p.elem[0].text, "012345678\r");

	/* A pending CR at the limit is not yet an excess. */
	request_init(&p, 10, test_shape);
	assert_int_equal(feed(&p, "0123456789\r", 11, &n), REQUEST_MORE);
	assert_int_equal(n, 11);
	assert_int_equal(feed(&p, "\n", 1, &n), REQUEST_LINE);

	/* line_max 1. */
	ASSERT_FATAL("ab\r\n", 1, 101, 2);
	request_init(&p, 1, test_shape);
	assert_int_equal(feed(&p, "a\r\n", 3, &n), REQUEST_LINE);
}

static void test_line_max_large_in_pieces(void **state)
{
	const uint64_t max = 64 * 1024;
	struct request_parser p;
	char buf[1000];
	size_t n, total = 0;
	enum request_result res = REQUEST_MORE;

	(void)state;
	memset(buf, 'y', sizeof(buf));
	request_init(&p, max, test_shape);
	/* 65 full pieces = 65000 bytes <= 65536 */
	for (int i = 0; i < 65; i++) {
		assert_int_equal(feed(&p, buf, sizeof(buf), &n), REQUEST_MORE);
		total += n;
	}
	assert_int_equal(total, 65000);
	/* The next piece passes the limit 537 bytes in. */
	res = feed(&p, buf, sizeof(buf), &n);
	assert_int_equal(res, REQUEST_FATAL);
	assert_int_equal(p.status, 101);
	assert_int_equal(n, max - 65000 + 1);
}

/* ---- argc and separators ---- */

static void test_argc_beyond_kept(void **state)
{
	struct request_parser p;

	(void)state;
	PARSE(&p, "a b c d e f g\r\n");
	assert_int_equal(p.argc, 7);
	assert_elem(&p, 0, "a");
	assert_elem(&p, 3, "d");
	assert_elem(&p, 4, "e");
	/* Elements past REQUEST_ELEMS_MAX are counted, not kept. */
	assert_int_equal(REQUEST_ELEMS_MAX, 5);

	PARSE(&p, "get_slice f 1 2 raw extra\r\n");
	assert_int_equal(p.argc, 6);
	assert_elem(&p, 4, "raw");

	/* Trailing spaces count as elements too. */
	PARSE(&p, "get_slice f 1 2 raw   \r\n");
	assert_int_equal(p.argc, 8);
	assert_elem(&p, 4, "raw");

	/* Many elements. */
	{
		char line[2100];
		size_t len = 0;
		for (int i = 0; i < 1000; i++) {
			line[len++] = 'z';
			line[len++] = ' ';
		}
		line[len++] = 'z';
		line[len++] = '\r';
		line[len++] = '\n';
		parse_line(&p, line, len);
		assert_int_equal(p.argc, 1001);
		assert_elem(&p, 4, "z");
	}
}

static void test_tab_not_separator(void **state)
{
	struct request_parser p;

	(void)state;
	PARSE(&p, "get_metadata\tfoo\r\n");
	assert_int_equal(p.argc, 1);
	assert_int_equal(p.elem[0].len, 16);
	assert_string_equal(p.elem[0].text, "get_metadata\tfoo");
	assert_false(p.elem[0].name_ok);

	PARSE(&p, "get_metadata foo\t\r\n");
	assert_int_equal(p.argc, 2);
	assert_string_equal(p.elem[1].text, "foo\t");
	assert_false(p.elem[1].name_ok);

	PARSE(&p, "get_slice f \t1 2\r\n");
	assert_int_equal(p.argc, 4);
	assert_false(p.elem[2].digits_ok);

	/* A line of tabs is not "only spaces": it is a line. */
	PARSE(&p, "\t\r\n");
	assert_int_equal(p.argc, 1);
	assert_string_equal(p.elem[0].text, "\t");
	PARSE(&p, " \t \r\n");
	assert_int_equal(p.argc, 3);
	assert_int_equal(p.elem[0].len, 0);
	assert_string_equal(p.elem[1].text, "\t");
	assert_int_equal(p.elem[2].len, 0);
}

static void test_reinit_after_fatal(void **state)
{
	struct request_parser p;
	size_t n;

	(void)state;
	request_init(&p, 8, test_shape);
	assert_int_equal(feed(&p, "xxxxxxxxxxxx", 12, &n), REQUEST_FATAL);
	request_init(&p, 8, test_shape);
	assert_int_equal(feed(&p, "quit\r\n", 6, &n), REQUEST_LINE);
	assert_int_equal(p.status, 0);
	assert_elem(&p, 0, "quit");
}


/*
 * Regression: the caps were per position (command 32, then 256, 24, 24, 8:
 * get_slice's shape), so a FILENAME anywhere but first was cut at 23 bytes.
 * Now each element is bounded by its kind, wherever it stands.
 */
static void test_name_bounded_by_kind_not_position(void **state)
{
	struct request_parser p;
	char line[1024], name[256];
	int n;

	(void)state;
	memset(name, 'n', 255);
	name[255] = '\0';
	n = snprintf(line, sizeof(line), "name_last 12 raw %s\r\n", name);
	parse_line(&p, line, (size_t)n);
	assert_int_equal(p.argc, 4);
	assert_int_equal(p.elem[3].len, 255);
	assert_false(p.elem[3].truncated);
	assert_true(p.elem[3].name_ok);
	assert_string_equal(p.elem[3].text, name);
	assert_int_equal(p.elem[1].value, 12);
	assert_string_equal(p.elem[2].text, "raw");
}

/* Unknown commands and positions past a shape keep a few bytes each. */
static void test_unknown_positions_keep_little(void **state)
{
	struct request_parser p;

	(void)state;
	PARSE(&p, "nosuch abcdefghijkl 1\r\n");
	assert_int_equal(p.argc, 3);
	assert_true(p.elem[1].truncated);
	assert_int_equal(p.elem[1].len, 12);
	assert_int_equal(strlen(p.elem[1].text), REQUEST_CAP_NONE - 1);
	PARSE(&p, "get_metadata a bcdefghijkl\r\n");
	assert_string_equal(p.elem[1].text, "a");
	assert_true(p.elem[2].truncated);
}

/* A shape wider than the arena is refused by the check, and survives. */
static void test_shape_too_wide_for_arena(void **state)
{
	struct request_parser p;
	char line[1200], name[256];
	int n;

	(void)state;
	assert_true(request_shape_fits(&shape_slice));
	assert_true(request_shape_fits(&shape_name_last));
	assert_false(request_shape_fits(&shape_two_names));
	/* The second name has no room: counted, judged, kept without text. */
	memset(name, 'n', 255);
	name[255] = '\0';
	n = snprintf(line, sizeof(line), "two_names %s %s\r\n", name, name);
	parse_line(&p, line, (size_t)n);
	assert_string_equal(p.elem[1].text, name);
	assert_int_equal(p.elem[2].len, 255);
	assert_true(p.elem[2].truncated);
	assert_true(p.elem[2].name_ok);
	assert_string_equal(p.elem[2].text, "");
	for (int i = 0; i < REQUEST_ELEMS_MAX; i++)
		assert_true(p.elem[i].text + p.elem[i].cap <= p.arena + sizeof(p.arena));
}

/* The shape function is asked once per line, also for a line without arguments. */
static int shape_calls;

static const struct request_shape *counting_shape(const char *cmd, size_t len)
{
	shape_calls++;
	return test_shape(cmd, len);
}

static void test_shape_asked_once_per_line(void **state)
{
	static struct request_parser p;
	static const char            lines[] =
	    "get_metadata a\r\nget_slice a 1 2 raw\r\nget_metadata\r\nnope\r\n"
	    "get_metadata  a b\r\n \r\n";
	static const struct request_shape *const want[] = {
		&shape_metadata, &shape_slice, &shape_metadata, NULL, &shape_metadata,
	};
	enum request_result res;
	size_t              off = 0;

	(void)state;
	request_init(&p, LINE_MAX_BIG, counting_shape);
	shape_calls = 0;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		off += request_feed(&p, lines + off, strlen(lines + off), &res);
		assert_int_equal(res, REQUEST_LINE);
		assert_true(p.shape_known);
		assert_ptr_equal(p.shape, want[i]);
		assert_int_equal(shape_calls, (int)i + 1);
	}
	/* a line of spaces names no command: nothing to ask */
	off += request_feed(&p, lines + off, strlen(lines + off), &res);
	assert_int_equal(res, REQUEST_FATAL);
	assert_null(p.shape);
	/* without a shape function nothing is asked or known */
	request_init(&p, LINE_MAX_BIG, NULL);
	request_feed(&p, "get_metadata a\r\n", 16, &res);
	assert_int_equal(res, REQUEST_LINE);
	assert_false(p.shape_known);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_commands),
		cmocka_unit_test(test_shape_asked_once_per_line),
		cmocka_unit_test(test_unknown_commands_are_lines),
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_digits_ok),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_truncated_prefixes),
		cmocka_unit_test(test_name_bounded_by_kind_not_position),
		cmocka_unit_test(test_unknown_positions_keep_little),
		cmocka_unit_test(test_shape_too_wide_for_arena),
		cmocka_unit_test(test_huge_name_constant_memory),
		cmocka_unit_test(test_empty_elements),
		cmocka_unit_test(test_leading_space),
		cmocka_unit_test(test_empty_and_space_lines),
		cmocka_unit_test(test_empty_line_after_good_line),
		cmocka_unit_test(test_stray_lf),
		cmocka_unit_test(test_stray_lf_after_good_line),
		cmocka_unit_test(test_cr_in_command),
		cmocka_unit_test(test_cr_in_argument),
		cmocka_unit_test(test_cr_split_across_pieces),
		cmocka_unit_test(test_splits_agree),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_pipelined_line_max_per_line),
		cmocka_unit_test(test_line_max),
		cmocka_unit_test(test_line_max_large_in_pieces),
		cmocka_unit_test(test_argc_beyond_kept),
		cmocka_unit_test(test_tab_not_separator),
		cmocka_unit_test(test_reinit_after_fatal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
