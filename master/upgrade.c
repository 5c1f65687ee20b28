/*
 * upgrade.c — a new binary without dropping a connection (nginx's USR2).
 *
 * The old master (SIGUSR2, after master.c checked the config) forks and
 * re-runs its own command line — the binary now on disk at the path it was
 * started by, in the folder it was started from — with its listening
 * sockets left open across the exec and named in HFTPD_INHERIT, with the
 * write end of a ready pipe.  The new master adopts the sockets for its
 * listen lines (listen.c), starts its own workers, and once they are ready
 * takes the pid file over (pidfile.c) and writes "OK" to the pipe; only
 * then does the old master stop accepting and drain.  Anything else (an
 * exec that fails, an exit, an error text, no answer within
 * UPGRADE_READY_MS) is a failure: the new process is killed and reaped,
 * the pid file restored, and the old master goes on accepting.
 *
 * The outcome goes to whoever sent the signal (`hftpd -s upgrade`) in
 * PIDFILE.upgrade, written atomically and tagged with the sender's pid (the
 * signal's si_pid), so that a requester never reads another's answer.
 *
 * Nothing crosses between the binaries but listening sockets: the new
 * master starts its own workers, so the channel never joins two versions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "master.h"

/* The new master must be ready (workers up) within this. */
#define UPGRADE_READY_MS        15000
/* One that reported a failure (or closed its pipe) exits by itself within
 * this, or is killed: its exit (a tool's report, under valgrind) is its own. */
#define UPGRADE_EXIT_GRACE_MS   5000
/* How long `-s upgrade` waits for the outcome. */
#define UPGRADE_WAIT_MS         30000
#define UPGRADE_ENV             "HFTPD_INHERIT"
#define UPGRADE_ENV_VERSION     1
#define UPGRADE_RESULT          ".upgrade"
#define UPGRADE_RESULT_TAG      "hftpd-upgrade 1"
#define UPGRADE_FDS_MAX         (2 * MASTER_LISTENERS_MAX)  /* in use + inherited */
/* HFTPD_INHERIT's longest text: every descriptor, 11 characters each. */
#define UPGRADE_ENV_MAX         (64 + UPGRADE_FDS_MAX * 12)

/* The command line and folder this master was started with. */
static char **upgrade_argv;
static char   upgrade_cwd[PATH_MAX];

/* HFTPD_INHERIT as this process found it. */
static struct {
	bool present;               /* a ready pipe named */
	bool garbled;
	int  version;
	int  ready;
	int  n;
	int  fd[UPGRADE_FDS_MAX];
	bool sd[UPGRADE_FDS_MAX];   /* passed by systemd: never closed */
} upgrade_env = { .ready = -1 };

void
upgrade_save_command(char **argv)
{
	upgrade_argv = argv;
	if (getcwd(upgrade_cwd, sizeof(upgrade_cwd)) == NULL)
		snprintf(upgrade_cwd, sizeof(upgrade_cwd), "/");
}

/* "3,4,5" into the table, each flagged sd; -1 on garbage. */
static int
upgrade_env_fds(const char *list, bool sd)
{
	char *end;

	while (*list != '\0') {
		long fd = strtol(list, &end, 10);
		if (end == list || fd <= STDERR_FILENO || fd > INT_MAX ||
		    upgrade_env.n == UPGRADE_FDS_MAX)
			return -1;
		upgrade_env.sd[upgrade_env.n] = sd;
		upgrade_env.fd[upgrade_env.n++] = (int)fd;
		list = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			return -1;
	}
	return 0;
}

/*
 * "VERSION;key=value;...": ready=FD (in every version, so that any new
 * master can say why it cannot go on), sd=FD,FD (systemd's), fd=FD,FD
 * (the master's own).  Unknown keys are skipped (a later version may add
 * some); another version's sockets are not taken: upgrade_adopt fails.
 */
static void
upgrade_env_parse(void)
{
	static bool parsed;
	const char *text = getenv(UPGRADE_ENV);
	char        copy[UPGRADE_ENV_MAX], *save = NULL, *tok;

	if (parsed || text == NULL)
		return;
	parsed = true;
	if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy))
		upgrade_env.garbled = true;
	if ((tok = strtok_r(copy, ";", &save)) == NULL)
		return;
	upgrade_env.version = atoi(tok);
	while ((tok = strtok_r(NULL, ";", &save)) != NULL) {
		bool ours = upgrade_env.version == UPGRADE_ENV_VERSION;

		if (strncmp(tok, "ready=", 6) == 0)
			upgrade_env.ready = atoi(tok + 6);
		else if (ours && ((strncmp(tok, "sd=", 3) == 0 && upgrade_env_fds(tok + 3, true) == -1) ||
		    (strncmp(tok, "fd=", 3) == 0 && upgrade_env_fds(tok + 3, false) == -1)))
			upgrade_env.garbled = true;
	}
	if (upgrade_env.garbled || upgrade_env.version != UPGRADE_ENV_VERSION)
		upgrade_env.n = 0;
	upgrade_env.present = upgrade_env.ready > STDERR_FILENO;
}

bool
upgrade_keeps_fd(int fd)
{
	upgrade_env_parse();
	if (!upgrade_env.present)
		return false;
	if (fd == upgrade_env.ready)
		return true;
	for (int i = 0; i < upgrade_env.n; i++) {
		if (upgrade_env.fd[i] == fd)
			return true;
	}
	return false;
}

int
upgrade_adopt(struct master *m, char *err, size_t errlen)
{
	upgrade_env_parse();
	unsetenv(UPGRADE_ENV);
	if (!upgrade_env.present)
		return 0;
	fcntl(upgrade_env.ready, F_SETFD, FD_CLOEXEC);
	m->ready_fd = upgrade_env.ready;
	m->upgrade_incoming = true;
	if (upgrade_env.version != UPGRADE_ENV_VERSION || upgrade_env.garbled) {
		snprintf(err, errlen, "%s format version %d%s: this binary takes version %d; "
		    "the listening sockets cannot be taken over", UPGRADE_ENV, upgrade_env.version,
		    upgrade_env.garbled ? " (unreadable)" : "", UPGRADE_ENV_VERSION);
		return -1;
	}
	for (int i = 0; i < upgrade_env.n; i++)
		listen_adopt(m, upgrade_env.fd[i], upgrade_env.sd[i], "upgrade");
	return 1;
}

/* Answers requester in PIDFILE.upgrade (atomically: tmp + rename). */
static void
upgrade_answer(const struct master *m, pid_t requester, const char *verdict, const char *text)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 40], line[CONFIG_ERR_MAX + 64];
	int  fd, n;

	if (requester <= 0 || m->conf->pid_file[0] == '\0')
		return;
	pidfile_sibling(m->conf->pid_file, UPGRADE_RESULT, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	n = snprintf(line, sizeof(line), "%s %ld %s %s\n", UPGRADE_RESULT_TAG,
	    (long)requester, verdict, text);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)strlen(line);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1 ||
	    write(fd, line, (size_t)n) != n || rename(tmp, path) == -1) {
		log_warn("upgrade: answer in %s", path);
		unlink(tmp);
	}
	if (fd != -1)
		close(fd);
}

/* HFTPD_INHERIT for the child: every listening socket this master holds. */
static int
upgrade_env_text(const struct master *m, int ready, char *out, size_t outlen)
{
	const struct listener *sets[2] = { m->listeners, m->inherited };
	int                    counts[2] = { m->nlisteners, m->ninherited };
	size_t                 used;
	char                   sd[UPGRADE_ENV_MAX] = "", fd[UPGRADE_ENV_MAX] = "";

	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < counts[k]; i++) {
			char  *list = sets[k][i].inherited ? sd : fd;
			size_t len = strlen(list);
			snprintf(list + len, sizeof(sd) - len, "%s%d", len ? "," : "", sets[k][i].fd);
		}
	}
	used = (size_t)snprintf(out, outlen, "%d;ready=%d;sd=%s;fd=%s", UPGRADE_ENV_VERSION,
	    ready, sd, fd);
	return used < outlen ? 0 : -1;
}

/* In the forked child: the sockets and the pipe survive the exec. */
static void __attribute__((noreturn))
upgrade_child(struct master *m, int ready, const char *env)
{
	const struct listener *sets[2] = { m->listeners, m->inherited };
	int                    counts[2] = { m->nlisteners, m->ninherited };
	char                   msg[PATH_MAX + 64];
	int                    n;

	/* a group of its own, so that a failure can be killed whole */
	setpgid(0, 0);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < counts[k]; i++)
			fcntl(sets[k][i].fd, F_SETFD, 0);
	}
	fcntl(ready, F_SETFD, 0);
	if (setenv(UPGRADE_ENV, env, 1) == 0 && chdir(upgrade_cwd) == 0)
		execvp(upgrade_argv[0], upgrade_argv);
	n = snprintf(msg, sizeof(msg), "exec %s: %s", upgrade_argv[0], strerror(errno));
	if (n > 0 && write(ready, msg, (size_t)n) == -1) {
		/* the parent then reports the exit status */
	}
	_exit(127);
}

void
upgrade_start(struct master *m, pid_t requester)
{
	char  env[UPGRADE_ENV_MAX * 2];
	int   pfd[2];
	pid_t pid;

	if (m->upgrade_pid != 0) {
		log_warnx("upgrade: one is already in progress (new master pid %ld); ignored",
		    (long)m->upgrade_pid);
		upgrade_answer(m, requester, "fail", "an upgrade is already in progress");
		return;
	}
	m->upgrade_requester = requester;
	if (pipe2(pfd, O_CLOEXEC) == -1) {
		upgrade_fail(m, "ready pipe: %s", strerror(errno));
		return;
	}
	if (upgrade_env_text(m, pfd[1], env, sizeof(env)) == -1 || (pid = fork()) == -1) {
		close(pfd[0]);
		close(pfd[1]);
		upgrade_fail(m, "cannot start the new binary: %s", strerror(errno));
		return;
	}
	if (pid == 0)
		upgrade_child(m, pfd[1], env);
	setpgid(pid, pid);      /* the child does it too: whoever runs first */
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);
	m->upgrade_pid = pid;
	m->upgrade_fd = pfd[0];
	m->upgrade_got = 0;
	m->upgrade_reaped = false;
	m->upgrade_deadline_ms = clock_now_ms() + UPGRADE_READY_MS;
	log_info("upgrade: starting %s as pid %ld", upgrade_argv[0], (long)pid);
}

static void upgrade_end(struct master *m);

bool
upgrade_reaped(struct master *m, pid_t pid, int status)
{
	if (m->upgrade_pid == 0 || pid != m->upgrade_pid)
		return false;
	m->upgrade_reaped = true;
	m->upgrade_status = status;
	if (m->upgrade_fd == -1)
		upgrade_end(m);         /* it had failed already: now it is gone */
	return true;
}

/* The child is killed (if it still runs) and reaped; how it ended, in out. */
static void
upgrade_kill(struct master *m, char *out, size_t outlen)
{
	int status = m->upgrade_status;

	if (!m->upgrade_reaped) {
		/* its group: a script's children, a new master's first workers */
		kill(-m->upgrade_pid, SIGKILL);
		kill(m->upgrade_pid, SIGKILL);
		while (waitpid(m->upgrade_pid, &status, 0) == -1 && errno == EINTR)
			;
		m->upgrade_reaped = true;
		m->upgrade_status = status;
	}
	if (WIFEXITED(status))
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		snprintf(out, outlen, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, outlen, "killed");
}

void
upgrade_fail(struct master *m, const char *fmt, ...)
{
	char    reason[CONFIG_ERR_MAX], how[64] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (m->upgrade_pid != 0) {
		if (m->upgrade_fd != -1)
			close(m->upgrade_fd);
		m->upgrade_fd = -1;
		upgrade_kill(m, how, sizeof(how));
		log_info("upgrade: new master pid %ld %s", (long)m->upgrade_pid, how);
		m->upgrade_pid = 0;
	}
	pidfile_restore(m);
	log_warnx("upgrade failed, the running master goes on: %s", reason);
	upgrade_answer(m, m->upgrade_requester, "fail", reason);
	m->upgrade_requester = 0;
}

/* The ready pipe of the upgrade in progress, or -1 (none: upgrade_pid 0). */
int
upgrade_fd(const struct master *m)
{
	return m->upgrade_pid != 0 ? m->upgrade_fd : -1;
}

/*
 * The child closed its pipe without "OK" and is gone (reaped, or killed
 * now that its grace is over): the failure is told, with what it wrote or
 * how it ended.
 */
static void
upgrade_end(struct master *m)
{
	char how[64];

	upgrade_kill(m, how, sizeof(how));
	if (m->upgrade_got > 0)
		upgrade_fail(m, "new binary: %s", m->upgrade_msg);
	else
		upgrade_fail(m, "the new binary %s before it was ready (see the error log)", how);
}

enum upgrade_outcome
upgrade_read(struct master *m)
{
	ssize_t r;
	char    pid[32];

	if (upgrade_fd(m) == -1)
		return UPGRADE_PENDING;
	while ((r = read(m->upgrade_fd, m->upgrade_msg + m->upgrade_got,
	    sizeof(m->upgrade_msg) - 1 - m->upgrade_got)) > 0) {
		m->upgrade_got += (size_t)r;
		if (m->upgrade_got == sizeof(m->upgrade_msg) - 1)
			break;
	}
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return UPGRADE_PENDING;
	m->upgrade_msg[m->upgrade_got] = '\0';
	m->upgrade_msg[strcspn(m->upgrade_msg, "\n")] = '\0';
	close(m->upgrade_fd);
	m->upgrade_fd = -1;
	if (strcmp(m->upgrade_msg, "OK") != 0) {
		/* it exits by itself (main_fail); told once reaped, or killed */
		m->upgrade_deadline_ms = clock_now_ms() + UPGRADE_EXIT_GRACE_MS;
		if (m->upgrade_reaped)
			upgrade_end(m);
		return UPGRADE_FAILED;
	}
	snprintf(pid, sizeof(pid), "%ld", (long)m->upgrade_pid);
	log_info("upgrade: new master pid %s is serving; this one stops accepting and drains", pid);
	upgrade_answer(m, m->upgrade_requester, "ok", pid);
	m->upgrade_requester = 0;
	m->upgrade_pid = 0;         /* no longer ours to kill: it is the master now */
	m->upgraded = true;
	return UPGRADE_DONE;
}

/* The deadlines: ready within UPGRADE_READY_MS; gone within the grace. */
void
upgrade_tick(struct master *m)
{
	if (m->upgrade_pid == 0 || m->now_ms < m->upgrade_deadline_ms)
		return;
	if (m->upgrade_fd != -1)
		upgrade_fail(m, "the new master was not ready within %d s", UPGRADE_READY_MS / 1000);
	else
		upgrade_end(m);
}

/* `-s upgrade`: our answer in PIDFILE.upgrade, or -1 while there is none. */
static int
upgrade_result(const char *path, char *text, size_t textlen)
{
	char  line[CONFIG_ERR_MAX + 64], tag[64];
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), fp) == NULL) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	line[strcspn(line, "\n")] = '\0';
	snprintf(tag, sizeof(tag), "%s %ld ", UPGRADE_RESULT_TAG, (long)getpid());
	if (strncmp(line, tag, strlen(tag)) != 0)
		return -1;      /* someone else's, or a stale one */
	unlink(path);
	snprintf(text, textlen, "%s", line + strlen(tag));
	return 0;
}

int
upgrade_request(const char *pid_file, pid_t pid)
{
	char     path[PATH_MAX + 16], text[CONFIG_ERR_MAX + 64];
	uint64_t deadline = clock_now_ms() + UPGRADE_WAIT_MS;

	pidfile_sibling(pid_file, UPGRADE_RESULT, path, sizeof(path));
	if (kill(pid, SIGUSR2) == -1) {
		fprintf(stderr, "hftpd: signal pid %ld: %s\n", (long)pid, strerror(errno));
		return 1;
	}
	while (upgrade_result(path, text, sizeof(text)) == -1) {
		if (clock_now_ms() >= deadline) {
			fprintf(stderr, "hftpd: upgrade: no outcome from pid %ld within %d s "
			    "(see the error log)\n", (long)pid, UPGRADE_WAIT_MS / 1000);
			return 1;
		}
		poll(NULL, 0, 20);
	}
	if (strncmp(text, "ok ", 3) == 0) {
		printf("hftpd: upgraded: new master pid %s (old master %ld drains and exits)\n",
		    text + 3, (long)pid);
		return 0;
	}
	fprintf(stderr, "hftpd: upgrade failed: %s\n",
	    strncmp(text, "fail ", 5) == 0 ? text + 5 : text);
	return 1;
}
