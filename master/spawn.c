/*
 * spawn.c — the worker pool: fork workers of a generation, reap them, and
 * replace the ones that die, with exponential back-off for a worker that
 * keeps dying right after it starts (so a crash loop cannot spin the CPU or
 * flood the log).  It also says which slots hold a serving worker.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "clock.h"
#include "log.h"
#include "master.h"
#include "tally.h"
#include "privsep.h"
#include "proctitle.h"
#include "worker.h"

/* A worker that dies sooner than this after its start is backed off. */
#define SPAWN_QUICK_DEATH_MS  1000
#define SPAWN_BACKOFF_MIN_MS  100
#define SPAWN_BACKOFF_MAX_MS  10000
/* Exit status of a forked worker that could not drop root. */
#define SPAWN_EXIT_PRIVSEP    3

int
spawn_count(const struct master *m, bool ready_only)
{
	int n = 0;

	for (int i = 0; i < m->nslots; i++) {
		const struct worker_slot *s = &m->slots[i];
		if (slot_serving(s, m->gen) && (!ready_only || slot_is_ready(s)))
			n++;
	}
	return n;
}

uint64_t
spawn_backoff_ms(int quick_deaths)
{
	uint64_t delay = SPAWN_BACKOFF_MIN_MS;

	for (int k = 1; k < quick_deaths && delay < SPAWN_BACKOFF_MAX_MS; k++)
		delay *= 2;
	return delay > SPAWN_BACKOFF_MAX_MS ? SPAWN_BACKOFF_MAX_MS : delay;
}

struct spawn_backoff *
spawn_backoff_new(int workers)
{
	return calloc((size_t)workers, sizeof(struct spawn_backoff));
}

bool
spawn_respawn_pending(const struct master *m)
{
	if (m->phase != MASTER_RUNNING)
		return false;
	for (int i = 0; i < m->conf->workers; i++) {
		if (m->backoff[i].fails > 0)
			return true;
	}
	return spawn_count(m, false) < m->conf->workers;
}

void
spawn_free_state(struct master *m)
{
	free(m->conf);
	free(m->backoff);
	m->conf = NULL;
	m->backoff = NULL;
}

/*
 * A slot with no worker and no channel.  A new one is made empty (channel
 * -1) before anything can fail: a zeroed slot would name descriptor 0, and
 * the master would poll, then close, its own stdin.
 */
static struct worker_slot *
spawn_free_slot(struct master *m)
{
	struct worker_slot *s;

	for (int i = 0; i < m->nslots; i++) {
		if (!slot_alive(&m->slots[i]) && m->slots[i].chan == -1)
			return &m->slots[i];
	}
	if (m->nslots == MASTER_SLOTS_MAX)
		return NULL;
	s = &m->slots[m->nslots++];
	slot_init(s);
	return s;
}

/*
 * In the forked worker: close everything of the master's but what a worker
 * needs (docs/DESIGN.md lists it): its end of its own channel, the error
 * log (or the syslog socket) and the access log the master opened for it;
 * stdin, stdout and stderr are the master's (/dev/null for a daemon).
 * Then drop root and serve.
 */
static void __attribute__((noreturn))
spawn_child(struct master *m, int chan)
{
	bool was_root;
	int  rc;

	signals_close();
	for (int i = 0; i < m->nlisteners; i++)
		close(m->listeners[i].fd);
	for (int i = 0; i < m->ninherited; i++)
		close(m->inherited[i].fd);
	/* other workers' channels and queued REOPEN copies (its own slot has none yet) */
	for (int i = 0; i < m->nslots; i++)
		slot_channel_closed(&m->slots[i]);
	handoff_pending_close(m);
	if (m->ready_fd != -1)
		close(m->ready_fd);
	if (upgrade_fd(m) != -1)
		close(upgrade_fd(m));     /* an upgrade's ready pipe */
	if (m->pidfile_fd != -1)
		close(m->pidfile_fd);     /* only the master may write or unlock it */
	admit_free(m);          /* the master's books, not the worker's */
	status_free(m);         /* its status connections and counters, too */
	tally_reset();          /* the worker counts its own events */
	proctitle_set("hftpd: worker process (gen %u)", m->gen);
	(void)cpusched_worker();        /* warned; a batch worker still serves */
	was_root = geteuid() == 0;
	if (privsep_drop(m->conf) == -1)
		_exit(SPAWN_EXIT_PRIVSEP);
	/* chrooted (only root can), the served directory is the new root */
	if (m->conf->chroot && was_root)
		snprintf(m->conf->directory, sizeof(m->conf->directory), "/");
	rc = worker_main(m->conf, m->gen, chan, m->access_fd);
	spawn_free_state(m);
	_exit(rc);
}

int
spawn_worker(struct master *m, int index)
{
	struct worker_slot *s;
	int                 sv[2];
	pid_t               pid;

	if ((s = spawn_free_slot(m)) == NULL) {
		log_warnx("too many worker processes; not spawning");
		return -1;
	}
	if (channel_pair(sv) == -1) {
		log_warn("socketpair");
		return -1;
	}
	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	case 0:
		close(sv[0]);
		spawn_child(m, sv[1]);
	}
	close(sv[1]);
	slot_started(s, pid, sv[0], m->gen, index, clock_now_ms());
	log_info("worker %d (pid %ld) started", index, (long)pid);
	return 0;
}

int
spawn_pool(struct master *m)
{
	for (int i = 0; i < m->conf->workers; i++) {
		if (spawn_worker(m, i) == -1)
			return -1;
	}
	return 0;
}

static void
spawn_schedule(struct master *m, struct worker_slot *s)
{
	uint64_t now = clock_now_ms();
	int      idx = s->index;
	uint64_t delay_ms = 0;

	if (idx < 0 || idx >= m->conf->workers)
		return;
	if (now - s->started_ms < SPAWN_QUICK_DEATH_MS) {
		delay_ms = spawn_backoff_ms(++m->backoff[idx].fails);
		if (m->backoff[idx].fails > 1)
			log_warnx("worker %d keeps dying at start; next try in %llu ms", idx,
			    (unsigned long long)delay_ms);
	} else
		m->backoff[idx].fails = 0;
	m->backoff[idx].respawn_ms = now + delay_ms;
}

/*
 * A worker that was leaving (stopped, drained, an old generation) ended:
 * news only when it crashed, not when it exited or met a stop's signal.
 */
static void
spawn_log_leaving(const struct worker_slot *s, pid_t pid, int status)
{
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

	if (sig != 0 && sig != SIGTERM && sig != SIGINT && sig != SIGKILL)
		log_warnx("worker %d (pid %ld, gen %u) killed by signal %d while leaving",
		    s->index, (long)pid, s->gen, sig);
	else
		log_info("worker %d (pid %ld, gen %u) exited", s->index, (long)pid, s->gen);
}

void
spawn_reap(struct master *m)
{
	pid_t pid;
	int   status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct worker_slot *s = NULL;
		for (int i = 0; i < m->nslots; i++) {
			if (m->slots[i].pid == pid) {
				s = &m->slots[i];
				break;
			}
		}
		if (s == NULL) {
			upgrade_reaped(m, pid, status);  /* the new master of an upgrade */
			continue;
		}
		admit_worker_gone(m, pid);  /* its connections are closed */
		status_worker_gone(m, s);   /* its totals stay its pool index's */
		if (slot_leaving(s) || m->phase != MASTER_RUNNING || s->gen != m->gen) {
			spawn_log_leaving(s, pid, status);
			slot_reaped(s);
			continue;
		}
		if (WIFSIGNALED(status))
			log_warnx("worker %d (pid %ld) killed by signal %d; replacing it",
			    s->index, (long)pid, WTERMSIG(status));
		else
			log_warnx("worker %d (pid %ld) exited with status %d; replacing it",
			    s->index, (long)pid, WEXITSTATUS(status));
		status_count(m, STATUS_WORKER_RESTART);
		spawn_schedule(m, s);
		slot_reaped(s);
	}
}

/* True while pool index idx has a worker (serving, starting or not yet reaped). */
static bool
spawn_index_present(const struct master *m, int idx)
{
	for (int i = 0; i < m->nslots; i++) {
		const struct worker_slot *s = &m->slots[i];
		if (s->gen == m->gen && s->index == idx && slot_alive(s) && !slot_leaving(s))
			return true;
	}
	return false;
}

/* Spawns the current generation's missing workers whose back-off is over. */
void
spawn_respawn_due(struct master *m)
{
	uint64_t now;

	if (m->phase != MASTER_RUNNING)
		return;
	now = clock_now_ms();
	for (int idx = 0; idx < m->conf->workers; idx++) {
		if (spawn_index_present(m, idx) || now < m->backoff[idx].respawn_ms)
			continue;
		spawn_worker(m, idx);
	}
}
