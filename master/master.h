/*
 * master.h — the master process: its state (struct master: listeners, the
 * worker pool by generation, the phase) and, one section per file, the
 * functions each master file exports.  Call order, with no circles:
 *
 *   main.c -> master.c, reload.c, spawn.c, listen.c, logfiles.c, signals.c
 *   master.c -> reload.c, spawn.c, handoff.c, admit.c, control.c, listen.c,
 *               logfiles.c, signals.c, notify.c
 *   reload.c -> spawn.c, control.c, listen.c, logfiles.c, notify.c, privsep.c
 *   handoff.c -> spawn.c, control.c, admit.c;
 *   spawn.c -> signals.c, privsep.c, admit.c
 *   logfiles.c -> privsep.c;  admit.c, control.c, listen.c, notify.c,
 *   signals.c, privsep.c call no other master file.
 */
#ifndef HFTPD_MASTER_H
#define HFTPD_MASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "channel.h"
#include "config.h"

#define MASTER_SLOTS_MAX    4096

/* Installation paths, set by the Makefile from PREFIX and friends. */
#ifndef HFTPD_CONF_PATH
#define HFTPD_CONF_PATH             "/usr/local/etc/hftpd/hftpd.conf"
#endif
#ifndef HFTPD_ERROR_LOG_FALLBACK
#define HFTPD_ERROR_LOG_FALLBACK    "/var/log/hftpd/error.log"
#endif

struct worker_slot {
	pid_t       pid;            /* 0 once reaped */
	int         chan;           /* -1 once closed */
	unsigned    gen;
	int         index;          /* position in its generation's pool */
	bool        ready;
	bool        draining;
	bool        stop_sent;
	uint32_t    open;           /* as last reported */
	uint32_t    capacity;       /* as last reported; 0 until its first LOAD */
	uint32_t    evictable;      /* idle clients it would close for new ones */
	uint64_t    received;       /* as last reported */
	uint64_t    sent;           /* descriptors handed to it */
	uint64_t    unreceived_since_ms; /* oldest hand-off it has not reported, 0 none */
	uint64_t    handoff_failed; /* hand-off attempt in which a send to it failed */
	uint64_t    started_ms;
	uint64_t    deadline_ms;    /* draining: STOP after; stopping: KILL after */
	struct channel_queue out;   /* control messages waiting for room */
};

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

struct master {
	struct config      *conf;           /* current generation's */
	unsigned            gen;
	enum master_phase   phase;
	uint64_t            phase_deadline_ms;
	struct listener     listeners[CONFIG_LISTEN_MAX];
	int                 nlisteners;
	struct listener     inherited[CONFIG_LISTEN_MAX]; /* passed, not in use */
	int                 ninherited;
	struct worker_slot  slots[MASTER_SLOTS_MAX];
	int                 nslots;
	struct spawn_backoff *backoff;      /* conf->workers entries */
	int                 pending_fd;     /* accepted, not yet handed off */
	uint32_t            pending_flags;  /* its CHANNEL_CONN_* flags */
	struct sockaddr_storage pending_peer; /* its address, family 0 when not counted */
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
	int                 pidfile_fd;
};

/* master.c: the poll loop and the phases (running, draining, stopping) */
int  master_run(struct master *m);
/* Writes msg ("OK\n" or the startup error) to the daemon launcher, once. */
void master_ready_report(struct master *m, const char *msg);

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
/* A worker of the current generation, alive, channel open, not draining. */
bool spawn_slot_serving(const struct master *m, const struct worker_slot *s);
int  spawn_count(const struct master *m, bool ready_only);
void spawn_close_channel(struct worker_slot *s);
/* Delay before respawning a worker after its n-th quick death in a row. */
uint64_t spawn_backoff_ms(int quick_deaths);
struct spawn_backoff *spawn_backoff_new(int workers);
/* Frees the master's heap (config, back-off); also in a forked worker. */
void spawn_free_state(struct master *m);

/* handoff.c: accept connections and hand each to the least-loaded worker */
/* Accepts from l until it would block; its flags go with each connection. */
int  handoff_accept(struct master *m, const struct listener *l);
bool handoff_has_room(const struct master *m);
int  handoff_flush_pending(struct master *m);
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

/* control.c: DRAIN, STOP, REOPEN to a worker, queued, never dropped */
void control_send(struct worker_slot *s, enum channel_type type);
/* Sends what waits in s's queue as far as the channel takes; 0 / -1 logged. */
int  control_flush(struct worker_slot *s);
bool control_waiting(const struct worker_slot *s);
/* The worker finishes its clients; STOP after timeout_s seconds. */
void control_drain(struct worker_slot *s, int timeout_s);

/* listen.c: the listening sockets */
/* Opens c's listeners, reusing the descriptors of unchanged ones. */
int  listen_open(struct master *m, const struct config *c, char *err, size_t errlen);
void listen_close_all(struct master *m);
/* Takes the sockets systemd passed (LISTEN_PID/LISTEN_FDS); how many. */
int  listen_inherit(struct master *m);

/* logfiles.c: error and access log files, created by the master */
enum logfiles_kind { LOGFILES_STDERR, LOGFILES_SYSLOG, LOGFILES_OFF, LOGFILES_FILE };
/* What an error_log / access_log value names. */
enum logfiles_kind logfiles_kind(const char *target);
/* The error log the master opens: a daemon's "stderr" means syslog when
 * /dev/log answers, else the fallback file. */
const char *logfiles_error_target(const struct config *c, bool foreground);
/* Creates the log files (owned by the workers' user when root); 0 / -1. */
int  logfiles_create_all(const struct config *c, bool foreground, char *err, size_t errlen);
/* Whether the log files could be opened or created (creates nothing). */
int  logfiles_check(const struct config *c, bool foreground, char *err, size_t errlen);

/* notify.c: sd_notify without libsystemd */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* signals.c: handlers that only note the signal for the poll loop */
int  signals_init(void);
int  signals_fd(void);
/* Returns and clears the set of signals seen since the last call. */
unsigned signals_take(void);
void signals_close(void);
#define SIGNALS_BIT(sig) (1u << (sig))

#endif
