/*
 * main.c — hftpd's entry point: options, `-t` and `-s` (signal a running
 * master), then startup: logs, listeners, daemonizing with honest
 * readiness, the pid file, the first workers; then master_run.  Building
 * and checking the config are config_build (shared/config.c) and
 * reload_config_check (reload.c), shared with the reload path.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "config.h"
#include "log.h"
#include "master.h"
#include "privsep.h"
#include "proctitle.h"

/* How the binary was built (the Makefile passes the real ones). */
#ifndef HFTPD_BUILD_CC
#define HFTPD_BUILD_CC      "cc"
#endif
#ifndef HFTPD_BUILD_FLAGS
#define HFTPD_BUILD_FLAGS   ""
#endif
/* main_options: go on, or exit with this status */
#define MAIN_CONTINUE       (-1)
/* -t and -T */
#define MAIN_TEST           1
#define MAIN_TEST_PRINT     2

/* --json: -s status prints the JSON as it came */
static bool main_json;

static void
main_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: hftpd [-c FILE] [-d DIR] [-p PORT] [-a ADDR] [-w N] [-n N] [-u USER] [-g GROUP]\n"
	    "             [-f] [-t | -T] [-h] [-V]\n"
	    "       hftpd -s reload|quit|stop|reopen|upgrade [-c FILE]\n"
	    "       hftpd -s status [--json] [-c FILE]\n"
	    "  -c FILE  configuration file (key = value lines; default: %s if it exists)\n"
	    "  -d DIR   directory to serve (default: %s)\n"
	    "  -p PORT  port to listen on (default: %d)\n"
	    "  -a ADDR  address to listen on, without the port (default: %s;\n"
	    "           :: or ::1 for IPv6, :: being IPv6 only)\n"
	    "  -w N     worker processes (default: online CPUs)\n"
	    "  -n N     clients per worker (default: %d)\n"
	    "  -u USER  the workers' user when started as root (default: nobody)\n"
	    "  -g GROUP the workers' group (default: the user's; nogroup for nobody)\n"
	    "  -f       stay in the foreground, log to stderr\n"
	    "  -t       check the configuration and exit 0 (good) or 1 (bad)\n"
	    "  -T       check it, then print the effective configuration\n"
	    "  -s SIG   send reload, quit (graceful), stop (fast), reopen (logs) or\n"
	    "           upgrade (run the binary now on disk, waits for the outcome)\n"
	    "           to the running master named by the pid file\n"
	    "  -s status  the running master's workers and counters, as a table\n"
	    "           (--json: as JSON), read from its status_listen\n"
	    "  -h, --help     this help\n"
	    "  -V, --version  version, build and compiled-in paths\n"
	    "See hftpd(8) and hftpd.conf(5).\n",
	    HFTPD_CONF_PATH, CONFIG_DEFAULT_DIRECTORY, CONFIG_DEFAULT_PORT, CONFIG_DEFAULT_ADDR,
	    CONFIG_DEFAULT_CLIENTS_PER_WORKER);
}

static void
main_version(void)
{
	printf("hftpd %s\n", HFTPD_VERSION);
	printf("built by: %s %s\n", HFTPD_BUILD_CC, __VERSION__);
	printf("flags: %s\n", HFTPD_BUILD_FLAGS);
	printf("base64: %s (chosen at run time)\n", base64_impl_name());
	printf("config file: %s\n", HFTPD_CONF_PATH);
	printf("pid file: %s\n", CONFIG_DEFAULT_PID_FILE);
	printf("error log without syslog: %s\n", HFTPD_ERROR_LOG_FALLBACK);
}

static int
main_positive(const char *s, int max, int *out)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int
main_signal(const struct config_overrides *o, const char *what)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "reload", SIGHUP }, { "quit", SIGQUIT }, { "stop", SIGTERM }, { "reopen", SIGUSR1 },
		{ "upgrade", SIGUSR2 },
	};
	struct config c;
	char          err[CONFIG_ERR_MAX];
	long          pid;
	int           sig = 0;

	if (strcmp(what, "status") == 0) {
		if (config_build(o, &c, err, sizeof(err)) == -1) {
			fprintf(stderr, "hftpd: %s\n", err);
			return 1;
		}
		return statusctl_run(&c, main_json);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(names[i].name, what) == 0)
			sig = names[i].sig;
	}
	if (sig == 0) {
		fprintf(stderr, "hftpd: -s %s: expected reload, quit, stop, reopen, upgrade or status\n", what);
		return 1;
	}
	/*
	 * reload and upgrade: the check the master will make, so that a bad config fails
	 * here, visibly, and nothing is sent.  Without a file there is nothing
	 * to check: the master rebuilds from its own command line, which this
	 * one does not know (checking the defaults would judge a directory the
	 * master does not serve).
	 */
	if (config_build(o, &c, err, sizeof(err)) == -1 ||
	    ((sig == SIGHUP || sig == SIGUSR2) && o->config_file != NULL &&
	    reload_config_check(&c, o->foreground, err, sizeof(err)) == -1)) {
		fprintf(stderr, "hftpd: %s\n", err);
		return 1;
	}
	if (sig == SIGHUP && o->config_file == NULL)
		fprintf(stderr, "hftpd: no config file: nothing to check before the "
		    "reload; the master rebuilds its config from its own command line\n");
	if ((pid = pidfile_holder(c.pid_file)) <= 0) {
		fprintf(stderr, "hftpd: no running hftpd holds the pid file %s\n", c.pid_file);
		return 1;
	}
	if (sig == SIGUSR2)
		return upgrade_request(c.pid_file, (pid_t)pid);
	if (kill((pid_t)pid, sig) == -1) {
		fprintf(stderr, "hftpd: signal pid %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * Forks into the background.  The launcher waits on a pipe and exits 0
 * only once the master reports "OK" (listening, every worker up); any
 * other report is the startup error, printed before exiting 1.
 */
static int
main_daemonize(struct master *m)
{
	int   pfd[2], devnull;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) == -1)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0) {
		char    msg[CONFIG_ERR_MAX + 16];
		size_t  got = 0;
		ssize_t r;

		close(pfd[1]);
		while (got < sizeof(msg) - 1 &&
		    ((r = read(pfd[0], msg + got, sizeof(msg) - 1 - got)) > 0 || (r == -1 && errno == EINTR)))
			got += r > 0 ? (size_t)r : 0;
		msg[got] = '\0';
		if (strcmp(msg, "OK\n") == 0)
			_exit(0);
		if (got == 0)
			fprintf(stderr, "hftpd: startup failed (see the error log)\n");
		else
			fprintf(stderr, "hftpd: %s\n", msg);
		_exit(1);
	}
	close(pfd[0]);
	if (setsid() == -1)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") == -1)
		return -1;
	umask(022);
	if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		return -1;
	dup2(devnull, STDIN_FILENO);
	dup2(devnull, STDOUT_FILENO);
	close(devnull);
	m->ready_fd = pfd[1];
	return 0;
}

static void
main_raise_nofile(const struct config *c)
{
	struct rlimit rl;
	rlim_t        want = (rlim_t)config_nofile_wanted(c);

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want)
		log_warnx("open file limit %llu is below %d x clients_per_worker + %d = %llu: "
		    "workers take fewer clients", (unsigned long long)rl.rlim_cur,
		    CONFIG_FDS_PER_CLIENT, CONFIG_FDS_RESERVE, (unsigned long long)want);
}

static int
main_logs_open(struct master *m, bool foreground, char *err, size_t errlen)
{
	const char *target = logfiles_error_target(m->conf, foreground);

	if (logfiles_create_all(m->conf, foreground, &m->access_fd, err, errlen) == -1)
		return -1;
	if (log_open(target) == -1) {
		snprintf(err, errlen, "error_log %s: %s", target, strerror(errno));
		return -1;
	}
	return 0;
}

static void
main_fail(struct master *m, const char *msg)
{
	if (m->ready_fd != -1) {
		log_error("%s", msg);
		master_ready_report(m, msg);
	} else
		fprintf(stderr, "hftpd: %s\n", msg);
	exit(1);
}

/* "hftpd: master process ARGS", as ps shows it. */
static void
main_title(int argc, char **argv)
{
	char   args[PATH_MAX];
	size_t used = 0;

	args[0] = '\0';
	for (int i = 1; i < argc && used < sizeof(args); i++) {
		int n = snprintf(args + used, sizeof(args) - used, " %s", argv[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	proctitle_set("hftpd: master process%s", args);
}

/*
 * Descriptors the launcher left open (a shell's, a CI runner's pipe) are
 * not the daemon's: closed at start, so that no worker inherits them.
 * Sockets systemd passes for this process (LISTEN_FDS from 3) stay, and so
 * do the sockets and ready pipe an upgrading master passes (HFTPD_INHERIT,
 * upgrade.c), and anything at or above the soft open-file limit (where a tool such as
 * valgrind keeps its own).  /dev/fd lists what is open.
 */
static void
main_close_inherited(void)
{
	const char   *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
	long          passed = 0;
	struct rlimit rl;
	struct dirent *e;
	DIR          *d;

	if (pid_text != NULL && fds_text != NULL && atol(pid_text) == (long)getpid())
		passed = atol(fds_text);
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || (d = opendir("/dev/fd")) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		long fd = atol(e->d_name);

		if (fd <= STDERR_FILENO || fd == dirfd(d) || (rlim_t)fd >= rl.rlim_cur ||
		    fd < STDERR_FILENO + 1 + passed || upgrade_keeps_fd((int)fd))
			continue;
		close((int)fd);
	}
	closedir(d);
}

/*
 * nginx's way: the compiled-in config file when -c names none and it
 * exists; a relative -c made absolute (the daemon runs in /, and a reload
 * must still name the file).  MAIN_CONTINUE, or the exit status.
 */
static int
main_config_path(struct config_overrides *o)
{
	static char abs_config[PATH_MAX];
	char        cwd[PATH_MAX];
	int         n;

	if (o->config_file == NULL && access(HFTPD_CONF_PATH, F_OK) == 0)
		o->config_file = HFTPD_CONF_PATH;
	if (o->config_file == NULL || o->config_file[0] == '/')
		return MAIN_CONTINUE;
	if (getcwd(cwd, sizeof(cwd)) == NULL ||
	    (n = snprintf(abs_config, sizeof(abs_config), "%s/%s", cwd, o->config_file)) < 0 ||
	    (size_t)n >= sizeof(abs_config)) {
		fprintf(stderr, "hftpd: %s: cannot make the path absolute\n", o->config_file);
		return 1;
	}
	o->config_file = abs_config;
	return MAIN_CONTINUE;
}

/* Parses the command line into o; MAIN_CONTINUE, or the exit status. */
static int
main_options(int argc, char **argv, struct config_overrides *o, int *test,
    const char **signal_name)
{
	static const struct option longopts[] = {
		{ "help",    no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "json",    no_argument, NULL, 'J' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:d:p:a:w:n:u:g:ftTs:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config_file = optarg; break;
		case 'd': o->directory = optarg; break;
		case 'p': o->port = optarg; break;
		case 'a': o->address = optarg; break;
		case 'u': o->user = optarg; break;
		case 'g': o->group = optarg; break;
		case 'w':
			if (main_positive(optarg, CONFIG_WORKERS_MAX, &o->workers) == -1) {
				fprintf(stderr, "hftpd: -w %s: expected a number from 1 to %d\n",
				    optarg, CONFIG_WORKERS_MAX);
				return 1;
			}
			break;
		case 'n':
			if (main_positive(optarg, CONFIG_CLIENTS_MAX, &o->clients) == -1) {
				fprintf(stderr, "hftpd: -n %s: expected a number from 1 to %d\n",
				    optarg, CONFIG_CLIENTS_MAX);
				return 1;
			}
			break;
		case 'f': o->foreground = true; break;
		case 't': *test = MAIN_TEST; break;
		case 'T': *test = MAIN_TEST_PRINT; break;
		case 's': *signal_name = optarg; break;
		case 'h': main_usage(stdout); return 0;
		case 'V': main_version(); return 0;
		case 'J': main_json = true; break;
		default: main_usage(stderr); return 1;
		}
	}
	if (main_json && (*signal_name == NULL || strcmp(*signal_name, "status") != 0)) {
		fprintf(stderr, "hftpd: --json goes with -s status\n");
		return 1;
	}
	if (optind != argc) {
		fprintf(stderr, "hftpd: unexpected argument '%s'\n", argv[optind]);
		main_usage(stderr);
		return 1;
	}
	return main_config_path(o);
}

/* Before the fork: errors go to stderr; MAIN_CONTINUE or the exit status. */
static int
main_prepare(struct master *m, const struct config_overrides *o)
{
	char err[CONFIG_ERR_MAX];
	long holder;
	int  upgrading;

	log_init("master", (enum log_level)m->conf->log_level);
	m->gen = 1;
	log_set_role("master", m->gen);
	/* started by an upgrade: the old master holds the pid file until we are ready */
	if ((upgrading = upgrade_adopt(m, err, sizeof(err))) == -1)
		main_fail(m, err);
	if (!upgrading && m->conf->pid_file[0] != '\0' &&
	    (holder = pidfile_holder(m->conf->pid_file)) > 0) {
		fprintf(stderr, "hftpd: already running as pid %ld (pid file %s)\n",
		    holder, m->conf->pid_file);
		return 1;
	}
	if (main_logs_open(m, o->foreground, err, sizeof(err)) == -1)  {
		fprintf(stderr, "hftpd: %s\n", err);
		return 1;
	}
	listen_inherit(m);
	if (listen_open(m, m->conf, err, sizeof(err)) == -1)
		main_fail(m, err);
	listen_drop_unnamed(m);
	/* an upgrade's new master is detached already; its launcher is the old one */
	if (!o->foreground && !upgrading && main_daemonize(m) == -1) {
		fprintf(stderr, "hftpd: daemonize: %s\n", strerror(errno));
		return 1;
	}
	/* From here on, errors reach the launcher through the readiness pipe. */
	if (!o->foreground) {
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull != -1) {
			dup2(devnull, STDERR_FILENO);
			close(devnull);
		}
	}
	return MAIN_CONTINUE;
}

/* After the fork: the pid file, limits, signals, the first workers. */
static void
main_start(struct master *m)
{
	char err[CONFIG_ERR_MAX];

	if (!m->upgrade_incoming && pidfile_write(m, err, sizeof(err)) == -1)
		main_fail(m, err);
	main_raise_nofile(m->conf);
	if ((m->backoff = spawn_backoff_new(m->conf->workers)) == NULL)
		main_fail(m, "out of memory");
	if (signals_init() == -1) {
		snprintf(err, sizeof(err), "signals: %s", strerror(errno));
		main_fail(m, err);
	}
	if (strcmp(logfiles_error_target(m->conf, m->options->foreground),
	    HFTPD_ERROR_LOG_FALLBACK) == 0)
		log_info("no syslog daemon answers at /dev/log: logging to %s",
		    HFTPD_ERROR_LOG_FALLBACK);
	log_info("hftpd %s starting: %d workers x %d clients, directory %s",
	    HFTPD_VERSION, m->conf->workers, m->conf->clients_per_worker, m->conf->directory);
	if (m->upgrade_incoming)
		log_info("started by an upgrade from master pid %ld", (long)getppid());
	privsep_announce(m->conf);
	if (config_warnings(m->conf, err, sizeof(err)) > 0)
		log_warnx("%s", err);
	(void)cpusched_master(m->conf);     /* warned; the master runs either way */
	if (spawn_pool(m) == -1)
		main_fail(m, "cannot start the workers");
}

static void
main_exit(struct master *m)
{
	pidfile_remove(m);
	for (int i = 0; i < m->nslots; i++)
		slot_channel_closed(&m->slots[i]);
	if (m->access_fd != -1)
		close(m->access_fd);
	spawn_free_state(m);
	admit_free(m);
	status_free(m);
	listen_close_all(m);
	log_close();
}

int
main(int argc, char **argv)
{
	static struct master    m;
	struct config_overrides o = { 0 };
	const char             *signal_name = NULL;
	char                    err[CONFIG_ERR_MAX];
	int                     test = 0, rc;

	/* argv's strings move to the heap: the title overwrites their area */
	proctitle_init(argc, argv);
	upgrade_save_command(argv);
	if ((rc = main_options(argc, argv, &o, &test, &signal_name)) != MAIN_CONTINUE)
		return rc;
	if (signal_name != NULL)
		return main_signal(&o, signal_name);
	main_close_inherited();

	m.ready_fd = -1;
	m.pidfile_fd = -1;
	m.access_fd = -1;
	m.upgrade_fd = -1;
	m.options = &o;
	if ((m.conf = malloc(sizeof(*m.conf))) == NULL || status_init(&m) == -1) {
		fprintf(stderr, "hftpd: out of memory\n");
		return 1;
	}
	if (config_build(&o, m.conf, err, sizeof(err)) == -1 ||
	    reload_config_check(m.conf, o.foreground, err, sizeof(err)) == -1) {
		fprintf(stderr, "hftpd: %s\n", err);
		return 1;
	}
	if (test != 0) {
		if (config_warnings(m.conf, err, sizeof(err)) > 0)
			fprintf(stderr, "hftpd: warning: %s\n", err);
		if (test == MAIN_TEST_PRINT) {
			struct config_ids ids;
			privsep_effective(m.conf, &ids);
			config_print(m.conf, &ids, stdout);
		}
		printf("hftpd: configuration %s is ok\n", o.config_file ? o.config_file : "(defaults)");
		free(m.conf);
		status_free(&m);
		return 0;
	}
	main_title(argc, argv);
	if ((rc = main_prepare(&m, &o)) != MAIN_CONTINUE)
		return rc;
	main_start(&m);
	rc = master_run(&m);
	main_exit(&m);
	return rc;
}
