/*
 * clock.c — monotonic time (see clock.h).
 */
#include <time.h>

#include "clock.h"

uint64_t
clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * CLOCK_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t
clock_now_ms(void)
{
	return clock_now_ns() / CLOCK_NS_PER_MS;
}
