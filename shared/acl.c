/*
 * acl.c — address lists (see acl.h): parsing the entries and matching a
 * peer against them, first match wins.  Pure functions, no allocation.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"

static const uint8_t acl_v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Whether the first prefix bits of a and b are equal. */
static bool
acl_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* Whether any bit past prefix is set in addr (of len bytes). */
static bool
acl_host_bits(const uint8_t *addr, size_t len, unsigned prefix)
{
	for (size_t i = prefix / 8; i < len; i++) {
		uint8_t mask = i == prefix / 8 ? (uint8_t)(0xff >> (prefix % 8)) : 0xff;
		if (addr[i] & mask)
			return true;
	}
	return false;
}

/* The digits after '/': 0..max, nothing else; -1 when not. */
static int
acl_parse_prefix(const char *s, unsigned max)
{
	unsigned v = 0;

	if (*s == '\0' || strlen(s) > 3)
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	return v > max ? -1 : (int)v;
}

int
acl_parse_entry(const char *text, struct acl_entry *out, char *err, size_t errlen)
{
	char        host[ACL_TEXT_MAX];
	const char *slash = strchr(text, '/');
	size_t      hlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned    max;
	int         prefix;

	memset(out, 0, sizeof(*out));
	if (strcmp(text, "all") == 0) {
		out->family = ACL_ALL;
		return 0;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		snprintf(err, errlen, "'%.*s' is not an address, ADDR/PREFIX or 'all'",
		    ACL_TEXT_MAX, text);
		return -1;
	}
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = ACL_V4;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = ACL_V6;
		max = 128;
	} else {
		snprintf(err, errlen, "'%s' is not a numeric IPv4 or IPv6 address", host);
		return -1;
	}
	prefix = slash != NULL ? acl_parse_prefix(slash + 1, max) : (int)max;
	if (prefix == -1) {
		snprintf(err, errlen, "'%.*s': the prefix length must be a number from 0 to %u",
		    ACL_TEXT_MAX, text, max);
		return -1;
	}
	out->prefix = (uint8_t)prefix;
	if (acl_host_bits(out->addr, max / 8, (unsigned)prefix)) {
		char net[ACL_TEXT_MAX];

		for (unsigned i = 0; i < max / 8; i++)
			if (i >= (unsigned)prefix / 8)
				out->addr[i] &= i == (unsigned)prefix / 8 ?
				    (uint8_t)(0xff << (8 - prefix % 8)) : 0;
		acl_entry_text(out, net, sizeof(net));
		snprintf(err, errlen, "'%.*s' has bits set past its prefix: "
		    "write the network, %s, or the address alone", ACL_TEXT_MAX, text, net);
		return -1;
	}
	return 0;
}

int
acl_add(struct acl *list, const char *text, bool allow, unsigned line,
    char *err, size_t errlen)
{
	int         n = list->n;
	const char *p = text;
	char        word[ACL_TEXT_MAX + 1];

	for (;;) {
		size_t len;

		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		len = strcspn(p, " \t");
		if (n == ACL_MAX) {
			snprintf(err, errlen, "too many address entries (at most %d)", ACL_MAX);
			return -1;
		}
		if (len >= sizeof(word)) {
			snprintf(err, errlen, "'%.*s...' is too long for an address",
			    ACL_TEXT_MAX / 2, p);
			return -1;
		}
		memcpy(word, p, len);
		word[len] = '\0';
		if (acl_parse_entry(word, &list->e[n], err, errlen) == -1)
			return -1;
		list->e[n].allow = allow;
		list->e[n].line = line;
		n++;
		p += len;
	}
	if (n == list->n) {
		snprintf(err, errlen, "no address given");
		return -1;
	}
	list->n = n;
	return 0;
}

int
acl_match(const struct acl *list, const struct sockaddr *sa)
{
	const uint8_t *v4 = NULL, *v6 = NULL;

	if (sa->sa_family == AF_INET)
		v4 = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6) {
		v6 = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (memcmp(v6, acl_v4mapped, sizeof(acl_v4mapped)) == 0)
			v4 = v6 + sizeof(acl_v4mapped);
	}
	for (int i = 0; i < list->n; i++) {
		const struct acl_entry *e = &list->e[i];

		if (e->family == ACL_ALL ||
		    (e->family == ACL_V4 && v4 != NULL && acl_prefix_equal(e->addr, v4, e->prefix)) ||
		    (e->family == ACL_V6 && v6 != NULL && acl_prefix_equal(e->addr, v6, e->prefix)))
			return i;
	}
	return -1;
}

bool
acl_allows(const struct acl *list, const struct sockaddr *sa)
{
	int i = acl_match(list, sa);

	return i == -1 || list->e[i].allow;
}

void
acl_entry_text(const struct acl_entry *e, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (e->family == ACL_ALL) {
		snprintf(buf, len, "all");
		return;
	}
	inet_ntop(e->family == ACL_V4 ? AF_INET : AF_INET6, e->addr, host, sizeof(host));
	if (e->prefix == (e->family == ACL_V4 ? 32 : 128))
		snprintf(buf, len, "%s", host);
	else
		snprintf(buf, len, "%s/%u", host, (unsigned)e->prefix);
}
