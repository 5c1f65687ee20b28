/*
 * acl.h — address lists: "ADDR", "ADDR/PREFIX" (IPv4 or IPv6) and "all",
 * kept in the order given, matched against a peer's address; the first
 * entry that matches decides.  Used for allow / deny and proxy_trusted.
 *
 * An entry with bits set past its prefix ("10.1.2.3/8") is refused, not
 * masked: it is almost always a typo for a host or for a wider net, and
 * an access list must say what it means.  An IPv4-mapped IPv6 peer
 * (::ffff:a.b.c.d) matches IPv4 entries as a.b.c.d and IPv6 entries as
 * itself.
 */
#ifndef HFTPD_ACL_H
#define HFTPD_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Entries one list holds (allow and deny lines together count as one list). */
#define ACL_MAX         256
/* Room for an entry's text: an IPv6 address, '/' and 3 digits. */
#define ACL_TEXT_MAX    64

enum acl_family { ACL_ALL, ACL_V4, ACL_V6 };

struct acl_entry {
	uint8_t  family;        /* enum acl_family */
	uint8_t  prefix;        /* bits: 0..32 or 0..128 */
	bool     allow;         /* for allow / deny lists */
	uint8_t  addr[16];      /* network order; IPv4 in the first 4 bytes */
	unsigned line;          /* config line that gave it, 0 = none */
};

struct acl {
	int              n;
	struct acl_entry e[ACL_MAX];
};

/* One entry: "all", "ADDR" or "ADDR/PREFIX"; 0 / -1 with err filled. */
int  acl_parse_entry(const char *text, struct acl_entry *out, char *err, size_t errlen);
/*
 * Appends every entry of text (entries separated by blanks), each with
 * allow and line; on error the list is as before.  0 / -1 with err filled.
 */
int  acl_add(struct acl *list, const char *text, bool allow, unsigned line,
	    char *err, size_t errlen);
/* Index of the first entry matching sa (AF_INET / AF_INET6), -1 when none. */
int  acl_match(const struct acl *list, const struct sockaddr *sa);
/* allow / deny: an empty list or no matching entry allows, as nginx. */
bool acl_allows(const struct acl *list, const struct sockaddr *sa);
/* The entry as a config file would spell it ("all", "10.0.0.0/8", "::1"). */
void acl_entry_text(const struct acl_entry *e, char *buf, size_t len);

#endif
