/*
 * proxy.c — the PROXY protocol header parser (see proxy.h).  Version 1 is
 * one text line:
 *
 *   PROXY TCP4 192.0.2.1 198.51.100.2 51234 19500\r\n
 *   PROXY TCP6 2001:db8::1 2001:db8::2 51234 19500\r\n
 *   PROXY UNKNOWN ...\r\n
 *
 * Version 2 is binary: a 12-byte signature, a version/command byte, a
 * family/transport byte, a 16-bit big-endian length, then that many bytes of
 * addresses (and TLVs, which hftpd skips).  Both are judged on the bytes at
 * hand: each prefix of a valid header is PROXY_MORE, and a byte that no
 * valid header could have there is PROXY_BAD at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "proxy.h"

#define PROXY_V1_PREFIX         "PROXY "
#define PROXY_V1_PREFIX_LEN     (sizeof(PROXY_V1_PREFIX) - 1)
/* "PROXY TCP4 SRC DST SPORT DPORT": six words */
#define PROXY_V1_WORDS          6
#define PROXY_PORT_DIGITS_MAX   5

static const unsigned char proxy_v2_sig[] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
#define PROXY_V2_SIG_LEN        sizeof(proxy_v2_sig)

/* The v2 fixed part: signature, then these bytes. */
#define PROXY_V2_VERSION        0x20    /* high nibble of byte 12 */
#define PROXY_V2_CMD_LOCAL      0x0
#define PROXY_V2_CMD_PROXY      0x1
#define PROXY_V2_FAM_TCP4       0x11
#define PROXY_V2_FAM_TCP6       0x21
#define PROXY_V2_AF_MAX         0x3     /* UNSPEC, INET, INET6, UNIX */
#define PROXY_V2_PROTO_MAX      0x2     /* UNSPEC, STREAM, DGRAM */
/* Address blocks: two addresses, then two 16-bit ports. */
#define PROXY_V2_TCP4_LEN       (2 * 4 + 2 * 2)
#define PROXY_V2_TCP6_LEN       (2 * 16 + 2 * 2)

static enum proxy_result
proxy_bad(struct proxy_header *hdr, const char *why)
{
	hdr->error = why;
	return PROXY_BAD;
}

/* Decimal 0..65535, no sign, no leading zero; -1 when not. */
static int
proxy_v1_port(const char *s)
{
	size_t n = strlen(s);
	long   v = 0;

	if (n == 0 || n > PROXY_PORT_DIGITS_MAX || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v > UINT16_MAX ? -1 : (int)v;
}

/* One v1 address and port into ss; 0 / -1. */
static int
proxy_v1_addr(int family, const char *addr, const char *port,
    struct sockaddr_storage *ss)
{
	int p = proxy_v1_port(port);

	if (p == -1)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		return inet_pton(AF_INET, addr, &sin->sin_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		return inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1 ? 0 : -1;
	}
}

/* The words of a complete v1 line (CR LF cut off), split on single spaces. */
static enum proxy_result
proxy_v1_line(char *line, struct proxy_header *hdr)
{
	char *word[PROXY_V1_WORDS];
	int   nwords = 0, family;

	for (char *s = line;; s++) {
		if (nwords == PROXY_V1_WORDS)
			return proxy_bad(hdr, "v1: too many fields");
		word[nwords++] = s;
		if ((s = strchr(s, ' ')) == NULL)
			break;
		*s = '\0';
		/* UNKNOWN may carry anything after it: it is not read */
		if (nwords == 2 && strcmp(word[1], "UNKNOWN") == 0)
			break;
	}
	if (nwords >= 2 && strcmp(word[1], "UNKNOWN") == 0) {
		hdr->local = true;
		return PROXY_DONE;
	}
	if (nwords < 2)
		return proxy_bad(hdr, "v1: no protocol");
	if (strcmp(word[1], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(word[1], "TCP6") == 0)
		family = AF_INET6;
	else
		return proxy_bad(hdr, "v1: unknown protocol");
	if (nwords != PROXY_V1_WORDS)
		return proxy_bad(hdr, "v1: missing fields");
	if (proxy_v1_addr(family, word[2], word[4], &hdr->src) == -1 ||
	    proxy_v1_addr(family, word[3], word[5], &hdr->dst) == -1)
		return proxy_bad(hdr, "v1: bad address or port");
	return PROXY_DONE;
}

static enum proxy_result
proxy_v1(const unsigned char *d, size_t len, size_t *used, struct proxy_header *hdr)
{
	char   line[PROXY_V1_MAX];
	/* CR LF included the line is at most PROXY_V1_MAX: its CR comes before */
	size_t n = len < PROXY_V1_MAX - 1 ? len : PROXY_V1_MAX - 1;

	hdr->version = 1;
	if (memcmp(d, PROXY_V1_PREFIX, n < PROXY_V1_PREFIX_LEN ? n : PROXY_V1_PREFIX_LEN) != 0)
		return proxy_bad(hdr, "wrong signature");
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\r') {
			if (i + 1 == len)
				return PROXY_MORE;
			if (d[i + 1] != '\n')
				return proxy_bad(hdr, "v1: CR without LF");
			memcpy(line, d, i);
			line[i] = '\0';
			if (proxy_v1_line(line, hdr) == PROXY_BAD)
				return PROXY_BAD;
			*used = i + 2;
			return PROXY_DONE;
		}
		if (d[i] < 0x20 || d[i] > 0x7e)
			return proxy_bad(hdr, "v1: control byte in the line");
	}
	if (len >= PROXY_V1_MAX - 1)
		return proxy_bad(hdr, "v1: longer than 107 bytes");
	return PROXY_MORE;
}

static void
proxy_v2_inet(const unsigned char *a, struct proxy_header *hdr)
{
	struct sockaddr_in *src = (struct sockaddr_in *)&hdr->src;
	struct sockaddr_in *dst = (struct sockaddr_in *)&hdr->dst;

	memset(&hdr->src, 0, sizeof(hdr->src));
	memset(&hdr->dst, 0, sizeof(hdr->dst));
	src->sin_family = dst->sin_family = AF_INET;
	memcpy(&src->sin_addr, a, 4);
	memcpy(&dst->sin_addr, a + 4, 4);
	/* ports are in network order on the wire, as in sockaddr */
	memcpy(&src->sin_port, a + 8, 2);
	memcpy(&dst->sin_port, a + 10, 2);
}

static void
proxy_v2_inet6(const unsigned char *a, struct proxy_header *hdr)
{
	struct sockaddr_in6 *src = (struct sockaddr_in6 *)&hdr->src;
	struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&hdr->dst;

	memset(&hdr->src, 0, sizeof(hdr->src));
	memset(&hdr->dst, 0, sizeof(hdr->dst));
	src->sin6_family = dst->sin6_family = AF_INET6;
	memcpy(&src->sin6_addr, a, 16);
	memcpy(&dst->sin6_addr, a + 16, 16);
	memcpy(&src->sin6_port, a + 32, 2);
	memcpy(&dst->sin6_port, a + 34, 2);
}

static enum proxy_result
proxy_v2(const unsigned char *d, size_t len, size_t *used, struct proxy_header *hdr)
{
	unsigned cmd, fam;
	size_t   plen;

	hdr->version = 2;
	if (memcmp(d, proxy_v2_sig, len < PROXY_V2_SIG_LEN ? len : PROXY_V2_SIG_LEN) != 0)
		return proxy_bad(hdr, "wrong signature");
	if (len > PROXY_V2_SIG_LEN && (d[12] & 0xf0) != PROXY_V2_VERSION)
		return proxy_bad(hdr, "v2: unsupported version");
	if (len < PROXY_V2_FIXED)
		return PROXY_MORE;
	cmd = d[12] & 0x0f;
	fam = d[13];
	plen = (size_t)d[14] << 8 | d[15];
	if (cmd != PROXY_V2_CMD_LOCAL && cmd != PROXY_V2_CMD_PROXY)
		return proxy_bad(hdr, "v2: unknown command");
	if ((fam >> 4) > PROXY_V2_AF_MAX || (fam & 0x0f) > PROXY_V2_PROTO_MAX)
		return proxy_bad(hdr, "v2: unknown address family");
	if (plen > PROXY_V2_PAYLOAD_MAX)
		return proxy_bad(hdr, "v2: declared length too large");
	if (len < PROXY_V2_FIXED + plen)
		return PROXY_MORE;
	if (cmd == PROXY_V2_CMD_LOCAL) {
		hdr->local = true;
		*used = PROXY_V2_FIXED + plen;
		return PROXY_DONE;
	}
	if (fam == PROXY_V2_FAM_TCP4) {
		if (plen < PROXY_V2_TCP4_LEN)
			return proxy_bad(hdr, "v2: IPv4 address block too short");
		proxy_v2_inet(d + PROXY_V2_FIXED, hdr);
	} else if (fam == PROXY_V2_FAM_TCP6) {
		if (plen < PROXY_V2_TCP6_LEN)
			return proxy_bad(hdr, "v2: IPv6 address block too short");
		proxy_v2_inet6(d + PROXY_V2_FIXED, hdr);
	} else
		hdr->local = true;  /* UNSPEC, UDP, Unix: the real endpoints stand */
	*used = PROXY_V2_FIXED + plen;
	return PROXY_DONE;
}

enum proxy_result
proxy_parse(const void *data, size_t len, size_t *used, struct proxy_header *hdr)
{
	const unsigned char *d = data;

	memset(hdr, 0, sizeof(*hdr));
	*used = 0;
	if (len == 0)
		return PROXY_MORE;
	if (d[0] == PROXY_V1_PREFIX[0])
		return proxy_v1(d, len, used, hdr);
	if (d[0] == proxy_v2_sig[0])
		return proxy_v2(d, len, used, hdr);
	return proxy_bad(hdr, "wrong signature");
}
