/*
 * channel.h — typed messages between the master and its workers over a
 * SOCK_SEQPACKET socketpair.  channel.c is the only file that touches
 * SCM_RIGHTS.  Every message: a fixed header, then exactly hdr.len bytes.
 */
#ifndef HFTPD_CHANNEL_H
#define HFTPD_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

enum channel_type {
	CHANNEL_CONN = 1,   /* master -> worker: one client fd + struct channel_conn */
	CHANNEL_DRAIN,      /* master -> worker: finish clients, then exit */
	CHANNEL_STOP,       /* master -> worker: close everything, exit now */
	CHANNEL_REOPEN,     /* master -> worker: one log fd + struct channel_reopen */
	CHANNEL_READY,      /* worker -> master: serving */
	CHANNEL_LOAD,       /* worker -> master: struct channel_load */
	CHANNEL_CLOSED,     /* worker -> master: struct channel_closed */
	CHANNEL_PEER,       /* worker -> master: struct channel_peer */
	CHANNEL_DROP,       /* master -> worker: struct channel_drop */
	CHANNEL_CONNS,      /* master -> worker: n client fds + struct channel_conns */
	CHANNEL_STATS,      /* worker -> master: struct channel_stats */
	CHANNEL_TYPE_MAX
};

/*
 * The messages' format.  Master and workers are one binary (workers are
 * forked, never exec'd), so both ends always agree; the version is sent and
 * checked all the same, so a message from another build (a stray process,
 * a future format) is dropped and logged instead of misread.  A binary
 * upgrade passes only listening sockets: the new master starts its own
 * workers, and no message crosses versions.
 */
#ifndef CHANNEL_VERSION
#define CHANNEL_VERSION 1
#endif

struct channel_hdr {
	uint32_t type;
	uint32_t len;       /* payload bytes after the header */
	uint32_t gen;       /* configuration generation of the sender/target */
	uint32_t version;   /* CHANNEL_VERSION of the sender */
};

struct channel_conn {
	uint64_t id;        /* connection number, for the logs */
	uint32_t flags;     /* CHANNEL_CONN_* of the listener it came from */
	uint32_t pad;
};
/* The connection starts with a PROXY protocol header (listen ... proxy_protocol). */
#define CHANNEL_CONN_PROXY  0x1

/*
 * Several connections in one message (CONNS): conn[i] goes with the i-th
 * descriptor, and n must equal the descriptors that come with it.  Only the
 * n entries used are sent: the payload is CHANNEL_CONNS_LEN(n) bytes.
 */
#define CHANNEL_CONNS_MAX   16
struct channel_conns {
	uint32_t            n;      /* 1..CHANNEL_CONNS_MAX */
	uint32_t            pad;
	struct channel_conn conn[CHANNEL_CONNS_MAX];
};
#define CHANNEL_CONNS_LEN(n) \
	(offsetof(struct channel_conns, conn) + (size_t)(n) * sizeof(struct channel_conn))

struct channel_load {
	uint64_t received;  /* connections ever received (descriptors lost included) */
	uint32_t open;      /* connections open now */
	uint32_t capacity;  /* connections it can hold (its descriptor limit allowing) */
	uint32_t evictable; /* idle ones it would close to make room, when full */
	uint32_t pad;
};

/* Which log a REOPEN's descriptor replaces. */
enum channel_log { CHANNEL_LOG_ERROR = 1, CHANNEL_LOG_ACCESS };

struct channel_reopen {
	uint32_t log;       /* enum channel_log */
	uint32_t pad;
};

/*
 * Ids of connections the worker closed, for the master's count per address
 * (max_clients_per_address; not sent when it is 0).  Batched with LOAD.
 */
#define CHANNEL_CLOSED_IDS  7
struct channel_closed {
	uint32_t n;         /* ids used, 1..CHANNEL_CLOSED_IDS */
	uint32_t pad;
	uint64_t id[CHANNEL_CLOSED_IDS];
};

/* The PROXY header of connection id named this client (the count's address). */
struct channel_peer {
	uint64_t id;
	uint32_t family;    /* AF_INET or AF_INET6 */
	uint32_t pad;
	uint8_t  addr[16];  /* IPv4 in the first 4 bytes */
};

/* Close connection id now: its PROXY address is over max_clients_per_address. */
struct channel_drop {
	uint64_t id;
};

/*
 * A worker's counters since it started (totals, not deltas: a lost
 * message loses nothing), sent at most once a second when they changed,
 * and at drain and exit.  The master keeps, per pool index and generation,
 * the totals of the workers that died before (status.c).  The names of
 * the rows are channel_stats_*_name().
 */
#define CHANNEL_STATS_COMMANDS  6   /* get_file_listing get_metadata get_slice help quit other */
#define CHANNEL_STATS_STATUSES  8   /* 0 100 101 199 200 201 202 203 */
#define CHANNEL_STATS_FRAMINGS  3   /* base64 (and fragments), raw, other */
#define CHANNEL_STATS_CLOSES    9   /* the worker's tally kinds (tally.h) */
struct channel_stats {
	uint64_t requests[CHANNEL_STATS_COMMANDS][CHANNEL_STATS_STATUSES];
	uint64_t sent[CHANNEL_STATS_FRAMINGS];  /* bytes written to client sockets */
	uint64_t received;                      /* connections from the master */
	uint64_t closed[CHANNEL_STATS_CLOSES];  /* closed by a deadline, for room, refused */
	uint64_t log_lost;                      /* access-log lines dropped */
};

#define CHANNEL_PAYLOAD_MAX 512
/* The largest payload of any message (a full CONNS or a STATS): a receive buffer's size. */
#define CHANNEL_RECV_MAX    (sizeof(struct channel_conns) > CHANNEL_PAYLOAD_MAX ? \
	sizeof(struct channel_conns) : CHANNEL_PAYLOAD_MAX)

/* Creates a SOCK_SEQPACKET pair, close-on-exec; 0 / -1. */
int  channel_pair(int sv[2]);

/*
 * Sends one message; fd >= 0 is passed along with it (the caller keeps its
 * copy and closes it after success).  0 on success, -1 on error with errno
 * set (EAGAIN when the peer's queue is full).
 */
int  channel_send(int sock, enum channel_type type, uint32_t gen,
	    const void *payload, size_t len, int fd);

/*
 * Receives one message.  Returns 1 with *hdr, payload and *fd filled (fd -1
 * when none came), 0 on EOF, -1 on error (errno EAGAIN when nothing waits,
 * EBADMSG for a malformed message, which has been dropped and any fd closed).
 * The payload length is checked against the type's expected size.  A CONN
 * whose descriptor the receiver could not take (MSG_CTRUNC: its descriptor
 * limit) comes back whole with *fd == -1: that connection is lost, and the
 * receiver must still count it.  A REOPEN likewise: the old log is kept.
 */
int  channel_recv(int sock, struct channel_hdr *hdr, void *payload,
	    size_t payload_max, int *fd);

/*
 * Sends conns->n (1..CHANNEL_CONNS_MAX) connections in one CONNS message,
 * fds[i] with conns->conn[i]; otherwise as channel_send (the caller keeps
 * its copies and closes them after success).
 */
int  channel_send_conns(int sock, uint32_t gen, const struct channel_conns *conns,
	    const int *fds);

/*
 * Receives one message as channel_recv does, taking up to
 * CHANNEL_CONNS_MAX descriptors: fds[i] goes with a CONNS's conn[i]
 * (payload_max must be CHANNEL_RECV_MAX for a CONNS to fit); any other
 * type's descriptor is fds[0].  When the descriptors a CONNS brings are
 * not the n it names (MSG_CTRUNC: the receiver's descriptor limit; or a
 * broken sender), every one that came is closed and all n are -1: those
 * connections are lost, and the receiver must still count them.
 */
int  channel_recv_fds(int sock, struct channel_hdr *hdr, void *payload,
	    size_t payload_max, int fds[CHANNEL_CONNS_MAX]);

const char *channel_type_name(uint32_t type);

/* Row names of struct channel_stats (NULL past the end). */
const char *channel_stats_command_name(unsigned i);
int         channel_stats_status_code(unsigned i);     /* -1 past the end */
const char *channel_stats_framing_name(unsigned i);
const char *channel_stats_close_name(unsigned i);
/* The command row of a command's name (len bytes); the last row for any other. */
unsigned    channel_stats_command_row(const char *name, size_t len);
/* The status row of a status code; 0 (OK's) for a code it does not know. */
unsigned    channel_stats_status_row(int code);

/*
 * An outgoing queue for messages that must not be lost when the peer's
 * receive queue is full (the master's DRAIN, STOP and REOPEN): they wait
 * here, in order, and the owner polls the socket for POLLOUT while any is
 * pending (OpenBSD imsg's msgbuf is the model).  Bounded.  A message may
 * own one descriptor (REOPEN's): the queue closes it once it is sent, or
 * when the message is cancelled or the queue cleared.
 */
#define CHANNEL_QUEUE_MAX   8

struct channel_qmsg {
	uint32_t      type;
	uint32_t      gen;
	uint32_t      len;
	int           fd;           /* owned by the queue, or -1 */
	unsigned char payload[CHANNEL_PAYLOAD_MAX];
};

struct channel_queue {
	struct channel_qmsg msgs[CHANNEL_QUEUE_MAX];
	unsigned            head;       /* oldest message */
	unsigned            count;
};

/* Makes q empty; it must hold no descriptor (see channel_queue_clear). */
void channel_queue_init(struct channel_queue *q);
/* Empties q, closing the descriptors its messages own. */
void channel_queue_clear(struct channel_queue *q);
/*
 * Appends a message with fd (-1: none), which the queue owns from then on;
 * 0, or -1 with errno ENOBUFS / EMSGSIZE (fd is then still the caller's).
 */
int  channel_queue_push(struct channel_queue *q, enum channel_type type,
	    uint32_t gen, const void *payload, size_t len, int fd);
/* Drops the waiting messages of this type and payload (their fds closed). */
void channel_queue_cancel(struct channel_queue *q, enum channel_type type,
	    const void *payload, size_t len);
/* True when a message of this type waits (a second one would say nothing new). */
int  channel_queue_has(const struct channel_queue *q, enum channel_type type);
unsigned channel_queue_pending(const struct channel_queue *q);
/*
 * Sends the waiting messages in order until the queue is empty or the
 * socket would block.  Returns the number still waiting, or -1 with errno
 * set on any error but EAGAIN (the queue is kept as it is).
 */
int  channel_queue_flush(int sock, struct channel_queue *q);

#endif
