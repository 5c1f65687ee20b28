/*
 * master.h — the master process: its state (struct master: listeners, the
 * worker pool by generation, the phase) and, one section per file, the
 * functions each master file exports (slot.c's are in slot.h, privsep.c's
 * in privsep.h).  Calls run one way (tests/check-layers, run by `make
 * layers`, fails on a circle):
 *
 *   main.c -> master.c, reload.c, spawn.c, listen.c, logfiles.c, privsep.c,
 *             signals.c, admit.c, slot.c, status.c, statusctl.c, upgrade.c,
 *             pidfile.c
 *   master.c -> reload.c, spawn.c, handoff.c, admit.c, slot.c, listen.c,
 *               logfiles.c, signals.c, notify.c, status.c, upgrade.c, pidfile.c
 *   reload.c -> spawn.c, slot.c, listen.c, logfiles.c, notify.c, privsep.c, status.c
 *   handoff.c -> slot.c, admit.c, status.c
 *   spawn.c -> slot.c, admit.c, handoff.c, privsep.c, signals.c, status.c, upgrade.c
 *   upgrade.c -> listen.c, pidfile.c
 *   logfiles.c -> privsep.c
 *   status.c -> slot.c, statushttp.c, statuspage.c
 *   slot.c, admit.c, listen.c, notify.c, signals.c, privsep.c, pidfile.c,
 *   statushttp.c, statuspage.c, statusctl.c call no other master file.
 *   Only slot.c changes a struct worker_slot.
 */
#ifndef HFTPD_MASTER_H
#define HFTPD_MASTER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "channel.h"
#include "config.h"
#include "slot.h"

#define HFTPD_VERSION       "1.2.0"

#define MASTER_SLOTS_MAX    4096
/* HFTP listeners and status listeners, in one list (each marked by addr.status). */
#define MASTER_LISTENERS_MAX (CONFIG_LISTEN_MAX + CONFIG_STATUS_LISTEN_MAX)

/* Installation paths, set by the Makefile from PREFIX and friends. */
#ifndef HFTPD_CONF_PATH
#define HFTPD_CONF_PATH             "/usr/local/etc/hftpd/hftpd.conf"
#endif
#ifndef HFTPD_ERROR_LOG_FALLBACK
#define HFTPD_ERROR_LOG_FALLBACK    "/var/log/hftpd/error.log"
#endif

struct status_state;

struct listener {
	int                  fd;
	struct config_listen addr;
	bool                 inherited;     /* passed by systemd: never closed */
};

/* Respawn back-off of one pool index of the current generation. */
struct spawn_backoff {
	int         fails;          /* quick deaths in a row */
	uint64_t    respawn_ms;     /* not before */
};

enum master_phase { MASTER_RUNNING, MASTER_DRAINING, MASTER_STOPPING };

/*
 * Connections accepted from one listener and admitted, not yet handed off:
 * given to the workers at most CHANNEL_CONNS_MAX to a message, and kept
 * here (accepting paused) while no worker's channel takes them.
 */
struct handoff_batch {
	int                     n;
	uint32_t                flags;      /* CHANNEL_CONN_* of their listener */
	bool                    counted;    /* counted under their addresses once handed */
	int                     fd[CHANNEL_CONNS_MAX];
	struct sockaddr_storage peer[CHANNEL_CONNS_MAX];
};

struct master {
	struct config      *conf;           /* current generation's */
	unsigned            gen;
	enum master_phase   phase;
	uint64_t            phase_deadline_ms;
	/* a graceful stop's shutdown_grace: still serving, /health 503, until (0: none) */
	uint64_t            grace_end_ms;
	struct listener     listeners[MASTER_LISTENERS_MAX]; /* HFTP and status (addr.status) */
	int                 nlisteners;
	struct listener     inherited[MASTER_LISTENERS_MAX]; /* passed, not in use */
	int                 ninherited;
	struct worker_slot  slots[MASTER_SLOTS_MAX];
	int                 nslots;
	struct spawn_backoff *backoff;      /* conf->workers entries */
	struct handoff_batch pending;       /* accepted, not yet handed off (handoff.c's) */
	struct admit_table *admit;          /* admit.c's: connections per address */
	uint64_t            next_id;
	uint64_t            handoff_attempt; /* numbers each hand-off attempt */
	bool                accept_paused;  /* logged once per pause */
	bool                accept_failing; /* accept4 fails (EMFILE...): logged once */
	uint64_t            accept_resume_ms; /* after EMFILE: pause until */
	uint64_t            now_ms;         /* monotonic, read at each loop turn */
	int                 ready_fd;       /* daemon readiness pipe, or -1 */
	bool                announced;
	const struct config_overrides *options;
	int                 pidfile_fd;     /* the master's alone: workers never hold it */
	int                 access_fd;      /* the access log opened for the workers, or -1 */
	struct status_state *status;        /* status.c's: its connections and counters */
	/* upgrade.c's: the old master's side of an upgrade in progress */
	pid_t               upgrade_pid;    /* the new master starting, or 0 */
	int                 upgrade_fd;     /* its ready pipe, or -1 once it failed */
	uint64_t            upgrade_deadline_ms; /* ready by, or (failed) gone by */
	pid_t               upgrade_requester; /* who sent USR2 (-s upgrade), or 0 */
	char                upgrade_msg[CONFIG_ERR_MAX]; /* what the pipe said */
	size_t              upgrade_got;
	int                 upgrade_status; /* its wait status once reaped */
	bool                upgrade_reaped;
	bool                upgraded;       /* handed over: drains, then exits */
	bool                upgrade_incoming; /* started by an upgrade: pid file at readiness */
};

/* master.c: the poll loop and the phases (running, draining, stopping) */
int  master_run(struct master *m);
/* Writes msg ("OK\n" or the startup error) to the daemon launcher, once. */
void master_ready_report(struct master *m, const char *msg);
/*
 * The seams the unit tests drive without a socket or a signal: one
 * decoded message from worker s (fd: the descriptor it carried, or -1),
 * the signals seen (SIGNALS_BIT set; false when listeners may have
 * changed), and the deadlines of the slots and of the phase.
 */
void master_message(struct master *m, struct worker_slot *s, const struct channel_hdr *hdr,
	    const void *payload, int fd);
bool master_signals(struct master *m, unsigned sigs);
void master_deadlines(struct master *m);

/* reload.c: a new configuration, a new generation of workers */
/* What must hold to serve with c (directory, users, logs, pid file's
 * folder): everything start-up checks short of binding; 0 / -1 with err. */
int  reload_config_check(const struct config *c, bool foreground, char *err, size_t errlen);
/* HUP: on success the next generation serves; on error nothing changes. */
void reload_run(struct master *m);

/* spawn.c: the worker pool (fork, reap, respawn with back-off) */
int  spawn_worker(struct master *m, int index);
int  spawn_pool(struct master *m);
void spawn_reap(struct master *m);
void spawn_respawn_due(struct master *m);
/* True while some worker of the pool is missing or backing off. */
bool spawn_respawn_pending(const struct master *m);
int  spawn_count(const struct master *m, bool ready_only);
/* Delay before respawning a worker after its n-th quick death in a row. */
uint64_t spawn_backoff_ms(int quick_deaths);
struct spawn_backoff *spawn_backoff_new(int workers);
/* Frees the master's heap (config, back-off); also in a forked worker. */
void spawn_free_state(struct master *m);

/* handoff.c: accept connections and hand each to the least-loaded worker */
/* Accepts from l until it would block; its flags go with each connection. */
int  handoff_accept(struct master *m, const struct listener *l);
bool handoff_has_room(const struct master *m);
/* Hands off what is pending; 0 when nothing is left, -1 when some is kept. */
int  handoff_flush_pending(struct master *m);
/* Whether accepted connections wait for a worker's channel (accepting paused). */
bool handoff_pending(const struct master *m);
/* Closes the connections still pending (stopping, or in a forked worker). */
void handoff_pending_close(struct master *m);
/*
 * Hands fd to a worker with its CHANNEL_CONN_* flags; 0 when handed (fd
 * closed, and counted under peer's address unless peer is NULL), -1 when
 * it is kept.
 */
int  handoff_give(struct master *m, int fd, uint32_t flags, const struct sockaddr *peer);

/* admit.c: who may connect (allow/deny, proxy_trusted), connections per address */
enum admit_verdict { ADMIT_OK, ADMIT_DENIED, ADMIT_UNTRUSTED, ADMIT_OVER_CAP };
/*
 * At accept, from the peer's address: a proxy_protocol listener's peer
 * must be in proxy_trusted (when any); a direct one must pass allow/deny
 * and be under max_clients_per_address.
 */
enum admit_verdict admit_check(struct master *m, bool proxy, const struct sockaddr *sa);
/*
 * The same, with nuncounted connections admitted but not yet counted (a
 * hand-off batch): those from sa's address count against its cap too.
 */
enum admit_verdict admit_check_among(struct master *m, bool proxy, const struct sockaddr *sa,
	    const struct sockaddr_storage *uncounted, int nuncounted);
/* Connection id, handed to worker pid, counts for sa's address (when capped). */
void admit_opened(struct master *m, uint64_t id, pid_t pid, const struct sockaddr *sa);
/*
 * A worker read id's PROXY header naming sa: counted, or false when that
 * address is at its cap (the worker is to close it; not counted).
 */
bool admit_proxied(struct master *m, uint64_t id, pid_t pid, const struct sockaddr *sa);
/* The worker closed id (unknown ids are ignored). */
void admit_closed(struct master *m, uint64_t id);
/* Worker pid is gone: every connection it held is closed. */
void admit_worker_gone(struct master *m, pid_t pid);
/* Open connections counted for sa's address; all of them. */
uint32_t admit_count(struct master *m, const struct sockaddr *sa);
size_t admit_open_total(const struct master *m);
void admit_free(struct master *m);

/* status.c: the status listener (HTTP), the counters behind /metrics and /status */
/* Its state (m->status); -1 when out of memory. */
int  status_init(struct master *m);
/* Frees it, closing its connections (also in a forked worker). */
void status_free(struct master *m);
enum status_event {
	STATUS_ACCEPTED,        /* a connection accepted on an HFTP listener */
	STATUS_ACCEPT_PAUSE,    /* accept failed (EMFILE...): accepting paused */
	STATUS_RELOAD,          /* a new generation serves */
	STATUS_WORKER_RESTART,  /* a worker died unasked and is replaced */
	STATUS_EVENTS
};
void status_count(struct master *m, enum status_event ev);
/* A worker's CHANNEL_STATS. */
void status_stats_report(struct master *m, const struct worker_slot *s, const void *payload);
/* Worker s is reaped: its last totals stay its pool index's. */
void status_worker_gone(struct master *m, const struct worker_slot *s);
/* A reload: older generations' entries without a live worker are dropped. */
void status_prune(struct master *m);
/* The status descriptors to poll (listeners, connections) into pfd; how many. */
int  status_poll_fill(struct master *m, struct pollfd *pfd, int max);
/* Their events (pfd as filled), then the connections' deadline. */
void status_poll_events(struct master *m, const struct pollfd *pfd, int n);
/* True while a status connection is open (its deadline needs a short poll). */
bool status_busy(const struct master *m);

/* statusctl.c: hftpd -s status [--json]; the exit status */
int  statusctl_run(const struct config *c, bool json);

/* listen.c: the listening sockets */
/*
 * Opens c's listeners (listen and status_listen lines), reusing the
 * descriptors of unchanged ones.
 */
int  listen_open(struct master *m, const struct config *c, char *err, size_t errlen);
void listen_close_all(struct master *m);
/* Closes the HFTP listeners; the status listeners stay (a stop in progress answers). */
void listen_close_hftp(struct master *m);
/* Takes the sockets systemd passed (LISTEN_PID/LISTEN_FDS); how many. */
int  listen_inherit(struct master *m);

/*
 * Adopts fd, a listening socket passed by how ("socket activation",
 * "upgrade"), into the pool listen_open takes from; never_close: systemd's.
 */
int  listen_adopt(struct master *m, int fd, bool never_close, const char *how);
/* Closes the adopted sockets no listen line took (at start, after listen_open). */
void listen_drop_unnamed(struct master *m);

/* upgrade.c: a new binary without dropping a connection (USR2) */
enum upgrade_outcome { UPGRADE_PENDING, UPGRADE_DONE, UPGRADE_FAILED };
/* At start: the command line (argv as proctitle_init left it) and folder. */
void upgrade_save_command(char **argv);
/* True when fd was passed by the old master (kept at start). */
bool upgrade_keeps_fd(int fd);
/*
 * Started by an upgrade: the ready pipe becomes m->ready_fd and the sockets
 * are adopted; 1, 0 when not started so, -1 with err (another format
 * version: to be reported through the pipe).
 */
int  upgrade_adopt(struct master *m, char *err, size_t errlen);
/* USR2 from requester (0: unknown), config checked: fork + exec the binary. */
void upgrade_start(struct master *m, pid_t requester);
/* The upgrade in progress failed: child killed and reaped, requester told. */
void upgrade_fail(struct master *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int  upgrade_fd(const struct master *m);
/* The ready pipe is readable: pending, or the outcome. */
enum upgrade_outcome upgrade_read(struct master *m);
/* The new master's readiness deadline. */
void upgrade_tick(struct master *m);
/* spawn_reap's: true when pid was the new master being started. */
bool upgrade_reaped(struct master *m, pid_t pid, int status);
/* `-s upgrade`: signals pid and waits for the outcome; the exit status. */
int  upgrade_request(const char *pid_file, pid_t pid);

/* pidfile.c: the pid file, locked by the master it names */
#define PIDFILE_OLDBIN  ".oldbin"
/* Who holds path's lock: its pid, 0 when nobody, -1 on error. */
long pidfile_holder(const char *path);
/* path + suffix into out. */
void pidfile_sibling(const char *path, const char *suffix, char *out, size_t outlen);
/* Writes m's pid file atomically and keeps it locked; 0 / -1 with err. */
int  pidfile_write(struct master *m, char *err, size_t errlen);
/* The new master of an upgrade: PIDFILE -> PIDFILE.oldbin, ours -> PIDFILE. */
int  pidfile_takeover(struct master *m, char *err, size_t errlen);
/* A failed upgrade: PIDFILE.oldbin, if ours, back to PIDFILE. */
void pidfile_restore(struct master *m);
/* At exit: removes PIDFILE or PIDFILE.oldbin, whichever is ours. */
void pidfile_remove(struct master *m);

/* logfiles.c: error and access log files, created by the master */
enum logfiles_kind { LOGFILES_STDERR, LOGFILES_SYSLOG, LOGFILES_OFF, LOGFILES_FILE };
/* What an error_log / access_log value names. */
enum logfiles_kind logfiles_kind(const char *target);
/* The error log the master opens: a daemon's "stderr" means syslog when
 * /dev/log answers, else the fallback file. */
const char *logfiles_error_target(const struct config *c, bool foreground);
/*
 * Creates the log files (owned by the workers' user when root) and opens
 * the access log for the workers: *access_fd is its descriptor, or -1 when
 * it is off or could not be opened; 0 / -1.
 */
int  logfiles_create_all(const struct config *c, bool foreground, int *access_fd,
	    char *err, size_t errlen);
/* Whether the log files could be opened or created (creates nothing). */
int  logfiles_check(const struct config *c, bool foreground, char *err, size_t errlen);

/* cpusched.c: master_scheduling, for the master (start, reload) and a forked worker */
int  cpusched_master(const struct config *c);
int  cpusched_worker(void);

/* notify.c: sd_notify without libsystemd */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* signals.c: handlers that only note the signal for the poll loop */
int  signals_init(void);
int  signals_fd(void);
/* Returns and clears the set of signals seen since the last call. */
unsigned signals_take(void);
/* The pid that sent the last SIGUSR2 (0 when unknown). */
pid_t signals_usr2_sender(void);
void signals_close(void);
#define SIGNALS_BIT(sig) (1u << (sig))

#endif
