/*
 * bench_b64.c — strict RFC 4648 base64 decoder (standard alphabet, '='
 * padding, canonical trailing bits) used by hftp-bench to check sampled
 * slice payloads against the file's bytes.
 */
#include "bench.h"

/* Sextet value + 1 of each character; 0: not in the alphabet. */
static const unsigned char b64_rev[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
	['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
	['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
	['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

static int
bench_b64_value(unsigned char ch)
{
	return (int)b64_rev[ch] - 1;
}

long
bench_b64_decode(unsigned char *dst, const char *src, size_t n)
{
	size_t i;
	long out = 0;

	if (n % 4 != 0)
		return -1;
	/* Fast path: whole groups of four alphabet characters (a table look-up
	 * each, one test per group); the last group may be padded. */
	for (i = 0; i + 4 < n; i += 4) {
		const unsigned char *s = (const unsigned char *)src + i;
		unsigned a = b64_rev[s[0]], b = b64_rev[s[1]],
			 c = b64_rev[s[2]], d = b64_rev[s[3]];
		uint32_t v;

		if (!a || !b || !c || !d)
			return -1;
		v = (a - 1) << 18 | (b - 1) << 12 | (c - 1) << 6 | (d - 1);
		dst[out] = (unsigned char)(v >> 16);
		dst[out + 1] = (unsigned char)(v >> 8);
		dst[out + 2] = (unsigned char)v;
		out += 3;
	}
	for (; i < n; i += 4) {
		const unsigned char *s = (const unsigned char *)src + i;
		int last = (i + 4 == n);
		int a = bench_b64_value(s[0]);
		int b = bench_b64_value(s[1]);
		int c;
		int d;

		if (a < 0 || b < 0)
			return -1;
		if (s[2] == '=') {
			/* "xx==": one byte, the low 4 bits of b must be zero */
			if (!last || s[3] != '=' || (b & 0x0f) != 0)
				return -1;
			dst[out++] = (unsigned char)(a << 2 | b >> 4);
			break;
		}
		c = bench_b64_value(s[2]);
		if (c < 0)
			return -1;
		if (s[3] == '=') {
			/* "xxx=": two bytes, the low 2 bits of c must be zero */
			if (!last || (c & 0x03) != 0)
				return -1;
			dst[out++] = (unsigned char)(a << 2 | b >> 4);
			dst[out++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
			break;
		}
		d = bench_b64_value(s[3]);
		if (d < 0)
			return -1;
		dst[out++] = (unsigned char)(a << 2 | b >> 4);
		dst[out++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
		dst[out++] = (unsigned char)((c & 0x03) << 6 | d);
	}
	return out;
}
