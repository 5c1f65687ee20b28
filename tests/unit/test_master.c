/*
 * test_master.c — unit tests for master/master.c through its seams, with
 * no poll loop, no fork and no real signal: master_message() takes one
 * decoded report and a slot (READY, LOAD, CLOSED, PEER, a wrong
 * generation, an unexpected type), master_signals() the signal bits seen
 * (graceful and fast stop), master_deadlines() the clock (shutdown_timeout
 * turning a graceful stop fast, SIGKILL a grace after STOP), and a
 * reopen's REOPEN reaching every worker.  Each slot's
 * channel is one end of a socketpair, the test holding the worker's end;
 * kill() is this file's own and records the signals instead of sending.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "config.h"
#include "log.h"
#include "master.h"

#define TEST_WORKERS    2

static int kills[16][2];    /* pid, signal */
static int nkills;

int
kill(pid_t pid, int sig)
{
	assert_true(pid > 0);
	assert_true(nkills < 16);
	kills[nkills][0] = (int)pid;
	kills[nkills][1] = sig;
	nkills++;
	return 0;
}

static struct master           m;
static struct config           conf;
static struct config_overrides opts;
static int                     worker_end[TEST_WORKERS];

static int master_setup(void **state)
{
	(void)state;
	memset(&m, 0, sizeof(m));
	config_defaults(&conf);
	conf.workers = TEST_WORKERS;
	conf.shutdown_timeout = 5;
	opts.foreground = true;
	m.conf = &conf;
	m.options = &opts;
	m.gen = 1;
	m.phase = MASTER_RUNNING;
	m.ready_fd = -1;
	m.pidfile_fd = -1;
	m.access_fd = -1;
	m.now_ms = 10000;
	nkills = 0;
	for (int i = 0; i < TEST_WORKERS; i++) {
		int sv[2];
		assert_int_equal(channel_pair(sv), 0);
		worker_end[i] = sv[1];
		slot_started(&m.slots[i], 500 + i, sv[0], 1, i, 0);
	}
	m.nslots = TEST_WORKERS;
	return 0;
}

static int master_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < m.nslots; i++) {
		slot_reaped(&m.slots[i]);
		close(worker_end[i]);
	}
	admit_free(&m);
	return 0;
}

/* The next message worker i got: its type, or -1 when none waits. */
static int next_message(int i, void *payload, size_t len)
{
	struct channel_hdr hdr;
	unsigned char      buf[CHANNEL_PAYLOAD_MAX];
	int                fd;

	if (channel_recv(worker_end[i], &hdr, buf, sizeof(buf), &fd) != 1)
		return -1;
	if (fd != -1)
		close(fd);
	if (payload != NULL)
		memcpy(payload, buf, len);
	return (int)hdr.type;
}

static void deliver(int i, enum channel_type type, unsigned gen, const void *payload, int fd)
{
	struct channel_hdr hdr = { .type = type, .gen = gen, .version = CHANNEL_VERSION };

	master_message(&m, &m.slots[i], &hdr, payload, fd);
}

static void test_ready_and_load(void **state)
{
	struct channel_load load = { .received = 0, .open = 0, .capacity = 4 };

	(void)state;
	deliver(0, CHANNEL_READY, 1, NULL, -1);
	assert_int_equal(m.slots[0].state, SLOT_READY);
	assert_false(slot_can_take(&m.slots[0], 1, m.now_ms));
	deliver(0, CHANNEL_LOAD, 1, &load, -1);
	assert_int_equal(m.slots[0].capacity, 4);
	assert_true(slot_can_take(&m.slots[0], 1, m.now_ms));
	assert_true(handoff_has_room(&m));
	/* an impossible report (more received than sent) changes nothing */
	load.received = 9;
	load.capacity = 7;
	deliver(0, CHANNEL_LOAD, 1, &load, -1);
	assert_int_equal(m.slots[0].capacity, 4);
	assert_int_equal(m.slots[1].state, SLOT_STARTING);
}

/* A message of another generation, or of a type a worker never sends: dropped, fd closed. */
static void test_wrong_messages_dropped(void **state)
{
	int p[2], q[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(q), 0);
	deliver(0, CHANNEL_READY, 2, NULL, p[0]);
	assert_int_equal(m.slots[0].state, SLOT_STARTING);
	assert_int_equal(fcntl(p[0], F_GETFD), -1);
	deliver(1, CHANNEL_CONN, 1, NULL, q[0]);
	assert_int_equal(fcntl(q[0], F_GETFD), -1);
	assert_int_equal(m.slots[1].state, SLOT_STARTING);
	close(p[1]);
	close(q[1]);
}

/*
 * PEER counts a proxied client under its address; at the cap the worker
 * is told to DROP it.  CLOSED uncounts; one with no ids is dropped.
 */
static void test_peer_and_closed(void **state)
{
	struct channel_peer   peer = { .id = 1, .family = AF_INET };
	struct channel_closed closed = { .n = 1, .id = { 1 } };
	struct channel_drop   drop;
	struct sockaddr_in    sin = { .sin_family = AF_INET };

	(void)state;
	conf.max_clients_per_address = 1;
	inet_pton(AF_INET, "192.0.2.7", peer.addr);
	memcpy(&sin.sin_addr, peer.addr, 4);
	deliver(0, CHANNEL_PEER, 1, &peer, -1);
	assert_int_equal(admit_count(&m, (struct sockaddr *)&sin), 1);
	assert_int_equal(next_message(0, NULL, 0), -1);
	peer.id = 2;
	deliver(0, CHANNEL_PEER, 1, &peer, -1);
	assert_int_equal(next_message(0, &drop, sizeof(drop)), CHANNEL_DROP);
	assert_int_equal(drop.id, 2);
	assert_int_equal(admit_count(&m, (struct sockaddr *)&sin), 1);
	closed.n = 0;
	deliver(0, CHANNEL_CLOSED, 1, &closed, -1);
	assert_int_equal(admit_count(&m, (struct sockaddr *)&sin), 1);
	closed.n = 1;
	deliver(0, CHANNEL_CLOSED, 1, &closed, -1);
	assert_int_equal(admit_count(&m, (struct sockaddr *)&sin), 0);
	peer.family = 99;       /* neither IPv4 nor IPv6: dropped */
	deliver(0, CHANNEL_PEER, 1, &peer, -1);
	assert_int_equal(next_message(0, NULL, 0), -1);
	conf.max_clients_per_address = 0;
}

/* SIGQUIT: every worker drains; at shutdown_timeout the rest are stopped, then killed. */
static void test_graceful_stop(void **state)
{
	(void)state;
	deliver(0, CHANNEL_READY, 1, NULL, -1);
	assert_true(master_signals(&m, SIGNALS_BIT(SIGQUIT)));
	assert_int_equal(m.phase, MASTER_DRAINING);
	for (int i = 0; i < TEST_WORKERS; i++) {
		assert_int_equal(m.slots[i].state, SLOT_DRAINING);
		assert_int_equal(next_message(i, NULL, 0), CHANNEL_DRAIN);
	}
	assert_false(handoff_has_room(&m));
	/* a second SIGQUIT or a HUP while draining: nothing more */
	assert_true(master_signals(&m, SIGNALS_BIT(SIGQUIT) | SIGNALS_BIT(SIGHUP)));
	assert_int_equal(next_message(0, NULL, 0), -1);
	m.now_ms += 5000 - 1;
	master_deadlines(&m);
	assert_int_equal(nkills, 0);
	m.now_ms += 1;          /* shutdown_timeout */
	master_deadlines(&m);
	assert_int_equal(m.phase, MASTER_STOPPING);
	assert_int_equal(nkills, TEST_WORKERS);
	for (int i = 0; i < TEST_WORKERS; i++) {
		assert_int_equal(kills[i][1], SIGTERM);
		assert_int_equal(m.slots[i].state, SLOT_STOPPING);
		assert_int_equal(next_message(i, NULL, 0), CHANNEL_STOP);
	}
	m.now_ms += SLOT_STOP_GRACE_MS;
	master_deadlines(&m);
	assert_int_equal(nkills, 2 * TEST_WORKERS);
	assert_int_equal(kills[TEST_WORKERS][1], SIGKILL);
	assert_int_equal(m.slots[0].state, SLOT_KILLED);
}

/*
 * SIGQUIT with shutdown_grace: still running (no DRAIN sent) until the grace ends, then the drain as without it, shutdown_timeout
 * counted from there.
 */
static void test_graceful_stop_grace(void **state)
{
	(void)state;
	conf.shutdown_grace = 3;
	assert_true(master_signals(&m, SIGNALS_BIT(SIGQUIT)));
	assert_int_equal(m.phase, MASTER_RUNNING);
	assert_int_equal(m.grace_end_ms, 10000 + 3000);
	m.now_ms += 3000 - 1;
	master_deadlines(&m);
	assert_int_equal(m.phase, MASTER_RUNNING);
	for (int i = 0; i < TEST_WORKERS; i++)
		assert_int_equal(next_message(i, NULL, 0), -1);
	m.now_ms += 1;          /* shutdown_grace */
	master_deadlines(&m);
	assert_int_equal(m.phase, MASTER_DRAINING);
	assert_int_equal(m.grace_end_ms, 0);
	assert_int_equal(m.phase_deadline_ms, m.now_ms + 5000);
	for (int i = 0; i < TEST_WORKERS; i++)
		assert_int_equal(next_message(i, NULL, 0), CHANNEL_DRAIN);
}

/* A second SIGQUIT ends the grace at once; a SIGTERM during it stops fast. */
static void test_grace_cut_short(void **state)
{
	(void)state;
	conf.shutdown_grace = 3;
	assert_true(master_signals(&m, SIGNALS_BIT(SIGQUIT)));
	assert_int_equal(m.phase, MASTER_RUNNING);
	m.now_ms += 10;
	assert_true(master_signals(&m, SIGNALS_BIT(SIGQUIT)));
	assert_int_equal(m.phase, MASTER_DRAINING);
	assert_int_equal(next_message(0, NULL, 0), CHANNEL_DRAIN);
	master_teardown(state);
	master_setup(state);
	conf.shutdown_grace = 3;
	assert_true(master_signals(&m, SIGNALS_BIT(SIGQUIT)));
	assert_true(master_signals(&m, SIGNALS_BIT(SIGTERM)));
	assert_int_equal(m.phase, MASTER_STOPPING);
	assert_int_equal(nkills, TEST_WORKERS);
	m.now_ms += 3000;       /* the grace's end changes nothing now */
	master_deadlines(&m);
	assert_int_equal(m.phase, MASTER_STOPPING);
}

/* SIGTERM: STOP and SIGTERM to every worker at once; a worker already gone is left alone. */
static void test_fast_stop(void **state)
{
	(void)state;
	slot_reaped(&m.slots[1]);
	assert_true(master_signals(&m, SIGNALS_BIT(SIGTERM)));
	assert_int_equal(m.phase, MASTER_STOPPING);
	assert_int_equal(nkills, 1);
	assert_int_equal(kills[0][0], 500);
	assert_int_equal(kills[0][1], SIGTERM);
	assert_int_equal(next_message(0, NULL, 0), CHANNEL_STOP);
	assert_int_equal(m.slots[1].state, SLOT_FREE);
	/* a second SIGTERM or SIGINT: no second round of signals */
	assert_true(master_signals(&m, SIGNALS_BIT(SIGINT)));
	assert_int_equal(nkills, 1);
	m.now_ms += SLOT_STOP_GRACE_MS;
	master_deadlines(&m);
	assert_int_equal(nkills, 2);
	assert_int_equal(kills[1][1], SIGKILL);
}

/*
 * Ctrl-C on a foreground hftpd signals the whole process group: a worker
 * may have exited on its SIGINT by the time the master reads the bits, and
 * SIGCHLD then comes with SIGINT.  The exit is part of the stop, never a
 * death to replace (the reap ran first and scheduled a respawn before).
 */
static void test_group_signal_exit_is_no_death(void **state)
{
	siginfo_t info;
	pid_t     child;

	(void)state;
	assert_non_null(m.backoff = spawn_backoff_new(TEST_WORKERS));
	if ((child = fork()) == 0)
		_exit(0);
	assert_true(child > 0);
	memset(&info, 0, sizeof(info));    /* a zombie now, reaped by the master */
	assert_int_equal(waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT), 0);
	m.slots[0].pid = child;
	assert_true(master_signals(&m, SIGNALS_BIT(SIGCHLD) | SIGNALS_BIT(SIGINT)));
	assert_int_equal(m.phase, MASTER_STOPPING);
	assert_int_equal(m.slots[0].state, SLOT_FREE);
	assert_int_equal(m.backoff[0].respawn_ms, 0);
	assert_int_equal(m.backoff[1].respawn_ms, 0);
	free(m.backoff);
	m.backoff = NULL;
}

/* A worker ended by sig after exiting normally would have: a zombie the master reaps. */
static pid_t zombie_ended_by(int sig)
{
	siginfo_t info;
	pid_t     child;

	if ((child = fork()) == 0) {
		signal(sig, SIG_DFL);
		raise(sig);
		_exit(0);
	}
	assert_true(child > 0);
	memset(&info, 0, sizeof(info));
	assert_int_equal(waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT), 0);
	return child;
}

/*
 * Workers leaving (here: draining after a reload) end quietly on a stop's
 * signal, but one that crashes on the way out is still news.
 */
static void test_crash_while_leaving_is_warned(void **state)
{
	char    path[] = "/tmp/hftpd-test-master-log-XXXXXX";
	char    text[4096];
	ssize_t n;
	int     fd;

	(void)state;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(log_open(path), 0);
	for (int i = 0; i < TEST_WORKERS; i++)
		slot_drain(&m.slots[i], 5, m.now_ms);
	m.slots[0].pid = zombie_ended_by(SIGUSR1);     /* no core, unlike SIGSEGV */
	m.slots[1].pid = zombie_ended_by(SIGTERM);
	assert_true(master_signals(&m, SIGNALS_BIT(SIGCHLD)));
	assert_int_equal(m.slots[0].state, SLOT_FREE);
	assert_int_equal(m.slots[1].state, SLOT_FREE);
	assert_int_equal(log_open("stderr"), 0);
	n = read(fd, text, sizeof(text) - 1);
	assert_true(n > 0);
	text[n] = '\0';
	close(fd);
	unlink(path);
	assert_non_null(strstr(text, "warn"));
	assert_non_null(strstr(text, "worker 0"));
	assert_non_null(strstr(text, "killed by signal 10 while leaving"));
	assert_non_null(strstr(text, "worker 1 ("));
	assert_null(strstr(strstr(text, "worker 1 ("), "killed"));
}

/* A reload's drain of one old worker: only that one is stopped at its deadline. */
static void test_old_generation_deadline(void **state)
{
	(void)state;
	slot_drain(&m.slots[0], 2, m.now_ms);
	assert_int_equal(next_message(0, NULL, 0), CHANNEL_DRAIN);
	m.now_ms += 2000;
	master_deadlines(&m);
	assert_int_equal(m.phase, MASTER_RUNNING);
	assert_int_equal(nkills, 1);
	assert_int_equal(kills[0][0], 500);
	assert_int_equal(m.slots[0].state, SLOT_STOPPING);
	assert_int_equal(m.slots[1].state, SLOT_STARTING);
}

/* SIGUSR1: the master opens the access log afresh and every worker gets a REOPEN with it. */
static void test_reopen_reaches_every_worker(void **state)
{
	char dir[] = "/tmp/hftpd-test-master-XXXXXX";
	char cmd[128];
	int  fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(conf.access_log, sizeof(conf.access_log), "%s/access.log", dir);
	assert_true(master_signals(&m, SIGNALS_BIT(SIGUSR1)));
	assert_true(m.access_fd >= 0);
	assert_int_equal(m.phase, MASTER_RUNNING);
	for (int i = 0; i < TEST_WORKERS; i++) {
		struct channel_hdr hdr;
		unsigned char      buf[CHANNEL_PAYLOAD_MAX];
		assert_int_equal(channel_recv(worker_end[i], &hdr, buf, sizeof(buf), &fd), 1);
		assert_int_equal(hdr.type, CHANNEL_REOPEN);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(next_message(i, NULL, 0), -1);
	}
	close(m.access_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

#define MT(f) cmocka_unit_test_setup_teardown(f, master_setup, master_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		MT(test_ready_and_load),
		MT(test_wrong_messages_dropped),
		MT(test_peer_and_closed),
		MT(test_graceful_stop),
		MT(test_graceful_stop_grace),
		MT(test_grace_cut_short),
		MT(test_fast_stop),
		MT(test_group_signal_exit_is_no_death),
		MT(test_crash_while_leaving_is_warned),
		MT(test_old_generation_deadline),
		MT(test_reopen_reaches_every_worker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
