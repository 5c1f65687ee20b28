/*
 * cpusched.c — the CPU scheduling policy of the master and of the workers
 * it forks (master_scheduling).
 *
 * The master's work per connection is short (accept, hand off, close) and
 * comes in bursts.  Run as SCHED_OTHER, each new connection wakes it and
 * may preempt whatever runs on that CPU, so under load it takes one or two
 * connections a wake-up and pays a context switch for each.  As SCHED_BATCH
 * (Linux) a wake-up never preempts: the master runs when the CPU's current
 * task sleeps or ends its slice, and then accepts everything that arrived
 * meanwhile.  An idle CPU still runs it at once; only a busy machine delays
 * an accept, by at most one scheduler slice.  Workers always run as
 * SCHED_OTHER: requests on open connections are never delayed by it.
 *
 * Only the normal class (SCHED_OTHER, SCHED_BATCH) is touched: a policy
 * set by the launcher (real-time, SCHED_IDLE) is left to every process.
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "master.h"

static bool
cpusched_normal_class(int policy)
{
#ifdef SCHED_BATCH
	return policy == SCHED_OTHER || policy == SCHED_BATCH;
#else
	return policy == SCHED_OTHER;
#endif
}

static const char *
cpusched_name(int policy, char *buf, size_t len)
{
	switch (policy) {
	case SCHED_FIFO:
		return "SCHED_FIFO";
	case SCHED_RR:
		return "SCHED_RR";
#ifdef SCHED_IDLE
	case SCHED_IDLE:
		return "SCHED_IDLE";
#endif
	default:
		snprintf(buf, len, "policy %d", policy);
		return buf;
	}
}

static int
cpusched_set(int policy)
{
	struct sched_param sp;

	memset(&sp, 0, sizeof(sp));
	return sched_setscheduler(0, policy, &sp);
}

int
cpusched_master(const struct config *c)
{
	int  now = sched_getscheduler(0);
	int  want = SCHED_OTHER;
	char name[32];

	if (now == -1) {
		log_warn("master_scheduling: sched_getscheduler");
		return -1;
	}
	if (!cpusched_normal_class(now)) {
		log_info("master_scheduling: started under %s, left as it is",
		    cpusched_name(now, name, sizeof(name)));
		return 0;
	}
	if (c->master_scheduling == MASTER_SCHED_BATCH) {
#ifdef SCHED_BATCH
		want = SCHED_BATCH;
#else
		log_warnx("master_scheduling batch: not on this system, the master runs as normal");
#endif
	}
	if (want == now)
		return 0;
	if (cpusched_set(want) == -1) {
		log_warn("master_scheduling: sched_setscheduler");
		return -1;
	}
	return 0;
}

int
cpusched_worker(void)
{
#ifdef SCHED_BATCH
	if (sched_getscheduler(0) == SCHED_BATCH && cpusched_set(SCHED_OTHER) == -1) {
		log_warn("worker: sched_setscheduler SCHED_OTHER");
		return -1;
	}
#endif
	return 0;
}
