/*
 * signals.c — the master's signal handlers: they only set a bit and write a
 * byte to a self-pipe; the poll loop wakes on the pipe and acts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "master.h"

/* Lock-free, so the handler may update it and the loop swap it out. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "signal bits need lock-free atomics");
static atomic_uint           signals_seen;
static int                   signals_pipe[2] = { -1, -1 };
/* Who sent the last SIGUSR2: `-s upgrade` waits for an answer tagged so. */
static atomic_long           signals_usr2_pid;

static void
signals_handler(int sig, siginfo_t *si, void *ctx)
{
	int saved = errno;

	(void)ctx;
	if (sig == SIGUSR2)
		atomic_store(&signals_usr2_pid, si != NULL && si->si_code == SI_USER ?
		    (long)si->si_pid : 0);
	atomic_fetch_or(&signals_seen, SIGNALS_BIT(sig));
	if (write(signals_pipe[1], "", 1) == -1) {
		/* pipe full: a wake-up is already pending */
	}
	errno = saved;
}

int
signals_init(void)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD };
	struct sigaction sa;

	if (pipe2(signals_pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = signals_handler;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &sa, NULL) == -1)
			return -1;
	}
	sa.sa_flags = 0;
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return 0;
}

int
signals_fd(void)
{
	return signals_pipe[0];
}

unsigned
signals_take(void)
{
	char drain[64];

	while (read(signals_pipe[0], drain, sizeof(drain)) > 0)
		;
	return atomic_exchange(&signals_seen, 0);
}

pid_t
signals_usr2_sender(void)
{
	return (pid_t)atomic_load(&signals_usr2_pid);
}

/* In a freshly forked worker: the master's pipe is not its business. */
void
signals_close(void)
{
	close(signals_pipe[0]);
	close(signals_pipe[1]);
	signals_pipe[0] = signals_pipe[1] = -1;
	/* a worker sets its own; USR2 (upgrade) is the master's alone */
	signal(SIGUSR2, SIG_IGN);
}
