/*
 * fuzz_base64.c — libFuzzer harness for shared/base64.c: the dispatching
 * encoder (AVX2 on a capable CPU, or whatever HFTPD_BASE64 forces) must
 * produce exactly what the portable scalar encoder produces, return
 * BASE64_ENCODED_LEN(n), and stay inside src[0, n) and
 * dst[0, BASE64_ENCODED_LEN(n)) — both are exact-size heap blocks, so
 * AddressSanitizer reports any byte read or written past them.
 *
 * The first input byte picks a misalignment (0..31) for src and dst; the
 * rest is the data to encode.
 *
 * Build and run (from the repo root):
 *   clang -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
 *      -Wstrict-prototypes -Wmissing-prototypes -g -O1 \
 *      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *      -Ishared tests/fuzz/fuzz_base64.c shared/base64.c -o /tmp/fuzz_base64
 *   /tmp/fuzz_base64 -max_len=8192 -max_total_time=60
 *   HFTPD_BASE64=ssse3 /tmp/fuzz_base64 -max_len=8192 -max_total_time=60
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int announced;
	size_t off, n, elen;
	unsigned char *sblock;
	char *dblock, *want;

	if (!announced) {
		fprintf(stderr, "fuzz_base64: dispatching encoder is %s\n",
			base64_impl_name());
		announced = 1;
	}
	if (size == 0)
		return 0;
	off = data[0] & 31;
	n = size - 1;
	elen = BASE64_ENCODED_LEN(n);

	/* src and dst each end exactly at the end of their heap block. */
	/* (+ !x: never malloc(0), which may return NULL; only when x == 0.) */
	sblock = malloc(off + n + !(off + n));
	dblock = malloc(off + elen + !(off + elen));
	want = malloc(elen + !elen);
	if (sblock == NULL || dblock == NULL || want == NULL)
		abort();
	memcpy(sblock + off, data + 1, n);

	if (base64_encode_scalar(want, sblock + off, n) != elen)
		abort();
	if (base64_encode(dblock + off, sblock + off, n) != elen)
		abort();
	if (memcmp(dblock + off, want, elen) != 0)
		abort();

	free(sblock);
	free(dblock);
	free(want);
	return 0;
}
