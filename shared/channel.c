/*
 * channel.c — typed messages between master and workers, and the only code
 * in hftpd that passes descriptors (SCM_RIGHTS).  A message is one
 * SOCK_SEQPACKET datagram: struct channel_hdr, then hdr.len payload bytes,
 * optionally with one descriptor attached (a CONNS: one per connection it
 * names, up to CHANNEL_CONNS_MAX).  Anything malformed is dropped
 * whole, its descriptor (if any) closed, and reported as EBADMSG.
 * It also owns the outgoing queue of messages that must not be lost, and
 * the descriptors waiting in it.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "channel.h"

_Static_assert(sizeof(struct channel_closed) <= CHANNEL_PAYLOAD_MAX, "CLOSED too big");
_Static_assert(CHANNEL_CONNS_MAX <= 253, "SCM_RIGHTS carries at most 253 descriptors");
_Static_assert(sizeof(struct channel_stats) <= CHANNEL_PAYLOAD_MAX, "STATS too big");

struct channel_rule {
	const char *name;
	size_t      len;        /* exact payload length (CONNS: see channel_conns_ok) */
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
	[CHANNEL_CONNS]  = { "CONNS",  0, 1 },
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

/* One message with nfds (0..CHANNEL_CONNS_MAX) descriptors; 0 / -1 with errno. */
static int
channel_sendv(int sock, uint32_t type, uint32_t gen, const void *payload, size_t len,
    const int *fds, int nfds)
{
	struct channel_hdr hdr = { .type = type, .len = (uint32_t)len, .gen = gen,
		.version = CHANNEL_VERSION };
	struct iovec       iov[2];
	struct msghdr      msg;
	union {
		struct cmsghdr hdr;
		char           buf[CMSG_SPACE(CHANNEL_CONNS_MAX * sizeof(int))];
	} cmsgbuf;
	ssize_t            n;

	if (len > CHANNEL_RECV_MAX || nfds < 0 || nfds > CHANNEL_CONNS_MAX) {
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
	if (nfds > 0) {
		struct cmsghdr *cmsg;
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, (size_t)nfds * sizeof(int));
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

int
channel_send(int sock, enum channel_type type, uint32_t gen,
    const void *payload, size_t len, int fd)
{
	if (len > CHANNEL_PAYLOAD_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	return channel_sendv(sock, (uint32_t)type, gen, payload, len, &fd, fd >= 0 ? 1 : 0);
}

int
channel_send_conns(int sock, uint32_t gen, const struct channel_conns *conns, const int *fds)
{
	if (conns->n < 1 || conns->n > CHANNEL_CONNS_MAX) {
		errno = EINVAL;
		return -1;
	}
	return channel_sendv(sock, CHANNEL_CONNS, gen, conns, CHANNEL_CONNS_LEN(conns->n),
	    fds, (int)conns->n);
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

/*
 * How many descriptors msg carries; the first max of them, in order, are
 * copied to fds.
 */
static int
channel_take_fds(struct msghdr *msg, int *fds, int max)
{
	struct cmsghdr *cmsg;
	int             nfds = 0;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
			size_t k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++, nfds++) {
				if (nfds < max)
					memcpy(&fds[nfds], CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			}
		}
	}
	return nfds;
}

/* Whether a CONNS payload of len bytes names as many connections as it holds. */
static bool
channel_conns_ok(const unsigned char *payload, size_t len)
{
	uint32_t n;

	if (len < CHANNEL_CONNS_LEN(1) || len > CHANNEL_CONNS_LEN(CHANNEL_CONNS_MAX) ||
	    (len - CHANNEL_CONNS_LEN(0)) % sizeof(struct channel_conn) != 0)
		return false;
	memcpy(&n, payload + offsetof(struct channel_conns, n), sizeof(n));
	return CHANNEL_CONNS_LEN(n) == len;
}

/*
 * Whether a received message of n bytes (data) carrying nfds descriptors
 * keeps the rules: its header (copied to *hdr), its type's length and
 * descriptor, no truncation but a descriptor the kernel dropped from a
 * CONN or REOPEN (MSG_CTRUNC: the receiver's limit).  A CONNS only needs
 * a well-formed payload: its descriptors are counted by the caller.
 */
static bool
channel_well_formed(const struct msghdr *msg, ssize_t n, int nfds, const unsigned char *data,
    struct channel_hdr *hdr, size_t payload_max)
{
	bool ctrunc = (msg->msg_flags & MSG_CTRUNC) != 0;

	if ((msg->msg_flags & MSG_TRUNC) || (size_t)n < sizeof(*hdr))
		return false;
	memcpy(hdr, data, sizeof(*hdr));
	if (hdr->version != CHANNEL_VERSION || hdr->type == 0 || hdr->type >= CHANNEL_TYPE_MAX)
		return false;
	if (hdr->len != (size_t)n - sizeof(*hdr) || hdr->len > payload_max)
		return false;
	if (hdr->type == CHANNEL_CONNS)
		return channel_conns_ok(data + sizeof(*hdr), hdr->len);
	if (hdr->len != channel_rules[hdr->type].len || nfds > 1 || (ctrunc && nfds > 0))
		return false;
	/* The descriptor of a CONN or REOPEN was dropped by the kernel: say so. */
	if (ctrunc && hdr->type != CHANNEL_CONN && hdr->type != CHANNEL_REOPEN)
		return false;
	return channel_rules[hdr->type].has_fd == (nfds == 1) || ctrunc;
}

/*
 * A CONNS's descriptors: all n it names, in order, or none (every one that
 * came closed, all -1) when the kernel dropped some or the count is wrong.
 */
static void
channel_conns_fds(struct msghdr *msg, const unsigned char *payload, int nfds, int *fds)
{
	uint32_t n;

	memcpy(&n, payload + offsetof(struct channel_conns, n), sizeof(n));
	if ((msg->msg_flags & MSG_CTRUNC) == 0 && (uint32_t)nfds == n)
		return;
	channel_close_fds(msg);
	for (int i = 0; i < CHANNEL_CONNS_MAX; i++)
		fds[i] = -1;
}

int
channel_recv_fds(int sock, struct channel_hdr *hdr, void *payload,
    size_t payload_max, int fds[CHANNEL_CONNS_MAX])
{
	unsigned char data[sizeof(struct channel_hdr) + CHANNEL_RECV_MAX + 1];
	struct iovec  iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr msg;
	union {
		struct cmsghdr hdr;
		/* room for more than the most, so a bad peer's extras are seen and closed */
		char           buf[CMSG_SPACE((CHANNEL_CONNS_MAX + 4) * sizeof(int))];
	} cmsgbuf;
	ssize_t       n;
	int           nfds;

	for (int i = 0; i < CHANNEL_CONNS_MAX; i++)
		fds[i] = -1;
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

	nfds = channel_take_fds(&msg, fds, CHANNEL_CONNS_MAX);
	if (!channel_well_formed(&msg, n, nfds, data, hdr, payload_max))
		goto bad;
	if (hdr->type == CHANNEL_CONNS)
		channel_conns_fds(&msg, data + sizeof(*hdr), nfds, fds);
	memcpy(payload, data + sizeof(*hdr), hdr->len);
	return 1;
bad:
	channel_close_fds(&msg);
	for (int i = 0; i < CHANNEL_CONNS_MAX; i++)
		fds[i] = -1;
	errno = EBADMSG;
	return -1;
}

int
channel_recv(int sock, struct channel_hdr *hdr, void *payload,
    size_t payload_max, int *fd)
{
	int fds[CHANNEL_CONNS_MAX];
	int r = channel_recv_fds(sock, hdr, payload, payload_max, fds);

	*fd = fds[0];
	/* a CONNS is more than this caller takes: its descriptors are closed */
	if (r == 1 && hdr->type == CHANNEL_CONNS) {
		for (int i = 0; i < CHANNEL_CONNS_MAX; i++) {
			if (fds[i] != -1)
				close(fds[i]);
		}
		*fd = -1;
		errno = EBADMSG;
		return -1;
	}
	return r;
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
