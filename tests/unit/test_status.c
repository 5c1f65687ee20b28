/*
 * test_status.c — unit tests for master/status.c through its listener:
 * a real socket on 127.0.0.1, the master's poll seams (status_poll_fill,
 * status_poll_events) driven by the test.  A worker's totals survive its
 * respawn (the slot's series keeps counting); an old generation's series
 * go with its last worker; /health says 503 draining once a stop began;
 * garbage, other methods, other paths and a head over 4 KiB get 400, 405,
 * 404 and 431; HEAD gets no body; more than 16 connections are closed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "channel.h"
#include "config.h"
#include "master.h"

#define TEST_WORKERS    2

static struct master m;
static struct config conf;
static int           worker_end[TEST_WORKERS];
static struct sockaddr_in where;

static int setup(void **state)
{
	socklen_t len = sizeof(where);
	int       fd;

	(void)state;
	memset(&m, 0, sizeof(m));
	config_defaults(&conf);
	conf.workers = TEST_WORKERS;
	m.conf = &conf;
	m.gen = 1;
	m.phase = MASTER_RUNNING;
	m.pending.n = 0;       /* no batch waiting */
	assert_int_equal(status_init(&m), 0);
	for (int i = 0; i < TEST_WORKERS; i++) {
		int sv[2];
		assert_int_equal(channel_pair(sv), 0);
		worker_end[i] = sv[1];
		slot_started(&m.slots[i], 500 + i, sv[0], 1, i, 0);
	}
	m.nslots = TEST_WORKERS;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&where, 0, sizeof(where));
	where.sin_family = AF_INET;
	where.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&where, sizeof(where)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&where, &len), 0);
	m.listeners[0].fd = fd;
	m.listeners[0].addr.status = true;
	m.nlisteners = 1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	status_free(&m);
	close(m.listeners[0].fd);
	for (int i = 0; i < m.nslots; i++) {
		slot_channel_closed(&m.slots[i]);
		if (worker_end[i] != -1)
			close(worker_end[i]);
	}
	return 0;
}

/* One turn of the master's status part. */
static void
turn(void)
{
	struct pollfd pfd[64];
	int           n = status_poll_fill(&m, pfd, 64);

	poll(pfd, (nfds_t)n, 20);
	status_poll_events(&m, pfd, n);
}

static int
connect_status(void)
{
	struct timeval tv = { .tv_sec = 2 };       /* a test that fails does not hang */
	int            fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_int_equal(connect(fd, (struct sockaddr *)&where, sizeof(where)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return fd;
}

/* Sends req (len bytes) and returns the whole answer (the master closes). */
static char *
ask(const char *req, size_t len)
{
	static char answer[1 << 16];
	size_t      got = 0;
	int         fd = connect_status();

	assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	for (int i = 0; i < 200; i++) {
		ssize_t n;
		turn();
		while ((n = recv(fd, answer + got, sizeof(answer) - 1 - got, MSG_DONTWAIT)) > 0)
			got += (size_t)n;
		if (n == 0 || (n == -1 && errno != EAGAIN))
			break;
	}
	close(fd);
	answer[got] = '\0';
	return answer;
}

static char *
get(const char *path)
{
	char req[256];
	int  n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);

	return ask(req, (size_t)n);
}

static void
report(int slot, uint64_t metadata_ok, uint64_t base64_bytes)
{
	struct channel_stats s;
	struct channel_hdr   hdr = { .type = CHANNEL_STATS, .len = sizeof(s), .version = CHANNEL_VERSION };

	memset(&s, 0, sizeof(s));
	s.requests[1][0] = metadata_ok;
	s.sent[0] = base64_bytes;
	s.received = 1;
	hdr.gen = m.slots[slot].gen;
	master_message(&m, &m.slots[slot], &hdr, &s, -1);
}

static void test_totals_survive_respawn(void **state)
{
	int sv[2];

	(void)state;
	report(0, 5, 1000);
	assert_non_null(strstr(get("/metrics"), "hftpd_requests_total{worker=\"0\",generation=\"1\","
	    "command=\"get_metadata\",status=\"0\"} 5\n"));
	report(0, 7, 1500);     /* totals, not deltas */
	/* the worker dies and slot 0 gets a new one, which counts from zero */
	status_worker_gone(&m, &m.slots[0]);
	slot_reaped(&m.slots[0]);
	close(worker_end[0]);
	assert_int_equal(channel_pair(sv), 0);
	worker_end[0] = sv[1];
	slot_started(&m.slots[0], 600, sv[0], 1, 0, 0);
	assert_non_null(strstr(get("/metrics"), "hftpd_requests_total{worker=\"0\",generation=\"1\","
	    "command=\"get_metadata\",status=\"0\"} 7\n"));
	report(0, 2, 10);
	assert_non_null(strstr(get("/metrics"), "command=\"get_metadata\",status=\"0\"} 9\n"));
	assert_non_null(strstr(get("/metrics"), "hftpd_sent_bytes_total{worker=\"0\","
	    "generation=\"1\",framing=\"base64\"} 1510\n"));
	assert_non_null(strstr(get("/metrics"), "hftpd_worker_info{worker=\"0\",generation=\"1\","
	    "pid=\"600\"} 1\n"));
	assert_non_null(strstr(get("/status"), "{\"slot\":0,\"pid\":600,\"generation\":1,"
	    "\"state\":\"starting\",\"clients\":0,\"capacity\":0,\"requests\":9,\"sent_bytes\":1510}"));
}

static void test_old_generation_goes_with_its_worker(void **state)
{
	(void)state;
	report(1, 3, 0);
	m.gen = 2;      /* a reload: slot 1 belongs to the old generation now */
	assert_non_null(strstr(get("/metrics"), "hftpd_requests_total{worker=\"1\",generation=\"1\","
	    "command=\"get_metadata\",status=\"0\"} 3\n"));
	status_worker_gone(&m, &m.slots[1]);
	slot_reaped(&m.slots[1]);
	assert_null(strstr(get("/metrics"), "worker=\"1\",generation=\"1\""));
}

static void test_health_and_phases(void **state)
{
	char *a;

	(void)state;
	a = get("/health");
	assert_non_null(strstr(a, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(a, "\r\n\r\nok\n"));
	/* a graceful stop's grace: still running, already draining for /health */
	m.grace_end_ms = 1;
	a = get("/health");
	assert_non_null(strstr(a, "HTTP/1.1 503 "));
	assert_non_null(strstr(a, "\r\n\r\ndraining\n"));
	assert_non_null(strstr(get("/status"), "\"state\":\"grace\""));
	m.grace_end_ms = 0;
	m.phase = MASTER_DRAINING;
	a = get("/health");
	assert_non_null(strstr(a, "HTTP/1.1 503 "));
	assert_non_null(strstr(a, "\r\n\r\ndraining\n"));
	assert_non_null(strstr(get("/status"), "\"state\":\"draining\""));
}

static void test_http_answers(void **state)
{
	static char big[8192];
	char       *a;

	(void)state;
	a = get("/metrics");
	assert_non_null(strstr(a, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(a, "Connection: close\r\n"));
	assert_non_null(strstr(a, "# TYPE hftpd_requests_total counter\n"));
	assert_non_null(strstr(get("/status"), "Content-Type: application/json\r\n"));
	assert_non_null(strstr(get("/"), "Content-Type: text/html"));
	assert_non_null(strstr(get("/../www/file"), "HTTP/1.1 404 "));
	a = ask("POST /metrics HTTP/1.1\r\n\r\n", 26);
	assert_non_null(strstr(a, "HTTP/1.1 405 "));
	assert_non_null(strstr(a, "Allow: GET, HEAD\r\n"));
	assert_non_null(strstr(ask("get_file_listing\r\n", 18), "HTTP/1.1 400 "));
	a = ask("HEAD /metrics HTTP/1.0\r\n\r\n", 26);
	assert_non_null(strstr(a, "HTTP/1.1 200 "));
	assert_int_equal(strlen(strstr(a, "\r\n\r\n")), 4);    /* no body */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', sizeof(big) - 5);
	assert_non_null(strstr(ask(big, sizeof(big)), "HTTP/1.1 431 "));
}

static void test_connection_cap(void **state)
{
	int  fds[17];
	char c;

	(void)state;
	for (int i = 0; i < 17; i++) {
		fds[i] = connect_status();
		turn();
	}
	turn();
	/* the 17th was closed at once; the first 16 are held */
	assert_true(recv(fds[16], &c, 1, 0) <= 0);
	assert_int_equal(recv(fds[0], &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_true(status_busy(&m));
	for (int i = 0; i < 17; i++)
		close(fds[i]);
	for (int i = 0; i < 5; i++)
		turn();
	assert_false(status_busy(&m));
}

#define ST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		ST(test_totals_survive_respawn),
		ST(test_old_generation_goes_with_its_worker),
		ST(test_health_and_phases),
		ST(test_http_answers),
		ST(test_connection_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
