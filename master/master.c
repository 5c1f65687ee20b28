/*
 * master.c — the master's poll loop: the signal self-pipe, the listeners
 * (only while some worker has room), and every worker channel.  It also owns
 * the life cycle: readiness, reload by generations, graceful and fast stop.
 *
 * Reload (HUP): the config is parsed afresh; on error nothing changes.  On
 * success unchanged listeners keep their descriptor, new ones are opened,
 * removed ones closed; a new generation of workers is forked and the old
 * one is told to drain: it finishes its connections and exits, or is
 * stopped at shutdown_timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "privsep.h"

#define MASTER_STOP_GRACE_S 1

static int master_log_files(const struct config *c);

void
master_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

double
master_elapsed(const struct timespec *since)
{
	struct timespec now;

	master_now(&now);
	return (double)(now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) / 1e9;
}

static void
master_deadline(struct timespec *ts, int seconds)
{
	master_now(ts);
	ts->tv_sec += seconds;
}

static bool
master_passed(const struct timespec *deadline)
{
	return master_elapsed(deadline) >= 0;
}

void
master_free_for_child(struct master *m)
{
	free(m->conf);
	free(m->fails);
	free(m->respawn_at);
	m->conf = NULL;
	m->fails = NULL;
	m->respawn_at = NULL;
}

/* Log files are created here, owned by `user` so workers can reopen them. */
int
master_log_file_create(const struct config *c, const char *path, char *err, size_t errlen)
{
	uid_t uid;
	gid_t gid;
	int   fd;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (geteuid() == 0 && privsep_ids(c, &uid, &gid) == 0 && fchown(fd, uid, gid) == -1) {
		snprintf(err, errlen, "%s: chown: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void
master_ready_report(struct master *m, const char *msg)
{
	if (m->ready_fd == -1)
		return;
	if (write(m->ready_fd, msg, strlen(msg)) == -1)
		log_warn("readiness pipe");
	close(m->ready_fd);
	m->ready_fd = -1;
}

/* Opens c's listeners, reusing the descriptors of unchanged ones. */
int
master_listeners_open(struct master *m, const struct config *c, char *err, size_t errlen)
{
	struct listener next[CONFIG_LISTEN_MAX];
	bool            reused[CONFIG_LISTEN_MAX] = { false };
	int             n = 0;

	for (int i = 0; i < c->nlisten; i++) {
		int fd = -1;
		for (int j = 0; j < m->nlisteners; j++) {
			if (!reused[j] && strcmp(m->listeners[j].addr.text, c->listen[i].text) == 0) {
				fd = m->listeners[j].fd;
				reused[j] = true;
				break;
			}
		}
		if (fd == -1 && (fd = net_listen(&c->listen[i], 4096)) == -1) {
			snprintf(err, errlen, "listen %s: %s", c->listen[i].text, strerror(errno));
			goto fail;
		}
		next[n].fd = fd;
		next[n].addr = c->listen[i];
		n++;
	}
	for (int j = 0; j < m->nlisteners; j++) {
		if (!reused[j]) {
			log_info("closing listener %s", m->listeners[j].addr.text);
			close(m->listeners[j].fd);
		}
	}
	for (int i = 0; i < n; i++) {
		bool old = false;
		for (int j = 0; j < m->nlisteners; j++)
			old |= (m->listeners[j].fd == next[i].fd);
		if (!old)
			log_info("listening on %s", next[i].addr.text);
	}
	memcpy(m->listeners, next, sizeof(next[0]) * (size_t)n);
	m->nlisteners = n;
	return 0;
fail:
	/* close only what this call opened */
	for (int i = 0; i < n; i++) {
		bool old = false;
		for (int j = 0; j < m->nlisteners; j++)
			old |= (m->listeners[j].fd == next[i].fd);
		if (!old)
			close(next[i].fd);
	}
	return -1;
}

static void
master_close_listeners(struct master *m)
{
	for (int i = 0; i < m->nlisteners; i++)
		close(m->listeners[i].fd);
	m->nlisteners = 0;
	if (m->pending_fd != -1) {
		close(m->pending_fd);
		m->pending_fd = -1;
	}
}

static void
master_tell(struct worker_slot *s, enum channel_type type)
{
	if (s->chan == -1)
		return;
	if (channel_send(s->chan, type, s->gen, NULL, 0, -1) == -1)
		log_warn("worker %d (pid %ld): send %s", s->index, (long)s->pid, channel_type_name(type));
}

/* Old workers finish their clients; at their deadline they are stopped. */
static void
master_drain_slot(struct master *m, struct worker_slot *s, int timeout)
{
	(void)m;
	if (s->draining)
		return;
	s->draining = true;
	master_deadline(&s->deadline, timeout);
	master_tell(s, CHANNEL_DRAIN);
}

static int
master_workers_alive(const struct master *m)
{
	int n = 0;

	for (int i = 0; i < m->nslots; i++)
		n += (m->slots[i].pid > 0);
	return n;
}

static void
master_stop_fast(struct master *m)
{
	log_info("fast stop");
	notify_send("STOPPING=1");
	m->phase = MASTER_STOPPING;
	master_deadline(&m->phase_deadline, MASTER_STOP_GRACE_S);
	master_close_listeners(m);
	for (int i = 0; i < m->nslots; i++) {
		if (m->slots[i].pid > 0) {
			master_tell(&m->slots[i], CHANNEL_STOP);
			kill(m->slots[i].pid, SIGTERM);
		}
	}
}

static void
master_stop_graceful(struct master *m)
{
	log_info("graceful stop: finishing open connections (up to %ds)", m->conf->shutdown_timeout);
	notify_send("STOPPING=1");
	m->phase = MASTER_DRAINING;
	master_deadline(&m->phase_deadline, m->conf->shutdown_timeout);
	master_close_listeners(m);
	for (int i = 0; i < m->nslots; i++)
		master_drain_slot(m, &m->slots[i], m->conf->shutdown_timeout);
}

static void
master_reload(struct master *m)
{
	struct config  *next;
	char            err[CONFIG_ERR_MAX];
	struct timespec ts;
	unsigned        old_gen = m->gen;
	int            *fails = NULL;
	struct timespec *respawn_at = NULL;

	master_now(&ts);
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	log_info("reloading configuration");
	if ((next = malloc(sizeof(*next))) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (master_config_build(m->options, next, err, sizeof(err)) == -1 ||
	    master_config_check(next, err, sizeof(err)) == -1)
		goto fail;
	fails = calloc((size_t)next->workers, sizeof(*fails));
	respawn_at = calloc((size_t)next->workers, sizeof(*respawn_at));
	if (fails == NULL || respawn_at == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (master_listeners_open(m, next, err, sizeof(err)) == -1)
		goto fail;
	master_log_files(next);
	if (strcmp(next->error_log, m->conf->error_log) != 0 && log_open(next->error_log) == -1)
		log_warn("error_log %s: keeping the old log", next->error_log);
	log_set_level((enum log_level)next->log_level);

	free(m->conf);
	free(m->fails);
	free(m->respawn_at);
	m->conf = next;
	m->fails = fails;
	m->respawn_at = respawn_at;
	m->gen++;
	log_set_role("master", m->gen);
	for (int i = 0; i < m->nslots; i++) {
		if (m->slots[i].gen == old_gen && m->slots[i].pid > 0)
			master_drain_slot(m, &m->slots[i], m->conf->shutdown_timeout);
	}
	if (spawn_pool(m) == -1)
		log_warnx("reload: not every worker of generation %u could be started", m->gen);
	log_info("configuration reloaded: generation %u, %d workers", m->gen, m->conf->workers);
	m->announced = false;   /* READY=1 again once the new generation serves */
	return;
fail:
	free(next);
	free(fails);
	free(respawn_at);
	log_error("reload failed, keeping the running configuration: %s", err);
	notify_send("READY=1\nSTATUS=reload failed: %s", err);
}

/* (Re)creates the log files as the master, owned by `user`; 0 / -1 logged. */
static int
master_log_files(const struct config *c)
{
	char err[CONFIG_ERR_MAX];
	int  rc = 0;

	if (strcmp(c->error_log, "stderr") != 0 && strcmp(c->error_log, "syslog") != 0 &&
	    master_log_file_create(c, c->error_log, err, sizeof(err)) == -1) {
		log_warnx("error_log %s", err);
		rc = -1;
	}
	if (strcmp(c->access_log, "off") != 0 &&
	    master_log_file_create(c, c->access_log, err, sizeof(err)) == -1) {
		log_warnx("access_log %s", err);
		rc = -1;
	}
	return rc;
}

static void
master_reopen_logs(struct master *m)
{
	log_info("reopening log files");
	/* Workers may not create files where the logs live: the master does. */
	master_log_files(m->conf);
	if (log_reopen() == -1)
		log_warn("reopening %s", m->conf->error_log);
	for (int i = 0; i < m->nslots; i++) {
		if (m->slots[i].pid > 0)
			master_tell(&m->slots[i], CHANNEL_REOPEN);
	}
}

/* Reads every message a worker sent; bad ones are logged and dropped. */
static void
master_channel(struct master *m, struct worker_slot *s)
{
	struct channel_hdr hdr;
	unsigned char      payload[CHANNEL_PAYLOAD_MAX];
	int                fd, r;

	for (;;) {
		r = channel_recv(s->chan, &hdr, payload, sizeof(payload), &fd);
		if (r == 0) {
			spawn_forget(m, s);     /* the exit is reaped on SIGCHLD */
			return;
		}
		if (r == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EBADMSG) {
				log_warnx("worker %d (pid %ld): malformed message dropped",
				    s->index, (long)s->pid);
				continue;
			}
			log_warn("worker %d (pid %ld): channel", s->index, (long)s->pid);
			spawn_forget(m, s);
			return;
		}
		if (hdr.gen != s->gen) {
			log_warnx("worker %d (pid %ld): message for generation %u, expected %u; dropped",
			    s->index, (long)s->pid, hdr.gen, s->gen);
			if (fd != -1)
				close(fd);
			continue;
		}
		switch (hdr.type) {
		case CHANNEL_READY:
			s->ready = true;
			log_debug("worker %d (pid %ld) ready", s->index, (long)s->pid);
			break;
		case CHANNEL_LOAD: {
			struct channel_load load;
			memcpy(&load, payload, sizeof(load));
			if (load.received > s->sent || load.open > load.received) {
				log_warnx("worker %d (pid %ld): impossible load report dropped",
				    s->index, (long)s->pid);
				break;
			}
			s->open = load.open;
			s->received = load.received;
			break;
		}
		default:
			log_warnx("worker %d (pid %ld): unexpected %s message dropped",
			    s->index, (long)s->pid, channel_type_name(hdr.type));
			if (fd != -1)
				close(fd);
			break;
		}
	}
}

/* Worker deadlines: draining ones get STOP, stopping ones get SIGKILL. */
static void
master_deadlines(struct master *m)
{
	for (int i = 0; i < m->nslots; i++) {
		struct worker_slot *s = &m->slots[i];
		if (s->pid <= 0 || !s->draining || !master_passed(&s->deadline))
			continue;
		if (!s->stop_sent) {
			log_info("worker %d (pid %ld, gen %u): drain timeout; stopping it",
			    s->index, (long)s->pid, s->gen);
			master_tell(s, CHANNEL_STOP);
			kill(s->pid, SIGTERM);
			s->stop_sent = true;
			master_deadline(&s->deadline, MASTER_STOP_GRACE_S);
		} else
			kill(s->pid, SIGKILL);
	}
	if (m->phase == MASTER_STOPPING && master_passed(&m->phase_deadline)) {
		for (int i = 0; i < m->nslots; i++) {
			if (m->slots[i].pid > 0)
				kill(m->slots[i].pid, SIGKILL);
		}
	}
}

static void
master_announce(struct master *m)
{
	if (m->announced || m->phase != MASTER_RUNNING ||
	    spawn_count(m, m->gen, true) < m->conf->workers)
		return;
	m->announced = true;
	log_info("serving %s with %d workers, generation %u", m->conf->directory,
	    m->conf->workers, m->gen);
	master_ready_report(m, "OK\n");
	notify_send("READY=1\nSTATUS=serving, generation %u\nMAINPID=%ld", m->gen, (long)getpid());
}

int
master_run(struct master *m)
{
	struct pollfd       pfd[1 + CONFIG_LISTEN_MAX + MASTER_SLOTS_MAX];
	struct worker_slot *owner[1 + CONFIG_LISTEN_MAX + MASTER_SLOTS_MAX];

	for (;;) {
		int      n = 0, nl = 0, timeout = 1000;
		unsigned sigs;
		bool     accepting;

		if (m->phase != MASTER_RUNNING && master_workers_alive(m) == 0)
			break;
		accepting = m->phase == MASTER_RUNNING && m->pending_fd == -1 &&
		    dispatch_has_room(m) && master_passed(&m->accept_resume);
		if (!accepting && m->phase == MASTER_RUNNING) {
			if (!m->accept_paused && m->announced)
				log_debug("every worker is full; pausing accept");
			m->accept_paused = true;
		} else
			m->accept_paused = false;

		pfd[n].fd = signals_fd();
		pfd[n].events = POLLIN;
		owner[n++] = NULL;
		if (accepting) {
			for (int i = 0; i < m->nlisteners; i++) {
				pfd[n].fd = m->listeners[i].fd;
				pfd[n].events = POLLIN;
				owner[n++] = NULL;
				nl++;
			}
		}
		for (int i = 0; i < m->nslots; i++) {
			if (m->slots[i].chan == -1)
				continue;
			pfd[n].fd = m->slots[i].chan;
			pfd[n].events = POLLIN;
			owner[n++] = &m->slots[i];
		}
		if (m->pending_fd != -1 || m->phase != MASTER_RUNNING || !master_passed(&m->accept_resume))
			timeout = 50;
		for (int i = 0; i < m->conf->workers && m->phase == MASTER_RUNNING; i++) {
			if (m->fails[i] > 0 || spawn_count(m, m->gen, false) < m->conf->workers)
				timeout = 50;
		}
		if (poll(pfd, (nfds_t)n, timeout) == -1) {
			if (errno != EINTR)
				fatal("poll");
			/* interrupted by a signal: the kernel filled in no revents */
			for (int i = 0; i < n; i++)
				pfd[i].revents = 0;
			pfd[0].revents = POLLIN;
		}

		/* A handler always writes to the pipe: no byte, no signal. */
		sigs = pfd[0].revents ? signals_take() : 0;
		if (sigs & SIGNALS_BIT(SIGCHLD))
			spawn_reap(m);
		if (sigs & (SIGNALS_BIT(SIGTERM) | SIGNALS_BIT(SIGINT))) {
			if (m->phase != MASTER_STOPPING)
				master_stop_fast(m);
		} else if ((sigs & SIGNALS_BIT(SIGQUIT)) && m->phase == MASTER_RUNNING)
			master_stop_graceful(m);
		else if ((sigs & SIGNALS_BIT(SIGHUP)) && m->phase == MASTER_RUNNING) {
			master_reload(m);
			nl = 0;     /* listener descriptors may have changed under pfd */
		}
		if (sigs & SIGNALS_BIT(SIGUSR1))
			master_reopen_logs(m);

		for (int i = 1; i < n; i++) {
			if (owner[i] != NULL && pfd[i].revents && owner[i]->chan == pfd[i].fd)
				master_channel(m, owner[i]);
		}
		if (m->phase == MASTER_RUNNING) {
			dispatch_flush_pending(m);
			for (int i = 1; i <= nl; i++) {
				if (pfd[i].revents & POLLIN && dispatch_accept(m, pfd[i].fd) == -1) {
					master_now(&m->accept_resume);
					m->accept_resume.tv_nsec += 100000000L;
					if (m->accept_resume.tv_nsec >= 1000000000L) {
						m->accept_resume.tv_sec++;
						m->accept_resume.tv_nsec -= 1000000000L;
					}
				}
			}
			spawn_respawn_due(m);
			master_announce(m);
		}
		master_deadlines(m);
		if (m->phase == MASTER_DRAINING && master_passed(&m->phase_deadline) &&
		    master_workers_alive(m) > 0) {
			log_info("shutdown_timeout reached; stopping the remaining workers");
			master_stop_fast(m);
		}
	}
	log_info("exiting");
	return 0;
}
