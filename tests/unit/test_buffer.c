/*
 * test_buffer.c — unit tests for shared/buffer.c: the bounded byte buffer.
 * init / free, append / consume, room / tail / commit, compaction (when
 * buffer_room moves data down and when it does not), all-or-nothing append
 * and printf, a long random run checked against a simple model, and the
 * block pool (blocks reused, at most max kept, a detached buffer empty).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"

static void assert_contents(const struct buffer *b, const char *s, size_t n)
{
	assert_int_equal(buffer_len(b), n);
	if (n)
		assert_memory_equal(buffer_head(b), s, n);
}

#define ASSERT_CONTENTS(b, lit) assert_contents((b), (lit), sizeof(lit) - 1)

static void test_init_free(void **state)
{
	struct buffer b;

	(void)state;
	assert_int_equal(buffer_init(&b, 64), 0);
	assert_non_null(b.data);
	assert_int_equal(b.cap, 64);
	assert_int_equal(buffer_len(&b), 0);
	assert_ptr_equal(buffer_head(&b), b.data);
	assert_ptr_equal(buffer_tail(&b), b.data);
	assert_int_equal(buffer_room(&b), 64);
	buffer_free(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	assert_int_equal(buffer_len(&b), 0);
	/* A second free is harmless. */
	buffer_free(&b);
	assert_null(b.data);
}

static void test_init_enomem(void **state)
{
	struct buffer b;

	(void)state;
	/* An impossible size fails cleanly. */
	assert_int_equal(buffer_init(&b, (size_t)1 << 62), -1);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	assert_int_equal(buffer_len(&b), 0);
	buffer_free(&b);
}

static void test_append_consume(void **state)
{
	struct buffer b;

	(void)state;
	assert_int_equal(buffer_init(&b, 32), 0);
	assert_int_equal(buffer_append(&b, "hello", 5), 0);
	ASSERT_CONTENTS(&b, "hello");
	assert_int_equal(buffer_append(&b, " world", 6), 0);
	ASSERT_CONTENTS(&b, "hello world");
	assert_int_equal(buffer_append(&b, "", 0), 0);
	ASSERT_CONTENTS(&b, "hello world");

	buffer_consume(&b, 6);
	ASSERT_CONTENTS(&b, "world");
	buffer_consume(&b, 0);
	ASSERT_CONTENTS(&b, "world");
	buffer_consume(&b, 2);
	ASSERT_CONTENTS(&b, "rld");

	/* Consuming everything rewinds to the start of the block. */
	buffer_consume(&b, 3);
	assert_int_equal(buffer_len(&b), 0);
	assert_int_equal(b.start, 0);
	assert_int_equal(b.end, 0);
	assert_ptr_equal(buffer_head(&b), b.data);
	assert_int_equal(buffer_room(&b), 32);

	/* Consuming more than there is takes what there is. */
	assert_int_equal(buffer_append(&b, "abc", 3), 0);
	buffer_consume(&b, 100);
	assert_int_equal(buffer_len(&b), 0);
	assert_int_equal(b.start, 0);
	assert_int_equal(b.end, 0);
	buffer_consume(&b, 1);
	assert_int_equal(buffer_len(&b), 0);

	/* Binary data, NULs included. */
	assert_int_equal(buffer_append(&b, "a\0b\r\n\xff", 6), 0);
	assert_contents(&b, "a\0b\r\n\xff", 6);
	buffer_free(&b);
}

static void test_tail_commit(void **state)
{
	struct buffer b;
	size_t room;

	(void)state;
	assert_int_equal(buffer_init(&b, 16), 0);
	room = buffer_room(&b);
	assert_int_equal(room, 16);
	memcpy(buffer_tail(&b), "abcd", 4);
	buffer_commit(&b, 4);
	ASSERT_CONTENTS(&b, "abcd");
	assert_int_equal(buffer_room(&b), 12);
	assert_ptr_equal(buffer_tail(&b), b.data + 4);

	/* Fill to the brim through the tail. */
	memset(buffer_tail(&b), 'z', buffer_room(&b));
	buffer_commit(&b, 12);
	ASSERT_CONTENTS(&b, "abcdzzzzzzzzzzzz");
	assert_int_equal(buffer_room(&b), 0);
	assert_int_equal(buffer_append(&b, "x", 1), -1);
	ASSERT_CONTENTS(&b, "abcdzzzzzzzzzzzz");

	/* Committing zero bytes changes nothing. */
	buffer_commit(&b, 0);
	assert_int_equal(buffer_len(&b), 16);
	buffer_free(&b);
}

static void test_room_compacts_when_tail_short(void **state)
{
	struct buffer b;

	(void)state;
	/* cap 16: 12 in, 4 out -> tail room 4 < 8: buffer_room moves data down. */
	assert_int_equal(buffer_init(&b, 16), 0);
	assert_int_equal(buffer_append(&b, "0123456789ab", 12), 0);
	buffer_consume(&b, 4);
	assert_int_equal(b.start, 4);
	assert_int_equal(buffer_room(&b), 8);
	assert_int_equal(b.start, 0);
	assert_int_equal(b.end, 8);
	ASSERT_CONTENTS(&b, "456789ab");
	assert_ptr_equal(buffer_tail(&b), b.data + 8);

	/* The tail now really holds 8 contiguous bytes. */
	memcpy(buffer_tail(&b), "ABCDEFGH", 8);
	buffer_commit(&b, 8);
	ASSERT_CONTENTS(&b, "456789abABCDEFGH");
	assert_int_equal(buffer_room(&b), 0);
	buffer_free(&b);
}

static void test_room_no_compaction_when_tail_long(void **state)
{
	struct buffer b;

	(void)state;
	/* cap 16: 4 in, 2 out -> tail room 12 >= 8: no move. */
	assert_int_equal(buffer_init(&b, 16), 0);
	assert_int_equal(buffer_append(&b, "wxyz", 4), 0);
	buffer_consume(&b, 2);
	assert_int_equal(buffer_room(&b), 12);
	assert_int_equal(b.start, 2);
	assert_int_equal(b.end, 4);
	ASSERT_CONTENTS(&b, "yz");
	/* Contiguous room never exceeds free space. */
	assert_true(buffer_room(&b) <= b.cap - buffer_len(&b));
	buffer_free(&b);
}

static void test_append_compacts_fully(void **state)
{
	struct buffer b;
	char big[14];

	(void)state;
	/* start 3, end 4: buffer_room says 12 without compacting, yet 15 bytes
	 * are free; an append of 14 must compact and succeed. */
	assert_int_equal(buffer_init(&b, 16), 0);
	assert_int_equal(buffer_append(&b, "abcd", 4), 0);
	buffer_consume(&b, 3);
	assert_int_equal(buffer_room(&b), 12);
	memset(big, 'Q', sizeof(big));
	assert_int_equal(buffer_append(&b, big, sizeof(big)), 0);
	assert_int_equal(b.start, 0);
	assert_contents(&b, "dQQQQQQQQQQQQQQ", 15);
	/* One byte left exactly. */
	assert_int_equal(buffer_append(&b, "!", 1), 0);
	assert_contents(&b, "dQQQQQQQQQQQQQQ!", 16);
	assert_int_equal(buffer_append(&b, "!", 1), -1);
	buffer_free(&b);
}

static void test_append_all_or_nothing(void **state)
{
	struct buffer b;

	(void)state;
	assert_int_equal(buffer_init(&b, 8), 0);
	assert_int_equal(buffer_append(&b, "123456", 6), 0);
	/* 3 do not fit in 2: nothing is written. */
	assert_int_equal(buffer_append(&b, "abc", 3), -1);
	ASSERT_CONTENTS(&b, "123456");
	/* 2 fit exactly. */
	assert_int_equal(buffer_append(&b, "ab", 2), 0);
	ASSERT_CONTENTS(&b, "123456ab");
	assert_int_equal(buffer_room(&b), 0);
	assert_int_equal(buffer_append(&b, "c", 1), -1);
	ASSERT_CONTENTS(&b, "123456ab");
	/* Zero bytes always fit. */
	assert_int_equal(buffer_append(&b, "", 0), 0);

	/* After consuming, a too-large append still fails and leaves the data
	 * intact, even though it may have been moved down. */
	buffer_consume(&b, 2);
	assert_int_equal(buffer_append(&b, "xyz", 3), -1);
	ASSERT_CONTENTS(&b, "3456ab");
	assert_int_equal(buffer_append(&b, "xy", 2), 0);
	ASSERT_CONTENTS(&b, "3456abxy");

	/* Larger than the whole buffer. */
	buffer_consume(&b, 8);
	assert_int_equal(buffer_append(&b, "123456789", 9), -1);
	assert_int_equal(buffer_len(&b), 0);
	buffer_free(&b);
}

static void test_printf(void **state)
{
	struct buffer b;

	(void)state;
	assert_int_equal(buffer_init(&b, 64), 0);
	assert_int_equal(buffer_printf(&b, "%d %s\r\n", 0, "OK"), 0);
	ASSERT_CONTENTS(&b, "0 OK\r\n");
	assert_int_equal(buffer_printf(&b, "%d %s\r\n", 200, "NO SUCH COMMAND"), 0);
	ASSERT_CONTENTS(&b, "0 OK\r\n200 NO SUCH COMMAND\r\n");
	assert_int_equal(buffer_printf(&b, "%s", ""), 0);
	assert_int_equal(buffer_len(&b), 27);

	/* Does not fit: nothing is written. */
	assert_int_equal(buffer_printf(&b, "Content-Length: %d\r\n\r\n%s", 1234567,
	    "and a long tail that cannot fit"), -1);
	assert_int_equal(buffer_len(&b), 27);
	ASSERT_CONTENTS(&b, "0 OK\r\n200 NO SUCH COMMAND\r\n");

	/* Exactly fills the buffer. */
	buffer_consume(&b, 27);
	assert_int_equal(buffer_printf(&b, "%064d", 7), 0);
	assert_int_equal(buffer_len(&b), 64);
	assert_int_equal(buffer_head(&b)[63], '7');
	assert_int_equal(buffer_printf(&b, "x"), -1);
	buffer_free(&b);
}

static void test_printf_long(void **state)
{
	struct buffer b;
	char s[600];

	(void)state;
	assert_int_equal(buffer_init(&b, 4096), 0);
	memset(s, 's', sizeof(s));
	s[511] = '\0';
	/* 511 characters are formatted. */
	assert_int_equal(buffer_printf(&b, "%s", s), 0);
	assert_contents(&b, s, 511);
	buffer_consume(&b, 511);
	/* Longer output is refused whole (documented limit of the formatter),
	 * never written in part. */
	s[511] = 's';
	s[599] = '\0';
	assert_int_equal(buffer_printf(&b, "%s", s), -1);
	assert_int_equal(buffer_len(&b), 0);
	buffer_free(&b);
}

/* Random operations against a flat model: contents must always agree. */
static void test_random_against_model(void **state)
{
	enum { CAP = 257 };
	struct buffer b;
	unsigned char model[CAP], chunk[CAP + 10];
	size_t mlen = 0;
	unsigned seed = 12345;

	(void)state;
	assert_int_equal(buffer_init(&b, CAP), 0);
	for (int step = 0; step < 200000; step++) {
		seed = seed * 1103515245u + 12345u;
		unsigned r = (seed >> 16) & 0x7fff;
		size_t n = r % (CAP + 5);

		for (size_t i = 0; i < n; i++)
			chunk[i] = (unsigned char)(step + i * 7);
		switch (r % 4) {
		case 0: {               /* append */
			int rc = buffer_append(&b, chunk, n);
			if (mlen + n <= CAP) {
				assert_int_equal(rc, 0);
				memcpy(model + mlen, chunk, n);
				mlen += n;
			} else
				assert_int_equal(rc, -1);
			break;
		}
		case 1: {               /* tail + commit of part of the room */
			size_t room = buffer_room(&b);
			assert_true(room <= CAP - mlen);
			assert_true(buffer_tail(&b) + room <= b.data + b.cap);
			if (n > room)
				n = room;
			memcpy(buffer_tail(&b), chunk, n);
			buffer_commit(&b, n);
			memcpy(model + mlen, chunk, n);
			mlen += n;
			break;
		}
		default: {              /* consume */
			size_t k = n % (mlen + 2);
			buffer_consume(&b, k);
			if (k > mlen)
				k = mlen;
			memmove(model, model + k, mlen - k);
			mlen -= k;
			break;
		}
		}
		assert_int_equal(buffer_len(&b), mlen);
		assert_true(b.start <= b.end && b.end <= b.cap);
		if (mlen)
			assert_memory_equal(buffer_head(&b), model, mlen);
	}
	buffer_free(&b);
}


/* Blocks go back to the pool and come out again; past max they are freed. */
static void test_pool_reuse_and_cap(void **state)
{
	struct buffer_pool pool;
	struct buffer      a = { 0 }, b = { 0 }, c = { 0 };
	char              *block_a;

	(void)state;
	assert_int_equal(buffer_pool_init(&pool, 64, 1), 0);
	assert_int_equal(buffer_attach(&a, &pool), 0);
	assert_int_equal(a.cap, 64);
	assert_int_equal(buffer_len(&a), 0);
	assert_int_equal(buffer_append(&a, "hello", 5), 0);
	block_a = a.data;
	assert_int_equal(buffer_attach(&b, &pool), 0);
	assert_ptr_not_equal(b.data, block_a);

	/* Detached: the buffer holds nothing, the pool keeps one block. */
	buffer_detach(&a, &pool);
	assert_null(a.data);
	assert_int_equal(buffer_len(&a), 0);
	assert_int_equal(a.cap, 0);
	assert_int_equal(pool.count, 1);
	buffer_detach(&b, &pool);           /* over max: freed (valgrind sees) */
	assert_int_equal(pool.count, 1);
	buffer_detach(&b, &pool);           /* detaching nothing is harmless */

	/* The kept block comes back, emptied of what it held. */
	assert_int_equal(buffer_attach(&c, &pool), 0);
	assert_ptr_equal(c.data, block_a);
	assert_int_equal(buffer_len(&c), 0);
	assert_int_equal(pool.count, 0);
	buffer_detach(&c, &pool);
	buffer_pool_free(&pool);
	assert_null(pool.free);
}

/* A pool that cannot allocate says so. */
static void test_pool_attach_fails_cleanly(void **state)
{
	struct buffer_pool pool;
	struct buffer      a = { 0 };

	(void)state;
	assert_int_equal(buffer_pool_init(&pool, (size_t)1 << 62, 4), 0);
	assert_int_equal(buffer_attach(&a, &pool), -1);
	assert_null(a.data);
	assert_int_equal(a.cap, 0);
	buffer_pool_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_free),
		cmocka_unit_test(test_init_enomem),
		cmocka_unit_test(test_append_consume),
		cmocka_unit_test(test_tail_commit),
		cmocka_unit_test(test_room_compacts_when_tail_short),
		cmocka_unit_test(test_room_no_compaction_when_tail_long),
		cmocka_unit_test(test_append_compacts_fully),
		cmocka_unit_test(test_append_all_or_nothing),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_printf_long),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_pool_reuse_and_cap),
		cmocka_unit_test(test_pool_attach_fails_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
