/*
 * test_proxy.c — unit tests for worker/proxy.c, the PROXY protocol header
 * parser: v1 TCP4, TCP6 and UNKNOWN, v2 PROXY over IPv4 and IPv6, LOCAL,
 * TLVs skipped, other families kept as the proxy's own; the refusals
 * (wrong signature, oversize, truncated address blocks, bad fields); and
 * for each header that every strict prefix is "more", so any split of the
 * input gives the same answer, and that a refusal, once given, holds for
 * every longer input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net.h"
#include "proxy.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* A v2 header: signature, ver_cmd, fam, length, then payload; its size. */
static size_t
v2_build(unsigned char *out, unsigned ver_cmd, unsigned fam,
    const unsigned char *payload, size_t plen)
{
	memcpy(out, v2_sig, sizeof(v2_sig));
	out[12] = (unsigned char)ver_cmd;
	out[13] = (unsigned char)fam;
	out[14] = (unsigned char)(plen >> 8);
	out[15] = (unsigned char)plen;
	if (plen > 0)
		memcpy(out + 16, payload, plen);
	return 16 + plen;
}

/* The address as the logs show it (net.c's formatter). */
static const char *
addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	net_addr_text((const struct sockaddr *)ss, buf, len);
	return buf;
}

/*
 * A valid header of n bytes: every strict prefix is MORE, the whole is
 * DONE with used == n, and so is the whole followed by request bytes.
 */
static void
check_valid(const void *hdr_bytes, size_t n, struct proxy_header *out)
{
	unsigned char buf[PROXY_HEADER_MAX + 64];
	size_t        used;

	assert_true(n + 6 <= sizeof(buf));
	for (size_t k = 0; k < n; k++) {
		used = 99;
		assert_int_equal(proxy_parse(hdr_bytes, k, &used, out), PROXY_MORE);
		assert_int_equal(used, 0);
	}
	memcpy(buf, hdr_bytes, n);
	memcpy(buf + n, "help\r\n", 6);
	assert_int_equal(proxy_parse(buf, n + 6, &used, out), PROXY_DONE);
	assert_int_equal(used, n);
	assert_int_equal(proxy_parse(buf, n, &used, out), PROXY_DONE);
	assert_int_equal(used, n);
	assert_null(out->error);
}

/*
 * Refused: the first k where the answer is BAD is at most bad_at, and
 * every longer input up to n (with anything after) is BAD too.
 */
static void
check_bad(const void *bytes, size_t n, size_t bad_at)
{
	struct proxy_header hdr;
	size_t              used, first = n + 1;

	for (size_t k = 0; k <= n; k++) {
		enum proxy_result r = proxy_parse(bytes, k, &used, &hdr);
		if (r != PROXY_DONE)
			assert_int_equal(used, 0);
		if (r == PROXY_BAD && first > n) {
			first = k;
			assert_non_null(hdr.error);
		}
		if (first <= n)
			assert_int_equal(r, PROXY_BAD);
		else
			assert_int_equal(r, PROXY_MORE);
	}
	assert_true(first <= bad_at);
}

static void
test_v1_tcp4(void **state)
{
	const char         *h = "PROXY TCP4 192.0.2.1 198.51.100.2 51234 19500\r\n";
	struct proxy_header hdr;
	char                t[64];

	(void)state;
	check_valid(h, strlen(h), &hdr);
	assert_int_equal(hdr.version, 1);
	assert_false(hdr.local);
	assert_string_equal(addr_text(&hdr.src, t, sizeof(t)), "192.0.2.1:51234");
	assert_string_equal(addr_text(&hdr.dst, t, sizeof(t)), "198.51.100.2:19500");
}

static void
test_v1_tcp6(void **state)
{
	const char         *h = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
	struct proxy_header hdr;
	char                t[64];

	(void)state;
	check_valid(h, strlen(h), &hdr);
	assert_false(hdr.local);
	assert_string_equal(addr_text(&hdr.src, t, sizeof(t)), "[2001:db8::1]:65535");
	assert_string_equal(addr_text(&hdr.dst, t, sizeof(t)), "[2001:db8::2]:0");
}

static void
test_v1_unknown(void **state)
{
	const char         *a = "PROXY UNKNOWN\r\n";
	const char         *b = "PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 65535 65535\r\n";
	struct proxy_header hdr;

	(void)state;
	check_valid(a, strlen(a), &hdr);
	assert_true(hdr.local);
	check_valid(b, strlen(b), &hdr);
	assert_true(hdr.local);
}

/* A v1 UNKNOWN line of exactly n bytes, CR LF included, into h. */
static void
v1_of_length(char *h, size_t n)
{
	memcpy(h, "PROXY UNKNOWN ", 14);
	memset(h + 14, 'x', n - 14 - 2);
	memcpy(h + n - 2, "\r\n", 2);
	h[n] = '\0';
}

/* The longest v1 line the spec allows is exactly 107 bytes: accepted. */
static void
test_v1_longest(void **state)
{
	char                h[PROXY_V1_MAX + 1];
	struct proxy_header hdr;

	(void)state;
	v1_of_length(h, PROXY_V1_MAX);
	check_valid(h, PROXY_V1_MAX, &hdr);
	assert_true(hdr.local);
}

static void
test_v1_oversize(void **state)
{
	char h[PROXY_V1_MAX + 2];

	(void)state;
	/* one byte too many: refused as soon as 106 bytes show no CR */
	v1_of_length(h, PROXY_V1_MAX + 1);
	check_bad(h, PROXY_V1_MAX + 1, PROXY_V1_MAX - 1);
}

static void
test_v1_bad_fields(void **state)
{
	static const char *bad[] = {
		"PROXY TCP4 192.0.2.1 198.51.100.2 51234\r\n",          /* missing */
		"PROXY TCP4 192.0.2.1 198.51.100.2 51234 19500 9\r\n",  /* extra */
		"PROXY TCP4 192.0.2.1  198.51.100.2 51234 19500\r\n",   /* two spaces */
		"PROXY TCP4 2001:db8::1 198.51.100.2 51234 19500\r\n",  /* family */
		"PROXY TCP6 192.0.2.1 2001:db8::2 51234 19500\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 65536 19500\r\n",    /* port range */
		"PROXY TCP4 192.0.2.1 198.51.100.2 051234 19500\r\n",   /* leading 0 */
		"PROXY TCP4 192.0.2.1 198.51.100.2 -1 19500\r\n",
		"PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n",               /* short v4 */
		"PROXY UDP4 192.0.2.1 198.51.100.2 51234 19500\r\n",    /* protocol */
		"PROXY \r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX",              /* CR, no LF */
		"PROXY TCP4 192.0.2.1\n198.51.100.2 1 2\r\n",            /* bare LF */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_bad(bad[i], strlen(bad[i]), strlen(bad[i]));
}

/* Plain HFTP (or anything else) on a PROXY listener: refused at once. */
static void
test_wrong_signature(void **state)
{
	unsigned char v2[32];

	(void)state;
	check_bad("help\r\n", 6, 1);
	check_bad("get_file_listing\r\n", 18, 1);
	check_bad("PROXY", 5, 5 + 1);           /* a prefix: still MORE */
	check_bad("PROXYTCP4 1 2 3 4\r\n", 19, 6);
	check_bad("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", 32, 1);
	memcpy(v2, v2_sig, sizeof(v2_sig));
	v2[7] = 'X';
	check_bad(v2, 16, 8);
	check_bad("\r\n\r\nhello", 9, 5);
}

static void
test_v2_tcp4(void **state)
{
	unsigned char       h[64];
	const unsigned char a[12] = { 192, 0, 2, 1, 198, 51, 100, 2, 0xc8, 0x22, 0x4c, 0x2c };
	struct proxy_header hdr;
	char                t[64];
	size_t              n;

	(void)state;
	n = v2_build(h, 0x21, 0x11, a, sizeof(a));
	check_valid(h, n, &hdr);
	assert_int_equal(hdr.version, 2);
	assert_false(hdr.local);
	assert_string_equal(addr_text(&hdr.src, t, sizeof(t)), "192.0.2.1:51234");
	assert_string_equal(addr_text(&hdr.dst, t, sizeof(t)), "198.51.100.2:19500");
}

static void
test_v2_tcp6_with_tlvs(void **state)
{
	unsigned char       h[128], a[36 + 12];
	struct proxy_header hdr;
	char                t[64];
	size_t              n;

	(void)state;
	memset(a, 0, sizeof(a));
	a[0] = 0x20; a[1] = 0x01; a[2] = 0x0d; a[3] = 0xb8; a[15] = 1;
	a[16] = 0x20; a[17] = 0x01; a[18] = 0x0d; a[19] = 0xb8; a[31] = 2;
	a[32] = 0xc8; a[33] = 0x22; a[34] = 0x4c; a[35] = 0x2c;
	/* a NOOP TLV (type 4) of 9 bytes: skipped */
	a[36] = 0x04; a[37] = 0; a[38] = 9;
	n = v2_build(h, 0x21, 0x21, a, sizeof(a));
	check_valid(h, n, &hdr);
	assert_false(hdr.local);
	assert_string_equal(addr_text(&hdr.src, t, sizeof(t)), "[2001:db8::1]:51234");
	assert_string_equal(addr_text(&hdr.dst, t, sizeof(t)), "[2001:db8::2]:19500");
}

/* LOCAL (a health check from the balancer itself): its own address stands. */
static void
test_v2_local(void **state)
{
	unsigned char       h[64], a[12] = { 0 };
	struct proxy_header hdr;
	size_t              n;

	(void)state;
	n = v2_build(h, 0x20, 0x00, NULL, 0);
	check_valid(h, n, &hdr);
	assert_true(hdr.local);
	/* LOCAL may still carry an address block: skipped, not read */
	n = v2_build(h, 0x20, 0x11, a, sizeof(a));
	check_valid(h, n, &hdr);
	assert_true(hdr.local);
}

static void
test_v2_other_families_are_local(void **state)
{
	unsigned char       h[300], a[216] = { 0 };
	struct proxy_header hdr;

	(void)state;
	check_valid(h, v2_build(h, 0x21, 0x00, NULL, 0), &hdr);        /* UNSPEC */
	assert_true(hdr.local);
	check_valid(h, v2_build(h, 0x21, 0x12, a, 12), &hdr);          /* UDP4 */
	assert_true(hdr.local);
	check_valid(h, v2_build(h, 0x21, 0x31, a, sizeof(a)), &hdr);   /* Unix */
	assert_true(hdr.local);
}

static void
test_v2_oversize(void **state)
{
	static unsigned char h[PROXY_HEADER_MAX + 64];
	static unsigned char a[PROXY_V2_PAYLOAD_MAX + 1];
	struct proxy_header  hdr;
	size_t               n;

	(void)state;
	/* the largest accepted declared length */
	n = v2_build(h, 0x21, 0x11, a, PROXY_V2_PAYLOAD_MAX);
	check_valid(h, n, &hdr);
	/* one more: refused as soon as the length is read, not buffered */
	n = v2_build(h, 0x21, 0x11, a, PROXY_V2_PAYLOAD_MAX + 1);
	check_bad(h, n, PROXY_V2_FIXED);
	h[14] = 0xff;
	h[15] = 0xff;
	check_bad(h, PROXY_V2_FIXED, PROXY_V2_FIXED);
}

static void
test_v2_bad_fields(void **state)
{
	unsigned char h[128], a[36] = { 0 };

	(void)state;
	/* version 1 in the binary form, and version 3 */
	check_bad(h, v2_build(h, 0x11, 0x11, a, 12), 13);
	check_bad(h, v2_build(h, 0x31, 0x11, a, 12), 13);
	/* commands other than LOCAL and PROXY */
	check_bad(h, v2_build(h, 0x22, 0x11, a, 12), 16);
	check_bad(h, v2_build(h, 0x2f, 0x11, a, 12), 16);
	/* families and transports that do not exist */
	check_bad(h, v2_build(h, 0x21, 0x41, a, 12), 16);
	check_bad(h, v2_build(h, 0x21, 0x13, a, 12), 16);
	/* address blocks shorter than their family: truncated */
	check_bad(h, v2_build(h, 0x21, 0x11, a, 11), 16 + 11);
	check_bad(h, v2_build(h, 0x21, 0x21, a, 35), 16 + 35);
	check_bad(h, v2_build(h, 0x21, 0x21, a, 12), 16 + 12);
}

/* A header cut short is only ever "more": the caller's deadline ends it. */
static void
test_truncated_is_more(void **state)
{
	const char         *h = "PROXY TCP4 192.0.2.1 198.51.100.2 51234 19500\r\n";
	unsigned char       v2[64], a[12] = { 0 };
	struct proxy_header hdr;
	size_t              used;

	(void)state;
	assert_int_equal(proxy_parse(h, strlen(h) - 1, &used, &hdr), PROXY_MORE);
	assert_int_equal(proxy_parse(v2, v2_build(v2, 0x21, 0x11, a, 12) - 1, &used, &hdr),
	    PROXY_MORE);
	assert_int_equal(proxy_parse("", 0, &used, &hdr), PROXY_MORE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_longest),
		cmocka_unit_test(test_v1_oversize),
		cmocka_unit_test(test_v1_bad_fields),
		cmocka_unit_test(test_wrong_signature),
		cmocka_unit_test(test_v2_tcp4),
		cmocka_unit_test(test_v2_tcp6_with_tlvs),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_other_families_are_local),
		cmocka_unit_test(test_v2_oversize),
		cmocka_unit_test(test_v2_bad_fields),
		cmocka_unit_test(test_truncated_is_more),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
