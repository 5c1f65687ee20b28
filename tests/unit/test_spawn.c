/*
 * test_spawn.c — unit tests for master/spawn.c's pure parts: the respawn
 * back-off (doubling from the minimum, capped) and which slots count as
 * serving workers of the current generation.  Nothing is forked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "master.h"

static struct master m;

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
		m.slots[i].gen = 2;
		m.slots[i].pid = 1000 + i;
		m.slots[i].chan = 10 + i;   /* never used as a descriptor here */
		m.slots[i].ready = true;
	}
	m.slots[0].gen = 1;         /* old generation */
	m.slots[1].draining = true;
	m.slots[2].chan = -1;       /* channel closed: going away */
	m.slots[3].ready = false;   /* starting */
	assert_false(spawn_slot_serving(&m, &m.slots[0]));
	assert_false(spawn_slot_serving(&m, &m.slots[1]));
	assert_false(spawn_slot_serving(&m, &m.slots[2]));
	assert_true(spawn_slot_serving(&m, &m.slots[3]));
	assert_true(spawn_slot_serving(&m, &m.slots[4]));
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
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_doubles_then_caps),
		cmocka_unit_test(test_serving_and_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
