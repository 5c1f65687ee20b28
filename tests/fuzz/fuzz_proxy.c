/*
 * fuzz_proxy.c — libFuzzer harness for worker/proxy.c, the PROXY protocol
 * header parser.  For any input: the parser reads only data[0, size) (an
 * exact-size heap block, so AddressSanitizer sees any byte past it); DONE
 * reports a length inside the input and a family it can name; BAD gives a
 * reason; and the answer is consistent with every prefix: a prefix of a
 * complete header is MORE, a prefix of a refused one is MORE or BAD, and
 * once a prefix is refused every longer one is too.
 *
 * Built and run by `make fuzz` (from the repo root).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header hdr;
	enum proxy_result   whole, r;
	unsigned char      *copy;
	size_t              used, whole_used, k;

	copy = malloc(size + !size);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	whole = proxy_parse(copy, size, &whole_used, &hdr);
	if (whole == PROXY_DONE) {
		if (whole_used == 0 || whole_used > size || whole_used > PROXY_HEADER_MAX)
			abort();
		if (!hdr.local && hdr.src.ss_family != AF_INET && hdr.src.ss_family != AF_INET6)
			abort();
		/* the header alone parses the same */
		if (proxy_parse(copy, whole_used, &used, &hdr) != PROXY_DONE || used != whole_used)
			abort();
	} else if (whole_used != 0 || (whole == PROXY_BAD && hdr.error == NULL))
		abort();
	/* Prefixes (up to the header's bound): monotone answers. */
	for (k = 0; k < size && k <= PROXY_HEADER_MAX; k++) {
		r = proxy_parse(copy, k, &used, &hdr);
		if (whole == PROXY_MORE && r != PROXY_MORE)
			abort();
		if (whole == PROXY_DONE && k < whole_used && r != PROXY_MORE)
			abort();
		if (whole == PROXY_BAD && r == PROXY_DONE)
			abort();
	}
	free(copy);
	return 0;
}
