/*
 * proxy.h — the PROXY protocol header (HAProxy's, versions 1 and 2) that a
 * load balancer puts before the client's first byte on listeners marked
 * proxy_protocol.  The parser is a pure function over the bytes received so
 * far: no I/O, no state between calls.  It says "need more", "here is the
 * header and its length", or "bad" as soon as the bytes seen prove it, so a
 * plain client on a PROXY listener is refused at its first byte.
 */
#ifndef HFTPD_PROXY_H
#define HFTPD_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* v1: the whole line, "PROXY" to CR LF, is at most 107 bytes (the spec's bound). */
#define PROXY_V1_MAX            107
/* v2: a 16-byte fixed part, then its declared length of addresses and TLVs. */
#define PROXY_V2_FIXED          16
/*
 * The declared length we accept: the largest address block (two Unix
 * paths, 216 bytes) plus room for the TLVs a balancer adds (unique id,
 * authority, CRC, SSL details).  A longer one is refused, not buffered.
 */
#define PROXY_V2_PAYLOAD_MAX    1024
#define PROXY_HEADER_MAX        (PROXY_V2_FIXED + PROXY_V2_PAYLOAD_MAX)

enum proxy_result {
	PROXY_MORE,     /* a valid prefix: wait for more bytes */
	PROXY_DONE,     /* a complete header of *used bytes */
	PROXY_BAD       /* not a valid header; the reason is in hdr->error */
};

struct proxy_header {
	int                     version;    /* 1 or 2 */
	/*
	 * The balancer speaks for itself (v1 UNKNOWN, v2 LOCAL, or a family
	 * other than TCP over IPv4/IPv6): the connection's own addresses stand.
	 */
	bool                    local;
	struct sockaddr_storage src;        /* the real client, unless local */
	struct sockaddr_storage dst;
	const char             *error;      /* static text, with PROXY_BAD */
};

/*
 * Parses the header at the start of data[0, len).  On PROXY_DONE, *used is
 * the header's length (the request bytes after it are the caller's);
 * otherwise it is 0.
 */
enum proxy_result proxy_parse(const void *data, size_t len, size_t *used,
	    struct proxy_header *hdr);

#endif
