/*
 * master.c — the master's poll loop: the signal self-pipe (signals.c only
 * notes signals; they are acted on here), the listeners (only while some
 * worker has room), and every worker channel (POLLIN for its reports,
 * POLLOUT while control messages wait for it).  Each report is decoded
 * here and handed to its owner: a LOAD or READY to the slot (slot.c),
 * closes and PROXY peers to admit.c.  It also owns the phases of the
 * master's life: readiness, running (with a graceful stop's grace at its
 * end), graceful stop (draining) and fast stop, and the phase's deadline;
 * each slot keeps its own (slot_tick).
 * Reload is reload.c's; an upgrade (USR2) is upgrade.c's, polled here.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "clock.h"
#include "log.h"
#include "master.h"
#include "tally.h"

/* poll timeout with nothing timed to do, and while something is (a pending
 * hand-off, the accept back-off, a respawn, a stop in progress) */
#define MASTER_POLL_IDLE_MS     1000
#define MASTER_POLL_BUSY_MS     50
/* Accept failed (EMFILE and friends): stop accepting this long. */
#define MASTER_ACCEPT_BACKOFF_MS 100

/* status listeners and connections: a few dozen at most */
#define MASTER_POLL_STATUS      64
#define MASTER_POLL_MAX         (1 + MASTER_LISTENERS_MAX + MASTER_SLOTS_MAX + MASTER_POLL_STATUS)

/*
 * One turn's poll set: [0] the signal pipe, then nl HFTP listeners (lidx:
 * their places in m->listeners), then channels, then from status_at the
 * status listener's descriptors (status.c's).
 */
struct master_pollset {
	struct pollfd       pfd[MASTER_POLL_MAX + 1];
	struct worker_slot *owner[MASTER_POLL_MAX + 1];
	int                 lidx[MASTER_LISTENERS_MAX];
	int                 n;
	int                 nl;
	int                 status_at;
	int                 upgrade;    /* index of an upgrade's ready pipe, or -1 */
};

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

/* The HFTP listeners close; the status listener answers until the master exits,
 * but for an upgraded one. */
static void
master_stop_accepting(struct master *m)
{
	/*
	 * Handed over by an upgrade: the new master answers on the same status
	 * sockets, so this one must not keep taking /health and saying
	 * "draining" for a service that is not.
	 */
	if (m->upgraded)
		listen_close_all(m);
	else
		listen_close_hftp(m);
	handoff_pending_close(m);
}

static int
master_workers_alive(const struct master *m)
{
	int n = 0;

	for (int i = 0; i < m->nslots; i++)
		n += slot_alive(&m->slots[i]);
	return n;
}

/* A stop while a new binary starts: it is not to outlive this master. */
static void
master_upgrade_cancel(struct master *m)
{
	if (m->upgrade_pid != 0)
		upgrade_fail(m, "the master is stopping");
}

static void
master_stop_fast(struct master *m)
{
	master_upgrade_cancel(m);
	log_info("fast stop");
	notify_send("STOPPING=1");
	m->phase = MASTER_STOPPING;
	master_stop_accepting(m);
	/* each slot has its own deadline: SIGKILL a grace after STOP */
	for (int i = 0; i < m->nslots; i++)
		slot_stop(&m->slots[i], m->now_ms);
}

static void
master_stop_graceful(struct master *m)
{
	master_upgrade_cancel(m);
	log_info("graceful stop: finishing open connections (up to %ds)", m->conf->shutdown_timeout);
	/* after an upgrade, the new master is the service: systemd is not told */
	if (!m->upgraded && m->grace_end_ms == 0)
		notify_send("STOPPING=1");
	m->grace_end_ms = 0;
	m->phase = MASTER_DRAINING;
	m->phase_deadline_ms = m->now_ms +
	    (uint64_t)m->conf->shutdown_timeout * CLOCK_MS_PER_SEC;
	master_stop_accepting(m);
	for (int i = 0; i < m->nslots; i++)
		slot_drain(&m->slots[i], m->conf->shutdown_timeout, m->now_ms);
}

/*
 * A graceful stop with shutdown_grace: /health answers 503 at once, so that
 * load balancers stop sending, while the listeners still accept; the stop
 * proper (master_stop_graceful) begins when the grace ends, or at a second
 * SIGQUIT.  The phase stays MASTER_RUNNING meanwhile: workers keep being
 * respawned and connections handed off as before.
 */
static void
master_stop_graceful_later(struct master *m)
{
	master_upgrade_cancel(m);       /* a stop wins over an upgrade under way */
	if (m->conf->shutdown_grace == 0 || m->grace_end_ms != 0) {
		master_stop_graceful(m);
		return;
	}
	log_info("graceful stop: still accepting for shutdown_grace (%ds), /health says draining",
	    m->conf->shutdown_grace);
	notify_send("STOPPING=1");
	m->grace_end_ms = m->now_ms + (uint64_t)m->conf->shutdown_grace * CLOCK_MS_PER_SEC;
}

/*
 * Workers never open a log by its path (they may be chrooted, and may not
 * create files where the logs live): the master creates and opens both,
 * and each worker gets the fresh descriptors with REOPEN.
 */
static void
master_reopen_logs(struct master *m)
{
	char err[CONFIG_ERR_MAX];
	int  access_fd;

	log_info("reopening log files");
	if (logfiles_create_all(m->conf, m->options->foreground, &access_fd, err,
	    sizeof(err)) == -1)
		log_warnx("%s", err);
	if (access_fd != -1) {
		if (m->access_fd != -1)
			close(m->access_fd);
		m->access_fd = access_fd;
	}
	if (log_reopen() == -1)
		log_warn("reopening %s", m->conf->error_log);
	for (int i = 0; i < m->nslots; i++) {
		slot_reopen(&m->slots[i], CHANNEL_LOG_ERROR, log_file_fd());
		slot_reopen(&m->slots[i], CHANNEL_LOG_ACCESS, access_fd);
	}
}

static void
master_closed_report(struct master *m, struct worker_slot *s, const void *payload)
{
	struct channel_closed closed;

	memcpy(&closed, payload, sizeof(closed));
	if (closed.n == 0 || closed.n > CHANNEL_CLOSED_IDS) {
		log_warnx("worker %d (pid %ld): CLOSED with %u ids dropped",
		    s->index, (long)s->pid, closed.n);
		return;
	}
	for (uint32_t i = 0; i < closed.n; i++)
		admit_closed(m, closed.id[i]);
}

/*
 * A PROXY header named the client of a connection: it counts under that
 * address, or the worker is told to close it (over the cap).  If DROP
 * cannot be sent now the connection stays, so it is counted.
 */
static void
master_peer_report(struct master *m, struct worker_slot *s, const void *payload)
{
	struct channel_peer     peer;
	struct sockaddr_storage ss;

	memcpy(&peer, payload, sizeof(peer));
	memset(&ss, 0, sizeof(ss));
	if (peer.family == AF_INET) {
		ss.ss_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, peer.addr, 4);
	} else if (peer.family == AF_INET6) {
		ss.ss_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, peer.addr, 16);
	} else {
		log_warnx("worker %d (pid %ld): PEER of family %u dropped",
		    s->index, (long)s->pid, peer.family);
		return;
	}
	if (admit_proxied(m, peer.id, s->pid, (const struct sockaddr *)&ss))
		return;
	if (slot_drop(s, peer.id) == -1)
		admit_opened(m, peer.id, s->pid, (const struct sockaddr *)&ss);
}

void
master_message(struct master *m, struct worker_slot *s, const struct channel_hdr *hdr,
    const void *payload, int fd)
{
	struct channel_load load;

	if (hdr->gen != s->gen) {
		log_warnx("worker %d (pid %ld): message for generation %u, expected %u; dropped",
		    s->index, (long)s->pid, hdr->gen, s->gen);
		if (fd != -1)
			close(fd);
		return;
	}
	switch (hdr->type) {
	case CHANNEL_READY:
		slot_ready(s);
		log_debug("worker %d (pid %ld) ready", s->index, (long)s->pid);
		break;
	case CHANNEL_LOAD:
		memcpy(&load, payload, sizeof(load));
		slot_load_report(s, &load, m->now_ms);
		break;
	case CHANNEL_CLOSED:
		master_closed_report(m, s, payload);
		break;
	case CHANNEL_PEER:
		master_peer_report(m, s, payload);
		break;
	case CHANNEL_STATS:
		status_stats_report(m, s, payload);
		break;
	default:
		log_warnx("worker %d (pid %ld): unexpected %s message dropped",
		    s->index, (long)s->pid, channel_type_name(hdr->type));
		if (fd != -1)
			close(fd);
		break;
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
		/* the worker is gone: its exit is reaped (and logged) on SIGCHLD */
		if (r == 0 || (r == -1 && errno == ECONNRESET)) {
			slot_channel_closed(s);
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
			slot_channel_closed(s);
			return;
		}
		master_message(m, s, &hdr, payload, fd);
	}
}

/*
 * Each slot's own deadlines (drain timeout: STOP; STOP's grace: SIGKILL),
 * then the phase's: shutdown_grace ends in a graceful stop's drain,
 * shutdown_timeout ends the drain.
 */
void
master_deadlines(struct master *m)
{
	for (int i = 0; i < m->nslots; i++)
		slot_tick(&m->slots[i], m->now_ms);
	upgrade_tick(m);
	if (m->phase == MASTER_RUNNING && m->grace_end_ms != 0 &&
	    m->now_ms >= m->grace_end_ms)
		master_stop_graceful(m);
	if (m->phase == MASTER_DRAINING && m->now_ms >= m->phase_deadline_ms &&
	    master_workers_alive(m) > 0) {
		log_info("shutdown_timeout reached; stopping the remaining workers");
		master_stop_fast(m);
	}
}

static void
master_announce(struct master *m)
{
	char err[CONFIG_ERR_MAX];

	if (m->announced || m->phase != MASTER_RUNNING ||
	    spawn_count(m, true) < m->conf->workers)
		return;
	m->announced = true;
	/* started by an upgrade: the pid file is ours only now, workers ready */
	if (m->upgrade_incoming && pidfile_takeover(m, err, sizeof(err)) == -1) {
		log_error("%s", err);
		master_ready_report(m, err);
		exit(1);
	}
	m->upgrade_incoming = false;    /* once: a later reload announces again */
	log_info("serving %s with %d workers, generation %u", m->conf->directory,
	    m->conf->workers, m->gen);
	/* systemd learns the main pid before an old master may exit */
	notify_send("READY=1\nSTATUS=serving, generation %u\nMAINPID=%ld", m->gen, (long)getpid());
	master_ready_report(m, "OK\n");
}

/* Listeners are polled only while a worker has room (else clients wait in the backlog). */
static bool
master_accepting(struct master *m)
{
	bool accepting = m->phase == MASTER_RUNNING && !handoff_pending(m) &&
	    handoff_has_room(m) && clock_now_ms() >= m->accept_resume_ms;

	if (!accepting && m->phase == MASTER_RUNNING) {
		if (!m->accept_paused && m->announced)
			log_debug("no worker can take a client; pausing accept");
		m->accept_paused = true;
	} else
		m->accept_paused = false;
	return accepting;
}

static void
master_pollset_add(struct master_pollset *ps, int fd, short events, struct worker_slot *s)
{
	ps->pfd[ps->n].fd = fd;
	ps->pfd[ps->n].events = events;
	ps->pfd[ps->n].revents = 0;
	ps->owner[ps->n++] = s;
}

static void
master_pollset_fill(struct master *m, struct master_pollset *ps)
{
	ps->n = 0;
	ps->nl = 0;
	ps->upgrade = -1;
	master_pollset_add(ps, signals_fd(), POLLIN, NULL);
	if (master_accepting(m)) {
		for (int i = 0; i < m->nlisteners; i++) {
			if (m->listeners[i].addr.status)
				continue;
			ps->lidx[ps->nl++] = i;
			master_pollset_add(ps, m->listeners[i].fd, POLLIN, NULL);
		}
	}
	for (int i = 0; i < m->nslots; i++) {
		struct worker_slot *s = &m->slots[i];
		if (s->chan != -1)
			master_pollset_add(ps, s->chan,
			    POLLIN | (slot_waiting(s) ? POLLOUT : 0), s);
	}
	if (upgrade_fd(m) != -1) {
		ps->upgrade = ps->n;
		master_pollset_add(ps, upgrade_fd(m), POLLIN, NULL);
	}
	ps->status_at = ps->n;
	ps->n += status_poll_fill(m, ps->pfd + ps->n, MASTER_POLL_STATUS);
	for (int i = ps->status_at; i < ps->n; i++)
		ps->owner[i] = NULL;
}

static int
master_poll_timeout(const struct master *m)
{
	if (handoff_pending(m) || m->phase != MASTER_RUNNING || m->grace_end_ms != 0 ||
	    clock_now_ms() < m->accept_resume_ms || spawn_respawn_pending(m) ||
	    status_busy(m))
		return MASTER_POLL_BUSY_MS;
	return MASTER_POLL_IDLE_MS;
}

/*
 * USR2: the config is checked as for a reload (the new master reads the
 * same file), then upgrade.c starts the binary on disk.
 */
static void
master_upgrade(struct master *m)
{
	struct config *c;
	char           err[CONFIG_ERR_MAX];

	log_info("upgrade requested");
	if (m->grace_end_ms != 0) {
		m->upgrade_requester = signals_usr2_sender();
		upgrade_fail(m, "the master is stopping (shutdown_grace)");
		return;
	}
	if (m->upgrade_pid != 0) {
		upgrade_start(m, signals_usr2_sender());    /* answers: one is in progress */
		return;
	}
	if ((c = malloc(sizeof(*c))) == NULL) {
		m->upgrade_requester = signals_usr2_sender();
		upgrade_fail(m, "out of memory");
		return;
	}
	if (config_build(m->options, c, err, sizeof(err)) == -1 ||
	    reload_config_check(c, m->options->foreground, err, sizeof(err)) == -1) {
		free(c);
		m->upgrade_requester = signals_usr2_sender();
		upgrade_fail(m, "%s", err);
		return;
	}
	free(c);
	upgrade_start(m, signals_usr2_sender());
}

/* The new master answered on the ready pipe (or closed it). */
static void
master_on_upgrade(struct master *m, const struct master_pollset *ps)
{
	if (ps->upgrade == -1 || ps->pfd[ps->upgrade].revents == 0 ||
	    ps->pfd[ps->upgrade].fd != upgrade_fd(m))
		return;
	if (upgrade_read(m) == UPGRADE_DONE && m->phase == MASTER_RUNNING)
		master_stop_graceful(m);
}

/* Acts on the signals seen; false when the listener descriptors in ps may be stale. */
bool
master_signals(struct master *m, unsigned sigs)
{
	bool listeners_kept = true;
	bool stop_fast = sigs & (SIGNALS_BIT(SIGTERM) | SIGNALS_BIT(SIGINT));
	bool stop_graceful = !stop_fast && (sigs & SIGNALS_BIT(SIGQUIT));

	/*
	 * A stop before the reap: a signal sent to the whole process group
	 * (Ctrl-C on a foreground hftpd) reaches the workers too, and their
	 * exits, seen in the same wake-up, are then part of the stop, never
	 * deaths to replace.
	 */
	if (stop_fast && m->phase != MASTER_STOPPING)
		master_stop_fast(m);
	else if (stop_graceful && m->phase == MASTER_RUNNING)
		master_stop_graceful_later(m);
	if (sigs & SIGNALS_BIT(SIGCHLD)) {
		/* a dead worker's last reports (its final STATS) before it is reaped */
		for (int i = 0; i < m->nslots; i++) {
			if (m->slots[i].chan != -1)
				master_channel(m, &m->slots[i]);
		}
		spawn_reap(m);
	}
	if (!stop_fast && !stop_graceful && (sigs & SIGNALS_BIT(SIGHUP)) &&
	    m->phase == MASTER_RUNNING && m->grace_end_ms == 0) {
		/*
		 * The new master of an upgrade under way has read the config
		 * already: a reload here would be lost with this master (or
		 * bind what the new one is about to).
		 */
		if (m->upgrade_pid != 0)
			log_warnx("reload ignored: an upgrade is under way; "
			    "reload again once it is done");
		else {
			reload_run(m);
			listeners_kept = false;
		}
	}
	if (sigs & SIGNALS_BIT(SIGUSR1))
		master_reopen_logs(m);
	if ((sigs & SIGNALS_BIT(SIGUSR2)) && m->phase == MASTER_RUNNING)
		master_upgrade(m);
	return listeners_kept;
}

static void
master_on_channels(struct master *m, struct master_pollset *ps)
{
	for (int i = 1; i < ps->status_at; i++) {
		struct worker_slot *s = ps->owner[i];
		short               ev = ps->pfd[i].revents;

		/* the slot may have been closed (and reused) since the poll */
		if (s == NULL || ev == 0 || s->chan != ps->pfd[i].fd)
			continue;
		if (ev & POLLOUT)
			slot_flush(s);
		if (ev & (POLLIN | POLLHUP | POLLERR))
			master_channel(m, s);
	}
}

static void
master_on_listeners(struct master *m, struct master_pollset *ps)
{
	handoff_flush_pending(m);
	for (int i = 1; i <= ps->nl; i++) {
		if ((ps->pfd[i].revents & POLLIN) &&
		    handoff_accept(m, &m->listeners[ps->lidx[i - 1]]) == -1) {
			m->accept_resume_ms = clock_now_ms() + MASTER_ACCEPT_BACKOFF_MS;
			status_count(m, STATUS_ACCEPT_PAUSE);
		}
	}
}

int
master_run(struct master *m)
{
	static struct master_pollset ps;

	while (m->phase == MASTER_RUNNING || master_workers_alive(m) > 0) {
		m->now_ms = clock_now_ms();
		master_pollset_fill(m, &ps);
		if (poll(ps.pfd, (nfds_t)ps.n, master_poll_timeout(m)) == -1) {
			if (errno != EINTR)
				fatal("poll");
			/* interrupted by a signal: the kernel filled in no revents */
			for (int i = 0; i < ps.n; i++)
				ps.pfd[i].revents = 0;
			ps.pfd[0].revents = POLLIN;
		}
		m->now_ms = clock_now_ms();
		/* A handler always writes to the pipe: no byte, no signal. */
		if (ps.pfd[0].revents && !master_signals(m, signals_take())) {
			ps.nl = 0;  /* listener descriptors may have changed under ps */
			ps.n = ps.status_at;    /* the status listeners' too */
		}
		master_on_channels(m, &ps);
		master_on_upgrade(m, &ps);
		if (m->phase == MASTER_RUNNING) {
			master_on_listeners(m, &ps);
			spawn_respawn_due(m);
			master_announce(m);
		}
		master_deadlines(m);
		/* after the channels: a reload may have closed a status listener */
		status_poll_events(m, ps.pfd + ps.status_at, ps.n - ps.status_at);
		tally_flush(m->now_ms, 0);  /* refusals at accept, once per interval */
	}
	tally_flush(clock_now_ms(), 1);
	log_info("exiting");
	return 0;
}
