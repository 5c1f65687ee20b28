/*
 * config.h — hftpd's configuration: defaults, the key = value file format
 * and command-line overrides.  One table in config.c describes every key.
 */
#ifndef HFTPD_CONFIG_H
#define HFTPD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "acl.h"

#define CONFIG_LISTEN_MAX   16
/* status_listen lines: the status listener (HTTP: /metrics, /status, /health). */
#define CONFIG_STATUS_LISTEN_MAX 4
/* Room for the keys' table (config_keys in config.c has fewer). */
#define CONFIG_KEYS_MAX     32
#define CONFIG_ERR_MAX      (PATH_MAX + 256)

/* A bare number, so that CONFIG_STR() can spell it. */
#define CONFIG_DEFAULT_PORT                 19500
#define CONFIG_STR_(x)                      #x
#define CONFIG_STR(x)                       CONFIG_STR_(x)
#define CONFIG_DEFAULT_PORT_TEXT            CONFIG_STR(CONFIG_DEFAULT_PORT)
#define CONFIG_DEFAULT_ADDR                 "0.0.0.0"
#define CONFIG_DEFAULT_DIRECTORY            "testdata"
#define CONFIG_DEFAULT_CLIENTS_PER_WORKER   8192
#define CONFIG_DEFAULT_REQUEST_LINE_MAX     (16u * 1024 * 1024)
#define CONFIG_DEFAULT_CLIENT_TIMEOUT       300
#define CONFIG_DEFAULT_SHUTDOWN_TIMEOUT     60
/*
 * Descriptors a worker needs: per client its socket and, while a body is
 * sent, the file; plus a reserve for the channel, logs and the directory.
 */
#define CONFIG_FDS_PER_CLIENT               2
#define CONFIG_FDS_RESERVE                  16
#define CONFIG_DEFAULT_REQUEST_TIMEOUT      30
#define CONFIG_DEFAULT_REQUEST_MIN_RATE     (32u * 1024)
#define CONFIG_DEFAULT_SEND_TIMEOUT         60
#define CONFIG_DEFAULT_SEND_BUFFER          (256u * 1024)
#define CONFIG_DEFAULT_SEND_MIN_RATE        1024u
/*
 * Connections one client address may hold open across all workers.  Big
 * enough for a lab behind one NAT address: 100 machines running
 * "hftp -j 4" hold 400; small enough that one host takes at most a
 * thirty-second of the 2 x 8192 slots of a default two-worker server.
 */
#define CONFIG_DEFAULT_MAX_CLIENTS_PER_ADDR 512
/* A daemon (not -f) writes this pid file unless the config names one. */
#ifdef HFTPD_PID_FILE
#define CONFIG_DEFAULT_PID_FILE             HFTPD_PID_FILE
#else
#define CONFIG_DEFAULT_PID_FILE             "/run/hftpd.pid"
#endif

/* Ranges of the workers and clients_per_worker keys (and of -w / -n). */
#define CONFIG_WORKERS_MAX                  1024
#define CONFIG_CLIENTS_MAX                  1000000

enum slice_encoding { SLICE_BASE64, SLICE_FRAGMENTS };
/* metadata_cache: each request stats (off), or a worker's cache kept exact by inotify */
enum metadata_cache { METADATA_CACHE_OFF, METADATA_CACHE_INOTIFY };
/* master_scheduling: the master as SCHED_OTHER, or as SCHED_BATCH (master/cpusched.c) */
enum master_sched { MASTER_SCHED_NORMAL, MASTER_SCHED_BATCH };
/* access_log_format: TIME CLIENT "REQUEST" STATUS BYTES USEC, or JSON lines */
enum access_log_format { ACCESS_LOG_TEXT, ACCESS_LOG_JSON };

struct config_listen {
	struct sockaddr_storage addr;
	socklen_t               addrlen;
	char                    text[80];     /* "127.0.0.1:19500", "[::1]:19500" */
	bool                    proxy_protocol; /* each connection starts with a PROXY header */
	bool                    status;       /* a status_listen line: HTTP status, never HFTP */
};
/* The word after a listen address that sets proxy_protocol. */
#define CONFIG_LISTEN_PROXY "proxy_protocol"

struct config {
	char                 path[PATH_MAX];  /* config file, "" when none */
	unsigned             key_line[CONFIG_KEYS_MAX]; /* file line per key, 0 = not set */
	bool                 key_cmdline[CONFIG_KEYS_MAX]; /* set by a command-line option */
	unsigned             listen_line[CONFIG_LISTEN_MAX];
	struct config_listen listen[CONFIG_LISTEN_MAX];
	int                  nlisten;
	unsigned             status_listen_line[CONFIG_STATUS_LISTEN_MAX];
	struct config_listen status_listen[CONFIG_STATUS_LISTEN_MAX]; /* .status set */
	int                  nstatus_listen;
	char                 directory[PATH_MAX];   /* absolute */
	int                  workers;               /* 0 = auto (online CPUs) */
	int                  clients_per_worker;
	enum slice_encoding  slice_encoding;
	enum metadata_cache  metadata_cache;
	uint64_t             request_line_max;      /* bytes */
	int                  client_timeout;        /* seconds */
	/* deadlines and limits against stalled and hostile clients */
	int                  request_timeout;       /* seconds from a line's first byte */
	uint64_t             request_min_rate;      /* bytes a second that extend it */
	int                  send_timeout;          /* seconds without output progress */
	uint64_t             send_min_rate;         /* bytes a second drained over send_timeout */
	uint64_t             limit_rate;            /* bytes a second sent per connection, 0 = off */
	uint64_t             send_buffer;           /* SO_SNDBUF per client, 0 = kernel's */
	/* admission (master/admit.c) */
	struct acl           access;                /* allow and deny lines, in file order */
	struct acl           proxy_trusted;         /* peers whose PROXY header is believed */
	int                  max_clients_per_address; /* 0 = no cap */
	/* operations (daemon) */
	char                 pid_file[PATH_MAX];
	char                 error_log[PATH_MAX];   /* "stderr", "syslog" or a path */
	char                 access_log[PATH_MAX];  /* "off" or a path */
	enum access_log_format access_log_format;
	int                  log_level;             /* enum log_level */
	char                 user[64];
	char                 group[64];
	bool                 chroot;                /* workers confined to directory */
	enum master_sched    master_scheduling;
	int                  shutdown_timeout;      /* seconds */
	int                  shutdown_grace;        /* seconds; 0: none */
};

/* Command-line values that override the config file (kept for reloads). */
struct config_overrides {
	const char *config_file;    /* -c */
	const char *directory;      /* -d */
	const char *address;        /* -a */
	const char *port;           /* -p */
	int         workers;        /* -w, 0 = from the file */
	int         clients;        /* -n, 0 = from the file */
	const char *user;           /* -u */
	const char *group;          /* -g */
	bool        foreground;     /* -f */
};

/*
 * Builds a complete config: defaults, then the file (-c), then the
 * command-line overrides, then config_finish.  0 / -1 with err filled.
 */
int  config_build(const struct config_overrides *o, struct config *c,
	    char *err, size_t errlen);

/* Fills c with the built-in defaults (no listener yet: see config_finish). */
void config_defaults(struct config *c);

/*
 * Reads FILE into c (on top of what c holds).  On error returns -1 and writes
 * "FILE:LINE: what is wrong" (or "FILE: ..." when the file cannot be read)
 * into err.
 */
int  config_load(struct config *c, const char *file, char *err, size_t errlen);

/* Parses one listen value ("ADDR:PORT", "[V6]:PORT", "PORT"); 0 / -1. */
int  config_parse_listen(const char *value, struct config_listen *out,
	    char *err, size_t errlen);

/* Number parsers shared with the command line: 0 / -1. */
int  config_parse_size(const char *s, uint64_t *out);      /* 16M, 4K, 1G */
int  config_parse_duration(const char *s, int *out);       /* 30s, 5m, 1h */

/*
 * Who the workers run as when the config names no user or group (the
 * master's privsep decides): printed by config_print in their place.
 */
struct config_ids {
	char        user[64];
	char        group[64];
	const char *why;            /* "started as root", ... */
};

/*
 * Writes the effective configuration to fp as a config file: every key
 * with its value, the ones the file set marked "# FILE:LINE", those a
 * command-line option set "# command line", the others "# default".  An
 * unset user / group prints ids' (when not NULL) and why.  nginx -T's
 * counterpart.
 */
void config_print(const struct config *c, const struct config_ids *ids, FILE *fp);

/*
 * What -t and start-up warn about (a proxy_protocol listener that believes
 * a PROXY header from anyone: no proxy_trusted): the number of warnings,
 * the first one's text in msg.
 */
/*
 * Capacity, the one definition: the clients a worker of c can hold under
 * an open-file limit of nofile descriptors (CONFIG_NOFILE_UNLIMITED: no
 * limit): clients_per_worker, or fewer when the limit cannot give each
 * client CONFIG_FDS_PER_CLIENT after the reserve; at least 1.  The worker
 * reports it (LOAD); the master asks for config_nofile_wanted at start.
 */
#define CONFIG_NOFILE_UNLIMITED UINT64_MAX
int      config_capacity(const struct config *c, uint64_t nofile);
/* The open-file limit a worker needs to hold clients_per_worker clients. */
uint64_t config_nofile_wanted(const struct config *c);
int  config_warnings(const struct config *c, char *msg, size_t msglen);

/*
 * Completes c after file and overrides: default listener when none, workers
 * "auto" resolved, relative directory made absolute against cwd.  0 / -1.
 */
int  config_finish(struct config *c, char *err, size_t errlen);

#endif
