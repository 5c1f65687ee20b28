/*
 * test_acl.c — unit tests for shared/acl.c: entries of every prefix length
 * for IPv4 and IPv6 with the boundary addresses just inside and just
 * outside, "all", first match wins, IPv4-mapped IPv6 peers, the texts the
 * entries print as, and the entries refused (host bits past the prefix,
 * bad prefixes, names, too many).
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

#include "acl.h"

static struct sockaddr_storage peer;

static const struct sockaddr *
v4(const char *text)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer;

	memset(&peer, 0, sizeof(peer));
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	return (const struct sockaddr *)&peer;
}

static const struct sockaddr *
v6(const char *text)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&peer;

	memset(&peer, 0, sizeof(peer));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	return (const struct sockaddr *)&peer;
}

static const struct sockaddr *
raw(int family, const uint8_t *addr)
{
	memset(&peer, 0, sizeof(peer));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&peer;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&peer;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addr, 16);
	}
	return (const struct sockaddr *)&peer;
}

static void
one(struct acl *list, const char *text)
{
	char err[256] = "";

	memset(list, 0, sizeof(*list));
	if (acl_add(list, text, true, 1, err, sizeof(err)) == -1)
		fail_msg("'%s' refused: %s", text, err);
}

/* Flips bit (0 = most significant) of addr. */
static void
flip(uint8_t *addr, unsigned bit)
{
	addr[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
}

/*
 * For every prefix length n of a family: the network of a busy address
 * (all ones past n cleared) matches itself, its last address (host bits
 * all ones), and not the address with bit n-1 flipped (just outside).
 */
static void
check_every_prefix(int family, unsigned bits)
{
	static struct acl list;

	for (unsigned n = 0; n <= bits; n++) {
		uint8_t net[16], last[16], out[16];
		char    text[ACL_TEXT_MAX + 8], host[INET6_ADDRSTRLEN];

		memset(net, 0xa5, sizeof(net));
		for (unsigned b = n; b < bits; b++)
			net[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
		memcpy(last, net, sizeof(last));
		for (unsigned b = n; b < bits; b++)
			last[b / 8] |= (uint8_t)(0x80 >> (b % 8));
		inet_ntop(family, net, host, sizeof(host));
		snprintf(text, sizeof(text), "%s/%u", host, n);
		one(&list, text);
		assert_int_equal(list.e[0].prefix, n);
		assert_int_equal(acl_match(&list, raw(family, net)), 0);
		assert_int_equal(acl_match(&list, raw(family, last)), 0);
		if (n > 0) {
			memcpy(out, net, sizeof(out));
			flip(out, n - 1);
			assert_int_equal(acl_match(&list, raw(family, out)), -1);
			memcpy(out, last, sizeof(out));
			flip(out, n - 1);
			assert_int_equal(acl_match(&list, raw(family, out)), -1);
		}
		/* an entry of one family never matches the other */
		assert_int_equal(acl_match(&list, family == AF_INET ? v6("::1") : v4("1.2.3.4")), -1);
	}
}

static void
test_every_prefix_v4(void **state)
{
	(void)state;
	check_every_prefix(AF_INET, 32);
}

static void
test_every_prefix_v6(void **state)
{
	(void)state;
	check_every_prefix(AF_INET6, 128);
}

static void
test_single_addresses(void **state)
{
	static struct acl list;

	(void)state;
	one(&list, "192.168.1.7");
	assert_int_equal(list.e[0].prefix, 32);
	assert_int_equal(acl_match(&list, v4("192.168.1.7")), 0);
	assert_int_equal(acl_match(&list, v4("192.168.1.6")), -1);
	assert_int_equal(acl_match(&list, v4("192.168.1.8")), -1);
	one(&list, "2001:db8::1");
	assert_int_equal(list.e[0].prefix, 128);
	assert_int_equal(acl_match(&list, v6("2001:db8::1")), 0);
	assert_int_equal(acl_match(&list, v6("2001:db8::2")), -1);
}

static void
test_all(void **state)
{
	static struct acl list;

	(void)state;
	one(&list, "all");
	assert_int_equal(list.e[0].family, ACL_ALL);
	assert_int_equal(acl_match(&list, v4("0.0.0.0")), 0);
	assert_int_equal(acl_match(&list, v4("255.255.255.255")), 0);
	assert_int_equal(acl_match(&list, v6("::")), 0);
	assert_int_equal(acl_match(&list, v6("ffff::1")), 0);
}

/* The example: allow .1, deny .3, allow the /8, deny the rest. */
static void
test_first_match_wins(void **state)
{
	static struct acl list;
	char              err[256];

	(void)state;
	memset(&list, 0, sizeof(list));
	assert_int_equal(acl_add(&list, "127.0.0.1", true, 1, err, sizeof(err)), 0);
	assert_int_equal(acl_add(&list, "127.0.0.3/32", false, 2, err, sizeof(err)), 0);
	assert_int_equal(acl_add(&list, "127.0.0.0/8", true, 3, err, sizeof(err)), 0);
	assert_int_equal(acl_add(&list, "all", false, 4, err, sizeof(err)), 0);
	assert_int_equal(acl_match(&list, v4("127.0.0.1")), 0);
	assert_true(acl_allows(&list, v4("127.0.0.1")));
	assert_int_equal(acl_match(&list, v4("127.0.0.3")), 1);
	assert_false(acl_allows(&list, v4("127.0.0.3")));
	assert_int_equal(acl_match(&list, v4("127.0.0.2")), 2);
	assert_true(acl_allows(&list, v4("127.0.0.2")));
	assert_int_equal(acl_match(&list, v4("10.9.9.9")), 3);
	assert_false(acl_allows(&list, v4("10.9.9.9")));
	assert_false(acl_allows(&list, v6("::1")));
	/* a deny before a wider allow shadows it, whatever follows */
	memset(&list, 0, sizeof(list));
	assert_int_equal(acl_add(&list, "10.0.0.0/8", false, 1, err, sizeof(err)), 0);
	assert_int_equal(acl_add(&list, "10.1.0.0/16", true, 2, err, sizeof(err)), 0);
	assert_false(acl_allows(&list, v4("10.1.2.3")));
}

static void
test_empty_and_unmatched_allow(void **state)
{
	static struct acl list;

	(void)state;
	memset(&list, 0, sizeof(list));
	assert_int_equal(acl_match(&list, v4("1.2.3.4")), -1);
	assert_true(acl_allows(&list, v4("1.2.3.4")));
	one(&list, "10.0.0.0/8");
	list.e[0].allow = false;
	assert_true(acl_allows(&list, v4("11.0.0.1")));     /* nothing matched: allowed */
	assert_false(acl_allows(&list, v4("10.0.0.1")));
}

static void
test_mapped(void **state)
{
	static struct acl list;
	char              err[256];

	(void)state;
	one(&list, "127.0.0.0/8");
	assert_int_equal(acl_match(&list, v6("::ffff:127.0.0.2")), 0);
	assert_int_equal(acl_match(&list, v6("::ffff:128.0.0.2")), -1);
	/* not mapped: the compatible form and a lookalike elsewhere */
	assert_int_equal(acl_match(&list, v6("::127.0.0.2")), -1);
	assert_int_equal(acl_match(&list, v6("1::ffff:127.0.0.2")), -1);
	/* an IPv6 entry for the mapped range matches it as IPv6 */
	memset(&list, 0, sizeof(list));
	assert_int_equal(acl_add(&list, "::ffff:0:0/96", true, 1, err, sizeof(err)), 0);
	assert_int_equal(acl_match(&list, v6("::ffff:10.1.2.3")), 0);
	assert_int_equal(acl_match(&list, v4("10.1.2.3")), -1);
}

static void
test_list_text(void **state)
{
	static struct acl list;
	char              err[256], text[ACL_TEXT_MAX];

	(void)state;
	memset(&list, 0, sizeof(list));
	assert_int_equal(acl_add(&list, " 10.0.0.0/8\t2001:DB8:0:0::/32  all 1.2.3.4/32 ",
	    false, 7, err, sizeof(err)), 0);
	assert_int_equal(list.n, 4);
	acl_entry_text(&list.e[0], text, sizeof(text));
	assert_string_equal(text, "10.0.0.0/8");
	acl_entry_text(&list.e[1], text, sizeof(text));
	assert_string_equal(text, "2001:db8::/32");
	acl_entry_text(&list.e[2], text, sizeof(text));
	assert_string_equal(text, "all");
	acl_entry_text(&list.e[3], text, sizeof(text));
	assert_string_equal(text, "1.2.3.4");
	assert_false(list.e[3].allow);
	assert_int_equal(list.e[3].line, 7);
}

static void
bad(const char *text, const char *word)
{
	static struct acl list;
	char              err[256] = "";

	memset(&list, 0, sizeof(list));
	one(&list, "1.1.1.1");
	if (acl_add(&list, text, true, 1, err, sizeof(err)) != -1)
		fail_msg("'%s' accepted", text);
	if (strstr(err, word) == NULL)
		fail_msg("'%s': error '%s' does not mention '%s'", text, err, word);
	assert_int_equal(list.n, 1);    /* unchanged, also when a later word fails */
}

static void
test_bad_entries(void **state)
{
	static struct acl list;
	char              err[256];

	(void)state;
	/* host bits past the prefix: refused, with the network named */
	bad("10.1.2.3/8", "write the network, 10.0.0.0/8");
	bad("192.168.1.1/31", "192.168.1.0/31");
	bad("2001:db8::1/64", "2001:db8::/64");
	bad("0.0.0.1/0", "0.0.0.0/0");
	bad("10.0.0.0/33", "from 0 to 32");
	bad("::/129", "from 0 to 128");
	bad("10.0.0.0/", "prefix length");
	bad("10.0.0.0/-1", "prefix length");
	bad("10.0.0.0/08x", "prefix length");
	bad("10.0.0.0/0008", "prefix length");
	bad("10.0.0.0/8/8", "prefix length");
	bad("localhost", "not a numeric");
	bad("10.0.0", "not a numeric");
	bad("[::1]", "not a numeric");
	bad("ALL", "not a numeric");
	bad("/8", "is not an address");
	bad("", "no address");
	bad("   ", "no address");
	bad("10.0.0.1 nonsense", "not a numeric");
	bad("1111111111111111111111111111111111111111111111111111111111111111111111", "too long");
	/* the list is bounded */
	memset(&list, 0, sizeof(list));
	for (int i = 0; i < ACL_MAX; i++)
		assert_int_equal(acl_add(&list, "all", true, 1, err, sizeof(err)), 0);
	assert_int_equal(acl_add(&list, "all", true, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many"));
	assert_int_equal(list.n, ACL_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_prefix_v4),
		cmocka_unit_test(test_every_prefix_v6),
		cmocka_unit_test(test_single_addresses),
		cmocka_unit_test(test_all),
		cmocka_unit_test(test_first_match_wins),
		cmocka_unit_test(test_empty_and_unmatched_allow),
		cmocka_unit_test(test_mapped),
		cmocka_unit_test(test_list_text),
		cmocka_unit_test(test_bad_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
