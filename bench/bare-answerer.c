/*
 * bare-answerer.c — the physical bar for hftpd's per-request path: a bare
 * epoll server that answers every "\r\n"-terminated line with one fixed
 * reply (by default the bytes hftpd sends for `get_metadata FILE` of a
 * file of --size bytes: "0 OK\r\nSIZE\r\n").  No parsing, no stat, no
 * log: what a server costs when it does nothing but move bytes.
 *
 * One process per core (or --procs), each with its own SO_REUSEPORT
 * listener and epoll loop, so the kernel spreads connections as it does
 * for hftpd's workers.  Bounded: every process exits on SIGTERM / SIGINT,
 * when its parent dies, and after --duration seconds.
 *
 *   bare-answerer --port PORT [--host 127.0.0.1] [--size BYTES]
 *                 [--procs N] [--duration SECONDS]
 *
 * Used by bench/bare-compare; not installed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BARE_EVENTS     256
#define BARE_READ       65536
#define BARE_OUT_MAX    (1 << 20)   /* stop reading a client owed this much */
#define BARE_PROCS_MAX  256

struct bare_conn {
	int     fd;
	bool    cr;             /* the last byte read was '\r' */
	char   *out;            /* replies not yet taken by the kernel */
	size_t  outlen, outcap;
};

struct bare_opts {
	const char *host;
	int         port;
	long long   size;
	int         procs;
	double      duration;
};

static volatile sig_atomic_t bare_stop;
static char   bare_reply[64];
static size_t bare_replylen;

static void
bare_on_signal(int sig)
{
	(void)sig;
	bare_stop = 1;
}

static double
bare_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bare_usage(void)
{
	fprintf(stderr, "usage: bare-answerer --port PORT [--host ADDR] [--size BYTES] "
	    "[--procs N] [--duration SECONDS]\n");
	exit(2);
}

static void
bare_parse(int argc, char **argv, struct bare_opts *o)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	o->host = "127.0.0.1";
	o->port = 0;
	o->size = 268435456;
	o->procs = n > 0 && n < BARE_PROCS_MAX ? (int)n : 1;
	o->duration = 3600;
	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			bare_usage();
		if (strcmp(argv[i], "--port") == 0)
			o->port = atoi(v);
		else if (strcmp(argv[i], "--host") == 0)
			o->host = v;
		else if (strcmp(argv[i], "--size") == 0)
			o->size = atoll(v);
		else if (strcmp(argv[i], "--procs") == 0)
			o->procs = atoi(v);
		else if (strcmp(argv[i], "--duration") == 0)
			o->duration = atof(v);
		else
			bare_usage();
	}
	if (o->port <= 0 || o->port > 65535 || o->procs < 1 || o->procs > BARE_PROCS_MAX ||
	    o->size < 0 || o->duration <= 0)
		bare_usage();
}

static int
bare_listen(const struct bare_opts *o)
{
	struct sockaddr_in sin;
	int                fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)o->port);
	if (inet_pton(AF_INET, o->host, &sin.sin_addr) != 1) {
		fprintf(stderr, "bare-answerer: %s: not an IPv4 address\n", o->host);
		return -1;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(fd, 4096) == -1) {
		perror("bare-answerer: listen");
		close(fd);
		return -1;
	}
	return fd;
}

static void
bare_close(struct bare_conn *c)
{
	close(c->fd);
	free(c->out);
	free(c);
}

/* Appends one reply per complete line in buf; -1 when out of memory. */
static int
bare_answer(struct bare_conn *c, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool line = buf[i] == '\n' && (i > 0 ? buf[i - 1] == '\r' : c->cr);

		if (!line)
			continue;
		if (c->outlen + bare_replylen > c->outcap) {
			size_t cap = c->outcap ? c->outcap * 2 : 4096;
			char  *p = realloc(c->out, cap);

			if (p == NULL)
				return -1;
			c->out = p;
			c->outcap = cap;
		}
		memcpy(c->out + c->outlen, bare_reply, bare_replylen);
		c->outlen += bare_replylen;
	}
	if (n > 0)
		c->cr = buf[n - 1] == '\r';
	return 0;
}

/* Sends what is owed; -1 when the connection is done for. */
static int
bare_flush(struct bare_conn *c)
{
	while (c->outlen > 0) {
		ssize_t w = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);

		if (w == -1)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		memmove(c->out, c->out + w, c->outlen - (size_t)w);
		c->outlen -= (size_t)w;
	}
	return 0;
}

/* One ready client: read all there is, answer, send; -1 to close it. */
static int
bare_serve(int ep, struct bare_conn *c, uint32_t events)
{
	static char        buf[BARE_READ];
	struct epoll_event ev = { .data.ptr = c };

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		while (c->outlen < BARE_OUT_MAX) {
			ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

			if (n == 0)
				return -1;
			if (n == -1) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				return -1;
			}
			if (bare_answer(c, buf, (size_t)n) == -1)
				return -1;
			if (bare_flush(c) == -1)
				return -1;
		}
	}
	if (bare_flush(c) == -1)
		return -1;
	ev.events = c->outlen > 0 ? EPOLLOUT : EPOLLIN;
	if (c->outlen > 0 || (events & EPOLLOUT))
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

static void
bare_accept(int ep, int lfd)
{
	for (;;) {
		struct epoll_event ev;
		struct bare_conn  *c;
		int                fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1)
			return;
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			return;
		}
		c->fd = fd;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			bare_close(c);
			continue;
		}
		/* clients write right after connecting: answer now */
		if (bare_serve(ep, c, EPOLLIN) == -1)
			bare_close(c);
	}
}

/* One process's loop until a signal or the deadline; connections die with it. */
static int
bare_child(int lfd, double deadline)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[BARE_EVENTS];
	int                ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1) {
		perror("bare-answerer: epoll");
		return 1;
	}
	while (!bare_stop && bare_now() < deadline) {
		int n = epoll_wait(ep, evs, BARE_EVENTS, 200);

		for (int i = 0; i < n; i++) {
			struct bare_conn *c = evs[i].data.ptr;

			if (c == NULL)
				bare_accept(ep, lfd);
			else if (bare_serve(ep, c, evs[i].events) == -1)
				bare_close(c);
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct bare_opts o;
	struct sigaction sa;
	pid_t            pids[BARE_PROCS_MAX];
	double           deadline;
	int              started = 0, rc = 0;

	bare_parse(argc, argv, &o);
	bare_replylen = (size_t)snprintf(bare_reply, sizeof(bare_reply), "0 OK\r\n%lld\r\n", o.size);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bare_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	deadline = bare_now() + o.duration;
	for (int i = 0; i < o.procs; i++) {
		int   lfd = bare_listen(&o);
		pid_t pid;

		if (lfd == -1)
			break;
		if ((pid = fork()) == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() == 1)
				_exit(0);
			_exit(bare_child(lfd, deadline));
		}
		close(lfd);
		if (pid == -1)
			break;
		pids[started++] = pid;
	}
	if (started < o.procs) {
		rc = 1;
		bare_stop = 1;
	} else {
		printf("bare-answerer: %d processes on %s:%d, reply %zu bytes\n", started,
		    o.host, o.port, bare_replylen);
		fflush(stdout);
	}
	while (!bare_stop && bare_now() < deadline)
		usleep(100000);
	for (int i = 0; i < started; i++)
		kill(pids[i], SIGTERM);
	for (int i = 0; i < started; i++)
		waitpid(pids[i], NULL, 0);
	return rc;
}
