/*
 * base64.c — owns RFC 4648 base64 encoding (standard alphabet, '='
 * padding, no line breaks): the portable scalar encoder, the SSSE3,
 * AVX2 and AVX-512 VBMI encoders, and the one-time choice between them
 * behind base64_encode().
 *
 * Implementation choice: the first call to base64_encode() or
 * base64_impl_name() picks the fastest encoder the CPU (and OS) supports
 * and caches it; later calls cost one atomic load and an indirect call.
 * The cached choice is inherited across fork(), which is correct because
 * the child runs on the same CPU.
 *
 * Environment override (for tests and benchmarks): HFTPD_BASE64=scalar,
 * ssse3, avx2 or avx512vbmi forces that encoder if the CPU supports it; an unknown or
 * unsupported value is ignored (automatic choice).  It is read once, at
 * the moment the choice is made.
 *
 * SIMD technique (Muła & Lemire, "Faster Base64 Encoding and Decoding
 * using AVX2 Instructions"): every 12 input bytes are shuffled into a
 * 16-byte lane as four 32-bit words, each holding one 3-byte group; the
 * four 6-bit fields of each word are moved to the low bits of the four
 * bytes with two 16-bit multiplies; the 6-bit values are then turned into
 * ASCII by adding a per-range offset looked up with pshufb.  SIMD loops
 * only run while a full vector load stays inside src[0, n); the remaining
 * bytes (and the padding) go through the scalar encoder, so no encoder
 * reads past src + n or writes past dst + BASE64_ENCODED_LEN(n).
 */
#include "base64.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define BASE64_X86 1
#include <immintrin.h>
#else
#define BASE64_X86 0
#endif

/* Names the encoder to use instead of the automatic choice. */
#define BASE64_ENV_OVERRIDE	"HFTPD_BASE64"

/* ---------------------------------------------------------------- scalar */

static const char alphabet[64] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * pairs[2*i], pairs[2*i+1] are the two characters for the 12-bit value i,
 * so one lookup emits two output characters.  Built by string-literal
 * concatenation so it is a compile-time constant (no init, no race):
 * B64_ROW(c) is the 64 pairs whose first character is c.
 */
#define B64_ROW(c) \
	c "A" c "B" c "C" c "D" c "E" c "F" c "G" c "H" \
	c "I" c "J" c "K" c "L" c "M" c "N" c "O" c "P" \
	c "Q" c "R" c "S" c "T" c "U" c "V" c "W" c "X" \
	c "Y" c "Z" c "a" c "b" c "c" c "d" c "e" c "f" \
	c "g" c "h" c "i" c "j" c "k" c "l" c "m" c "n" \
	c "o" c "p" c "q" c "r" c "s" c "t" c "u" c "v" \
	c "w" c "x" c "y" c "z" c "0" c "1" c "2" c "3" \
	c "4" c "5" c "6" c "7" c "8" c "9" c "+" c "/"

/* Values of 12 bits: one entry of pairs each. */
#define BASE64_PAIR_VALUES	4096

/* 8192 characters plus the literal's terminating NUL (never used). */
static const char pairs[2 * BASE64_PAIR_VALUES + 1] =
	B64_ROW("A") B64_ROW("B") B64_ROW("C") B64_ROW("D")
	B64_ROW("E") B64_ROW("F") B64_ROW("G") B64_ROW("H")
	B64_ROW("I") B64_ROW("J") B64_ROW("K") B64_ROW("L")
	B64_ROW("M") B64_ROW("N") B64_ROW("O") B64_ROW("P")
	B64_ROW("Q") B64_ROW("R") B64_ROW("S") B64_ROW("T")
	B64_ROW("U") B64_ROW("V") B64_ROW("W") B64_ROW("X")
	B64_ROW("Y") B64_ROW("Z") B64_ROW("a") B64_ROW("b")
	B64_ROW("c") B64_ROW("d") B64_ROW("e") B64_ROW("f")
	B64_ROW("g") B64_ROW("h") B64_ROW("i") B64_ROW("j")
	B64_ROW("k") B64_ROW("l") B64_ROW("m") B64_ROW("n")
	B64_ROW("o") B64_ROW("p") B64_ROW("q") B64_ROW("r")
	B64_ROW("s") B64_ROW("t") B64_ROW("u") B64_ROW("v")
	B64_ROW("w") B64_ROW("x") B64_ROW("y") B64_ROW("z")
	B64_ROW("0") B64_ROW("1") B64_ROW("2") B64_ROW("3")
	B64_ROW("4") B64_ROW("5") B64_ROW("6") B64_ROW("7")
	B64_ROW("8") B64_ROW("9") B64_ROW("+") B64_ROW("/");

#undef B64_ROW

/* 8 bytes at p as a big-endian integer; memcpy keeps unaligned reads
 * defined (and compiles to a single load). */
static inline uint64_t
base64_load_be64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* Writes the two characters of the 12-bit value v. */
static inline void
base64_put_pair(char *dst, uint64_t v)
{
	memcpy(dst, pairs + 2 * (size_t)(v & (BASE64_PAIR_VALUES - 1)), 2);
}

size_t
base64_encode_scalar(char *dst, const unsigned char *src, size_t n)
{
	char *out = dst;
	size_t i = 0;

	/*
	 * Main loop: 12 input bytes -> 16 characters per iteration, as two
	 * 8-byte big-endian loads of which the top 6 bytes are used.  The
	 * second load reads src[i+6, i+14), hence the i + 14 <= n bound.
	 */
	while (n - i >= 14) {
		uint64_t a = base64_load_be64(src + i) >> 16;
		uint64_t b = base64_load_be64(src + i + 6) >> 16;

		base64_put_pair(out + 0, a >> 36);
		base64_put_pair(out + 2, a >> 24);
		base64_put_pair(out + 4, a >> 12);
		base64_put_pair(out + 6, a);
		base64_put_pair(out + 8, b >> 36);
		base64_put_pair(out + 10, b >> 24);
		base64_put_pair(out + 12, b >> 12);
		base64_put_pair(out + 14, b);
		i += 12;
		out += 16;
	}
	/* Whole 3-byte groups left over: one pair lookup per 12 bits. */
	while (n - i >= 3) {
		uint64_t v = (uint64_t)src[i] << 16 | (uint64_t)src[i + 1] << 8 |
			     src[i + 2];

		base64_put_pair(out, v >> 12);
		base64_put_pair(out + 2, v);
		i += 3;
		out += 4;
	}
	/* Final 1 or 2 bytes, padded with '='. */
	if (n - i == 1) {
		unsigned v = src[i];

		out[0] = alphabet[v >> 2];
		out[1] = alphabet[(v & 0x03) << 4];
		out[2] = '=';
		out[3] = '=';
		out += 4;
	} else if (n - i == 2) {
		unsigned v = (unsigned)src[i] << 8 | src[i + 1];

		out[0] = alphabet[v >> 10];
		out[1] = alphabet[(v >> 4) & 0x3f];
		out[2] = alphabet[(v & 0x0f) << 2];
		out[3] = '=';
		out += 4;
	}
	return (size_t)(out - dst);
}

#if BASE64_X86

/* ----------------------------------------------------------------- SSSE3 */

/*
 * One 16-byte lane: in holds 12 input bytes (in its low 12 bytes, for
 * the SSSE3 path) as groups g0..g3 of 3 bytes b0 b1 b2 each.  Returns the
 * 16 ASCII characters.
 */
__attribute__((target("ssse3")))
static inline __m128i
base64_lane_ssse3(__m128i in)
{
	/*
	 * Each 32-bit word becomes bytes [b1, b0, b2, b1] (memory order), so
	 * as little-endian 16-bit halves: lo = b0:b1, hi = b1:b2 — each
	 * half contains two whole 6-bit fields:
	 *   lo = aaaaaabb bbbb....   (fields a, b)
	 *   hi = ....cccc ccdddddd   (fields c, d)
	 */
	in = _mm_shuffle_epi8(in, _mm_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4,
						 7, 6, 8, 7, 10, 9, 11, 10));
	/*
	 * Fields a and c: mask them, then an unsigned multiply-high by a
	 * power of two is a per-16-bit-lane right shift with a different
	 * count in each half (a: >>10 via *2^6, c: >>6 via *2^10), leaving
	 * a in byte 0 and c in byte 2.
	 */
	__m128i ac = _mm_and_si128(in, _mm_set1_epi32(0x0fc0fc00));
	ac = _mm_mulhi_epu16(ac, _mm_set1_epi32(0x04000040));
	/*
	 * Fields b and d: a low multiply is a per-lane left shift (b: <<4
	 * into byte 1, d: <<8 into byte 3).
	 */
	__m128i bd = _mm_and_si128(in, _mm_set1_epi32(0x003f03f0));
	bd = _mm_mullo_epi16(bd, _mm_set1_epi32(0x01000010));
	__m128i idx = _mm_or_si128(ac, bd);	/* 16 values in 0..63 */

	/*
	 * ASCII = idx + offset, the offset depending on the range:
	 *   0..25 -> +65 ('A'), 26..51 -> +71 ('a' - 26),
	 *   52..61 -> -4 ('0' - 52), 62 -> -19 ('+'), 63 -> -16 ('/').
	 * Saturating idx - 51 gives 0 for 0..51 and 1..12 for 52..63; the
	 * 0..25 range is then moved to class 13 so that a 16-entry pshufb
	 * table holds every offset.
	 */
	__m128i cls = _mm_subs_epu8(idx, _mm_set1_epi8(51));
	__m128i upper = _mm_cmpgt_epi8(_mm_set1_epi8(26), idx);
	cls = _mm_or_si128(cls, _mm_and_si128(upper, _mm_set1_epi8(13)));
	const __m128i offsets = _mm_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4,
					      -4, -4, -4, -19, -16, 65, 0, 0);
	return _mm_add_epi8(idx, _mm_shuffle_epi8(offsets, cls));
}

__attribute__((target("ssse3")))
static size_t
base64_encode_ssse3(char *dst, const unsigned char *src, size_t n)
{
	size_t i = 0, o = 0;

	/* Each step loads 16 bytes but consumes 12. */
	while (n - i >= 16) {
		__m128i in = _mm_loadu_si128((const __m128i *)(const void *)(src + i));

		_mm_storeu_si128((__m128i *)(void *)(dst + o), base64_lane_ssse3(in));
		i += 12;
		o += 16;
	}
	return o + base64_encode_scalar(dst + o, src + i, n - i);
}

/* ------------------------------------------------------------------ AVX2 */

/*
 * How far ahead of its loads the AVX2 loop asks for the source.  The
 * worker encodes a block pread has just written, already in the CPU's
 * cache, where a prefetch costs next to nothing; a source that is not
 * (memory read for the first time, as a mapped file is) meets a hardware
 * prefetcher that stops at each 4 KiB page, and at 16 GB/s the encoder
 * outruns memory latency (cold 64 KiB pieces went from about 3 to 5 GB/s
 * with 2 KiB; 1 and 4 KiB were close, 256-512 B and 8 KiB no better than
 * none).  A prefetch never faults, so one past src + n, into an unmapped
 * page, is harmless (nothing read).
 */
#define BASE64_PREFETCH	2048

/* Same as base64_lane_ssse3, on two independent 16-byte lanes (vpshufb and
 * the multiplies work within each 128-bit half). */
__attribute__((target("avx2")))
static inline __m256i
base64_lanes_avx2(__m256i in)
{
	in = _mm256_shuffle_epi8(in, _mm256_setr_epi8(
		1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
		1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10));
	__m256i ac = _mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00));
	ac = _mm256_mulhi_epu16(ac, _mm256_set1_epi32(0x04000040));
	__m256i bd = _mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0));
	bd = _mm256_mullo_epi16(bd, _mm256_set1_epi32(0x01000010));
	__m256i idx = _mm256_or_si256(ac, bd);

	__m256i cls = _mm256_subs_epu8(idx, _mm256_set1_epi8(51));
	__m256i upper = _mm256_cmpgt_epi8(_mm256_set1_epi8(26), idx);
	cls = _mm256_or_si256(cls, _mm256_and_si256(upper, _mm256_set1_epi8(13)));
	const __m256i offsets = _mm256_setr_epi8(
		71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0,
		71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0);
	return _mm256_add_epi8(idx, _mm256_shuffle_epi8(offsets, cls));
}

/* 24 input bytes at p into the two lanes (p[0..12) low, p[12..24) high),
 * reading p[0, 28). */
__attribute__((target("avx2")))
static inline __m256i
base64_load_24(const unsigned char *p)
{
	__m128i lo = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(p + 12));

	return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

__attribute__((target("avx2")))
static size_t
base64_encode_avx2(char *dst, const unsigned char *src, size_t n)
{
	size_t i = 0, o = 0;

	/* Two independent 24-byte blocks per step for instruction-level
	 * parallelism; the last load of the step reads src[i+36, i+52). */
	while (n - i >= 52) {
		_mm_prefetch((const char *)(src + i) + BASE64_PREFETCH, _MM_HINT_T0);
		__m256i a = base64_lanes_avx2(base64_load_24(src + i));
		__m256i b = base64_lanes_avx2(base64_load_24(src + i + 24));

		_mm256_storeu_si256((__m256i *)(void *)(dst + o), a);
		_mm256_storeu_si256((__m256i *)(void *)(dst + o + 32), b);
		i += 48;
		o += 64;
	}
	if (n - i >= 28) {
		_mm256_storeu_si256((__m256i *)(void *)(dst + o),
				    base64_lanes_avx2(base64_load_24(src + i)));
		i += 24;
		o += 32;
	}
	/* i is a multiple of 3, so the scalar tail pads correctly. */
	return o + base64_encode_scalar(dst + o, src + i, n - i);
}


/* --------------------------------------------------------- AVX-512 VBMI */

/*
 * Muła & Lemire's AVX-512 VBMI encoder: one vpermb spreads 48 input bytes
 * so each 64-bit lane holds two 3-byte groups twice over, one
 * vpmultishiftqb pulls out the eight 6-bit fields of each lane (bit offsets
 * 10, 4, 22, 16, 42, 36, 54, 48), and one vpermb turns the 64 values into
 * ASCII through the alphabet itself.  Each step loads 64 bytes and uses 48,
 * so it runs only while src[i, i + 64) is inside src[0, n); the rest goes
 * through the AVX2 encoder (itself ending in the scalar one).  About 40 %
 * more than AVX2 on 64 KiB pieces of a file in the page cache.
 */

__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static size_t
base64_encode_avx512vbmi(char *dst, const unsigned char *src, size_t n)
{
	size_t i = 0, o = 0;
	const __m512i spread = _mm512_setr_epi32(
		0x01020001, 0x04050304, 0x07080607, 0x0a0b090a,
		0x0d0e0c0d, 0x10110f10, 0x13141213, 0x16171516,
		0x191a1819, 0x1c1d1b1c, 0x1f201e1f, 0x22232122,
		0x25262425, 0x28292728, 0x2b2c2a2b, 0x2e2f2d2e);
	const __m512i shifts = _mm512_set1_epi64(0x3036242a1016040aLL);
	const __m512i lookup = _mm512_loadu_si512((const void *)alphabet);

	while (n - i >= 64) {
		_mm_prefetch((const char *)(src + i) + BASE64_PREFETCH, _MM_HINT_T0);
		__m512i v = _mm512_loadu_si512((const void *)(src + i));

		v = _mm512_permutexvar_epi8(spread, v);
		v = _mm512_multishift_epi64_epi8(shifts, v);
		v = _mm512_permutexvar_epi8(v, lookup);
		_mm512_storeu_si512((void *)(dst + o), v);
		i += 48;
		o += 64;
	}
	return o + base64_encode_avx2(dst + o, src + i, n - i);
}

#endif /* BASE64_X86 */

/* -------------------------------------------------------------- dispatch */

typedef size_t (*encode_fn)(char *, const unsigned char *, size_t);

struct impl {
	const char *name;
	encode_fn   fn;
};

/* Fastest first. */
static const struct impl impls[] = {
#if BASE64_X86
	{ "avx512vbmi", base64_encode_avx512vbmi },
	{ "avx2",   base64_encode_avx2 },
	{ "ssse3",  base64_encode_ssse3 },
#endif
	{ "scalar", base64_encode_scalar },
};

/* The chosen encoder; NULL until the first call.  Concurrent first calls
 * may both resolve, harmlessly: they store the same entry. */
static _Atomic(const struct impl *) active;

static int
base64_impl_supported(const struct impl *im)
{
#if BASE64_X86
	/* __builtin_cpu_supports() also checks that the OS saves the YMM
	 * state (XGETBV), so "avx2" means usable, not just present. */
	__builtin_cpu_init();
	if (strcmp(im->name, "avx512vbmi") == 0)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vbmi");
	if (strcmp(im->name, "avx2") == 0)
		return __builtin_cpu_supports("avx2");
	if (strcmp(im->name, "ssse3") == 0)
		return __builtin_cpu_supports("ssse3");
#endif
	return strcmp(im->name, "scalar") == 0;
}

static const struct impl *
base64_resolve(void)
{
	const char *want = getenv(BASE64_ENV_OVERRIDE);
	const struct impl *pick = NULL;
	size_t k;

	if (want != NULL)
		for (k = 0; k < sizeof impls / sizeof impls[0]; k++)
			if (strcmp(want, impls[k].name) == 0 &&
			    base64_impl_supported(&impls[k]))
				pick = &impls[k];
	for (k = 0; pick == NULL; k++)	/* "scalar" always qualifies */
		if (base64_impl_supported(&impls[k]))
			pick = &impls[k];
	atomic_store_explicit(&active, pick, memory_order_release);
	return pick;
}

static inline const struct impl *
base64_current(void)
{
	const struct impl *im = atomic_load_explicit(&active, memory_order_acquire);

	return im != NULL ? im : base64_resolve();
}

size_t
base64_encode(char *dst, const unsigned char *src, size_t n)
{
	return base64_current()->fn(dst, src, n);
}

const char *
base64_impl_name(void)
{
	return base64_current()->name;
}
