/*
 * test_room.c — unit tests for worker/room.c over a small array of real
 * clients (socketpairs, a client context, no worker): the client closed
 * to make room is the evictable one quiet longest, wherever it sits; a
 * client quiet too briefly, or owed bytes, is never chosen; a partial
 * line crawling far below request_min_rate is, an honest one is not; the
 * count told the master; the waiting room is first come, first in, and
 * bounded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "room.h"

#define NCLIENTS 3
#define T0       100000     /* ms: a clock far from zero */

struct fixture {
	struct config     conf;
	struct client_ctx ctx;
	struct client    *slot[NCLIENTS + 1];   /* [1..NCLIENTS], as the worker's */
	int               peer[NCLIENTS + 1];
};

/* Client i connects at T0 + i seconds. */
static int setup(void **state)
{
	static struct fixture fx;
	int                   sv[2];

	memset(&fx, 0, sizeof(fx));
	config_defaults(&fx.conf);
	fx.ctx.conf = &fx.conf;
	fx.ctx.chan = -1;
	files_init(&fx.ctx.files, "/nonexistent");
	if (buffer_pool_init(&fx.ctx.in_pool, CLIENT_IN_CAP, 2) == -1 ||
	    buffer_pool_init(&fx.ctx.out_pool, CLIENT_OUT_CAP, 2) == -1)
		return -1;
	for (int i = 1; i <= NCLIENTS; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
			return -1;
		fx.ctx.now_ms = T0 + (uint64_t)i * 1000;
		if ((fx.slot[i] = client_new(&fx.ctx, sv[0], (uint64_t)i, false)) == NULL)
			return -1;
		fx.peer[i] = sv[1];
	}
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	for (int i = 1; i <= NCLIENTS; i++) {
		client_free(fx->slot[i]);
		close(fx->peer[i]);
	}
	buffer_pool_free(&fx->ctx.in_pool);
	buffer_pool_free(&fx->ctx.out_pool);
	files_free(&fx->ctx.files);
	return 0;
}

static void test_victim_quiet_longest(void **state)
{
	struct fixture *fx = *state;
	struct client  *reversed[NCLIENTS + 1] = { NULL, fx->slot[3], fx->slot[2], fx->slot[1] };
	struct client  *only3[2] = { NULL, fx->slot[3] };

	/* 3.5 s after client 3 connected: all quiet 1 s or more */
	fx->ctx.now_ms = T0 + 3000 + ROOM_EVICT_QUIET_MS;
	assert_int_equal(room_victim(fx->slot, NCLIENTS), 1);
	assert_int_equal(room_victim(reversed, NCLIENTS), 3);
	assert_int_equal(room_evictable(fx->slot, NCLIENTS), 3);
	/* client 3 quiet less than ROOM_EVICT_QUIET_MS: not counted */
	fx->ctx.now_ms = T0 + 3000 + ROOM_EVICT_QUIET_MS - 1;
	assert_int_equal(room_evictable(fx->slot, NCLIENTS), 2);
	/* none quiet long enough: no victim */
	assert_int_equal(room_victim(only3, 1), 0);
	assert_int_equal(room_evictable(only3, 1), 0);
	assert_int_equal(room_victim(fx->slot, 0), 0);
}

/* A client owed bytes (its answer queued, not yet read) is never closed for room. */
static void test_owed_never(void **state)
{
	struct fixture *fx = *state;

	fx->ctx.now_ms = T0 + 1000;
	assert_int_equal(send(fx->peer[1], "help\r\n", 6, 0), 6);
	client_turn(fx->slot[1], POLLIN);
	/* sent, not taken by the peer: owed until the sweep sees the queue empty */
	fx->ctx.now_ms = T0 + 60000;
	assert_int_equal(room_victim(fx->slot, NCLIENTS), 2);
	assert_int_equal(room_evictable(fx->slot, NCLIENTS), 2);
}

/* A partial line: not evictable while honest, evictable when crawling. */
static void test_crawling_line(void **state)
{
	struct fixture *fx = *state;

	assert_true(fx->conf.request_min_rate > 0);
	fx->ctx.now_ms = T0 + 1000;
	assert_int_equal(send(fx->peer[1], "get_meta", 8, 0), 8);
	client_turn(fx->slot[1], POLLIN);
	/* client 1's line began 3 s ago: judged by its rate */
	fx->ctx.now_ms = T0 + 3000 + ROOM_EVICT_QUIET_MS;
	fx->conf.request_min_rate = 1u << 30;   /* 8 bytes in 3 s: crawling */
	assert_int_equal(room_victim(fx->slot, NCLIENTS), 1);
	fx->conf.request_min_rate = 1;          /* 8 bytes in 3 s: fast enough */
	assert_int_equal(room_victim(fx->slot, NCLIENTS), 2);
	assert_int_equal(room_evictable(fx->slot, NCLIENTS), 2);
}

static void test_waiting_room(void **state)
{
	struct room_queue   q = { .n = 0 };
	struct room_waiting w;

	(void)state;
	assert_false(room_next(&q, &w));
	for (int i = 0; i < ROOM_WAITING_MAX; i++)
		assert_int_equal(room_wait(&q, 100 + i, (uint64_t)i, i % 2 == 1), 0);
	assert_int_equal(room_wait(&q, 999, 999, false), -1);
	assert_int_equal(q.n, ROOM_WAITING_MAX);
	for (int i = 0; i < ROOM_WAITING_MAX; i++) {
		assert_true(room_next(&q, &w));
		assert_int_equal(w.fd, 100 + i);
		assert_int_equal(w.id, (uint64_t)i);
		assert_int_equal(w.proxy, i % 2 == 1);
		if (i == 0)     /* a place freed is a place taken, at the back */
			assert_int_equal(room_wait(&q, 200, 200, false), 0);
	}
	assert_true(room_next(&q, &w));
	assert_int_equal(w.fd, 200);
	assert_false(room_next(&q, &w));
}

#define CT(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		CT(test_victim_quiet_longest),
		CT(test_owed_never),
		CT(test_crawling_line),
		cmocka_unit_test(test_waiting_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
