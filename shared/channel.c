/*
 * channel.c — typed messages between master and workers, and the only code
 * in hftpd that passes descriptors (SCM_RIGHTS).  A message is one
 * SOCK_SEQPACKET datagram: struct channel_hdr, then hdr.len payload bytes,
 * optionally with one descriptor attached.  Anything malformed is dropped
 * whole, its descriptor (if any) closed, and reported as EBADMSG.
 * It also owns the outgoing queue of messages that must not be lost, and
 * the descriptors waiting in it.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "channel.h"

_Static_assert(sizeof(struct channel_closed) <= CHANNEL_PAYLOAD_MAX, "CLOSED too big");
_Static_assert(sizeof(struct channel_stats) <= CHANNEL_PAYLOAD_MAX, "STATS too big");

struct channel_rule {
	const char *name;
	size_t      len;        /* exact payload length */
	int         has_fd;     /* 1: must carry one fd, 0: must carry none */
};

static const struct channel_rule channel_rules[CHANNEL_TYPE_MAX] = {
	[CHANNEL_CONN]   = { "CONN",   sizeof(struct channel_conn), 1 },
	[CHANNEL_DRAIN]  = { "DRAIN",  0, 0 },
	[CHANNEL_STOP]   = { "STOP",   0, 0 },
	[CHANNEL_REOPEN] = { "REOPEN", sizeof(struct channel_reopen), 1 },
	[CHANNEL_READY]  = { "READY",  0, 0 },
	[CHANNEL_LOAD]   = { "LOAD",   sizeof(struct channel_load), 0 },
	[CHANNEL_CLOSED] = { "CLOSED", sizeof(struct channel_closed), 0 },
	[CHANNEL_PEER]   = { "PEER",   sizeof(struct channel_peer), 0 },
	[CHANNEL_DROP]   = { "DROP",   sizeof(struct channel_drop), 0 },
	[CHANNEL_STATS]  = { "STATS",  sizeof(struct channel_stats), 0 },
};

/* The rows of struct channel_stats, as /metrics labels them. */
static const char *const channel_stats_commands[CHANNEL_STATS_COMMANDS] = {
	"get_file_listing", "get_metadata", "get_slice", "help", "quit", "other",
};
static const int channel_stats_statuses[CHANNEL_STATS_STATUSES] = {
	0, 100, 101, 199, 200, 201, 202, 203,
};
static const char *const channel_stats_framings[CHANNEL_STATS_FRAMINGS] = {
	"base64", "raw", "other",
};
/* In the order of enum tally_kind (worker/stats.c asserts the count). */
static const char *const channel_stats_closes[CHANNEL_STATS_CLOSES] = {
	"client_timeout", "request_timeout", "send_timeout", "proxy_timeout",
	"proxy_bad", "room", "denied", "over_cap", "untrusted",
};

const char *
channel_stats_command_name(unsigned i)
{
	return i < CHANNEL_STATS_COMMANDS ? channel_stats_commands[i] : NULL;
}

int
channel_stats_status_code(unsigned i)
{
	return i < CHANNEL_STATS_STATUSES ? channel_stats_statuses[i] : -1;
}

const char *
channel_stats_framing_name(unsigned i)
{
	return i < CHANNEL_STATS_FRAMINGS ? channel_stats_framings[i] : NULL;
}

const char *
channel_stats_close_name(unsigned i)
{
	return i < CHANNEL_STATS_CLOSES ? channel_stats_closes[i] : NULL;
}

unsigned
channel_stats_command_row(const char *name, size_t len)
{
	for (unsigned i = 0; i + 1 < CHANNEL_STATS_COMMANDS; i++) {
		if (strlen(channel_stats_commands[i]) == len &&
		    memcmp(channel_stats_commands[i], name, len) == 0)
			return i;
	}
	return CHANNEL_STATS_COMMANDS - 1;
}

unsigned
channel_stats_status_row(int code)
{
	for (unsigned i = 0; i < CHANNEL_STATS_STATUSES; i++) {
		if (channel_stats_statuses[i] == code)
			return i;
	}
	return 0;
}

const char *
channel_type_name(uint32_t type)
{
	if (type == 0 || type >= CHANNEL_TYPE_MAX)
		return "unknown";
	return channel_rules[type].name;
}

int
channel_pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
}

int
channel_send(int sock, enum channel_type type, uint32_t gen,
    const void *payload, size_t len, int fd)
{
	struct channel_hdr hdr = { .type = (uint32_t)type, .len = (uint32_t)len, .gen = gen };
	struct iovec       iov[2];
	struct msghdr      msg;
	union {
		struct cmsghdr hdr;
		char           buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	ssize_t            n;

	if (len > CHANNEL_PAYLOAD_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	memset(&msg, 0, sizeof(msg));
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)(uintptr_t)payload;
	iov[1].iov_len = len;
	msg.msg_iov = iov;
	msg.msg_iovlen = len ? 2 : 1;
	if (fd >= 0) {
		struct cmsghdr *cmsg;
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = sizeof(cmsgbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != sizeof(hdr) + len) {   /* cannot happen on SEQPACKET */
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

/* Closes every descriptor a control buffer carries. */
static void
channel_close_fds(struct msghdr *msg)
{
	struct cmsghdr *cmsg;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
			size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < n; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
				close(fd);
			}
		}
	}
}

/* How many descriptors msg carries; *first is the first one (or stays). */
static int
channel_count_fds(struct msghdr *msg, int *first)
{
	struct cmsghdr *cmsg;
	int             nfds = 0;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
			size_t k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			if (k > 0 && *first == -1)
				memcpy(first, CMSG_DATA(cmsg), sizeof(int));
			nfds += (int)k;
		}
	}
	return nfds;
}

/*
 * Whether a received message of n bytes (data) carrying nfds descriptors
 * keeps the rules: its header (copied to *hdr), its type's length and
 * descriptor, no truncation but a descriptor the kernel dropped from a
 * CONN or REOPEN (MSG_CTRUNC: the receiver's limit).
 */
static bool
channel_well_formed(const struct msghdr *msg, ssize_t n, int nfds, const unsigned char *data,
    struct channel_hdr *hdr, size_t payload_max)
{
	bool ctrunc = (msg->msg_flags & MSG_CTRUNC) != 0;

	if ((msg->msg_flags & MSG_TRUNC) || nfds > 1 || (ctrunc && nfds > 0))
		return false;
	if ((size_t)n < sizeof(*hdr))
		return false;
	memcpy(hdr, data, sizeof(*hdr));
	if (hdr->type == 0 || hdr->type >= CHANNEL_TYPE_MAX)
		return false;
	if (hdr->len != (size_t)n - sizeof(*hdr) || hdr->len != channel_rules[hdr->type].len ||
	    hdr->len > payload_max)
		return false;
	/* The descriptor of a CONN or REOPEN was dropped by the kernel: say so. */
	if (ctrunc && hdr->type != CHANNEL_CONN && hdr->type != CHANNEL_REOPEN)
		return false;
	return channel_rules[hdr->type].has_fd == (nfds == 1) || ctrunc;
}

int
channel_recv(int sock, struct channel_hdr *hdr, void *payload,
    size_t payload_max, int *fd)
{
	unsigned char data[sizeof(struct channel_hdr) + CHANNEL_PAYLOAD_MAX + 1];
	struct iovec  iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr msg;
	union {
		struct cmsghdr hdr;
		/* room for more than one fd, so a bad peer's extras are seen and closed */
		char           buf[CMSG_SPACE(4 * sizeof(int))];
	} cmsgbuf;
	ssize_t       n;
	int           nfds, got = -1;

	*fd = -1;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if (n == 0 && msg.msg_controllen == 0) {
		/* EOF, or a zero-length datagram from a broken peer? */
		struct pollfd pfd = { .fd = sock, .events = POLLRDHUP };
		if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP)))
			return 0;
		errno = EBADMSG;
		return -1;
	}

	nfds = channel_count_fds(&msg, &got);
	if (!channel_well_formed(&msg, n, nfds, data, hdr, payload_max))
		goto bad;
	memcpy(payload, data + sizeof(*hdr), hdr->len);
	*fd = got;
	return 1;
bad:
	channel_close_fds(&msg);
	errno = EBADMSG;
	return -1;
}

void
channel_queue_init(struct channel_queue *q)
{
	q->head = 0;
	q->count = 0;
}

void
channel_queue_clear(struct channel_queue *q)
{
	for (unsigned i = 0; i < q->count; i++) {
		struct channel_qmsg *m = &q->msgs[(q->head + i) % CHANNEL_QUEUE_MAX];
		if (m->fd != -1)
			close(m->fd);
		m->fd = -1;
	}
	channel_queue_init(q);
}

int
channel_queue_push(struct channel_queue *q, enum channel_type type,
    uint32_t gen, const void *payload, size_t len, int fd)
{
	struct channel_qmsg *m;

	if (len > CHANNEL_PAYLOAD_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (q->count == CHANNEL_QUEUE_MAX) {
		errno = ENOBUFS;
		return -1;
	}
	m = &q->msgs[(q->head + q->count) % CHANNEL_QUEUE_MAX];
	m->type = (uint32_t)type;
	m->gen = gen;
	m->len = (uint32_t)len;
	m->fd = fd;
	if (len > 0)
		memcpy(m->payload, payload, len);
	q->count++;
	return 0;
}

void
channel_queue_cancel(struct channel_queue *q, enum channel_type type,
    const void *payload, size_t len)
{
	unsigned kept = 0;

	/* compacts in place, keeping the order of what stays */
	for (unsigned i = 0; i < q->count; i++) {
		struct channel_qmsg *m = &q->msgs[(q->head + i) % CHANNEL_QUEUE_MAX];
		if (m->type == (uint32_t)type && m->len == len &&
		    (len == 0 || memcmp(m->payload, payload, len) == 0)) {
			if (m->fd != -1)
				close(m->fd);
			continue;
		}
		if (kept != i)
			q->msgs[(q->head + kept) % CHANNEL_QUEUE_MAX] = *m;
		kept++;
	}
	q->count = kept;
}

int
channel_queue_has(const struct channel_queue *q, enum channel_type type)
{
	for (unsigned i = 0; i < q->count; i++) {
		if (q->msgs[(q->head + i) % CHANNEL_QUEUE_MAX].type == (uint32_t)type)
			return 1;
	}
	return 0;
}

unsigned
channel_queue_pending(const struct channel_queue *q)
{
	return q->count;
}

int
channel_queue_flush(int sock, struct channel_queue *q)
{
	while (q->count > 0) {
		struct channel_qmsg *m = &q->msgs[q->head];

		if (channel_send(sock, (enum channel_type)m->type, m->gen,
		    m->len ? m->payload : NULL, m->len, m->fd) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
				return (int)q->count;
			return -1;
		}
		/* the peer has its own copy now */
		if (m->fd != -1)
			close(m->fd);
		m->fd = -1;
		q->head = (q->head + 1) % CHANNEL_QUEUE_MAX;
		q->count--;
	}
	return 0;
}
