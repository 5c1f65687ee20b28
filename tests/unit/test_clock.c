/*
 * test_clock.c — unit tests for shared/clock.c: now is monotonic, the
 * milliseconds are the nanoseconds divided, and a sleep shows as elapsed
 * time in both units.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "clock.h"

static void test_monotonic_and_units_agree(void **state)
{
	uint64_t ns0, ms, ns1;

	(void)state;
	ns0 = clock_now_ns();
	ms = clock_now_ms();
	ns1 = clock_now_ns();
	assert_true(ns1 >= ns0);
	assert_true(ms >= ns0 / CLOCK_NS_PER_MS);
	assert_true(ms <= ns1 / CLOCK_NS_PER_MS);
}

static void test_sleep_is_seen(void **state)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 20 * (long)CLOCK_NS_PER_MS };
	uint64_t        ns0 = clock_now_ns(), ms0 = clock_now_ms();

	(void)state;
	assert_int_equal(nanosleep(&ts, NULL), 0);
	assert_true(clock_now_ns() - ns0 >= 20 * CLOCK_NS_PER_MS);
	assert_true(clock_now_ms() - ms0 >= 19);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_monotonic_and_units_agree),
		cmocka_unit_test(test_sleep_is_seen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
