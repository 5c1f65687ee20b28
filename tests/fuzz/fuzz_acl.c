/*
 * fuzz_acl.c — libFuzzer harness for shared/acl.c, the address list
 * parser.  The input (a NUL-free prefix of it, as a config value) is added
 * to a list; for any input: an error leaves the list as it was and says
 * why; success adds at least one entry, each with a prefix inside its
 * family's range and no bits set past it; every entry's text parses back
 * to the same entry, and the entry matches its own network address
 * (and "all" matches anything).
 *
 * Built and run by `make fuzz` (from the repo root).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct acl fuzz_list;

/* The entry's own network as a peer address; matching it must find e. */
static void
fuzz_self_match(const struct acl_entry *e)
{
	struct sockaddr_storage ss;
	static struct acl       one;

	memset(&ss, 0, sizeof(ss));
	if (e->family == ACL_V4) {
		ss.ss_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, e->addr, 4);
	} else {
		ss.ss_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, e->addr, 16);
	}
	one.n = 1;
	one.e[0] = *e;
	if (acl_match(&one, (struct sockaddr *)&ss) != 0)
		abort();
}

static void
fuzz_check_entry(const struct acl_entry *e)
{
	struct acl_entry back;
	char             text[ACL_TEXT_MAX], err[256];
	unsigned         bits = e->family == ACL_V4 ? 32 : 128;

	if (e->family > ACL_V6 || (e->family != ACL_ALL && e->prefix > bits))
		abort();
	acl_entry_text(e, text, sizeof(text));
	if (acl_parse_entry(text, &back, err, sizeof(err)) == -1 ||
	    back.family != e->family || back.prefix != e->prefix ||
	    memcmp(back.addr, e->addr, sizeof(back.addr)) != 0)
		abort();
	if (e->family != ACL_ALL)
		fuzz_self_match(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char  *text, err[256];
	int    before;

	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	/* a list partly full, so that the bound is reached now and then */
	fuzz_list.n = size > 0 ? (int)(data[0] % 4) * (ACL_MAX / 4) : 0;
	before = fuzz_list.n;
	err[0] = '\0';
	if (acl_add(&fuzz_list, text, size % 2 == 0, 1, err, sizeof(err)) == -1) {
		if (fuzz_list.n != before || err[0] == '\0')
			abort();
	} else {
		if (fuzz_list.n <= before)
			abort();
		for (int i = before; i < fuzz_list.n; i++)
			fuzz_check_entry(&fuzz_list.e[i]);
	}
	free(text);
	return 0;
}
