/*
 * test_spawn.c — unit tests for master/spawn.c: the respawn back-off
 * (doubling from the minimum, capped), which slots count as serving workers
 * of the current generation, and that a failed socketpair or fork leaves
 * no slot naming a descriptor.  Nothing is forked: this file defines
 * socketpair() and fork() for the test program (they take the place of
 * libc's), failing when asked and passing through to the kernel otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "master.h"

static struct master m;
static int           chan_peer[8];

static int fail_socketpair, fail_fork;
static int last_pair[2] = { -1, -1 };

int
socketpair(int domain, int type, int protocol, int sv[2])
{
	if (fail_socketpair) {
		errno = EMFILE;
		return -1;
	}
	if (syscall(SYS_socketpair, domain, type, protocol, sv) == -1)
		return -1;
	last_pair[0] = sv[0];
	last_pair[1] = sv[1];
	return 0;
}

pid_t
fork(void)
{
	if (fail_fork) {
		errno = EAGAIN;
		return -1;
	}
	fail(); /* never forked for real here */
	return -1;
}

/* No slot of m may name a descriptor it does not own (0 least of all). */
static void
assert_no_slot_holds_a_descriptor(void)
{
	for (int i = 0; i < m.nslots; i++) {
		assert_int_equal(m.slots[i].chan, -1);
		assert_int_equal(m.slots[i].pid, 0);
	}
}

static void test_failed_socketpair_leaves_no_slot(void **state)
{
	static struct config conf;

	(void)state;
	memset(&m, 0, sizeof(m));   /* as main()'s static master: channels 0 */
	conf.workers = 2;
	m.conf = &conf;
	m.gen = 1;
	fail_socketpair = 1;
	assert_int_equal(spawn_worker(&m, 0), -1);
	assert_int_equal(spawn_pool(&m), -1);
	fail_socketpair = 0;
	assert_no_slot_holds_a_descriptor();
}

static void test_failed_fork_leaves_no_slot_and_closes_the_pair(void **state)
{
	static struct config conf;

	(void)state;
	memset(&m, 0, sizeof(m));
	conf.workers = 1;
	m.conf = &conf;
	m.gen = 1;
	fail_fork = 1;
	last_pair[0] = last_pair[1] = -1;
	assert_int_equal(spawn_worker(&m, 0), -1);
	fail_fork = 0;
	assert_no_slot_holds_a_descriptor();
	/* both ends of the pair made for it are closed again */
	assert_true(last_pair[0] >= 0 && last_pair[1] >= 0);
	assert_int_equal(fcntl(last_pair[0], F_GETFD), -1);
	assert_int_equal(fcntl(last_pair[1], F_GETFD), -1);
	/* a retry reuses the slot rather than growing the table */
	fail_fork = 1;
	assert_int_equal(spawn_worker(&m, 0), -1);
	fail_fork = 0;
	assert_true(m.nslots <= 1);
	assert_no_slot_holds_a_descriptor();
}

static void test_backoff_doubles_then_caps(void **state)
{
	uint64_t prev;

	(void)state;
	assert_int_equal(spawn_backoff_ms(1), 100);
	assert_int_equal(spawn_backoff_ms(2), 200);
	assert_int_equal(spawn_backoff_ms(3), 400);
	assert_int_equal(spawn_backoff_ms(7), 6400);
	assert_int_equal(spawn_backoff_ms(8), 10000);
	assert_int_equal(spawn_backoff_ms(9), 10000);
	assert_int_equal(spawn_backoff_ms(1000), 10000);
	/* never shrinks as deaths go on */
	prev = spawn_backoff_ms(1);
	for (int k = 2; k < 100; k++) {
		assert_true(spawn_backoff_ms(k) >= prev);
		prev = spawn_backoff_ms(k);
	}
}

static void test_serving_and_count(void **state)
{
	static struct config conf;

	(void)state;
	memset(&m, 0, sizeof(m));
	conf.workers = 4;
	m.conf = &conf;
	m.gen = 2;
	m.nslots = 5;
	for (int i = 0; i < m.nslots; i++) {
		int sv[2];
		assert_int_equal(channel_pair(sv), 0);
		chan_peer[i] = sv[1];
		slot_started(&m.slots[i], 1000 + i, sv[0], i == 0 ? 1 : 2, i, 0);
		if (i != 3)
			slot_ready(&m.slots[i]);    /* 3 is starting */
	}
	/* 0 is of the old generation */
	slot_drain(&m.slots[1], 10, 0);
	slot_channel_closed(&m.slots[2]);   /* going away */
	assert_false(slot_serving(&m.slots[0], m.gen));
	assert_false(slot_serving(&m.slots[1], m.gen));
	assert_false(slot_serving(&m.slots[2], m.gen));
	assert_true(slot_serving(&m.slots[3], m.gen));
	assert_true(slot_serving(&m.slots[4], m.gen));
	assert_int_equal(spawn_count(&m, false), 2);
	assert_int_equal(spawn_count(&m, true), 1);

	/* two of four workers missing: respawning is pending */
	m.backoff = spawn_backoff_new(conf.workers);
	assert_non_null(m.backoff);
	m.phase = MASTER_RUNNING;
	assert_true(spawn_respawn_pending(&m));
	m.phase = MASTER_DRAINING;
	assert_false(spawn_respawn_pending(&m));
	free(m.backoff);
	for (int i = 0; i < m.nslots; i++) {
		slot_channel_closed(&m.slots[i]);
		close(chan_peer[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_doubles_then_caps),
		cmocka_unit_test(test_serving_and_count),
		cmocka_unit_test(test_failed_socketpair_leaves_no_slot),
		cmocka_unit_test(test_failed_fork_leaves_no_slot_and_closes_the_pair),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
