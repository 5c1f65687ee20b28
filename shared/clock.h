/*
 * clock.h — monotonic time as whole nanoseconds or milliseconds: the one
 * definition of "now" for deadlines, timeouts and durations (no timespec
 * arithmetic anywhere else).
 */
#ifndef HFTPD_CLOCK_H
#define HFTPD_CLOCK_H

#include <stdint.h>

#define CLOCK_NS_PER_MS     1000000ull
#define CLOCK_NS_PER_SEC    1000000000ull
#define CLOCK_MS_PER_SEC    1000ull

/* CLOCK_MONOTONIC now. */
uint64_t clock_now_ns(void);
uint64_t clock_now_ms(void);

#endif
