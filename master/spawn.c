/*
 * spawn.c — the worker pool: fork workers of a generation, reap them, and
 * replace the ones that die, with exponential back-off for a worker that
 * keeps dying right after it starts (so a crash loop cannot spin the CPU or
 * flood the log).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "master.h"
#include "privsep.h"
#include "worker.h"

#define SPAWN_QUICK_DEATH_S   1.0
#define SPAWN_BACKOFF_MIN_MS  100
#define SPAWN_BACKOFF_MAX_MS  10000

int
spawn_count(const struct master *m, unsigned gen, bool ready_only)
{
	int n = 0;

	for (int i = 0; i < m->nslots; i++) {
		const struct worker_slot *s = &m->slots[i];
		if (s->gen == gen && s->pid > 0 && s->chan != -1 && !s->draining &&
		    (!ready_only || s->ready))
			n++;
	}
	return n;
}

static struct worker_slot *
spawn_free_slot(struct master *m)
{
	for (int i = 0; i < m->nslots; i++) {
		if (m->slots[i].pid == 0 && m->slots[i].chan == -1)
			return &m->slots[i];
	}
	if (m->nslots == MASTER_SLOTS_MAX)
		return NULL;
	return &m->slots[m->nslots++];
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
	case 0: {
		/* The worker keeps only its end of its own channel. */
		int rc;
		close(sv[0]);
		signals_close();
		for (int i = 0; i < m->nlisteners; i++)
			close(m->listeners[i].fd);
		for (int i = 0; i < m->nslots; i++) {
			if (&m->slots[i] != s && m->slots[i].chan != -1)
				close(m->slots[i].chan);
		}
		if (m->pending_fd != -1)
			close(m->pending_fd);
		if (m->ready_fd != -1)
			close(m->ready_fd);
		if (privsep_drop(m->conf) == -1)
			_exit(3);
		rc = worker_main(m->conf, m->gen, sv[1]);
		master_free_for_child(m);
		_exit(rc);
	}
	}
	close(sv[1]);
	memset(s, 0, sizeof(*s));
	s->pid = pid;
	s->chan = sv[0];
	s->gen = m->gen;
	s->index = index;
	master_now(&s->started);
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

/* Closes the master's side of a worker that is going away. */
void
spawn_forget(struct master *m, struct worker_slot *s)
{
	(void)m;
	if (s->chan != -1) {
		close(s->chan);
		s->chan = -1;
	}
	s->ready = false;
}

static void
spawn_schedule(struct master *m, struct worker_slot *s)
{
	double lived = master_elapsed(&s->started);
	int    idx = s->index;
	long   delay_ms = 0;

	if (idx < 0 || idx >= m->conf->workers)
		return;
	if (lived < SPAWN_QUICK_DEATH_S) {
		int k = m->fails[idx]++;
		delay_ms = SPAWN_BACKOFF_MIN_MS;
		while (k-- > 0 && delay_ms < SPAWN_BACKOFF_MAX_MS)
			delay_ms *= 2;
		if (delay_ms > SPAWN_BACKOFF_MAX_MS)
			delay_ms = SPAWN_BACKOFF_MAX_MS;
		if (m->fails[idx] > 1)
			log_warnx("worker %d keeps dying at start; next try in %ld ms", idx, delay_ms);
	} else
		m->fails[idx] = 0;
	master_now(&m->respawn_at[idx]);
	m->respawn_at[idx].tv_sec += delay_ms / 1000;
	m->respawn_at[idx].tv_nsec += (delay_ms % 1000) * 1000000L;
	if (m->respawn_at[idx].tv_nsec >= 1000000000L) {
		m->respawn_at[idx].tv_sec++;
		m->respawn_at[idx].tv_nsec -= 1000000000L;
	}
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
		if (s == NULL)
			continue;
		s->pid = 0;
		spawn_forget(m, s);
		if (s->draining || m->phase != MASTER_RUNNING || s->gen != m->gen) {
			log_info("worker %d (pid %ld, gen %u) exited", s->index, (long)pid, s->gen);
			continue;
		}
		if (WIFSIGNALED(status))
			log_warnx("worker %d (pid %ld) killed by signal %d; replacing it",
			    s->index, (long)pid, WTERMSIG(status));
		else
			log_warnx("worker %d (pid %ld) exited with status %d; replacing it",
			    s->index, (long)pid, WEXITSTATUS(status));
		spawn_schedule(m, s);
	}
}

/* Spawns the current generation's missing workers whose back-off is over. */
void
spawn_respawn_due(struct master *m)
{
	struct timespec now;

	if (m->phase != MASTER_RUNNING)
		return;
	master_now(&now);
	for (int idx = 0; idx < m->conf->workers; idx++) {
		bool present = false;
		for (int i = 0; i < m->nslots; i++) {
			const struct worker_slot *s = &m->slots[i];
			if (s->gen == m->gen && s->index == idx && !s->draining &&
			    (s->pid > 0 || s->chan != -1)) {
				present = true;
				break;
			}
		}
		if (present)
			continue;
		if (now.tv_sec < m->respawn_at[idx].tv_sec ||
		    (now.tv_sec == m->respawn_at[idx].tv_sec && now.tv_nsec < m->respawn_at[idx].tv_nsec))
			continue;
		spawn_worker(m, idx);
	}
}
