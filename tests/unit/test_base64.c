/*
 * test_base64.c — unit tests for shared/base64.c: RFC 4648 vectors,
 * every length 0..1024 against the scalar encoder and an independent
 * bit-at-a-time reference, unaligned src/dst, guard bytes and guard pages
 * against overruns, for every implementation this CPU can run.
 *
 * base64.h only exposes the scalar encoder directly.  The SIMD encoders
 * are reached through base64_encode() with HFTPD_BASE64 set, which is
 * read once per process, so each forced implementation is exercised in a
 * forked child; this process itself never calls base64_encode(), to keep
 * the choice unresolved for the children.  Children report by exit status
 * (details on stderr) and never touch cmocka state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"

typedef size_t (*encode_fn)(char *, const unsigned char *, size_t);

#define MAX_LEN   1024
#define GUARD     64
#define MAX_OFF   32
#define GUARD_BYTE 0xA5

/* Independent reference: emits one character per 6 bits accumulated. */
static size_t ref_encode(char *dst, const unsigned char *src, size_t n)
{
	static const char al[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0, i;

	for (i = 0; i < n; i++) {
		acc = (acc << 8 | src[i]) & 0xffff;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			dst[o++] = al[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		dst[o++] = al[(acc << (6 - bits)) & 0x3f];
	while (o % 4 != 0)
		dst[o++] = '=';
	return o;
}

/* xorshift64: reproducible data, independent of libc rand(). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_random(unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(rng() >> 56);
}

/* ------------------------------------------------------------------
 * Checks shared by the in-process (scalar) and forked (dispatch) tests.
 * They return a failure count and print the first few failures.
 */

static int failures;

static void fail_at(const char *name, const char *what, size_t n, size_t so,
		    size_t dof)
{
	if (failures++ < 10)
		fprintf(stderr, "base64 %s: %s (n=%zu src_off=%zu dst_off=%zu)\n",
			name, what, n, so, dof);
}

static void check_vectors(encode_fn fn, const char *name)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		/* RFC 4648 section 10 */
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
		/* the last two alphabet entries, '+' (62) and '/' (63) */
		{ "\xfb\xef\xbe", "++++" }, { "\xff\xff\xff", "////" },
	};
	char out[64];
	size_t k;

	for (k = 0; k < sizeof v / sizeof v[0]; k++) {
		size_t n = strlen(v[k].in), len;

		memset(out, GUARD_BYTE, sizeof out);
		len = fn(out, (const unsigned char *)v[k].in, n);
		if (len != strlen(v[k].out) || memcmp(out, v[k].out, len) != 0 ||
		    (unsigned char)out[len] != GUARD_BYTE)
			fail_at(name, v[k].out, n, 0, 0);
	}
}

/* Long runs of the characters at both ends of each offset class, so the
 * SIMD paths (not just the scalar tail) see every class boundary. */
static void check_class_runs(encode_fn fn, const char *name)
{
	/* 6-bit values 0 25 26 51 52 61 62 63 -> "AZaz09+/" */
	static const unsigned char grp[6] = { 0x01, 0x96, 0xb3, 0xd3, 0xdf, 0xbf };
	unsigned char src[240];
	char out[320], want[320];
	size_t i;

	for (i = 0; i < sizeof src; i++)
		src[i] = grp[i % 6];
	if (fn(out, src, sizeof src) != sizeof out ||
	    ref_encode(want, src, sizeof src) != sizeof want ||
	    memcmp(out, want, sizeof out) != 0 || memcmp(out, "AZaz09+/", 8) != 0)
		fail_at(name, "class boundaries", sizeof src, 0, 0);
}

/* One encode at the given offsets inside guarded buffers. */
static void check_one(encode_fn fn, const char *name, const unsigned char *data,
		      size_t n, size_t so, size_t dof)
{
	static unsigned char sbuf[MAX_OFF + 8 * MAX_LEN];
	static char dbuf[GUARD + MAX_OFF + BASE64_ENCODED_LEN(8 * MAX_LEN) + GUARD];
	static char want[BASE64_ENCODED_LEN(8 * MAX_LEN)];
	static char scal[BASE64_ENCODED_LEN(8 * MAX_LEN)];
	size_t elen = BASE64_ENCODED_LEN(n), len, i;
	char *d = dbuf + GUARD + dof;

	memcpy(sbuf + so, data, n);
	memset(dbuf, GUARD_BYTE, sizeof dbuf);
	len = fn(d, sbuf + so, n);
	if (len != elen) {
		fail_at(name, "returned length", n, so, dof);
		return;
	}
	for (i = 0; i < GUARD + dof; i++)
		if ((unsigned char)dbuf[i] != GUARD_BYTE) {
			fail_at(name, "wrote before dst", n, so, dof);
			break;
		}
	for (i = GUARD + dof + elen; i < sizeof dbuf; i++)
		if ((unsigned char)dbuf[i] != GUARD_BYTE) {
			fail_at(name, "wrote past dst + BASE64_ENCODED_LEN(n)", n, so, dof);
			break;
		}
	if (memcmp(sbuf + so, data, n) != 0)
		fail_at(name, "modified src", n, so, dof);
	if (ref_encode(want, data, n) != elen || memcmp(d, want, elen) != 0)
		fail_at(name, "differs from reference", n, so, dof);
	if (base64_encode_scalar(scal, data, n) != elen || memcmp(d, scal, elen) != 0)
		fail_at(name, "differs from scalar", n, so, dof);
}

static void check_lengths(encode_fn fn, const char *name)
{
	static unsigned char data[8 * MAX_LEN];
	size_t n, so, dof;

	/* Every length, fresh random data each time. */
	for (n = 0; n <= MAX_LEN; n++) {
		fill_random(data, n);
		check_one(fn, name, data, n, 0, 0);
	}
	/* Every src/dst misalignment, for lengths around the SIMD block
	 * sizes (12, 24, 48) and their loop-bound edges, plus longer ones. */
	for (n = 0; n <= 160; n++) {
		fill_random(data, n);
		for (so = 0; so < MAX_OFF; so++)
			for (dof = 0; dof < MAX_OFF; dof += 1 + (n > 64) * 6)
				check_one(fn, name, data, n, so, dof);
	}
	for (n = 1000; n < 8 * MAX_LEN; n += 997) {
		fill_random(data, n);
		for (so = 0; so < MAX_OFF; so++)
			check_one(fn, name, data, n, so, (so * 7) % MAX_OFF);
	}
}

/*
 * src ending exactly at an inaccessible page, and dst likewise, so a
 * single byte read or written past the end faults even without ASan.
 */
static void check_guard_pages(encode_fn fn, const char *name)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t span = 4 * pg;	/* room for 4096-byte inputs' output */
	unsigned char *smap, *send;
	char *dmap, *dend, want[BASE64_ENCODED_LEN(2 * MAX_LEN)];
	size_t n;

	smap = mmap(NULL, span + pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dmap = mmap(NULL, span + pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (smap == MAP_FAILED || dmap == MAP_FAILED ||
	    mprotect(smap + span, pg, PROT_NONE) != 0 ||
	    mprotect(dmap + span, pg, PROT_NONE) != 0) {
		fail_at(name, "guard page setup", 0, 0, 0);
		return;
	}
	send = smap + span;
	dend = dmap + span;
	for (n = 0; n <= 2 * MAX_LEN; n++) {
		size_t elen = BASE64_ENCODED_LEN(n);

		fill_random(send - n, n);
		ref_encode(want, send - n, n);
		if (fn(dend - elen, send - n, n) != elen ||
		    memcmp(dend - elen, want, elen) != 0)
			fail_at(name, "guard page run", n, 0, 0);
	}
	munmap(smap, span + pg);
	munmap(dmap, span + pg);
}

/* A chunk of the size the server encodes, and an odd neighbour. */
static void check_big(encode_fn fn, const char *name)
{
	static const size_t sizes[] = { 192 * 1024, 192 * 1024 + 7, 48 * 1024 + 1 };
	size_t k;

	for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t n = sizes[k], elen = BASE64_ENCODED_LEN(n);
		unsigned char *src = malloc(n);
		char *out = malloc(elen), *want = malloc(elen);

		if (src == NULL || out == NULL || want == NULL) {
			fail_at(name, "malloc", n, 0, 0);
		} else {
			fill_random(src, n);
			ref_encode(want, src, n);
			if (fn(out, src, n) != elen || memcmp(out, want, elen) != 0)
				fail_at(name, "large buffer", n, 0, 0);
		}
		free(src);
		free(out);
		free(want);
	}
}

static int check_all(encode_fn fn, const char *name)
{
	failures = 0;
	check_vectors(fn, name);
	check_class_runs(fn, name);
	check_lengths(fn, name);
	check_guard_pages(fn, name);
	check_big(fn, name);
	return failures;
}

/* ------------------------------------------------------------------
 * Forked runs of the dispatching encoder.
 */

/* What base64_encode() should pick on this CPU without an override. */
static const char *expected_auto(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vbmi"))
		return "avx512vbmi";
	if (__builtin_cpu_supports("avx2"))
		return "avx2";
	if (__builtin_cpu_supports("ssse3"))
		return "ssse3";
#endif
	return "scalar";
}

static int cpu_has(const char *impl)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	if (strcmp(impl, "avx512vbmi") == 0)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vbmi");
	if (strcmp(impl, "avx2") == 0)
		return __builtin_cpu_supports("avx2");
	if (strcmp(impl, "ssse3") == 0)
		return __builtin_cpu_supports("ssse3");
#endif
	return strcmp(impl, "scalar") == 0;
}

/*
 * In a child: set (or unset, env == NULL) HFTPD_BASE64, check that the
 * dispatcher picks `expect`, then run every check through base64_encode().
 * With `retarget`, also checks that a later change of the variable does
 * not change an already made choice.
 */
static void run_in_child(const char *env, const char *expect, int retarget)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int bad = 0;

		if (env != NULL)
			setenv("HFTPD_BASE64", env, 1);
		else
			unsetenv("HFTPD_BASE64");
		if (strcmp(base64_impl_name(), expect) != 0) {
			fprintf(stderr, "HFTPD_BASE64=%s: picked %s, expected %s\n",
				env ? env : "(unset)", base64_impl_name(), expect);
			bad = 1;
		}
		bad |= check_all(base64_encode, expect) != 0;
		if (retarget) {
			setenv("HFTPD_BASE64", "scalar", 1);
			if (strcmp(base64_impl_name(), expect) != 0) {
				fprintf(stderr, "choice changed after first use\n");
				bad = 1;
			}
		}
		_exit(bad);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fprintf(stderr, "child (HFTPD_BASE64=%s) killed by signal %d\n",
			env ? env : "(unset)", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_scalar_direct(void **state)
{
	(void)state;
	assert_int_equal(check_all(base64_encode_scalar, "scalar (direct)"), 0);
}

static void test_forced_scalar(void **state)
{
	(void)state;
	run_in_child("scalar", "scalar", 0);
}

static void test_forced_ssse3(void **state)
{
	(void)state;
	if (!cpu_has("ssse3"))
		skip();
	run_in_child("ssse3", "ssse3", 0);
}

static void test_forced_avx2(void **state)
{
	(void)state;
	if (!cpu_has("avx2"))
		skip();
	run_in_child("avx2", "avx2", 0);
}

static void test_forced_avx512vbmi(void **state)
{
	(void)state;
	if (!cpu_has("avx512vbmi"))
		skip();
	run_in_child("avx512vbmi", "avx512vbmi", 0);
}

static void test_auto_choice(void **state)
{
	(void)state;
	run_in_child(NULL, expected_auto(), 1);
}

static void test_unknown_override_ignored(void **state)
{
	(void)state;
	run_in_child("neon", expected_auto(), 0);
}

static void test_reference_self_check(void **state)
{
	char out[16];

	(void)state;
	/* The reference must itself be right for the comparisons to mean
	 * anything. */
	assert_int_equal(ref_encode(out, (const unsigned char *)"foobar", 6), 8);
	assert_memory_equal(out, "Zm9vYmFy", 8);
	assert_int_equal(ref_encode(out, (const unsigned char *)"fooba", 5), 8);
	assert_memory_equal(out, "Zm9vYmE=", 8);
	assert_int_equal(ref_encode(out, (const unsigned char *)"f", 1), 4);
	assert_memory_equal(out, "Zg==", 4);
	assert_int_equal(BASE64_ENCODED_LEN(0), 0);
	assert_int_equal(BASE64_ENCODED_LEN(1), 4);
	assert_int_equal(BASE64_ENCODED_LEN(3), 4);
	assert_int_equal(BASE64_ENCODED_LEN(4), 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_self_check),
		cmocka_unit_test(test_scalar_direct),
		cmocka_unit_test(test_forced_scalar),
		cmocka_unit_test(test_forced_ssse3),
		cmocka_unit_test(test_forced_avx2),
		cmocka_unit_test(test_forced_avx512vbmi),
		cmocka_unit_test(test_auto_choice),
		cmocka_unit_test(test_unknown_override_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
