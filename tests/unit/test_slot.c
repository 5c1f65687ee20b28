/*
 * test_slot.c — unit tests for master/slot.c: every transition of a
 * slot's state machine and every deadline (drain timeout -> STOP and
 * SIGTERM, the grace -> SIGKILL, once), the load books (reports, sends,
 * unacknowledged hand-offs, evictable clients), the one can-take rule, and
 * the control queue.  The slot's channel is one end of a socketpair, the
 * test holding the other as the worker; kill() is this file's own (it
 * takes the place of libc's) and records the signals instead of sending.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "channel.h"
#include "slot.h"

#define TEST_PID    4242
#define TEST_GEN    3

static int kills[8][2];     /* pid, signal */
static int nkills;

int
kill(pid_t pid, int sig)
{
	assert_true(pid > 0);   /* never 0 or -1: a whole group */
	assert_true(nkills < 8);
	kills[nkills][0] = (int)pid;
	kills[nkills][1] = sig;
	nkills++;
	return 0;
}

static struct worker_slot s;
static int                worker_end = -1;

static int slot_setup(void **state)
{
	int sv[2];

	(void)state;
	nkills = 0;
	assert_int_equal(channel_pair(sv), 0);
	worker_end = sv[1];
	slot_init(&s);
	slot_started(&s, TEST_PID, sv[0], TEST_GEN, 0, 1000);
	return 0;
}

static int slot_teardown(void **state)
{
	(void)state;
	slot_reaped(&s);
	close(worker_end);
	return 0;
}

/* The next message the worker end got: its type, or -1 when none waits. */
static int next_message(int *fd)
{
	struct channel_hdr hdr;
	unsigned char      payload[CHANNEL_PAYLOAD_MAX];
	int                got;

	if (channel_recv(worker_end, &hdr, payload, sizeof(payload), &got) != 1)
		return -1;
	if (fd != NULL)
		*fd = got;
	else if (got != -1)
		close(got);
	return (int)hdr.type;
}

static void report(uint64_t received, uint32_t open, uint32_t capacity, uint32_t evictable,
    uint64_t now)
{
	struct channel_load load = {
		.received = received, .open = open, .capacity = capacity, .evictable = evictable,
	};

	assert_int_equal(slot_load_report(&s, &load, now), 0);
}

/* Sends one descriptor (a pipe's read end) as a hand-off. */
static void give(uint64_t now)
{
	struct channel_conn conn = { .id = 1 };
	int                 p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(slot_give(&s, &conn, p[0], now), 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(next_message(NULL), CHANNEL_CONN);
}

static void fill_channel(void)
{
	int n = 0;

	while (channel_send(s.chan, CHANNEL_READY, TEST_GEN, NULL, 0, -1) == 0)
		assert_true(++n < 10000000);
}

static void drain_worker_end(void)
{
	while (next_message(NULL) != -1)
		;
}

static void test_free_slot(void **state)
{
	struct worker_slot f;

	(void)state;
	slot_init(&f);
	assert_int_equal(f.state, SLOT_FREE);
	assert_int_equal(f.chan, -1);
	assert_int_equal(f.pid, 0);
	assert_false(slot_alive(&f));
	assert_false(slot_serving(&f, 0));
	assert_false(slot_leaving(&f));
	/* nothing to drain or stop: no signal to pid 0 (the master's group) */
	slot_drain(&f, 10, 0);
	slot_stop(&f, 0);
	slot_tick(&f, UINT64_MAX);
	assert_int_equal(f.state, SLOT_FREE);
	assert_int_equal(nkills, 0);
}

static void test_starting_then_ready_then_capacity(void **state)
{
	(void)state;
	assert_int_equal(s.state, SLOT_STARTING);
	assert_true(slot_alive(&s));
	assert_true(slot_serving(&s, TEST_GEN));
	assert_false(slot_serving(&s, TEST_GEN + 1));
	assert_false(slot_is_ready(&s));
	assert_false(slot_can_take(&s, TEST_GEN, 1000));
	slot_ready(&s);
	assert_int_equal(s.state, SLOT_READY);
	assert_true(slot_is_ready(&s));
	/* capacity unknown until the LOAD right behind READY */
	assert_false(slot_can_take(&s, TEST_GEN, 1000));
	report(0, 0, 2, 0, 1000);
	assert_true(slot_can_take(&s, TEST_GEN, 1000));
	assert_false(slot_can_take(&s, TEST_GEN + 1, 1000));
	slot_ready(&s);                 /* a second READY changes nothing */
	assert_int_equal(s.state, SLOT_READY);
}

static void test_load_and_capacity(void **state)
{
	(void)state;
	slot_ready(&s);
	report(0, 0, 2, 0, 1000);
	give(1000);
	assert_int_equal(s.sent, 1);
	assert_int_equal(slot_load(&s), 1);         /* sent, not yet received */
	assert_int_equal(s.unreceived_since_ms, 1000);
	give(1001);
	assert_int_equal(s.unreceived_since_ms, 1000);  /* the oldest one's time */
	assert_int_equal(slot_load(&s), 2);
	assert_false(slot_can_take(&s, TEST_GEN, 1002));    /* full */
	report(2, 1, 2, 0, 1003);                   /* it closed one */
	assert_int_equal(s.unreceived_since_ms, 0);
	assert_int_equal(slot_load(&s), 1);
	assert_true(slot_can_take(&s, TEST_GEN, 1003));
	/* impossible reports change nothing */
	{
		struct channel_load bad = { .received = 3, .open = 0, .capacity = 9 };
		assert_int_equal(slot_load_report(&s, &bad, 1004), -1);
		bad.received = 2;
		bad.open = 3;
		assert_int_equal(slot_load_report(&s, &bad, 1004), -1);
		assert_int_equal(s.capacity, 2);
		assert_int_equal(s.open, 1);
	}
}

/* A full worker takes a client only against an idle one it would close. */
static void test_evictable(void **state)
{
	(void)state;
	slot_ready(&s);
	report(0, 0, 1, 0, 0);
	give(0);
	report(1, 1, 1, 1, 0);                      /* full, one idle client */
	assert_int_equal(s.evictable, 1);
	assert_true(slot_can_take(&s, TEST_GEN, 0));
	give(0);
	assert_int_equal(s.evictable, 0);           /* spent on this one */
	assert_false(slot_can_take(&s, TEST_GEN, 0));
	/* a hand-off still in flight may take one of the idle clients */
	report(1, 1, 1, 1, 0);
	assert_int_equal(s.evictable, 0);
	report(2, 1, 1, 2, 0);
	assert_int_equal(s.evictable, 2);
}

/* A hand-off unreported for SLOT_STALLED_MS: passed over until it reads. */
static void test_stalled(void **state)
{
	(void)state;
	slot_ready(&s);
	report(0, 0, 10, 0, 0);
	give(5000);
	give(5000);
	assert_true(slot_can_take(&s, TEST_GEN, 5000 + SLOT_STALLED_MS - 1));
	assert_false(slot_can_take(&s, TEST_GEN, 5000 + SLOT_STALLED_MS));
	/* it reads one of two: the clock restarts */
	report(1, 1, 10, 0, 5400);
	assert_int_equal(s.unreceived_since_ms, 5400);
	assert_true(slot_can_take(&s, TEST_GEN, 5400));
	report(2, 2, 10, 0, 5401);
	assert_int_equal(s.unreceived_since_ms, 0);
	assert_true(slot_can_take(&s, TEST_GEN, 99999));
}

/* DRAINING -> (drain deadline) STOPPING + SIGTERM -> (grace) KILLED, once. */
static void test_drain_then_stop_then_kill(void **state)
{
	(void)state;
	slot_ready(&s);
	report(0, 0, 10, 0, 0);
	slot_drain(&s, 5, 2000);
	assert_int_equal(s.state, SLOT_DRAINING);
	assert_int_equal(s.deadline_ms, 7000);
	assert_int_equal(next_message(NULL), CHANNEL_DRAIN);
	assert_false(slot_serving(&s, TEST_GEN));
	assert_false(slot_can_take(&s, TEST_GEN, 2000));
	assert_true(slot_leaving(&s));
	assert_true(slot_alive(&s));
	slot_ready(&s);                             /* a late READY changes nothing */
	assert_int_equal(s.state, SLOT_DRAINING);
	slot_drain(&s, 60, 3000);                   /* nor a second drain */
	assert_int_equal(s.deadline_ms, 7000);
	assert_int_equal(next_message(NULL), -1);

	slot_tick(&s, 6999);
	assert_int_equal(s.state, SLOT_DRAINING);
	assert_int_equal(nkills, 0);
	slot_tick(&s, 7000);
	assert_int_equal(s.state, SLOT_STOPPING);
	assert_int_equal(next_message(NULL), CHANNEL_STOP);
	assert_int_equal(nkills, 1);
	assert_int_equal(kills[0][0], TEST_PID);
	assert_int_equal(kills[0][1], SIGTERM);
	assert_int_equal(s.deadline_ms, 7000 + SLOT_STOP_GRACE_MS);

	slot_tick(&s, 7000 + SLOT_STOP_GRACE_MS - 1);
	assert_int_equal(s.state, SLOT_STOPPING);
	assert_int_equal(nkills, 1);
	slot_tick(&s, 7000 + SLOT_STOP_GRACE_MS);
	assert_int_equal(s.state, SLOT_KILLED);
	assert_int_equal(nkills, 2);
	assert_int_equal(kills[1][1], SIGKILL);
	slot_tick(&s, 99999);                       /* SIGKILL is sent once */
	slot_stop(&s, 99999);                       /* and a stop changes nothing */
	assert_int_equal(nkills, 2);
	assert_int_equal(s.state, SLOT_KILLED);
	assert_true(slot_leaving(&s));
}

/* A fast stop from STARTING or READY: STOP and SIGTERM at once, then SIGKILL. */
static void test_stop_directly(void **state)
{
	(void)state;
	slot_stop(&s, 100);                         /* still STARTING */
	assert_int_equal(s.state, SLOT_STOPPING);
	assert_int_equal(next_message(NULL), CHANNEL_STOP);
	assert_int_equal(nkills, 1);
	assert_int_equal(kills[0][1], SIGTERM);
	slot_stop(&s, 200);                         /* a second: no new signal, same deadline */
	assert_int_equal(nkills, 1);
	assert_int_equal(s.deadline_ms, 100 + SLOT_STOP_GRACE_MS);
	slot_drain(&s, 10, 300);                    /* no way back to draining */
	assert_int_equal(s.state, SLOT_STOPPING);
	slot_tick(&s, 100 + SLOT_STOP_GRACE_MS);
	assert_int_equal(s.state, SLOT_KILLED);
	assert_int_equal(kills[1][1], SIGKILL);
}

/* The channel closes (the worker exits): alive, not serving; reaped: FREE. */
static void test_channel_closed_then_reaped(void **state)
{
	int chan = s.chan;

	(void)state;
	slot_ready(&s);
	report(0, 0, 10, 0, 0);
	slot_channel_closed(&s);
	assert_int_equal(s.chan, -1);
	assert_int_equal(fcntl(chan, F_GETFD), -1);
	assert_true(slot_alive(&s));
	assert_false(slot_serving(&s, TEST_GEN));
	assert_false(slot_is_ready(&s));
	assert_false(slot_can_take(&s, TEST_GEN, 0));
	slot_control(&s, CHANNEL_DRAIN);            /* nothing to queue it on */
	assert_false(slot_waiting(&s));
	slot_reaped(&s);
	assert_int_equal(s.state, SLOT_FREE);
	assert_int_equal(s.pid, 0);
	assert_false(slot_alive(&s));
}

/* Reaped with its channel open and a REOPEN copy queued: both closed. */
static void test_reaped_closes_everything(void **state)
{
	int chan = s.chan, logfd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	(void)state;
	assert_true(logfd >= 0);
	fill_channel();
	slot_reopen(&s, CHANNEL_LOG_ERROR, logfd);
	assert_true(slot_waiting(&s));
	slot_reaped(&s);
	assert_int_equal(fcntl(chan, F_GETFD), -1);
	assert_false(slot_waiting(&s));
	assert_int_equal(s.state, SLOT_FREE);
	close(logfd);
}

/*
 * Control messages wait in the queue while the channel is full (one per
 * type; a newer REOPEN for a log replaces a waiting one), keep CONNs
 * away, and go out in order once the worker reads.
 */
static void test_control_queue(void **state)
{
	int logfd = open("/dev/null", O_WRONLY | O_CLOEXEC), fd;

	(void)state;
	assert_true(logfd >= 0);
	slot_ready(&s);
	report(0, 0, 10, 0, 0);
	fill_channel();
	slot_control(&s, CHANNEL_DRAIN);
	slot_control(&s, CHANNEL_DRAIN);
	slot_reopen(&s, CHANNEL_LOG_ACCESS, logfd);
	slot_reopen(&s, CHANNEL_LOG_ACCESS, logfd);
	close(logfd);                               /* the queue holds copies */
	assert_true(slot_waiting(&s));
	assert_int_equal(channel_queue_pending(&s.out), 2);
	assert_false(slot_can_take(&s, TEST_GEN, 0));
	drain_worker_end();
	assert_int_equal(slot_flush(&s), 0);
	assert_false(slot_waiting(&s));
	assert_int_equal(next_message(NULL), CHANNEL_DRAIN);
	assert_int_equal(next_message(&fd), CHANNEL_REOPEN);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(next_message(NULL), -1);
	assert_true(slot_can_take(&s, TEST_GEN, 0));
	assert_int_equal(slot_flush(&s), 0);        /* nothing waits: nothing sent */
	slot_reopen(&s, CHANNEL_LOG_ERROR, -1);     /* no log file: nothing queued */
	assert_false(slot_waiting(&s));
}

static void test_drop_and_failed_sends(void **state)
{
	struct channel_hdr  hdr;
	struct channel_drop drop;
	int                 fd;

	(void)state;
	assert_int_equal(slot_drop(&s, 77), 0);
	assert_int_equal(channel_recv(worker_end, &hdr, &drop, sizeof(drop), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_DROP);
	assert_int_equal(drop.id, 77);
	fill_channel();
	errno = 0;
	assert_int_equal(slot_drop(&s, 78), -1);    /* full: not queued */
	assert_int_equal(errno, EAGAIN);
	assert_false(slot_tried(&s, 5));
	slot_give_failed(&s, 5);
	assert_true(slot_tried(&s, 5));
	assert_false(slot_tried(&s, 6));
}

#define ST(f) cmocka_unit_test_setup_teardown(f, slot_setup, slot_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_slot),
		ST(test_starting_then_ready_then_capacity),
		ST(test_load_and_capacity),
		ST(test_evictable),
		ST(test_stalled),
		ST(test_drain_then_stop_then_kill),
		ST(test_stop_directly),
		ST(test_channel_closed_then_reaped),
		ST(test_reaped_closes_everything),
		ST(test_control_queue),
		ST(test_drop_and_failed_sends),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
