/*
 * master.h — the master process: listeners, the worker pool by generation,
 * signals, and the hand-off of accepted connections.
 */
#ifndef HFTPD_MASTER_H
#define HFTPD_MASTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"

#define MASTER_SLOTS_MAX    4096

struct worker_slot {
	pid_t       pid;            /* 0 once reaped */
	int         chan;           /* -1 once closed */
	unsigned    gen;
	int         index;          /* position in its generation's pool */
	bool        ready;
	bool        draining;
	bool        stop_sent;
	uint32_t    open;           /* as last reported */
	uint64_t    received;       /* as last reported */
	uint64_t    sent;           /* descriptors handed to it */
	struct timespec started;
	struct timespec deadline;   /* draining: STOP after; stopping: KILL after */
};

struct listener {
	int                  fd;
	struct config_listen addr;
};

enum master_phase { MASTER_RUNNING, MASTER_DRAINING, MASTER_STOPPING };

struct master {
	struct config      *conf;           /* current generation's */
	unsigned            gen;
	enum master_phase   phase;
	struct timespec     phase_deadline;
	struct listener     listeners[CONFIG_LISTEN_MAX];
	int                 nlisteners;
	struct worker_slot  slots[MASTER_SLOTS_MAX];
	int                 nslots;
	/* respawn back-off per pool index of the current generation */
	int                *fails;
	struct timespec    *respawn_at;
	int                 pending_fd;     /* accepted, not yet handed off */
	uint64_t            next_id;
	bool                accept_paused;  /* logged once per pause */
	int                 ready_fd;       /* daemon readiness pipe, or -1 */
	bool                announced;
	struct timespec     accept_resume;  /* after EMFILE: pause until */
	const struct master_options *options;
	int                 pidfile_fd;
};

/* Command-line values that override the config file (kept for reloads). */
struct master_options {
	const char *config_file;    /* -c */
	const char *directory;      /* -d */
	const char *address;        /* -a */
	const char *port;           /* -p */
	int         workers;        /* -w, 0 = from the file */
	int         clients;        /* -n, 0 = from the file */
	bool        foreground;     /* -f */
};

/* main.c */
/* Builds a complete config: defaults, file, options; 0 / -1 with err. */
int  master_config_build(const struct master_options *o, struct config *c,
	    char *err, size_t errlen);
/* What must hold to serve with c (directory, users); 0 / -1 with err. */
int  master_config_check(const struct config *c, char *err, size_t errlen);

/* master.c */
int  master_run(struct master *m);
int  master_listeners_open(struct master *m, const struct config *c, char *err, size_t errlen);
void master_ready_report(struct master *m, const char *msg);
/* Creates a log file (owned by `user` when root); 0 / -1 with err. */
int  master_log_file_create(const struct config *c, const char *path, char *err, size_t errlen);
void master_now(struct timespec *ts);
double master_elapsed(const struct timespec *since);
void master_free_for_child(struct master *m);

/* spawn.c */
int  spawn_worker(struct master *m, int index);
void spawn_reap(struct master *m);
void spawn_respawn_due(struct master *m);
int  spawn_pool(struct master *m);
void spawn_forget(struct master *m, struct worker_slot *s);
int  spawn_count(const struct master *m, unsigned gen, bool ready_only);

/* dispatch.c */
int  dispatch_accept(struct master *m, int lfd);
bool dispatch_has_room(const struct master *m);
int  dispatch_flush_pending(struct master *m);

/* notify.c: sd_notify without libsystemd */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* signals.c */
int  signals_init(void);
int  signals_fd(void);
/* Returns and clears the set of signals seen since the last call. */
unsigned signals_take(void);
void signals_close(void);
#define SIGNALS_BIT(sig) (1u << (sig))

#endif
