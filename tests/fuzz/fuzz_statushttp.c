/*
 * fuzz_statushttp.c — libFuzzer harness for master/statushttp.c, the
 * status listener's request parser.  For any input: the parser reads only
 * data[0, size) (an exact-size heap block, so AddressSanitizer sees any
 * byte past it); a DONE request names a method and a target it knows;
 * and an answer other than MORE never changes as bytes are added: every
 * prefix is MORE or that same answer (with the same request when DONE),
 * so what the master answers does not depend on how the bytes arrived.
 *
 * Built and run by `make fuzz` (from the repo root).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "statushttp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct statushttp_request whole_req, req;
	enum statushttp_result    whole, r;
	char                     *copy;

	copy = malloc(size + !size);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	whole = statushttp_parse(copy, size, &whole_req);
	if (whole == STATUSHTTP_DONE &&
	    (whole_req.method > STATUSHTTP_OTHER || whole_req.target > STATUSHTTP_UNKNOWN ||
	    (whole_req.minor != 0 && whole_req.minor != 1)))
		abort();
	if (whole == STATUSHTTP_TOO_BIG && size < STATUSHTTP_HEAD_MAX)
		abort();
	for (size_t k = 0; k < size; k++) {
		r = statushttp_parse(copy, k, &req);
		if (r == STATUSHTTP_MORE)
			continue;
		if (r != whole)
			abort();
		if (r == STATUSHTTP_DONE && memcmp(&req, &whole_req, sizeof(req)) != 0)
			abort();
	}
	free(copy);
	return 0;
}
