/*
 * test_channel.c — unit tests for shared/channel.c over a real
 * channel_pair(): descriptor passing (a new number for the same open file,
 * close-on-exec), REOPEN's log descriptor, the outgoing queue's ownership of
 * the descriptors it holds, payload round trips, EOF, EAGAIN both ways, and malformed
 * datagrams crafted with raw sendmsg(): each must come back as -1/EBADMSG
 * with any attached descriptor closed, and the channel must go on working.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "channel.h"

struct pair {
	int sv[2];
};

static int setup_pair(void **state)
{
	static struct pair p;

	if (channel_pair(p.sv) == -1)
		return -1;
	*state = &p;
	return 0;
}

static int teardown_pair(void **state)
{
	struct pair *p = *state;

	if (p->sv[0] >= 0)
		close(p->sv[0]);
	if (p->sv[1] >= 0)
		close(p->sv[1]);
	return 0;
}

/* Number of open descriptors of this process. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;   /* the DIR's own descriptor */
}

/* One raw datagram with up to 8 descriptors attached. */
static ssize_t raw_send(int sock, const void *data, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr hdr;
		char           buf[CMSG_SPACE(8 * sizeof(int))];
	} cbuf;
	struct iovec  iov = { .iov_base = (void *)(uintptr_t)data, .iov_len = len };
	struct msghdr msg;

	memset(&msg, 0, sizeof(msg));
	memset(&cbuf, 0, sizeof(cbuf));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *c;
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void make_pipe(int p[2])
{
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
}

/* The write side of pipe p is fully closed: the reader sees EOF at once. */
static void assert_reader_sees_eof(int rd)
{
	char c;
	int fl = fcntl(rd, F_GETFL);

	assert_int_equal(fcntl(rd, F_SETFL, fl | O_NONBLOCK), 0);
	errno = 0;
	ssize_t n = read(rd, &c, 1);
	if (n == -1 && errno == EAGAIN)
		fail_msg("a copy of the pipe's write end is still open (fd leaked)");
	assert_int_equal(n, 0);
}

/* Sends and receives a good READY, to show the channel still works. */
static void assert_channel_works(struct pair *p)
{
	struct channel_hdr hdr;
	struct channel_load load = { .received = 42, .open = 3 }, got;
	int fd = 123;

	assert_int_equal(channel_send(p->sv[1], CHANNEL_READY, 9, NULL, 0, -1), 0);
	assert_int_equal(channel_recv(p->sv[0], &hdr, &got, sizeof(got), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_READY);
	assert_int_equal(hdr.len, 0);
	assert_int_equal(hdr.gen, 9);
	assert_int_equal(fd, -1);

	memset(&got, 0, sizeof(got));
	assert_int_equal(channel_send(p->sv[1], CHANNEL_LOAD, 10, &load, sizeof(load), -1), 0);
	assert_int_equal(channel_recv(p->sv[0], &hdr, &got, sizeof(got), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_LOAD);
	assert_int_equal(got.received, 42);
	assert_int_equal(got.open, 3);

	/* Nothing else is queued. */
	errno = 0;
	assert_int_equal(channel_recv(p->sv[0], &hdr, &got, sizeof(got), &fd), -1);
	assert_int_equal(errno, EAGAIN);
}

/* Expects the next message on sv[0] to be rejected as EBADMSG. */
static void assert_badmsg(struct pair *p)
{
	struct channel_hdr hdr;
	unsigned char payload[CHANNEL_PAYLOAD_MAX];
	int fd = 123, rc;

	errno = 0;
	rc = channel_recv(p->sv[0], &hdr, payload, sizeof(payload), &fd);
	if (rc != -1)
		fail_msg("channel_recv returned %d, expected -1 with EBADMSG", rc);
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(fd, -1);
}

/* ---- the pair itself ---- */

static void test_pair_properties(void **state)
{
	struct pair *p = *state;
	int type;
	socklen_t len = sizeof(type);

	for (int i = 0; i < 2; i++) {
		assert_true(fcntl(p->sv[i], F_GETFD) & FD_CLOEXEC);
		assert_int_equal(getsockopt(p->sv[i], SOL_SOCKET, SO_TYPE, &type, &len), 0);
		assert_int_equal(type, SOCK_SEQPACKET);
	}
}

/* ---- good messages ---- */

static void test_conn_passes_fd(void **state)
{
	struct pair *p = *state;
	struct channel_conn conn = { .id = 0x1122334455667788ull }, got = { 0 };
	struct channel_hdr hdr;
	struct stat a, b;
	int pp[2], fd = -1, before;
	char buf[16];

	make_pipe(pp);
	before = count_fds();
	assert_int_equal(channel_send(p->sv[0], CHANNEL_CONN, 5, &conn, sizeof(conn), pp[0]), 0);
	assert_int_equal(channel_recv(p->sv[1], &hdr, &got, sizeof(got), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_CONN);
	assert_int_equal(hdr.len, sizeof(struct channel_conn));
	assert_int_equal(hdr.gen, 5);
	assert_int_equal(got.id, 0x1122334455667788ull);
	assert_int_equal(count_fds(), before + 1);

	/* A new descriptor for the same pipe, close-on-exec. */
	assert_true(fd >= 0);
	assert_int_not_equal(fd, pp[0]);
	assert_int_not_equal(fd, pp[1]);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstat(pp[0], &b), 0);
	assert_true(S_ISFIFO(a.st_mode));
	assert_int_equal(a.st_dev, b.st_dev);
	assert_int_equal(a.st_ino, b.st_ino);

	/* Bytes written to the pipe come out of the received descriptor,
	 * also once the sender's own copy is closed. */
	close(pp[0]);
	assert_int_equal(write(pp[1], "hello", 5), 5);
	assert_int_equal(read(fd, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	close(pp[1]);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);
}

static void test_conn_passes_socket(void **state)
{
	struct pair *p = *state;
	struct channel_conn conn = { .id = 1 }, got;
	struct channel_hdr hdr;
	int sp[2], fd = -1;
	char buf[8];

	/* A client is a socket in real life: pass one end of a stream pair. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(channel_send(p->sv[0], CHANNEL_CONN, 1, &conn, sizeof(conn), sp[1]), 0);
	close(sp[1]);
	assert_int_equal(channel_recv(p->sv[1], &hdr, &got, sizeof(got), &fd), 1);
	assert_true(fd >= 0);
	assert_int_equal(write(sp[0], "quit\r\n", 6), 6);
	assert_int_equal(read(fd, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "quit\r\n", 6);
	assert_int_equal(write(fd, "0 OK\r\n", 6), 6);
	assert_int_equal(read(sp[0], buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "0 OK\r\n", 6);
	close(fd);
	close(sp[0]);
}

static void test_load_round_trip(void **state)
{
	struct pair *p = *state;
	struct channel_load load = { .received = UINT64_MAX - 1, .open = 77, .capacity = 5, .evictable = 2 }, got;
	struct channel_hdr hdr;
	int fd = 5;

	memset(&got, 0xee, sizeof(got));
	assert_int_equal(channel_send(p->sv[1], CHANNEL_LOAD, 0xdeadbeef, &load, sizeof(load), -1), 0);
	assert_int_equal(channel_recv(p->sv[0], &hdr, &got, sizeof(got), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_LOAD);
	assert_int_equal(hdr.len, sizeof(struct channel_load));
	assert_int_equal(hdr.gen, 0xdeadbeef);
	assert_int_equal(fd, -1);
	assert_int_equal(got.received, UINT64_MAX - 1);
	assert_int_equal(got.open, 77);
}

/* The admission messages: CLOSED, PEER and DROP, exact sizes both ways. */
static void test_admission_messages(void **state)
{
	struct pair *p = *state;
	struct channel_closed closed = { .n = CHANNEL_CLOSED_IDS }, gotc;
	struct channel_peer peer = { .id = 77, .family = 10 }, gotp;
	struct channel_drop drop = { .id = 1234 };
	struct channel_hdr hdr;
	unsigned char payload[CHANNEL_PAYLOAD_MAX];
	int fd;

	for (int i = 0; i < CHANNEL_CLOSED_IDS; i++)
		closed.id[i] = UINT64_MAX - (uint64_t)i;
	memset(peer.addr, 0xab, sizeof(peer.addr));
	assert_int_equal(channel_send(p->sv[1], CHANNEL_CLOSED, 3, &closed, sizeof(closed), -1), 0);
	assert_int_equal(channel_recv(p->sv[0], &hdr, &gotc, sizeof(gotc), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_CLOSED);
	assert_memory_equal(&gotc, &closed, sizeof(closed));
	assert_int_equal(channel_send(p->sv[1], CHANNEL_PEER, 3, &peer, sizeof(peer), -1), 0);
	assert_int_equal(channel_recv(p->sv[0], &hdr, &gotp, sizeof(gotp), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_PEER);
	assert_memory_equal(&gotp, &peer, sizeof(peer));
	assert_int_equal(channel_send(p->sv[0], CHANNEL_DROP, 3, &drop, sizeof(drop), -1), 0);
	assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_DROP);
	assert_string_equal(channel_type_name(CHANNEL_DROP), "DROP");
	/* one byte short, or a DROP the size of a PEER: dropped */
	assert_int_equal(channel_send(p->sv[1], CHANNEL_CLOSED, 3, &closed, sizeof(closed) - 8, -1), 0);
	assert_badmsg(p);
	assert_int_equal(channel_send(p->sv[1], CHANNEL_DROP, 3, &peer, sizeof(peer), -1), 0);
	assert_badmsg(p);
	assert_int_equal(channel_send(p->sv[1], CHANNEL_PEER, 3, &drop, sizeof(drop), -1), 0);
	assert_badmsg(p);
	assert_channel_works(p);
}

static void test_messages_without_fd(void **state)
{
	static const enum channel_type types[] = {
		CHANNEL_DRAIN, CHANNEL_STOP, CHANNEL_DRAIN, CHANNEL_READY,
	};
	struct pair *p = *state;
	struct channel_hdr hdr;
	char payload[CHANNEL_PAYLOAD_MAX];
	int fd;

	/* Both directions; several queued, read back in order. */
	for (int dir = 0; dir < 2; dir++) {
		for (unsigned i = 0; i < 4; i++)
			assert_int_equal(channel_send(p->sv[dir], types[i], 100 + i, NULL, 0, -1), 0);
		for (unsigned i = 0; i < 4; i++) {
			fd = 99;
			assert_int_equal(channel_recv(p->sv[!dir], &hdr, payload, sizeof(payload), &fd), 1);
			assert_int_equal(hdr.type, types[i]);
			assert_int_equal(hdr.len, 0);
			assert_int_equal(hdr.gen, 100 + i);
			assert_int_equal(fd, -1);
		}
	}
	/* A zero-length payload needs no payload buffer. */
	assert_int_equal(channel_send(p->sv[0], CHANNEL_STOP, 1, NULL, 0, -1), 0);
	assert_int_equal(channel_recv(p->sv[1], &hdr, payload, 0, &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_STOP);
}

static void test_eof(void **state)
{
	struct pair *p = *state;
	struct channel_hdr hdr;
	char payload[CHANNEL_PAYLOAD_MAX];
	int fd;

	/* Queued messages are still delivered, then EOF. */
	assert_int_equal(channel_send(p->sv[0], CHANNEL_DRAIN, 1, NULL, 0, -1), 0);
	close(p->sv[0]);
	p->sv[0] = -1;
	assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_DRAIN);
	assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), 0);
	assert_int_equal(fd, -1);
	assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), 0);

	/* Sending to a closed peer fails (no SIGPIPE). */
	errno = 0;
	assert_int_equal(channel_send(p->sv[1], CHANNEL_READY, 1, NULL, 0, -1), -1);
	assert_int_equal(errno, EPIPE);
}

static void test_eagain_recv(void **state)
{
	struct pair *p = *state;
	struct channel_hdr hdr;
	char payload[CHANNEL_PAYLOAD_MAX];
	int fd = 7;

	/* The pair is blocking, yet an empty recv must not block. */
	assert_false(fcntl(p->sv[1], F_GETFL) & O_NONBLOCK);
	errno = 0;
	assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(fd, -1);
	assert_int_equal(fcntl(p->sv[1], F_SETFL, O_NONBLOCK), 0);
	errno = 0;
	assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), -1);
	assert_int_equal(errno, EAGAIN);
}

static void test_eagain_send_queue_full(void **state)
{
	struct pair *p = *state;
	struct channel_hdr hdr;
	char payload[CHANNEL_PAYLOAD_MAX];
	int fd, sent = 0, got = 0, rc;

	/* Fill the peer's queue without blocking. */
	for (;;) {
		rc = channel_send(p->sv[0], CHANNEL_READY, (uint32_t)sent, NULL, 0, -1);
		if (rc == -1)
			break;
		sent++;
		assert_true(sent < 10000000);
	}
	assert_int_equal(errno, EAGAIN);
	assert_true(sent > 0);
	/* Every one that was accepted arrives, in order. */
	while ((rc = channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd)) == 1) {
		assert_int_equal(hdr.gen, (uint32_t)got);
		got++;
	}
	assert_int_equal(rc, -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(got, sent);
}

static void test_send_too_long(void **state)
{
	struct pair *p = *state;
	char big[CHANNEL_PAYLOAD_MAX + 1] = { 0 };

	errno = 0;
	assert_int_equal(channel_send(p->sv[0], CHANNEL_LOAD, 1, big, sizeof(big), -1), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_channel_works(p);
}

/* ---- malformed messages ---- */

static void test_bad_short_header(void **state)
{
	struct pair *p = *state;
	/* room for a header less one byte: no send reads past it */
	uint32_t half[sizeof(struct channel_hdr) / sizeof(uint32_t)] = { CHANNEL_READY, 0 };

	assert_int_equal(raw_send(p->sv[1], half, 8, NULL, 0), 8);
	assert_badmsg(p);
	assert_int_equal(raw_send(p->sv[1], half, 1, NULL, 0), 1);
	assert_badmsg(p);
	assert_int_equal(raw_send(p->sv[1], half, sizeof(struct channel_hdr) - 1, NULL, 0),
	    (ssize_t)sizeof(struct channel_hdr) - 1);
	assert_badmsg(p);
	assert_channel_works(p);
}

static void test_bad_empty_datagram_is_not_eof(void **state)
{
	struct pair *p = *state;

	/* A zero-byte datagram is the shortest possible short header; the
	 * peer is still there, so it must not read as EOF (0). */
	assert_int_equal(raw_send(p->sv[1], "", 0, NULL, 0), 0);
	assert_badmsg(p);
	assert_channel_works(p);
}

static void test_bad_unknown_type(void **state)
{
	static const uint32_t bad_types[] = { 0, CHANNEL_TYPE_MAX, 99, UINT32_MAX };
	struct pair *p = *state;

	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
		struct channel_hdr hdr = { .type = bad_types[i], .len = 0, .gen = 1, .version = CHANNEL_VERSION };
		assert_int_equal(raw_send(p->sv[1], &hdr, sizeof(hdr), NULL, 0), (ssize_t)sizeof(hdr));
		assert_badmsg(p);
	}
	assert_channel_works(p);
}

static void test_bad_length_for_type(void **state)
{
	struct pair *p = *state;
	unsigned char msg[sizeof(struct channel_hdr) + CHANNEL_PAYLOAD_MAX] = { 0 };
	struct channel_hdr hdr = { 0 };

	/* LOAD with 8 payload bytes, header saying 8: wrong size for LOAD. */
	hdr.type = CHANNEL_LOAD;
	hdr.version = CHANNEL_VERSION;
	hdr.len = 8;
	memcpy(msg, &hdr, sizeof(hdr));
	assert_int_equal(raw_send(p->sv[1], msg, sizeof(hdr) + 8, NULL, 0), (ssize_t)(sizeof(hdr) + 8));
	assert_badmsg(p);

	/* LOAD whose header claims the right 16 but only 8 bytes follow. */
	hdr.len = sizeof(struct channel_load);
	memcpy(msg, &hdr, sizeof(hdr));
	assert_int_equal(raw_send(p->sv[1], msg, sizeof(hdr) + 8, NULL, 0), (ssize_t)(sizeof(hdr) + 8));
	assert_badmsg(p);

	/* LOAD with 16 bytes but a header claiming 0. */
	hdr.len = 0;
	memcpy(msg, &hdr, sizeof(hdr));
	assert_int_equal(raw_send(p->sv[1], msg, sizeof(hdr) + 16, NULL, 0), (ssize_t)(sizeof(hdr) + 16));
	assert_badmsg(p);

	/* DRAIN with a payload (sent through channel_send, which does not
	 * validate). */
	assert_int_equal(channel_send(p->sv[1], CHANNEL_DRAIN, 1, msg, 4, -1), 0);
	assert_badmsg(p);

	/* LOAD with no payload at all. */
	assert_int_equal(channel_send(p->sv[1], CHANNEL_LOAD, 1, NULL, 0, -1), 0);
	assert_badmsg(p);

	/* Longer than the largest message: truncated on receipt. */
	hdr.type = CHANNEL_READY;
	hdr.version = CHANNEL_VERSION;
	hdr.len = CHANNEL_PAYLOAD_MAX + 100;
	{
		unsigned char huge[sizeof(struct channel_hdr) + CHANNEL_PAYLOAD_MAX + 100] = { 0 };
		memcpy(huge, &hdr, sizeof(hdr));
		assert_int_equal(raw_send(p->sv[1], huge, sizeof(huge), NULL, 0), (ssize_t)sizeof(huge));
	}
	assert_badmsg(p);
	assert_channel_works(p);
}

static void test_bad_payload_max_too_small(void **state)
{
	struct pair *p = *state;
	struct channel_load load = { .received = 1, .open = 1 };
	struct channel_hdr hdr;
	char small[4];
	int fd = 9;

	assert_int_equal(channel_send(p->sv[1], CHANNEL_LOAD, 1, &load, sizeof(load), -1), 0);
	errno = 0;
	assert_int_equal(channel_recv(p->sv[0], &hdr, small, sizeof(small), &fd), -1);
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(fd, -1);
	assert_channel_works(p);
}

static void test_bad_conn_without_fd(void **state)
{
	struct pair *p = *state;
	struct channel_conn conn = { .id = 7 };

	assert_int_equal(channel_send(p->sv[1], CHANNEL_CONN, 1, &conn, sizeof(conn), -1), 0);
	assert_badmsg(p);
	assert_channel_works(p);
}

static void test_bad_load_with_fd_closes_it(void **state)
{
	struct pair *p = *state;
	struct channel_load load = { .received = 1, .open = 1 };
	int pp[2], before;

	make_pipe(pp);
	before = count_fds();
	/* Send the pipe's write end along with a LOAD, then drop our copy:
	 * the only write end left is the one in flight. */
	assert_int_equal(channel_send(p->sv[1], CHANNEL_LOAD, 1, &load, sizeof(load), pp[1]), 0);
	close(pp[1]);
	assert_badmsg(p);
	assert_int_equal(count_fds(), before - 1);
	assert_reader_sees_eof(pp[0]);
	close(pp[0]);
	assert_channel_works(p);
}

static void test_bad_ready_with_fd_closes_it(void **state)
{
	struct pair *p = *state;
	int pp[2];

	make_pipe(pp);
	assert_int_equal(channel_send(p->sv[1], CHANNEL_READY, 1, NULL, 0, pp[1]), 0);
	close(pp[1]);
	assert_badmsg(p);
	assert_reader_sees_eof(pp[0]);
	close(pp[0]);
	assert_channel_works(p);
}

/* A well-formed CONN from another format version: dropped, its fd closed. */
static void test_other_version_dropped_fd_closed(void **state)
{
	struct pair *p = *state;
	struct { struct channel_hdr hdr; struct channel_conn conn; } m;
	int a[2], before;

	make_pipe(a);
	memset(&m, 0, sizeof(m));
	m.hdr.type = CHANNEL_CONN;
	m.hdr.version = CHANNEL_VERSION + 1;
	m.hdr.len = sizeof(struct channel_conn);
	before = count_fds();
	assert_int_equal(raw_send(p->sv[1], &m, sizeof(m), &a[1], 1), (ssize_t)sizeof(m));
	close(a[1]);
	assert_badmsg(p);
	assert_int_equal(count_fds(), before - 1);
	assert_reader_sees_eof(a[0]);
	close(a[0]);
	/* the same message with this version is taken */
	assert_channel_works(p);
}

static void test_bad_conn_two_fds_closes_both(void **state)
{
	struct pair *p = *state;
	struct { struct channel_hdr hdr; struct channel_conn conn; } m;
	int a[2], b[2], fds[2], before;

	make_pipe(a);
	make_pipe(b);
	memset(&m, 0, sizeof(m));
	m.hdr.type = CHANNEL_CONN;
	m.hdr.version = CHANNEL_VERSION;
	m.hdr.len = sizeof(struct channel_conn);
	fds[0] = a[1];
	fds[1] = b[1];
	before = count_fds();
	assert_int_equal(raw_send(p->sv[1], &m, sizeof(m), fds, 2), (ssize_t)sizeof(m));
	close(a[1]);
	close(b[1]);
	assert_badmsg(p);
	assert_int_equal(count_fds(), before - 2);
	assert_reader_sees_eof(a[0]);
	assert_reader_sees_eof(b[0]);
	close(a[0]);
	close(b[0]);
	assert_channel_works(p);
}

static void test_bad_conn_many_fds_closes_all(void **state)
{
	struct pair *p = *state;
	struct { struct channel_hdr hdr; struct channel_conn conn; } m;
	int pp[8][2], fds[8], before;

	/* 8 descriptors: more than the receiver's control buffer holds
	 * (MSG_CTRUNC); none may survive. */
	memset(&m, 0, sizeof(m));
	m.hdr.type = CHANNEL_CONN;
	m.hdr.version = CHANNEL_VERSION;
	m.hdr.len = sizeof(struct channel_conn);
	for (int i = 0; i < 8; i++) {
		make_pipe(pp[i]);
		fds[i] = pp[i][1];
	}
	before = count_fds();
	assert_int_equal(raw_send(p->sv[1], &m, sizeof(m), fds, 8), (ssize_t)sizeof(m));
	for (int i = 0; i < 8; i++)
		close(pp[i][1]);
	assert_badmsg(p);
	assert_int_equal(count_fds(), before - 8);
	for (int i = 0; i < 8; i++) {
		assert_reader_sees_eof(pp[i][0]);
		close(pp[i][0]);
	}
	assert_channel_works(p);
}

static void test_bad_short_header_with_fd_closes_it(void **state)
{
	struct pair *p = *state;
	uint32_t half[2] = { CHANNEL_CONN, 8 };
	int pp[2];

	make_pipe(pp);
	assert_int_equal(raw_send(p->sv[1], half, sizeof(half), &pp[1], 1), (ssize_t)sizeof(half));
	close(pp[1]);
	assert_badmsg(p);
	assert_reader_sees_eof(pp[0]);
	close(pp[0]);
	assert_channel_works(p);
}

static void test_bad_empty_with_fd_closes_it(void **state)
{
	struct pair *p = *state;
	int pp[2];

	/* A zero-byte datagram that carries a descriptor is not EOF. */
	make_pipe(pp);
	assert_int_equal(raw_send(p->sv[1], "", 0, &pp[1], 1), 0);
	close(pp[1]);
	assert_badmsg(p);
	assert_reader_sees_eof(pp[0]);
	close(pp[0]);
	assert_channel_works(p);
}

static void test_bad_unknown_type_with_fd_closes_it(void **state)
{
	struct pair *p = *state;
	struct { struct channel_hdr hdr; struct channel_conn conn; } m;
	int pp[2];

	memset(&m, 0, sizeof(m));
	m.hdr.type = 42;
	m.hdr.version = CHANNEL_VERSION;
	m.hdr.len = sizeof(struct channel_conn);
	make_pipe(pp);
	assert_int_equal(raw_send(p->sv[1], &m, sizeof(m), &pp[1], 1), (ssize_t)sizeof(m));
	close(pp[1]);
	assert_badmsg(p);
	assert_reader_sees_eof(pp[0]);
	close(pp[0]);
	assert_channel_works(p);
}

static void test_bad_conn_wrong_length_with_fd_closes_it(void **state)
{
	struct pair *p = *state;
	int pp[2];
	uint64_t id[3] = { 1, 2, 3 };

	make_pipe(pp);
	/* CONN with a payload longer than struct channel_conn. */
	assert_int_equal(channel_send(p->sv[1], CHANNEL_CONN, 1, id, sizeof(id), pp[1]), 0);
	close(pp[1]);
	assert_badmsg(p);
	assert_reader_sees_eof(pp[0]);
	close(pp[0]);
	assert_channel_works(p);
}

static void test_bad_then_good_queued(void **state)
{
	struct pair *p = *state;
	struct channel_conn conn = { .id = 31337 }, got;
	struct channel_hdr hdr;
	uint32_t junk = 0xffffffff;
	int pp[2], fd = -1;

	/* A bad datagram queued in front of a good CONN: the bad one is
	 * dropped whole, the good one follows intact with its fd. */
	make_pipe(pp);
	assert_int_equal(raw_send(p->sv[1], &junk, sizeof(junk), NULL, 0), (ssize_t)sizeof(junk));
	assert_int_equal(channel_send(p->sv[1], CHANNEL_CONN, 3, &conn, sizeof(conn), pp[0]), 0);
	assert_badmsg(p);
	assert_int_equal(channel_recv(p->sv[0], &hdr, &got, sizeof(got), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_CONN);
	assert_int_equal(got.id, 31337);
	assert_true(fd >= 0);
	assert_int_equal(write(pp[1], "x", 1), 1);
	char c;
	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(c, 'x');
	close(fd);
	close(pp[0]);
	close(pp[1]);
}

/* ---- names ---- */

static void test_type_name(void **state)
{
	(void)state;
	assert_string_equal(channel_type_name(CHANNEL_CONN), "CONN");
	assert_string_equal(channel_type_name(CHANNEL_DRAIN), "DRAIN");
	assert_string_equal(channel_type_name(CHANNEL_STOP), "STOP");
	assert_string_equal(channel_type_name(CHANNEL_REOPEN), "REOPEN");
	assert_string_equal(channel_type_name(CHANNEL_READY), "READY");
	assert_string_equal(channel_type_name(CHANNEL_LOAD), "LOAD");
	assert_string_equal(channel_type_name(0), "unknown");
	assert_string_equal(channel_type_name(CHANNEL_TYPE_MAX), "unknown");
	assert_string_equal(channel_type_name(1000), "unknown");
	assert_string_equal(channel_type_name(UINT32_MAX), "unknown");
}

/* Fills sock's peer queue with READY messages until EAGAIN; returns how many. */
static int fill_until_eagain(int sock)
{
	int n = 0;

	while (channel_send(sock, CHANNEL_READY, 0, NULL, 0, -1) == 0) {
		n++;
		assert_true(n < 10000000);
	}
	assert_int_equal(errno, EAGAIN);
	return n;
}

/* ---- REOPEN: a fresh log descriptor ---- */

static void test_reopen_passes_fd(void **state)
{
	struct pair *p = *state;
	struct channel_reopen r = { .log = CHANNEL_LOG_ACCESS }, got = { 0 };
	struct channel_hdr hdr;
	int pp[2], fd = -1;
	char buf[8];

	make_pipe(pp);
	assert_int_equal(channel_send(p->sv[0], CHANNEL_REOPEN, 3, &r, sizeof(r), pp[1]), 0);
	close(pp[1]);
	assert_int_equal(channel_recv(p->sv[1], &hdr, &got, sizeof(got), &fd), 1);
	assert_int_equal(hdr.type, CHANNEL_REOPEN);
	assert_int_equal(got.log, CHANNEL_LOG_ACCESS);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(fd, "line\n", 5), 5);
	assert_int_equal(read(pp[0], buf, sizeof(buf)), 5);
	close(fd);
	assert_reader_sees_eof(pp[0]);
	close(pp[0]);
}

static void test_bad_reopen_without_fd(void **state)
{
	struct pair *p = *state;
	struct channel_reopen r = { .log = CHANNEL_LOG_ERROR };

	assert_int_equal(channel_send(p->sv[1], CHANNEL_REOPEN, 1, &r, sizeof(r), -1), 0);
	assert_badmsg(p);
	assert_channel_works(p);
}

static void test_bad_reopen_wrong_length_with_fd_closes_it(void **state)
{
	struct pair *p = *state;
	int pp[2], before;

	make_pipe(pp);
	before = count_fds();
	/* the old REOPEN: no payload */
	assert_int_equal(channel_send(p->sv[1], CHANNEL_REOPEN, 1, NULL, 0, pp[1]), 0);
	close(pp[1]);
	assert_badmsg(p);
	assert_int_equal(count_fds(), before - 1);
	assert_reader_sees_eof(pp[0]);
	close(pp[0]);
	assert_channel_works(p);
}

/*
 * The receiver at its descriptor limit: the kernel drops the fd
 * (MSG_CTRUNC); the REOPEN comes back whole with fd -1 (the old log is
 * kept), and no descriptor survives.
 */
static void test_reopen_truncated_by_limit(void **state)
{
	struct pair *p = *state;
	struct channel_reopen r = { .log = CHANNEL_LOG_ERROR }, got = { 0 };
	struct channel_hdr hdr;
	struct rlimit rl, low;
	int pp[2], before, fd = 123;

	make_pipe(pp);
	assert_int_equal(channel_send(p->sv[1], CHANNEL_REOPEN, 1, &r, sizeof(r), pp[1]), 0);
	close(pp[1]);
	before = count_fds();
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = 0;   /* no new descriptor can be installed */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_int_equal(channel_recv(p->sv[0], &hdr, &got, sizeof(got), &fd), 1);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_int_equal(hdr.type, CHANNEL_REOPEN);
	assert_int_equal(got.log, CHANNEL_LOG_ERROR);
	assert_int_equal(fd, -1);
	assert_int_equal(count_fds(), before);
	/* the in-flight copy died with the message */
	assert_reader_sees_eof(pp[0]);
	close(pp[0]);
	assert_channel_works(p);
}

/* Queued REOPENs own their descriptors: sent, cancelled or cleared, each is closed once. */
static void test_queue_owns_descriptors(void **state)
{
	struct pair *p = *state;
	struct channel_queue q;
	struct channel_reopen err = { .log = CHANNEL_LOG_ERROR };
	struct channel_reopen acc = { .log = CHANNEL_LOG_ACCESS }, got;
	struct channel_hdr hdr;
	int a[2], b[2], c[2], fd, before;

	make_pipe(a);
	make_pipe(b);
	make_pipe(c);
	before = count_fds();
	channel_queue_init(&q);
	assert_int_equal(channel_queue_push(&q, CHANNEL_REOPEN, 1, &err, sizeof(err), a[1]), 0);
	assert_int_equal(channel_queue_push(&q, CHANNEL_DRAIN, 1, NULL, 0, -1), 0);
	assert_int_equal(channel_queue_push(&q, CHANNEL_REOPEN, 1, &acc, sizeof(acc), b[1]), 0);
	/* a newer error-log descriptor replaces the waiting one, which is closed */
	channel_queue_cancel(&q, CHANNEL_REOPEN, &err, sizeof(err));
	assert_int_equal(count_fds(), before - 1);
	assert_reader_sees_eof(a[0]);
	assert_int_equal(channel_queue_pending(&q), 2);
	assert_int_equal(channel_queue_push(&q, CHANNEL_REOPEN, 1, &err, sizeof(err), c[1]), 0);
	assert_int_equal(channel_queue_flush(p->sv[0], &q), 0);
	/* sent: the queue's copies are closed, the peer holds its own */
	assert_int_equal(count_fds(), before - 3);
	static const uint32_t want[][2] = {
		{ CHANNEL_DRAIN, 0 },
		{ CHANNEL_REOPEN, CHANNEL_LOG_ACCESS },
		{ CHANNEL_REOPEN, CHANNEL_LOG_ERROR },
	};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(channel_recv(p->sv[1], &hdr, &got, sizeof(got), &fd), 1);
		assert_int_equal(hdr.type, want[i][0]);
		if (hdr.type == CHANNEL_REOPEN) {
			assert_int_equal(got.log, want[i][1]);
			assert_true(fd >= 0);
			close(fd);
		}
	}
	assert_reader_sees_eof(b[0]);
	assert_reader_sees_eof(c[0]);

	/* cleared without sending: closed too */
	make_pipe(a);
	assert_int_equal(channel_queue_push(&q, CHANNEL_REOPEN, 1, &err, sizeof(err), a[1]), 0);
	channel_queue_clear(&q);
	assert_int_equal(channel_queue_pending(&q), 0);
	assert_reader_sees_eof(a[0]);
	close(a[0]);
	close(b[0]);
	close(c[0]);
}

static void test_queue_push_bounds(void **state)
{
	struct channel_queue q;
	char big[CHANNEL_PAYLOAD_MAX + 1] = { 0 };

	(void)state;
	channel_queue_init(&q);
	assert_int_equal(channel_queue_pending(&q), 0);
	errno = 0;
	assert_int_equal(channel_queue_push(&q, CHANNEL_LOAD, 1, big, sizeof(big), -1), -1);
	assert_int_equal(errno, EMSGSIZE);
	for (int i = 0; i < CHANNEL_QUEUE_MAX; i++)
		assert_int_equal(channel_queue_push(&q, CHANNEL_DRAIN, 1, NULL, 0, -1), 0);
	errno = 0;
	assert_int_equal(channel_queue_push(&q, CHANNEL_STOP, 1, NULL, 0, -1), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_int_equal(channel_queue_pending(&q), CHANNEL_QUEUE_MAX);
	assert_true(channel_queue_has(&q, CHANNEL_DRAIN));
	assert_false(channel_queue_has(&q, CHANNEL_STOP));
}

/*
 * The peer's queue is full: messages wait in the channel_queue, a flush
 * sends nothing, and once the peer has read, a flush sends them all in
 * order after everything sent before.
 */
static void test_queue_waits_for_room(void **state)
{
	struct pair *p = *state;
	struct channel_queue q;
	struct channel_load load = { .received = 7, .open = 3 };
	struct channel_hdr hdr;
	unsigned char payload[CHANNEL_PAYLOAD_MAX];
	static const enum channel_type order[] = { CHANNEL_STOP, CHANNEL_LOAD, CHANNEL_DRAIN, CHANNEL_STOP };
	int filled, fd, rc, got = 0;

	assert_int_equal(fcntl(p->sv[0], F_SETFL, O_NONBLOCK), 0);
	filled = fill_until_eagain(p->sv[0]);
	assert_true(filled > 0);
	channel_queue_init(&q);
	assert_int_equal(channel_queue_push(&q, CHANNEL_STOP, 2, NULL, 0, -1), 0);
	assert_int_equal(channel_queue_push(&q, CHANNEL_LOAD, 3, &load, sizeof(load), -1), 0);
	assert_int_equal(channel_queue_push(&q, CHANNEL_DRAIN, 4, NULL, 0, -1), 0);
	assert_int_equal(channel_queue_push(&q, CHANNEL_STOP, 5, NULL, 0, -1), 0);
	assert_int_equal(channel_queue_flush(p->sv[0], &q), 4);
	assert_int_equal(channel_queue_pending(&q), 4);

	/* Drain the peer, then flush: nothing may be left behind or reordered. */
	while ((rc = channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd)) == 1) {
		assert_int_equal(hdr.type, CHANNEL_READY);
		got++;
	}
	assert_int_equal(got, filled);
	assert_int_equal(channel_queue_flush(p->sv[0], &q), 0);
	assert_int_equal(channel_queue_pending(&q), 0);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), 1);
		assert_int_equal(hdr.type, order[i]);
		assert_int_equal(hdr.gen, (uint32_t)i + 2);
		assert_int_equal(fd, -1);
		if (order[i] == CHANNEL_LOAD)
			assert_memory_equal(payload, &load, sizeof(load));
	}
	assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), -1);
	assert_int_equal(errno, EAGAIN);
}

/* Room for only part of the queue: the rest waits for the next flush. */
static void test_queue_partial_flush(void **state)
{
	struct pair *p = *state;
	struct channel_queue q;
	struct channel_hdr hdr;
	unsigned char payload[CHANNEL_PAYLOAD_MAX];
	uint32_t next;
	int fd, rc;

	assert_int_equal(fcntl(p->sv[0], F_SETFL, O_NONBLOCK), 0);
	fill_until_eagain(p->sv[0]);
	channel_queue_init(&q);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(channel_queue_push(&q, CHANNEL_STOP, 100 + i, NULL, 0, -1), 0);
	/* one read makes room for about one message */
	assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), 1);
	rc = channel_queue_flush(p->sv[0], &q);
	assert_true(rc >= 0 && rc < 3);
	/* what went out comes after the filler, in order */
	next = 100;
	while (channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd) == 1) {
		if (hdr.type == CHANNEL_STOP)
			assert_int_equal(hdr.gen, next++);
	}
	assert_int_equal(next, 100 + (uint32_t)(3 - rc));
	assert_int_equal(channel_queue_flush(p->sv[0], &q), 0);
	for (; next < 103; next++) {
		assert_int_equal(channel_recv(p->sv[1], &hdr, payload, sizeof(payload), &fd), 1);
		assert_int_equal(hdr.type, CHANNEL_STOP);
		assert_int_equal(hdr.gen, next);
	}
}

/* A closed peer is an error, not "try later"; the queue is kept. */
static void test_queue_flush_error(void **state)
{
	struct pair *p = *state;
	struct channel_queue q;

	channel_queue_init(&q);
	assert_int_equal(channel_queue_push(&q, CHANNEL_STOP, 1, NULL, 0, -1), 0);
	close(p->sv[1]);
	p->sv[1] = -1;
	errno = 0;
	assert_int_equal(channel_queue_flush(p->sv[0], &q), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(channel_queue_pending(&q), 1);
}

/* ---- CONNS: several connections in one message ---- */

/* n pipes; CONNS carries their write ends, ids 100.. */
static void send_conns(struct pair *p, int pp[][2], uint32_t n)
{
	struct channel_conns cs;
	int                  fds[CHANNEL_CONNS_MAX] = { 0 };

	memset(&cs, 0, sizeof(cs));
	cs.n = n;
	for (uint32_t i = 0; i < n; i++) {
		make_pipe(pp[i]);
		fds[i] = pp[i][1];
		cs.conn[i].id = 100 + i;
		cs.conn[i].flags = i % 2 ? CHANNEL_CONN_PROXY : 0;
	}
	assert_int_equal(channel_send_conns(p->sv[1], 5, &cs, fds), 0);
	for (uint32_t i = 0; i < n; i++)
		close(pp[i][1]);
}

/* 1, 7 and CHANNEL_CONNS_MAX descriptors go and come back in order, close-on-exec. */
static void test_conns_round_trip(void **state)
{
	struct pair         *p = *state;
	static const uint32_t counts[] = { 1, 7, CHANNEL_CONNS_MAX };

	for (size_t t = 0; t < sizeof(counts) / sizeof(counts[0]); t++) {
		uint32_t             n = counts[t];
		int                  pp[CHANNEL_CONNS_MAX][2], fds[CHANNEL_CONNS_MAX];
		struct channel_conns got;
		struct channel_hdr   hdr;
		int                  before = count_fds();

		send_conns(p, pp, n);
		assert_int_equal(channel_recv_fds(p->sv[0], &hdr, &got, sizeof(got), fds), 1);
		assert_int_equal(hdr.type, CHANNEL_CONNS);
		assert_int_equal(hdr.gen, 5);
		assert_int_equal(hdr.len, CHANNEL_CONNS_LEN(n));
		assert_int_equal(got.n, n);
		for (uint32_t i = 0; i < n; i++) {
			char c = 'x';
			assert_int_equal(got.conn[i].id, 100 + i);
			assert_int_equal(got.conn[i].flags, i % 2 ? CHANNEL_CONN_PROXY : 0);
			assert_true(fds[i] >= 0);
			assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
			/* fds[i] is pipe i's write end: a byte through it arrives there */
			assert_int_equal(write(fds[i], &c, 1), 1);
			c = 0;
			assert_int_equal(read(pp[i][0], &c, 1), 1);
			assert_int_equal(c, 'x');
			close(fds[i]);
			assert_reader_sees_eof(pp[i][0]);
			close(pp[i][0]);
		}
		for (uint32_t i = n; i < CHANNEL_CONNS_MAX; i++)
			assert_int_equal(fds[i], -1);
		assert_int_equal(count_fds(), before);
	}
	assert_channel_works(p);
}

/* A CONNS and its raw bytes: n named, the payload for k entries. */
static size_t conns_raw(unsigned char *buf, uint32_t n, uint32_t k)
{
	struct channel_hdr   hdr = { .type = CHANNEL_CONNS, .len = (uint32_t)CHANNEL_CONNS_LEN(k), .version = CHANNEL_VERSION };
	struct channel_conns cs;

	memset(&cs, 0, sizeof(cs));
	cs.n = n;
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), &cs, CHANNEL_CONNS_LEN(k));
	return sizeof(hdr) + CHANNEL_CONNS_LEN(k);
}

/*
 * The descriptors that come are not the n named (too few, too many): all
 * are closed and the n connections come back with fd -1, to be counted.
 * A payload whose n is not its length is malformed: dropped, fds closed.
 */
static void test_conns_count_mismatch(void **state)
{
	struct pair         *p = *state;
	unsigned char        buf[sizeof(struct channel_hdr) + sizeof(struct channel_conns)];
	static const struct { uint32_t named, sent; } cases[] = { { 3, 2 }, { 2, 3 }, { 2, 0 } };

	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		struct channel_conns got;
		struct channel_hdr   hdr;
		int                  pp[4][2], wr[4], fds[CHANNEL_CONNS_MAX], before;
		size_t               len = conns_raw(buf, cases[t].named, cases[t].named);

		for (uint32_t i = 0; i < cases[t].sent; i++) {
			make_pipe(pp[i]);
			wr[i] = pp[i][1];
		}
		assert_int_equal(raw_send(p->sv[1], buf, len, wr, (int)cases[t].sent), (ssize_t)len);
		for (uint32_t i = 0; i < cases[t].sent; i++)
			close(pp[i][1]);
		before = count_fds();
		assert_int_equal(channel_recv_fds(p->sv[0], &hdr, &got, sizeof(got), fds), 1);
		assert_int_equal(hdr.type, CHANNEL_CONNS);
		assert_int_equal(got.n, cases[t].named);
		for (int i = 0; i < CHANNEL_CONNS_MAX; i++)
			assert_int_equal(fds[i], -1);
		assert_int_equal(count_fds(), before);
		for (uint32_t i = 0; i < cases[t].sent; i++) {
			assert_reader_sees_eof(pp[i][0]);
			close(pp[i][0]);
		}
	}
	/* n says 3, the payload holds 2 entries: malformed */
	{
		struct channel_conns got;
		struct channel_hdr   hdr;
		int                  pp[2][2], wr[2], fds[CHANNEL_CONNS_MAX];
		size_t               len = conns_raw(buf, 3, 2);

		make_pipe(pp[0]);
		make_pipe(pp[1]);
		wr[0] = pp[0][1];
		wr[1] = pp[1][1];
		assert_int_equal(raw_send(p->sv[1], buf, len, wr, 2), (ssize_t)len);
		close(pp[0][1]);
		close(pp[1][1]);
		errno = 0;
		assert_int_equal(channel_recv_fds(p->sv[0], &hdr, &got, sizeof(got), fds), -1);
		assert_int_equal(errno, EBADMSG);
		assert_int_equal(fds[0], -1);
		for (int i = 0; i < 2; i++) {
			assert_reader_sees_eof(pp[i][0]);
			close(pp[i][0]);
		}
	}
	assert_channel_works(p);
}

/*
 * The receiver near its descriptor limit: the kernel installs some of a
 * CONNS's descriptors and drops the rest (MSG_CTRUNC).  None survives;
 * all n come back -1.  At the limit itself (none installed), the same.
 */
static void test_conns_truncated_by_limit(void **state)
{
	struct pair *p = *state;

	for (int room = 0; room <= 2; room += 2) {
		struct channel_conns got;
		struct channel_hdr   hdr;
		struct rlimit        rl, low;
		int                  pp[6][2], fds[CHANNEL_CONNS_MAX], before, lowest;

		send_conns(p, pp, 6);
		before = count_fds();
		lowest = dup(0);
		assert_true(lowest >= 0);
		close(lowest);
		assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
		low = rl;
		low.rlim_cur = room ? (rlim_t)lowest + (rlim_t)room : 0;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
		assert_int_equal(channel_recv_fds(p->sv[0], &hdr, &got, sizeof(got), fds), 1);
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
		assert_int_equal(hdr.type, CHANNEL_CONNS);
		assert_int_equal(got.n, 6);
		for (int i = 0; i < CHANNEL_CONNS_MAX; i++)
			assert_int_equal(fds[i], -1);
		assert_int_equal(count_fds(), before);
		for (int i = 0; i < 6; i++) {
			assert_reader_sees_eof(pp[i][0]);
			close(pp[i][0]);
		}
	}
	assert_channel_works(p);
}

/* channel_recv (one descriptor at most: the master's) refuses a CONNS whole. */
static void test_conns_refused_by_channel_recv(void **state)
{
	struct pair *p = *state;
	int          pp[2][2];

	send_conns(p, pp, 2);
	assert_badmsg(p);
	for (int i = 0; i < 2; i++) {
		assert_reader_sees_eof(pp[i][0]);
		close(pp[i][0]);
	}
	assert_channel_works(p);
}

/* Bounds: no CONNS of 0 or more than CHANNEL_CONNS_MAX. */
static void test_conns_send_bounds(void **state)
{
	struct pair         *p = *state;
	struct channel_conns cs;
	int                  fds[CHANNEL_CONNS_MAX] = { 0 };

	memset(&cs, 0, sizeof(cs));
	errno = 0;
	assert_int_equal(channel_send_conns(p->sv[1], 1, &cs, fds), -1);
	assert_int_equal(errno, EINVAL);
	cs.n = CHANNEL_CONNS_MAX + 1;
	assert_int_equal(channel_send_conns(p->sv[1], 1, &cs, fds), -1);
	assert_channel_works(p);
}

#define PT(f) cmocka_unit_test_setup_teardown(f, setup_pair, teardown_pair)

int main(void)
{
	const struct CMUnitTest tests[] = {
		PT(test_pair_properties),
		PT(test_conn_passes_fd),
		PT(test_conn_passes_socket),
		PT(test_load_round_trip),
		PT(test_admission_messages),
		PT(test_messages_without_fd),
		PT(test_eof),
		PT(test_eagain_recv),
		PT(test_eagain_send_queue_full),
		PT(test_send_too_long),
		PT(test_bad_short_header),
		PT(test_bad_empty_datagram_is_not_eof),
		PT(test_bad_unknown_type),
		PT(test_bad_length_for_type),
		PT(test_bad_payload_max_too_small),
		PT(test_bad_conn_without_fd),
		PT(test_bad_load_with_fd_closes_it),
		PT(test_bad_ready_with_fd_closes_it),
		PT(test_other_version_dropped_fd_closed),
		PT(test_bad_conn_two_fds_closes_both),
		PT(test_bad_conn_many_fds_closes_all),
		PT(test_bad_short_header_with_fd_closes_it),
		PT(test_bad_empty_with_fd_closes_it),
		PT(test_bad_unknown_type_with_fd_closes_it),
		PT(test_bad_conn_wrong_length_with_fd_closes_it),
		PT(test_bad_then_good_queued),
		PT(test_conns_round_trip),
		PT(test_conns_count_mismatch),
		PT(test_conns_truncated_by_limit),
		PT(test_conns_refused_by_channel_recv),
		PT(test_conns_send_bounds),
		cmocka_unit_test(test_type_name),
		cmocka_unit_test(test_queue_push_bounds),
		PT(test_queue_waits_for_room),
		PT(test_queue_partial_flush),
		PT(test_queue_flush_error),
		PT(test_reopen_passes_fd),
		PT(test_bad_reopen_without_fd),
		PT(test_bad_reopen_wrong_length_with_fd_closes_it),
		PT(test_reopen_truncated_by_limit),
		PT(test_queue_owns_descriptors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
