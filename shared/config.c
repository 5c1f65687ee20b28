/*
 * config.c — hftpd's configuration: defaults, the file (one table that
 * describes every key, errors that name FILE:LINE), and the command-line
 * overrides on top (config_build: the one place a config is assembled).
 *
 * Format: one "key = value" per line; '#' starts a comment at the start of
 * a line or after white space; blank lines are ignored.  Single-valued keys
 * may appear once; "listen", "status_listen", "allow", "deny" and "proxy_trusted" may
 * repeat, and keep the order of the file (allow and deny lines make one
 * list: the first entry that matches a client decides).  Relative paths resolve against the
 * folder of the config file.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

enum config_type {
	CONFIG_LISTEN,      /* repeatable listen address */
	CONFIG_STATUS_LISTEN, /* repeatable status listener address */
	CONFIG_PATH,        /* a path; relative resolves against the file's folder */
	CONFIG_LOGPATH,     /* "stderr" | "syslog" | path */
	CONFIG_OFFPATH,     /* "off" | path */
	CONFIG_WORKERS,     /* "auto" | integer */
	CONFIG_INT,         /* integer in [min, max] */
	CONFIG_SIZE,        /* bytes with K/M/G suffix, in [min, max] */
	CONFIG_DURATION,    /* seconds with s/m/h suffix, in [min, max] */
	CONFIG_ENCODING,    /* "base64" | "fragments" */
	CONFIG_CACHE,       /* "inotify" | "off" */
	CONFIG_LOGFORMAT,   /* "text" | "json" */
	CONFIG_SCHED,       /* "batch" | "normal" */
	CONFIG_LOGLEVEL,    /* "error" | "warn" | "info" | "debug" */
	CONFIG_NAME,        /* a user or group name */
	CONFIG_BOOL,        /* "yes" | "no" */
	CONFIG_ACL          /* repeatable address list entries; min = 1: allow, 0: deny */
};

struct config_key {
	const char       *name;
	enum config_type  type;
	size_t            offset;
	size_t            size;     /* of the field, for strings */
	uint64_t          min;
	uint64_t          max;
};

#define KEY(n, t, field, lo, hi) \
	{ n, t, offsetof(struct config, field), sizeof(((struct config *)0)->field), lo, hi }

static const struct config_key config_keys[] = {
	KEY("listen",             CONFIG_LISTEN,   listen,             0, 0),
	KEY("status_listen",      CONFIG_STATUS_LISTEN, status_listen, 0, 0),
	KEY("directory",          CONFIG_PATH,     directory,          0, 0),
	KEY("workers",            CONFIG_WORKERS,  workers,            1, CONFIG_WORKERS_MAX),
	KEY("clients_per_worker", CONFIG_INT,      clients_per_worker, 1, CONFIG_CLIENTS_MAX),
	KEY("slice_encoding",     CONFIG_ENCODING, slice_encoding,     0, 0),
	KEY("metadata_cache",     CONFIG_CACHE,    metadata_cache,     0, 0),
	KEY("request_line_max",   CONFIG_SIZE,     request_line_max,   1, 1ull << 40),
	KEY("client_timeout",     CONFIG_DURATION, client_timeout,     0, 86400 * 7),
	KEY("request_timeout",    CONFIG_DURATION, request_timeout,    1, 86400),
	KEY("request_min_rate",   CONFIG_SIZE,     request_min_rate,   0, 1ull << 40),
	KEY("send_timeout",       CONFIG_DURATION, send_timeout,       1, 86400),
	KEY("send_min_rate",      CONFIG_SIZE,     send_min_rate,      0, 1ull << 40),
	KEY("limit_rate",         CONFIG_SIZE,     limit_rate,         0, 1ull << 32),
	KEY("send_buffer",        CONFIG_SIZE,     send_buffer,        0, 1ull << 30),
	KEY("allow",              CONFIG_ACL,      access,             1, 0),
	KEY("deny",               CONFIG_ACL,      access,             0, 0),
	KEY("proxy_trusted",      CONFIG_ACL,      proxy_trusted,      1, 0),
	KEY("max_clients_per_address", CONFIG_INT, max_clients_per_address, 0, CONFIG_CLIENTS_MAX),
	KEY("pid_file",           CONFIG_PATH,     pid_file,           0, 0),
	KEY("error_log",          CONFIG_LOGPATH,  error_log,          0, 0),
	KEY("access_log",         CONFIG_OFFPATH,  access_log,         0, 0),
	KEY("access_log_format",  CONFIG_LOGFORMAT, access_log_format, 0, 0),
	KEY("log_level",          CONFIG_LOGLEVEL, log_level,          0, 0),
	KEY("user",               CONFIG_NAME,     user,               0, 0),
	KEY("group",              CONFIG_NAME,     group,              0, 0),
	KEY("chroot",             CONFIG_BOOL,     chroot,             0, 0),
	KEY("master_scheduling",  CONFIG_SCHED,    master_scheduling,  0, 0),
	KEY("shutdown_timeout",   CONFIG_DURATION, shutdown_timeout,   0, 86400),
	KEY("shutdown_grace",     CONFIG_DURATION, shutdown_grace,     0, 3600),
};
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))
_Static_assert(CONFIG_NKEYS <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX");

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->directory, sizeof(c->directory), "%s", CONFIG_DEFAULT_DIRECTORY);
	c->workers = 0;
	c->clients_per_worker = CONFIG_DEFAULT_CLIENTS_PER_WORKER;
	c->slice_encoding = SLICE_BASE64;
	c->metadata_cache = METADATA_CACHE_INOTIFY;
	c->request_line_max = CONFIG_DEFAULT_REQUEST_LINE_MAX;
	c->client_timeout = CONFIG_DEFAULT_CLIENT_TIMEOUT;
	c->shutdown_timeout = CONFIG_DEFAULT_SHUTDOWN_TIMEOUT;
	c->request_timeout = CONFIG_DEFAULT_REQUEST_TIMEOUT;
	c->request_min_rate = CONFIG_DEFAULT_REQUEST_MIN_RATE;
	c->send_timeout = CONFIG_DEFAULT_SEND_TIMEOUT;
	c->send_min_rate = CONFIG_DEFAULT_SEND_MIN_RATE;
	c->limit_rate = 0;
	c->send_buffer = CONFIG_DEFAULT_SEND_BUFFER;
	c->max_clients_per_address = CONFIG_DEFAULT_MAX_CLIENTS_PER_ADDR;
	snprintf(c->error_log, sizeof(c->error_log), "stderr");
	snprintf(c->access_log, sizeof(c->access_log), "off");
	c->access_log_format = ACCESS_LOG_TEXT;
	c->log_level = LOG_LEVEL_INFO;
	c->master_scheduling = MASTER_SCHED_BATCH;
}

static void
config_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Digits only, then an optional suffix from units; *out = value * unit. */
static int
config_parse_scaled(const char *s, const char *units, const uint64_t *mult,
    uint64_t *out)
{
	uint64_t v = 0, m = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (*p != '\0') {
		const char *u = strchr(units, tolower((unsigned char)*p));
		if (u == NULL || p[1] != '\0')
			return -1;
		m = mult[u - units];
	}
	if (m != 1 && v > UINT64_MAX / m)
		return -1;
	*out = v * m;
	return 0;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { 1024, 1024 * 1024, 1024 * 1024 * 1024 };
	return config_parse_scaled(s, "kmg", mult, out);
}

int
config_parse_duration(const char *s, int *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400 };
	uint64_t v;

	if (config_parse_scaled(s, "smhd", mult, &v) == -1 || v > INT32_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

/*
 * Splits a listen value into its host (CONFIG_DEFAULT_ADDR when only a port
 * is given) and its port text; *is_v6 for [ADDR]:PORT.  0 / -1 with err.
 */
static int
config_split_listen(const char *value, char *host, size_t hostlen, const char **port_text,
    int *is_v6, char *err, size_t errlen)
{
	const char *end = value[0] == '[' ? strchr(value, ']') : strrchr(value, ':');

	*is_v6 = value[0] == '[';
	if (*is_v6) {
		if (end == NULL || end[1] != ':' || (size_t)(end - value - 1) >= hostlen) {
			config_error(err, errlen, "listen '%s': expected [IPV6]:PORT", value);
			return -1;
		}
		memcpy(host, value + 1, (size_t)(end - value - 1));
		host[end - value - 1] = '\0';
		*port_text = end + 2;
		return 0;
	}
	if (end == NULL) {
		snprintf(host, hostlen, "%s", CONFIG_DEFAULT_ADDR);
		*port_text = value;
		return 0;
	}
	if (strchr(value, ':') != end) {
		config_error(err, errlen, "listen '%s': write IPv6 addresses as [ADDR]:PORT", value);
		return -1;
	}
	if ((size_t)(end - value) >= hostlen) {
		config_error(err, errlen, "listen '%s': address too long", value);
		return -1;
	}
	memcpy(host, value, (size_t)(end - value));
	host[end - value] = '\0';
	*port_text = end + 1;
	return 0;
}

int
config_parse_listen(const char *value, struct config_listen *out,
    char *err, size_t errlen)
{
	char        host[64];
	const char *port_text;
	uint64_t    port;
	int         is_v6;

	memset(out, 0, sizeof(*out));
	if (config_split_listen(value, host, sizeof(host), &port_text, &is_v6, err, errlen) == -1)
		return -1;
	if (config_parse_scaled(port_text, "", NULL, &port) == -1 || port < 1 || port > 65535) {
		config_error(err, errlen, "listen '%s': port must be a number from 1 to 65535", value);
		return -1;
	}
	if (is_v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			config_error(err, errlen, "listen '%s': '%s' is not an IPv6 address", value, host);
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->addrlen = sizeof(*sin6);
		/* canonical text: equal addresses compare equal however written */
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out->text, sizeof(out->text), "[%s]:%u", host, (unsigned)port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;
		if (strcmp(host, "*") == 0)
			snprintf(host, sizeof(host), "0.0.0.0");
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			config_error(err, errlen, "listen '%s': '%s' is not a numeric IPv4 address", value, host);
			return -1;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->addrlen = sizeof(*sin);
		snprintf(out->text, sizeof(out->text), "%s:%u", host, (unsigned)port);
	}
	return 0;
}

int
config_capacity(const struct config *c, uint64_t nofile)
{
	uint64_t fit;

	if (nofile == CONFIG_NOFILE_UNLIMITED)
		return c->clients_per_worker;
	fit = nofile > CONFIG_FDS_RESERVE ? (nofile - CONFIG_FDS_RESERVE) / CONFIG_FDS_PER_CLIENT : 1;
	if (fit == 0)
		fit = 1;
	return fit >= (uint64_t)c->clients_per_worker ? c->clients_per_worker : (int)fit;
}

uint64_t
config_nofile_wanted(const struct config *c)
{
	return (uint64_t)c->clients_per_worker * CONFIG_FDS_PER_CLIENT + CONFIG_FDS_RESERVE;
}

/* Makes path absolute against base (a folder); 0 / -1 when too long. */
static int
config_resolve_path(char *dst, size_t dstlen, const char *base, const char *path)
{
	int n;

	if (path[0] == '/' || base[0] == '\0')
		n = snprintf(dst, dstlen, "%s", path);
	else
		n = snprintf(dst, dstlen, "%s/%s", base, path);
	return (n < 0 || (size_t)n >= dstlen) ? -1 : 0;
}

/*
 * "ADDR:PORT" optionally followed by the word proxy_protocol: that listener
 * takes connections from a load balancer, each starting with a PROXY header.
 */
static int
config_set_listen(struct config *c, const char *value, char *err, size_t errlen)
{
	char        addr[sizeof(c->listen[0].text)];
	const char *opt;
	size_t      n = strcspn(value, " \t");

	if (c->nlisten == CONFIG_LISTEN_MAX) {
		config_error(err, errlen, "too many listen lines (at most %d)", CONFIG_LISTEN_MAX);
		return -1;
	}
	if (n >= sizeof(addr)) {
		config_error(err, errlen, "listen '%s': address too long", value);
		return -1;
	}
	memcpy(addr, value, n);
	addr[n] = '\0';
	opt = value + n + strspn(value + n, " \t");
	if (config_parse_listen(addr, &c->listen[c->nlisten], err, errlen) == -1)
		return -1;
	if (strcmp(opt, CONFIG_LISTEN_PROXY) == 0)
		c->listen[c->nlisten].proxy_protocol = true;
	else if (*opt != '\0') {
		config_error(err, errlen, "listen '%s': unknown option '%s' (only %s)",
		    value, opt, CONFIG_LISTEN_PROXY);
		return -1;
	}
	for (int i = 0; i < c->nlisten; i++) {
		if (strcmp(c->listen[i].text, c->listen[c->nlisten].text) == 0) {
			config_error(err, errlen, "listen '%s' given twice", value);
			return -1;
		}
	}
	c->nlisten++;
	return 0;
}

/* "ADDR:PORT" of a status listener (HTTP: /metrics, /status, /health, /). */
static int
config_set_status_listen(struct config *c, const char *value, char *err, size_t errlen)
{
	struct config_listen *l = &c->status_listen[c->nstatus_listen];

	if (c->nstatus_listen == CONFIG_STATUS_LISTEN_MAX) {
		config_error(err, errlen, "too many status_listen lines (at most %d)",
		    CONFIG_STATUS_LISTEN_MAX);
		return -1;
	}
	if (config_parse_listen(value, l, err, errlen) == -1)
		return -1;
	l->status = true;
	for (int i = 0; i < c->nstatus_listen; i++) {
		if (strcmp(c->status_listen[i].text, l->text) == 0) {
			config_error(err, errlen, "status_listen '%s' given twice", value);
			return -1;
		}
	}
	c->nstatus_listen++;
	return 0;
}

/* PATH, LOGPATH ("stderr" | "syslog" | path), OFFPATH ("off" | path). */
static int
config_set_path(const struct config_key *k, char *field, const char *value,
    const char *base, char *err, size_t errlen)
{
	if ((k->type == CONFIG_LOGPATH &&
	    (strcmp(value, "stderr") == 0 || strcmp(value, "syslog") == 0)) ||
	    (k->type == CONFIG_OFFPATH && strcmp(value, "off") == 0)) {
		snprintf(field, k->size, "%s", value);
		return 0;
	}
	if (config_resolve_path(field, k->size, base, value) == -1) {
		config_error(err, errlen, "%s: path too long", k->name);
		return -1;
	}
	return 0;
}

/* WORKERS ("auto" | integer), INT, SIZE, DURATION, each in [min, max]. */
static int
config_set_number(const struct config_key *k, char *field, const char *value,
    char *err, size_t errlen)
{
	uint64_t v;
	int      iv;

	switch (k->type) {
	case CONFIG_WORKERS:
		if (strcmp(value, "auto") == 0) {
			*(int *)field = 0;
			return 0;
		}
		/* FALLTHROUGH */
	case CONFIG_INT:
		if (config_parse_scaled(value, "", NULL, &v) == -1 || v < k->min || v > k->max) {
			config_error(err, errlen, "%s: '%s' is not %s%s from %llu to %llu",
			    k->name, value, k->type == CONFIG_WORKERS ? "'auto' or " : "",
			    "a whole number", (unsigned long long)k->min, (unsigned long long)k->max);
			return -1;
		}
		*(int *)field = (int)v;
		return 0;
	case CONFIG_SIZE:
		if (config_parse_size(value, &v) == -1 || v < k->min || v > k->max) {
			config_error(err, errlen, "%s: '%s' is not a size from %llu bytes to %lluG "
			    "(digits with an optional K, M or G)", k->name, value,
			    (unsigned long long)k->min, (unsigned long long)(k->max >> 30));
			return -1;
		}
		*(uint64_t *)field = v;
		return 0;
	case CONFIG_DURATION:
		if (config_parse_duration(value, &iv) == -1 || (uint64_t)iv < k->min || (uint64_t)iv > k->max) {
			config_error(err, errlen, "%s: '%s' is not a duration from %llus to %llus "
			    "(digits with an optional s, m, h or d)", k->name, value,
			    (unsigned long long)k->min, (unsigned long long)k->max);
			return -1;
		}
		*(int *)field = iv;
		return 0;
	default:
		break;
	}
	config_error(err, errlen, "%s: internal error (type %d)", k->name, (int)k->type);
	return -1;
}

/* CACHE: "inotify" or "off". */
static int
config_set_cache(const struct config_key *k, char *field, const char *value,
    char *err, size_t errlen)
{
	if (strcmp(value, "inotify") == 0)
		*(enum metadata_cache *)field = METADATA_CACHE_INOTIFY;
	else if (strcmp(value, "off") == 0)
		*(enum metadata_cache *)field = METADATA_CACHE_OFF;
	else {
		config_error(err, errlen, "%s: '%s' is not 'inotify' or 'off'", k->name, value);
		return -1;
	}
	return 0;
}

/* Which of two words value is: 0 or 1, else -1 with the error. */
static int
config_either(const struct config_key *k, const char *value, const char *first,
    const char *second, char *err, size_t errlen)
{
	if (strcmp(value, first) == 0)
		return 0;
	if (strcmp(value, second) == 0)
		return 1;
	config_error(err, errlen, "%s: '%s' is not '%s' or '%s'", k->name, value, first, second);
	return -1;
}

/* ENCODING, LOGFORMAT, SCHED, LOGLEVEL, NAME, BOOL: one word from a list or of a given shape. */
static int
config_set_word(const struct config_key *k, char *field, const char *value,
    char *err, size_t errlen)
{
	enum log_level level;
	int            v;

	switch (k->type) {
	case CONFIG_ENCODING:
		if ((v = config_either(k, value, "base64", "fragments", err, errlen)) == -1)
			return -1;
		*(enum slice_encoding *)field = v == 0 ? SLICE_BASE64 : SLICE_FRAGMENTS;
		return 0;
	case CONFIG_LOGFORMAT:
		if ((v = config_either(k, value, "text", "json", err, errlen)) == -1)
			return -1;
		*(enum access_log_format *)field = v == 0 ? ACCESS_LOG_TEXT : ACCESS_LOG_JSON;
		return 0;
	case CONFIG_SCHED:
		if ((v = config_either(k, value, "batch", "normal", err, errlen)) == -1)
			return -1;
		*(enum master_sched *)field = v == 0 ? MASTER_SCHED_BATCH : MASTER_SCHED_NORMAL;
		return 0;
	case CONFIG_LOGLEVEL:
		if (log_level_parse(value, &level) == -1) {
			config_error(err, errlen, "%s: '%s' is not error, warn, info or debug", k->name, value);
			return -1;
		}
		*(int *)field = (int)level;
		return 0;
	case CONFIG_BOOL:
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
			config_error(err, errlen, "%s: '%s' is not 'yes' or 'no'", k->name, value);
			return -1;
		}
		*(bool *)field = strcmp(value, "yes") == 0;
		return 0;
	case CONFIG_NAME:
		if (strlen(value) >= k->size) {
			config_error(err, errlen, "%s: '%s' is too long", k->name, value);
			return -1;
		}
		for (const char *p = value; *p; p++) {
			if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') {
				config_error(err, errlen, "%s: '%s' is not a valid name", k->name, value);
				return -1;
			}
		}
		snprintf(field, k->size, "%s", value);
		return 0;
	default:
		break;
	}
	config_error(err, errlen, "%s: internal error (type %d)", k->name, (int)k->type);
	return -1;
}

static int
config_set(struct config *c, const struct config_key *k, const char *value,
    const char *base, unsigned line, char *err, size_t errlen)
{
	char *field = (char *)c + k->offset;

	switch (k->type) {
	case CONFIG_ACL: {
		char msg[256];
		if (acl_add((struct acl *)field, value, k->min != 0, line, msg, sizeof(msg)) == -1) {
			config_error(err, errlen, "%s: %s", k->name, msg);
			return -1;
		}
		return 0;
	}
	case CONFIG_LISTEN:
		return config_set_listen(c, value, err, errlen);
	case CONFIG_STATUS_LISTEN:
		return config_set_status_listen(c, value, err, errlen);
	case CONFIG_PATH:
	case CONFIG_LOGPATH:
	case CONFIG_OFFPATH:
		return config_set_path(k, field, value, base, err, errlen);
	case CONFIG_WORKERS:
	case CONFIG_INT:
	case CONFIG_SIZE:
	case CONFIG_DURATION:
		return config_set_number(k, field, value, err, errlen);
	case CONFIG_ENCODING:
	case CONFIG_LOGFORMAT:
	case CONFIG_SCHED:
	case CONFIG_LOGLEVEL:
	case CONFIG_NAME:
	case CONFIG_BOOL:
		return config_set_word(k, field, value, err, errlen);
	case CONFIG_CACHE:
		return config_set_cache(k, field, value, err, errlen);
	}
	config_error(err, errlen, "%s: internal error (type %d)", k->name, (int)k->type);
	return -1;
}

static char *
config_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

/* base: the folder of file, absolute; 0 / -1 when too long. */
static int
config_base_dir(const char *file, char *base, size_t baselen)
{
	const char *slash = strrchr(file, '/');

	base[0] = '\0';
	if (file[0] != '/' && getcwd(base, baselen) == NULL)
		base[0] = '\0';
	if (slash != NULL) {
		size_t used = strlen(base), dirlen = (size_t)(slash - file);
		if (used + 1 + dirlen >= baselen)
			return -1;
		if (used > 0)
			base[used++] = '/';
		memcpy(base + used, file, dirlen);
		base[used + dirlen] = '\0';
		if (base[0] == '\0')
			snprintf(base, baselen, "/");
	}
	return 0;
}

/* What one config_load call remembers from line to line. */
struct config_reader {
	const char *base;                   /* folder of the file */
	unsigned    lineno;
	unsigned    seen[CONFIG_NKEYS];     /* line that set each key, 0 = not yet */
	int         nlisten;                /* listen lines of this file so far */
	int         nstatus;                /* status_listen lines of this file so far */
};

/* Applies one line to c; 0 / -1 with msg (the caller adds FILE:LINE). */
static int
config_line(struct config *c, struct config_reader *r, char *line,
    char *msg, size_t msglen)
{
	const struct config_key *k = NULL;
	char                    *key, *value, *eq, *hash;

	for (hash = line; (hash = strchr(hash, '#')) != NULL; hash++) {
		if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
			*hash = '\0';
			break;
		}
	}
	key = config_trim(line);
	if (*key == '\0')
		return 0;
	if ((eq = strchr(key, '=')) == NULL) {
		config_error(msg, msglen, "expected 'key = value', got '%s'", key);
		return -1;
	}
	*eq = '\0';
	key = config_trim(key);
	value = config_trim(eq + 1);
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].name, key) == 0) {
			k = &config_keys[i];
			break;
		}
	}
	if (k == NULL) {
		config_error(msg, msglen, "unknown key '%s'", key);
		return -1;
	}
	if (*value == '\0') {
		config_error(msg, msglen, "%s: missing value", key);
		return -1;
	}
	if (k->type != CONFIG_LISTEN && k->type != CONFIG_STATUS_LISTEN && k->type != CONFIG_ACL &&
	    r->seen[k - config_keys]) {
		config_error(msg, msglen, "%s: duplicate key (first set on line %u)",
		    key, r->seen[k - config_keys]);
		return -1;
	}
	r->seen[k - config_keys] = r->lineno;
	c->key_line[k - config_keys] = r->lineno;
	if (k->type == CONFIG_LISTEN && r->nlisten++ == 0)
		c->nlisten = 0;     /* the file's listen lines replace earlier ones */
	if (k->type == CONFIG_LISTEN && c->nlisten < CONFIG_LISTEN_MAX)
		c->listen_line[c->nlisten] = r->lineno;
	if (k->type == CONFIG_STATUS_LISTEN && r->nstatus++ == 0)
		c->nstatus_listen = 0;
	if (k->type == CONFIG_STATUS_LISTEN && c->nstatus_listen < CONFIG_STATUS_LISTEN_MAX)
		c->status_listen_line[c->nstatus_listen] = r->lineno;
	return config_set(c, k, value, r->base, r->lineno, msg, msglen);
}

int
config_load(struct config *c, const char *file, char *err, size_t errlen)
{
	struct config_reader r = { 0 };
	FILE                *fp;
	char                *line = NULL, base[PATH_MAX];
	size_t               linecap = 0;
	int                  rc = -1;
	char                 msg[CONFIG_ERR_MAX];

	if ((fp = fopen(file, "re")) == NULL) {
		config_error(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	if (config_base_dir(file, base, sizeof(base)) == -1) {
		config_error(err, errlen, "%s: path too long", file);
		fclose(fp);
		return -1;
	}
	r.base = base;
	while (getline(&line, &linecap, fp) != -1) {
		r.lineno++;
		if (config_line(c, &r, line, msg, sizeof(msg)) == -1) {
			config_error(err, errlen, "%s:%u: %s", file, r.lineno, msg);
			goto done;
		}
	}
	if (ferror(fp)) {
		config_error(err, errlen, "%s: %s", file, strerror(errno));
		goto done;
	}
	snprintf(c->path, sizeof(c->path), "%s", file);
	rc = 0;
done:
	free(line);
	fclose(fp);
	return rc;
}

/* One key's value as the file would spell it. */
static void
config_format(const struct config_key *k, const struct config *c, char *out, size_t outlen)
{
	const char *field = (const char *)c + k->offset;
	int         level;

	switch (k->type) {
	case CONFIG_PATH:
		snprintf(out, outlen, "%s", field[0] != '\0' ? field : "none");
		break;
	case CONFIG_LOGPATH:
	case CONFIG_OFFPATH:
	case CONFIG_NAME:
		snprintf(out, outlen, "%s", field[0] != '\0' ? field : "(none)");
		break;
	case CONFIG_WORKERS:
	case CONFIG_INT:
		snprintf(out, outlen, "%d", *(const int *)field);
		break;
	case CONFIG_SIZE:
		snprintf(out, outlen, "%llu", (unsigned long long)*(const uint64_t *)field);
		break;
	case CONFIG_DURATION:
		snprintf(out, outlen, "%ds", *(const int *)field);
		break;
	case CONFIG_ENCODING:
		snprintf(out, outlen, "%s", *(const enum slice_encoding *)field == SLICE_BASE64 ?
		    "base64" : "fragments");
		break;
	case CONFIG_CACHE:
		snprintf(out, outlen, "%s", *(const enum metadata_cache *)field ==
		    METADATA_CACHE_INOTIFY ? "inotify" : "off");
		break;
	case CONFIG_LOGFORMAT:
		snprintf(out, outlen, "%s", *(const enum access_log_format *)field == ACCESS_LOG_JSON ?
		    "json" : "text");
		break;
	case CONFIG_SCHED:
		snprintf(out, outlen, "%s", *(const enum master_sched *)field == MASTER_SCHED_BATCH ?
		    "batch" : "normal");
		break;
	case CONFIG_LOGLEVEL:
		level = *(const int *)field;
		snprintf(out, outlen, "%s", log_level_name((enum log_level)level));
		break;
	case CONFIG_BOOL:
		snprintf(out, outlen, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case CONFIG_LISTEN:
	case CONFIG_STATUS_LISTEN:
	case CONFIG_ACL:
		snprintf(out, outlen, "(none)");
		break;
	}
}

/* Where key i's value came from: "FILE:LINE", "command line" or "default". */
static void
config_origin(const struct config *c, size_t i, unsigned line, char *out, size_t outlen)
{
	if (c->key_cmdline[i])
		snprintf(out, outlen, "command line");
	else if (line != 0)
		snprintf(out, outlen, "%s:%u", c->path, line);
	else
		snprintf(out, outlen, "default");
}

/*
 * user and group: an unset one prints whom the workers really run as,
 * and why (a config that names nobody still runs its workers as someone).
 */
static void
config_print_id(const struct config *c, size_t i, const char *effective,
    const char *why, FILE *fp)
{
	const struct config_key *k = &config_keys[i];
	const char              *field = (const char *)c + k->offset;
	char                     origin[PATH_MAX + 32];

	config_origin(c, i, c->key_line[i], origin, sizeof(origin));
	if (field[0] != '\0' || effective == NULL || effective[0] == '\0')
		fprintf(fp, "%-18s = %-30s # %s\n", k->name,
		    field[0] != '\0' ? field : "(none)", origin);
	else
		fprintf(fp, "%-18s = %-30s # %s: %s\n", k->name, effective, origin, why);
}

/*
 * A non-empty address list, one line per entry in order; allow and deny
 * share one list, printed at "allow" with each entry's own key.  False
 * an empty list as a comment line "#key = (none)".
 */
static bool
config_print_acl(const struct config *c, const struct config_key *k, FILE *fp)
{
	const struct acl *list = (const struct acl *)((const char *)c + k->offset);
	char              text[ACL_TEXT_MAX], origin[PATH_MAX + 32];

	if (list->n == 0) {
		/* No entry: a comment, so that -T's output stays a valid file. */
		fprintf(fp, "#%-17s = %-30s # default\n", k->name, "(none)");
		return true;
	}
	if (list == &c->access && k->min == 0)
		return true;        /* printed with "allow" */
	for (int j = 0; j < list->n; j++) {
		const struct acl_entry *e = &list->e[j];

		acl_entry_text(e, text, sizeof(text));
		config_origin(c, (size_t)(k - config_keys), e->line, origin, sizeof(origin));
		fprintf(fp, "%-18s = %-30s # %s\n",
		    list == &c->access ? (e->allow ? "allow" : "deny") : k->name, text, origin);
	}
	return true;
}

/* status_listen lines; none: a comment, so that -T's output stays a valid file. */
static void
config_print_status_listen(const struct config *c, size_t i, FILE *fp)
{
	char origin[PATH_MAX + 32];

	if (c->nstatus_listen == 0)
		fprintf(fp, "#%-17s = %-30s # default\n", config_keys[i].name, "(none)");
	for (int j = 0; j < c->nstatus_listen; j++) {
		config_origin(c, i, c->key_line[i] != 0 ? c->status_listen_line[j] : 0,
		    origin, sizeof(origin));
		fprintf(fp, "%-18s = %-30s # %s\n", config_keys[i].name, c->status_listen[j].text,
		    origin);
	}
}

void
config_print(const struct config *c, const struct config_ids *ids, FILE *fp)
{
	char value[PATH_MAX + 16], origin[PATH_MAX + 32];

	fprintf(fp, "# hftpd effective configuration (%s)\n",
	    c->path[0] != '\0' ? c->path : "no file: built-in defaults");
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->type == CONFIG_LISTEN) {
			for (int j = 0; j < c->nlisten; j++) {
				config_origin(c, i, c->key_line[i] != 0 ? c->listen_line[j] : 0,
				    origin, sizeof(origin));
				snprintf(value, sizeof(value), "%s%s", c->listen[j].text,
				    c->listen[j].proxy_protocol ? " " CONFIG_LISTEN_PROXY : "");
				fprintf(fp, "%-18s = %-30s # %s\n", k->name, value, origin);
			}
			continue;
		}
		if (k->type == CONFIG_STATUS_LISTEN) {
			config_print_status_listen(c, i, fp);
			continue;
		}
		if (k->type == CONFIG_ACL && config_print_acl(c, k, fp))
			continue;
		if (k->type == CONFIG_NAME) {
			config_print_id(c, i, ids == NULL ? NULL : strcmp(k->name, "user") == 0 ?
			    ids->user : ids->group, ids == NULL ? NULL : ids->why, fp);
			continue;
		}
		config_format(k, c, value, sizeof(value));
		config_origin(c, i, c->key_line[i], origin, sizeof(origin));
		fprintf(fp, "%-18s = %-30s # %s\n", k->name, value, origin);
	}
}

int
config_warnings(const struct config *c, char *msg, size_t msglen)
{
	int n = 0;

	for (int i = 0; i < c->nlisten; i++) {
		if (!c->listen[i].proxy_protocol || c->proxy_trusted.n > 0)
			continue;
		if (n++ == 0)
			snprintf(msg, msglen, "listen %s %s: no proxy_trusted line, so a PROXY "
			    "header is believed from any peer that reaches it", c->listen[i].text,
			    CONFIG_LISTEN_PROXY);
	}
	return n;
}

int
config_finish(struct config *c, char *err, size_t errlen)
{
	if (c->nlisten == 0) {
		char text[32];
		snprintf(text, sizeof(text), "%s:%d", CONFIG_DEFAULT_ADDR, CONFIG_DEFAULT_PORT);
		if (config_parse_listen(text, &c->listen[0], err, errlen) == -1)
			return -1;
		c->nlisten = 1;
	}
	for (int i = 0; i < c->nstatus_listen; i++) {
		for (int j = 0; j < c->nlisten; j++) {
			if (strcmp(c->status_listen[i].text, c->listen[j].text) == 0) {
				config_error(err, errlen, "status_listen %s: also a listen address "
				    "(the status listener is never the HFTP port)", c->listen[j].text);
				return -1;
			}
		}
	}
	if (c->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers = n < 1 ? 1 : (n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (int)n);
	}
	if (c->directory[0] != '/') {
		char cwd[PATH_MAX], abs[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    config_resolve_path(abs, sizeof(abs), cwd, c->directory) == -1) {
			config_error(err, errlen, "directory '%s': cannot make the path absolute", c->directory);
			return -1;
		}
		snprintf(c->directory, sizeof(c->directory), "%s", abs);
	}
	return 0;
}

/*
 * -a takes an address without a port: "[::1]" or "::1" for IPv6.  An
 * address with a port ("[::]:80", "127.0.0.1:80") is refused by name
 * rather than glued to -p's port into something unparsable.
 */
static int
config_override_addr(const char *addr, char *host, size_t hostlen,
    char *err, size_t errlen)
{
	struct in6_addr a6;
	const char     *given = addr;
	size_t          n = strlen(addr);

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (close == NULL || close[1] != '\0')
			goto port;
		n = (size_t)(close - addr - 1);
		addr++;
	} else if (strchr(addr, ':') != NULL && strchr(addr, ':') == strrchr(addr, ':') &&
	    inet_pton(AF_INET6, addr, &a6) != 1)
		goto port;
	if (n >= hostlen) {
		config_error(err, errlen, "-a '%s': address too long", given);
		return -1;
	}
	memcpy(host, addr, n);
	host[n] = '\0';
	return 0;
port:
	config_error(err, errlen, "-a '%s': -a takes an address without a port "
	    "(give the port with -p; IPv6 as :: or [::])", given);
	return -1;
}

/* -a / -p: one listener, the missing half from the defaults. */
static int
config_override_listen(const struct config_overrides *o, struct config *c,
    char *err, size_t errlen)
{
	const char *port = o->port ? o->port : CONFIG_DEFAULT_PORT_TEXT;
	char        host[64], text[128];
	int         n;

	if (config_override_addr(o->address ? o->address : CONFIG_DEFAULT_ADDR,
	    host, sizeof(host), err, errlen) == -1)
		return -1;
	if (strchr(host, ':') != NULL)
		n = snprintf(text, sizeof(text), "[%s]:%s", host, port);
	else
		n = snprintf(text, sizeof(text), "%s:%s", host, port);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		config_error(err, errlen, "listen '%s' port '%s': too long", host, port);
		return -1;
	}
	if (config_parse_listen(text, &c->listen[0], err, errlen) == -1)
		return -1;
	c->nlisten = 1;
	return 0;
}

/* Index of the key called name in config_keys (a name this file spells). */
static size_t
config_key_index(const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].name, name) == 0)
			return i;
	}
	fatalx("config: no key %s", name);
}

/* Marks a key as set by the command line: -T says so, not the file's line. */
static void
config_mark_cmdline(struct config *c, const char *name)
{
	size_t i = config_key_index(name);

	c->key_cmdline[i] = true;
	c->key_line[i] = 0;
}

/* -d, -u, -g: parsed as the file's value would be ("opt: ..." on error). */
static int
config_override_value(struct config *c, const char *opt, const char *name,
    const char *value, char *err, size_t errlen)
{
	char msg[CONFIG_ERR_MAX];

	if (config_set(c, &config_keys[config_key_index(name)], value, "", 0,
	    msg, sizeof(msg)) == -1) {
		config_error(err, errlen, "%s %s", opt, msg);
		return -1;
	}
	config_mark_cmdline(c, name);
	return 0;
}

int
config_build(const struct config_overrides *o, struct config *c, char *err, size_t errlen)
{
	config_defaults(c);
	if (o->config_file != NULL && config_load(c, o->config_file, err, errlen) == -1)
		return -1;
	if ((o->directory != NULL &&
	    config_override_value(c, "-d", "directory", o->directory, err, errlen) == -1) ||
	    (o->user != NULL && config_override_value(c, "-u", "user", o->user, err, errlen) == -1) ||
	    (o->group != NULL && config_override_value(c, "-g", "group", o->group, err, errlen) == -1))
		return -1;
	if (o->address != NULL || o->port != NULL) {
		if (config_override_listen(o, c, err, errlen) == -1)
			return -1;
		config_mark_cmdline(c, "listen");
	}
	if (o->workers > 0) {
		c->workers = o->workers;
		config_mark_cmdline(c, "workers");
	}
	if (o->clients > 0) {
		c->clients_per_worker = o->clients;
		config_mark_cmdline(c, "clients_per_worker");
	}
	if (!o->foreground && c->pid_file[0] == '\0')
		snprintf(c->pid_file, sizeof(c->pid_file), "%s", CONFIG_DEFAULT_PID_FILE);
	return config_finish(c, err, errlen);
}
