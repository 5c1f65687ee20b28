/*
 * test_config.c — unit tests for shared/config.c: defaults, the key = value
 * file (every key, comments, blank lines, CRLF, relative paths resolved
 * against the file's folder), errors as "FILE:LINE: message" for each kind
 * of mistake, the listen / size / duration parsers, config_finish, and
 * config_build (defaults, then the file, then -a/-p/-d/-w/-n overrides).
 *
 * Fixtures live in tests/unit/fixtures/.  __FILE__ is relative when built by
 * the Makefile, so the folder is found at run time: as given when it exists
 * from the cwd, else by walking up from the test binary (/proc/self/exe)
 * until the relative path names it.  Tests thus run from any cwd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static char fixtures[PATH_MAX];     /* absolute, canonical */

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int find_fixtures(void)
{
	char rel[PATH_MAX], exe[PATH_MAX], cand[2 * PATH_MAX + 2];
	char *slash;
	ssize_t n;

	snprintf(rel, sizeof(rel), "%s", __FILE__);
	slash = strrchr(rel, '/');
	if (slash != NULL)
		snprintf(slash, sizeof(rel) - (size_t)(slash - rel), "/fixtures");
	else
		snprintf(rel, sizeof(rel), "fixtures");

	if (is_dir(rel))
		return realpath(rel, fixtures) != NULL ? 0 : -1;
	if (rel[0] == '/')
		return -1;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	while ((slash = strrchr(exe, '/')) != NULL) {
		*slash = '\0';
		snprintf(cand, sizeof(cand), "%s/%s", exe, rel);
		if (is_dir(cand))
			return realpath(cand, fixtures) != NULL ? 0 : -1;
	}
	return -1;
}

static int group_setup(void **state)
{
	(void)state;
	if (find_fixtures() == -1) {
		fprintf(stderr, "test_config: cannot find the fixtures folder\n");
		return -1;
	}
	return 0;
}

static void fixture(char *out, size_t outlen, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", fixtures, name);
	assert_true(n > 0 && (size_t)n < outlen);
}

static const char *join(char *out, size_t outlen, const char *a, const char *b)
{
	int n = snprintf(out, outlen, "%s/%s", a, b);
	assert_true(n > 0 && (size_t)n < outlen);
	return out;
}

static uint16_t listen_port(const struct config_listen *l)
{
	if (l->addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
}

static void assert_listen_v4(const struct config_listen *l, const char *text,
    const char *addr, uint16_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
	struct in_addr want;

	assert_string_equal(l->text, text);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(l->addrlen, sizeof(struct sockaddr_in));
	assert_int_equal(listen_port(l), port);
	assert_int_equal(inet_pton(AF_INET, addr, &want), 1);
	assert_memory_equal(&sin->sin_addr, &want, sizeof(want));
}

static void assert_listen_v6(const struct config_listen *l, const char *text,
    const char *addr, uint16_t port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;
	struct in6_addr want;

	assert_string_equal(l->text, text);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(l->addrlen, sizeof(struct sockaddr_in6));
	assert_int_equal(listen_port(l), port);
	assert_int_equal(inet_pton(AF_INET6, addr, &want), 1);
	assert_memory_equal(&sin6->sin6_addr, &want, sizeof(want));
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
	struct config c;

	(void)state;
	memset(&c, 0x5a, sizeof(c));
	config_defaults(&c);
	assert_string_equal(c.path, "");
	assert_int_equal(c.nlisten, 0);
	assert_string_equal(c.directory, CONFIG_DEFAULT_DIRECTORY);
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.clients_per_worker, CONFIG_DEFAULT_CLIENTS_PER_WORKER);
	assert_int_equal(c.slice_encoding, SLICE_BASE64);
	assert_int_equal(c.request_line_max, 16u * 1024 * 1024);
	assert_int_equal(c.client_timeout, 300);
	assert_string_equal(c.pid_file, "");
	assert_string_equal(c.error_log, "stderr");
	assert_string_equal(c.access_log, "off");
	assert_int_equal(c.log_level, LOG_LEVEL_INFO);
	assert_string_equal(c.user, "");
	assert_string_equal(c.group, "");
	assert_int_equal(c.shutdown_timeout, CONFIG_DEFAULT_SHUTDOWN_TIMEOUT);
	assert_int_equal(c.master_scheduling, MASTER_SCHED_BATCH);
}

/* ---- good files ---- */

static void assert_good_conf(const struct config *c, const char *base)
{
	char want[2 * PATH_MAX];

	assert_int_equal(c->nlisten, 2);
	assert_listen_v4(&c->listen[0], "127.0.0.1:19501", "127.0.0.1", 19501);
	assert_listen_v6(&c->listen[1], "[::1]:19502", "::1", 19502);
	assert_string_equal(c->directory, join(want, sizeof(want), base, "served"));
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->clients_per_worker, 64);
	assert_int_equal(c->slice_encoding, SLICE_FRAGMENTS);
	assert_int_equal(c->request_line_max, 4096);
	assert_int_equal(c->client_timeout, 300);
	/* '#' not after white space is part of the value. */
	assert_string_equal(c->pid_file, join(want, sizeof(want), base, "run/hftpd#1.pid"));
	assert_string_equal(c->error_log, join(want, sizeof(want), base, "logs/error.log"));
	assert_string_equal(c->access_log, "/var/log/hftpd/access.log");
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(c->user, "nobody");
	assert_string_equal(c->group, "nogroup");
	assert_int_equal(c->shutdown_timeout, 90);
}

static void test_load_good(void **state)
{
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "";

	(void)state;
	fixture(file, sizeof(file), "good.conf");
	config_defaults(&c);
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.path, file);
	assert_good_conf(&c, fixtures);

	/* finish: workers auto resolved, the rest kept. */
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	{
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		int want = cpus < 1 ? 1 : (cpus > 1024 ? 1024 : (int)cpus);
		assert_int_equal(c.workers, want);
	}
	assert_int_equal(c.nlisten, 2);
	assert_string_equal(c.listen[1].text, "[::1]:19502");
	assert_true(c.directory[0] == '/');
	assert_true(strstr(c.directory, "/served") != NULL);
}

static void test_load_good_crlf(void **state)
{
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "";

	(void)state;
	fixture(file, sizeof(file), "good_crlf.conf");
	config_defaults(&c);
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_int_equal(c.nlisten, 1);
	assert_listen_v4(&c.listen[0], "0.0.0.0:19503", "0.0.0.0", 19503);
	assert_string_equal(c.directory, "/srv/hftp/files");
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.slice_encoding, SLICE_BASE64);
	assert_int_equal(c.request_line_max, 16u * 1024 * 1024);
	assert_int_equal(c.client_timeout, 45);
	assert_string_equal(c.error_log, "syslog");
	assert_string_equal(c.access_log, "off");
	assert_int_equal(c.log_level, LOG_LEVEL_WARN);
	assert_int_equal(c.shutdown_timeout, 3600);
	assert_string_equal(c.pid_file, "/run/hftpd.pid");
	/* Keys the file does not set keep their defaults. */
	assert_int_equal(c.clients_per_worker, CONFIG_DEFAULT_CLIENTS_PER_WORKER);
	assert_string_equal(c.user, "");

	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.workers, 3);
	assert_string_equal(c.directory, "/srv/hftp/files");
}

static void test_load_relative_file_names(void **state)
{
	struct config c;
	char cwd[PATH_MAX], parent[PATH_MAX], err[CONFIG_ERR_MAX] = "";
	char *slash;

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));

	/* "fixtures/good.conf" from the folder above: paths resolve against
	 * cwd + "/fixtures". */
	snprintf(parent, sizeof(parent), "%s", fixtures);
	slash = strrchr(parent, '/');
	assert_non_null(slash);
	*slash = '\0';
	assert_int_equal(chdir(parent), 0);
	config_defaults(&c);
	int rc = config_load(&c, "fixtures/good.conf", err, sizeof(err));
	if (rc == 0) {
		assert_string_equal(c.path, "fixtures/good.conf");
		assert_good_conf(&c, fixtures);
	}

	/* "good.conf" from the fixtures folder itself. */
	if (rc == 0) {
		assert_int_equal(chdir(fixtures), 0);
		config_defaults(&c);
		rc = config_load(&c, "good.conf", err, sizeof(err));
		if (rc == 0)
			assert_good_conf(&c, fixtures);
	}
	assert_int_equal(chdir(cwd), 0);
	if (rc != 0)
		fail_msg("config_load: %s", err);
}

static void test_load_empty_file(void **state)
{
	struct config c, d;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "";

	(void)state;
	fixture(file, sizeof(file), "empty.conf");
	config_defaults(&c);
	config_defaults(&d);
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_string_equal(c.path, file);
	memset(c.path, 0, sizeof(c.path));
	assert_memory_equal(&c, &d, sizeof(c));
}

static void test_load_on_top_of_existing(void **state)
{
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "";

	(void)state;
	/* Earlier settings survive unless the file sets them; the file's
	 * listen lines replace earlier listeners rather than adding to them. */
	config_defaults(&c);
	assert_int_equal(config_parse_listen("10.0.0.1:1", &c.listen[0], err, sizeof(err)), 0);
	c.nlisten = 1;
	c.clients_per_worker = 7;
	snprintf(c.user, sizeof(c.user), "keepme");
	fixture(file, sizeof(file), "good_crlf.conf");
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen[0].text, "0.0.0.0:19503");
	assert_int_equal(c.clients_per_worker, 7);
	assert_string_equal(c.user, "keepme");
	assert_int_equal(c.workers, 3);
}

/* ---- bad files ---- */

/* Loads fixture name, expects -1 and an error "PATH:LINE: ..." with word in it. */
static void assert_load_error(const char *name, unsigned line, const char *word)
{
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "", prefix[PATH_MAX + 32];

	fixture(file, sizeof(file), name);
	config_defaults(&c);
	if (config_load(&c, file, err, sizeof(err)) != -1)
		fail_msg("%s: loaded without error (expected '%s:%u: ...%s...')",
		    name, name, line, word);
	snprintf(prefix, sizeof(prefix), "%s:%u: ", file, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("%s: error '%s' does not start with '%s'", name, err, prefix);
	if (strstr(err + strlen(prefix), word) == NULL)
		fail_msg("%s: error '%s' does not mention '%s'", name, err, word);
}

static void test_bad_unknown_key(void **state)
{
	(void)state;
	assert_load_error("bad_unknown_key.conf", 3, "unknown key 'port'");
}

static void test_bad_missing_equals(void **state)
{
	(void)state;
	assert_load_error("bad_missing_eq.conf", 3, "expected 'key = value'");
}

static void test_bad_empty_value(void **state)
{
	(void)state;
	assert_load_error("bad_empty_value.conf", 2, "directory: missing value");
}

static void test_bad_number(void **state)
{
	(void)state;
	assert_load_error("bad_number.conf", 2, "clients_per_worker: '12x' is not a whole number");
}

static void test_bad_out_of_range(void **state)
{
	(void)state;
	assert_load_error("bad_range.conf", 3, "workers: '2000'");
	assert_load_error("bad_range.conf", 3, "from 1 to 1024");
	assert_load_error("bad_range_zero.conf", 1, "clients_per_worker: '0'");
	assert_load_error("bad_duration_range.conf", 1, "shutdown_timeout: '2d' is not a duration");
}

static void test_bad_suffix(void **state)
{
	(void)state;
	assert_load_error("bad_size_suffix.conf", 2, "request_line_max: '4T' is not a size");
	assert_load_error("bad_duration_suffix.conf", 3, "client_timeout: '5w' is not a duration");
}

static void test_bad_slice_encoding(void **state)
{
	(void)state;
	assert_load_error("bad_encoding.conf", 2, "slice_encoding: 'base32'");
	assert_load_error("bad_encoding.conf", 2, "fragments");
}

static void test_bad_log_level_and_user(void **state)
{
	(void)state;
	assert_load_error("bad_log_level.conf", 1, "log_level: 'verbose'");
	assert_load_error("bad_user.conf", 2, "user: 'no/body' is not a valid name");
}

static void test_bad_duplicate_key(void **state)
{
	(void)state;
	assert_load_error("bad_duplicate.conf", 5, "workers: duplicate key");
	assert_load_error("bad_duplicate.conf", 5, "first set on line 2");
}

static void test_bad_duplicate_listen(void **state)
{
	(void)state;
	/* 127.0.0.1:19500 and 127.0.0.1:019500 are the same listener. */
	assert_load_error("bad_dup_listen.conf", 3, "listen '127.0.0.1:019500' given twice");
}

static void test_bad_duplicate_listen_ipv6_spelling(void **state)
{
	(void)state;
	/* [::1] and [0:0:0:0:0:0:0:1] are one address: also a duplicate. */
	assert_load_error("bad_dup_listen_v6.conf", 2, "given twice");
}

static void test_bad_ipv6_without_brackets(void **state)
{
	(void)state;
	assert_load_error("bad_ipv6_nobrackets.conf", 2, "[ADDR]:PORT");
}

static void test_bad_port(void **state)
{
	(void)state;
	assert_load_error("bad_port0.conf", 2, "listen '127.0.0.1:0': port must be a number from 1 to 65535");
	assert_load_error("bad_port70000.conf", 2, "listen '[::1]:70000': port must be");
}

/* "listen = ADDR proxy_protocol": the flag, per listener. */
static void test_listen_proxy_protocol(void **state)
{
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "";

	(void)state;
	fixture(file, sizeof(file), "good_proxy.conf");
	config_defaults(&c);
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_int_equal(c.nlisten, 3);
	assert_listen_v4(&c.listen[0], "127.0.0.1:19510", "127.0.0.1", 19510);
	assert_true(c.listen[0].proxy_protocol);
	assert_listen_v6(&c.listen[1], "[::1]:19511", "::1", 19511);
	assert_true(c.listen[1].proxy_protocol);
	assert_false(c.listen[2].proxy_protocol);
}

static void test_access_lists(void **state)
{
	struct config      c;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char               file[PATH_MAX], err[CONFIG_ERR_MAX] = "";

	(void)state;
	config_defaults(&c);
	assert_int_equal(c.max_clients_per_address, CONFIG_DEFAULT_MAX_CLIENTS_PER_ADDR);
	assert_int_equal(c.access.n, 0);
	fixture(file, sizeof(file), "good_access.conf");
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_int_equal(c.access.n, 5);    /* allow, deny, allow x2, deny */
	assert_true(c.access.e[0].allow);
	assert_false(c.access.e[1].allow);
	assert_true(c.access.e[3].allow);
	assert_int_equal(c.access.e[3].family, ACL_V6);
	assert_int_equal(c.access.e[3].line, 5);
	assert_false(c.access.e[4].allow);
	assert_int_equal(c.access.e[4].family, ACL_ALL);
	assert_int_equal(c.proxy_trusted.n, 2);
	assert_int_equal(c.proxy_trusted.e[1].line, 6);
	assert_int_equal(c.max_clients_per_address, 8);
	inet_pton(AF_INET, "127.0.0.3", &sin.sin_addr);
	assert_false(acl_allows(&c.access, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "127.0.0.2", &sin.sin_addr);
	assert_true(acl_allows(&c.access, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "10.0.0.1", &sin.sin_addr);
	assert_false(acl_allows(&c.access, (struct sockaddr *)&sin));
	assert_int_equal(acl_match(&c.proxy_trusted, (struct sockaddr *)&sin), 0);
}

static void test_bad_access_lists(void **state)
{
	(void)state;
	assert_load_error("bad_acl_host_bits.conf", 3, "allow: '10.1.2.3/8' has bits set past "
	    "its prefix: write the network, 10.0.0.0/8");
	assert_load_error("bad_acl_prefix.conf", 1, "proxy_trusted: '10.0.0.0/33'");
	assert_load_error("bad_acl_name.conf", 2, "deny: 'example.com' is not a numeric");
	assert_load_error("bad_dup_max_clients.conf", 2, "duplicate key");
}

static void test_bad_listen_option(void **state)
{
	(void)state;
	assert_load_error("bad_listen_option.conf", 2,
	    "listen '127.0.0.1:19510 proxy': unknown option 'proxy'");
	/* one address, with and without the flag: still one listener twice */
	assert_load_error("bad_dup_listen_proxy.conf", 3, "given twice");
}

static void test_nonexistent_file(void **state)
{
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "", want[PATH_MAX + 64];

	(void)state;
	fixture(file, sizeof(file), "does-not-exist.conf");
	config_defaults(&c);
	assert_int_equal(config_load(&c, file, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", file, strerror(ENOENT));
	assert_string_equal(err, want);
	assert_string_equal(c.path, "");
}

static void test_directory_as_file(void **state)
{
	struct config c;
	char err[CONFIG_ERR_MAX] = "", want[PATH_MAX + 64];

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_load(&c, fixtures, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", fixtures, strerror(EISDIR));
	assert_string_equal(err, want);
}

static void test_error_truncated_to_errlen(void **state)
{
	struct config c;
	char file[PATH_MAX], err[16];

	(void)state;
	fixture(file, sizeof(file), "bad_unknown_key.conf");
	config_defaults(&c);
	memset(err, 'X', sizeof(err));
	assert_int_equal(config_load(&c, file, err, sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, file, sizeof(err) - 1);
}

/* ---- config_parse_listen ---- */

static void test_parse_listen_good(void **state)
{
	struct config_listen l;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(config_parse_listen("19500", &l, err, sizeof(err)), 0);
	assert_listen_v4(&l, "0.0.0.0:19500", "0.0.0.0", 19500);
	assert_int_equal(config_parse_listen("127.0.0.1:1", &l, err, sizeof(err)), 0);
	assert_listen_v4(&l, "127.0.0.1:1", "127.0.0.1", 1);
	assert_int_equal(config_parse_listen("*:65535", &l, err, sizeof(err)), 0);
	assert_listen_v4(&l, "0.0.0.0:65535", "0.0.0.0", 65535);
	assert_int_equal(config_parse_listen("10.1.2.3:0080", &l, err, sizeof(err)), 0);
	assert_listen_v4(&l, "10.1.2.3:80", "10.1.2.3", 80);
	assert_int_equal(config_parse_listen("[::1]:19500", &l, err, sizeof(err)), 0);
	assert_listen_v6(&l, "[::1]:19500", "::1", 19500);
	assert_int_equal(config_parse_listen("[::]:19500", &l, err, sizeof(err)), 0);
	assert_listen_v6(&l, "[::]:19500", "::", 19500);
	assert_int_equal(config_parse_listen("[fe80::1:2]:7", &l, err, sizeof(err)), 0);
	assert_listen_v6(&l, "[fe80::1:2]:7", "fe80::1:2", 7);
	assert_int_equal(config_parse_listen("[::ffff:127.0.0.1]:9", &l, err, sizeof(err)), 0);
	assert_listen_v6(&l, "[::ffff:127.0.0.1]:9", "::ffff:127.0.0.1", 9);
}

static void assert_listen_bad(const char *value, const char *word)
{
	struct config_listen l;
	char err[CONFIG_ERR_MAX] = "";

	if (config_parse_listen(value, &l, err, sizeof(err)) != -1)
		fail_msg("listen '%s' accepted", value);
	if (strstr(err, word) == NULL)
		fail_msg("listen '%s': error '%s' does not mention '%s'", value, err, word);
}

static void test_parse_listen_bad(void **state)
{
	(void)state;
	assert_listen_bad("0", "1 to 65535");
	assert_listen_bad("65536", "1 to 65535");
	assert_listen_bad("70000", "1 to 65535");
	assert_listen_bad("127.0.0.1:0", "1 to 65535");
	assert_listen_bad("127.0.0.1:70000", "1 to 65535");
	assert_listen_bad("127.0.0.1:", "1 to 65535");
	assert_listen_bad("127.0.0.1:-1", "1 to 65535");
	assert_listen_bad("127.0.0.1:+80", "1 to 65535");
	assert_listen_bad("127.0.0.1:80x", "1 to 65535");
	assert_listen_bad("127.0.0.1:99999999999999999999999", "1 to 65535");
	assert_listen_bad("", "1 to 65535");
	assert_listen_bad("::1:19500", "[ADDR]:PORT");
	assert_listen_bad("::1", "[ADDR]:PORT");
	assert_listen_bad("[::1]", "[IPV6]:PORT");
	assert_listen_bad("[::1]19500", "[IPV6]:PORT");
	assert_listen_bad("[::1:19500", "[IPV6]:PORT");
	assert_listen_bad("[::1]:0", "1 to 65535");
	assert_listen_bad("[::1]:70000", "1 to 65535");
	assert_listen_bad("[zz::1]:80", "not an IPv6 address");
	assert_listen_bad("[127.0.0.1]:80", "not an IPv6 address");
	assert_listen_bad("localhost:80", "not a numeric IPv4 address");
	assert_listen_bad("256.0.0.1:80", "not a numeric IPv4 address");
	assert_listen_bad(":80", "not a numeric IPv4 address");
	assert_listen_bad("1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25:80",
	    "too long");
}

/* ---- sizes and durations ---- */

static void test_parse_size(void **state)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "0", 0 }, { "1", 1 }, { "4096", 4096 }, { "007", 7 },
		{ "4K", 4096 }, { "4k", 4096 }, { "16M", 16u << 20 }, { "16m", 16u << 20 },
		{ "1G", 1u << 30 }, { "3g", 3ull << 30 }, { "0K", 0 },
		{ "18446744073709551615", UINT64_MAX },
		{ "17179869183G", 17179869183ull << 30 },
	};
	static const char *bad[] = {
		"", "K", "-1", "+1", " 4", "4 ", "4KB", "4T", "4b", "1.5M", "0x10",
		"18446744073709551616", "17179869184G", "18014398509481984K", "4K4",
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		if (config_parse_size(good[i].s, &v) != 0)
			fail_msg("size '%s' rejected", good[i].s);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (config_parse_size(bad[i], &v) != -1)
			fail_msg("size '%s' accepted", bad[i]);
		assert_int_equal(v, 12345);
	}
}

static void test_parse_duration(void **state)
{
	static const struct { const char *s; int v; } good[] = {
		{ "0", 0 }, { "30", 30 }, { "30s", 30 }, { "5m", 300 }, { "2h", 7200 },
		{ "1d", 86400 }, { "7d", 604800 }, { "1H", 3600 }, { "2147483647", INT32_MAX },
		{ "2147483647s", INT32_MAX },
	};
	static const char *bad[] = {
		"", "s", "-5", "+5", "5 m", "5ms", "5w", "5y", "1.5h", "2147483648",
		"35791395m", "99999999999999999999",
	};
	int v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -7;
		if (config_parse_duration(good[i].s, &v) != 0)
			fail_msg("duration '%s' rejected", good[i].s);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -7;
		if (config_parse_duration(bad[i], &v) != -1)
			fail_msg("duration '%s' accepted", bad[i]);
		assert_int_equal(v, -7);
	}
}

/* ---- config_finish ---- */

static void test_finish_defaults(void **state)
{
	struct config c;
	char cwd[PATH_MAX], want[2 * PATH_MAX], err[CONFIG_ERR_MAX] = "";
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	config_defaults(&c);
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.nlisten, 1);
	assert_listen_v4(&c.listen[0], "0.0.0.0:19500", "0.0.0.0", CONFIG_DEFAULT_PORT);
	assert_int_equal(c.workers, cpus < 1 ? 1 : (cpus > 1024 ? 1024 : (int)cpus));
	assert_true(c.workers >= 1);
	assert_string_equal(c.directory, join(want, sizeof(want), cwd, "testdata"));

	/* Finishing twice changes nothing. */
	static struct config d;
	memcpy(&d, &c, sizeof(d));
	assert_int_equal(config_finish(&d, err, sizeof(err)), 0);
	assert_memory_equal(&c, &d, sizeof(c));
}

static void test_finish_keeps_explicit(void **state)
{
	struct config c;
	char err[CONFIG_ERR_MAX] = "";

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_parse_listen("[::1]:2000", &c.listen[0], err, sizeof(err)), 0);
	c.nlisten = 1;
	c.workers = 5;
	snprintf(c.directory, sizeof(c.directory), "/abs/dir");
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen[0].text, "[::1]:2000");
	assert_int_equal(c.workers, 5);
	assert_string_equal(c.directory, "/abs/dir");

	/* A relative directory is made absolute against the cwd. */
	snprintf(c.directory, sizeof(c.directory), "some/dir");
	{
		char cwd[PATH_MAX], want[2 * PATH_MAX];
		assert_non_null(getcwd(cwd, sizeof(cwd)));
		assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
		assert_string_equal(c.directory, join(want, sizeof(want), cwd, "some/dir"));
	}
}

/* No file, no overrides: the defaults, finished; a daemon gets a pid file. */
static void test_build_defaults(void **state)
{
	struct config_overrides o = { 0 };
	struct config c;
	char err[CONFIG_ERR_MAX] = "";

	(void)state;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen[0].text, CONFIG_DEFAULT_ADDR ":" CONFIG_DEFAULT_PORT_TEXT);
	assert_int_equal(c.clients_per_worker, CONFIG_DEFAULT_CLIENTS_PER_WORKER);
	assert_true(c.workers >= 1 && c.workers <= CONFIG_WORKERS_MAX);
	assert_string_equal(c.pid_file, CONFIG_DEFAULT_PID_FILE);
	o.foreground = true;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_string_equal(c.pid_file, "");
}

/* The command line wins over the file, key by key; the rest is the file's. */
static void test_build_overrides_win(void **state)
{
	struct config_overrides o = { 0 };
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "";

	(void)state;
	fixture(file, sizeof(file), "good.conf");
	o.config_file = file;
	o.foreground = true;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nlisten, 2);
	assert_int_equal(c.clients_per_worker, 64);

	o.address = "127.0.0.2";
	o.port = "2020";
	o.directory = "/tmp";
	o.workers = 3;
	o.clients = 7;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nlisten, 1);     /* -a/-p replace the file's listeners */
	assert_string_equal(c.listen[0].text, "127.0.0.2:2020");
	assert_string_equal(c.directory, "/tmp");
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.clients_per_worker, 7);
	/* keys without an override keep the file's value */
	assert_int_equal(c.slice_encoding, SLICE_FRAGMENTS);
	assert_int_equal(c.shutdown_timeout, 90);
	assert_string_equal(c.user, "nobody");
	/* the file's own pid_file is kept for a daemon */
	o.foreground = false;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_non_null(strstr(c.pid_file, "run/hftpd#1.pid"));
}

/* -a alone takes the default port, -p alone the default address; IPv6 gets brackets. */
static void test_build_listen_halves(void **state)
{
	struct config_overrides o = { .foreground = true };
	struct config c;
	char err[CONFIG_ERR_MAX] = "";

	(void)state;
	o.address = "::1";
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_string_equal(c.listen[0].text, "[::1]:" CONFIG_DEFAULT_PORT_TEXT);
	o.address = NULL;
	o.port = "3030";
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_string_equal(c.listen[0].text, CONFIG_DEFAULT_ADDR ":3030");
	o.port = "70000";
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "port must be a number"));
}

/* A bad file is reported as such, whatever the overrides. */
static void test_build_bad_file(void **state)
{
	struct config_overrides o = { .workers = 2, .foreground = true };
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "";

	(void)state;
	fixture(file, sizeof(file), "bad_unknown_key.conf");
	o.config_file = file;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown key"));
}


/* -a takes an address only: one with a port is named as such, not glued to -p's. */
static void test_build_address_with_port(void **state)
{
	static const char *const bad[] = { "[::]:8080", "127.0.0.1:80", "[::1]x" };
	struct config_overrides o = { .foreground = true, .port = "2000" };
	struct config c;
	char err[CONFIG_ERR_MAX] = "";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.address = bad[i];
		assert_int_equal(config_build(&o, &c, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "-a takes an address without a port"));
		assert_non_null(strstr(err, bad[i]));
	}
	o.address = "[::]";
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_string_equal(c.listen[0].text, "[::]:2000");
	o.address = "::1";
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_string_equal(c.listen[0].text, "[::1]:2000");
}

/* What -T prints for c (with ids, or the config's own names): malloc'd. */
static char *printed(const struct config *c, const struct config_ids *ids)
{
	char  *out = NULL;
	size_t outlen = 0;
	FILE  *fp;

	assert_non_null(fp = open_memstream(&out, &outlen));
	config_print(c, ids, fp);
	fclose(fp);
	return out;
}

/* -u / -g override the file's user and group, checked as the file's are. */
static void test_build_user_group(void **state)
{
	struct config_overrides o = { .foreground = true };
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "", *out;

	(void)state;
	fixture(file, sizeof(file), "good.conf");
	o.config_file = file;
	o.user = "daemon";
	o.group = "adm";
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_string_equal(c.user, "daemon");
	assert_string_equal(c.group, "adm");
	/* -T names the command line as the origin */
	out = printed(&c, NULL);
	assert_non_null(strstr(out, "daemon                         # command line\n"));
	assert_non_null(strstr(out, "adm                            # command line\n"));
	free(out);
	o.user = "no body";
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "-u user: 'no body' is not a valid name"));
}

/* An unset user prints whom the workers run as, and why. */
static void test_print_effective_user(void **state)
{
	struct config_overrides o = { .foreground = true };
	struct config_ids ids = { "nobody", "nogroup", "started as root without `user`" };
	struct config c;
	char err[CONFIG_ERR_MAX] = "", *out;

	(void)state;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	out = printed(&c, &ids);
	assert_non_null(strstr(out, "user               = nobody"));
	assert_non_null(strstr(out, "# default: started as root without `user`\n"));
	assert_non_null(strstr(out, "group              = nogroup"));
	assert_null(strstr(out, "user               = (none)"));
	assert_null(strstr(out, "group              = (none)"));
	free(out);
}

/* A temporary config file holding text; its path in path. */
static void write_temp_conf(char *path, size_t len, const char *text)
{
	int fd;

	snprintf(path, len, "/tmp/hftpd-test-config-XXXXXX");
	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* status_listen: repeatable, marked, printed by -T; never a listen address. */
static void test_status_listen(void **state)
{
	struct config_overrides o = { .foreground = true };
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "", *out;

	(void)state;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nstatus_listen, 0);
	out = printed(&c, NULL);
	assert_non_null(strstr(out, "#status_listen     = (none)"));
	free(out);
	write_temp_conf(file, sizeof(file), "listen = 127.0.0.1:19500\n"
	    "status_listen = 127.0.0.1:19501\nstatus_listen = [::1]:19501\n");
	o.config_file = file;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nlisten, 1);
	assert_int_equal(c.nstatus_listen, 2);
	assert_true(c.status_listen[0].status && c.status_listen[1].status);
	assert_false(c.listen[0].status);
	assert_string_equal(c.status_listen[1].text, "[::1]:19501");
	out = printed(&c, NULL);
	assert_non_null(strstr(out, "status_listen      = 127.0.0.1:19501"));
	assert_non_null(strstr(out, ":3\n"));
	free(out);
	unlink(file);
	write_temp_conf(file, sizeof(file), "status_listen = 127.0.0.1:19501\n"
	    "status_listen = 127.0.0.1:19501\n");
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: status_listen '127.0.0.1:19501' given twice"));
	unlink(file);
	write_temp_conf(file, sizeof(file), "listen = 127.0.0.1:19501\n"
	    "status_listen = 127.0.0.1:19501\n");
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "status_listen 127.0.0.1:19501: also a listen address"));
	unlink(file);
}

/* master_scheduling: batch (default) or normal, printed by -T; anything else is FILE:LINE. */
static void test_master_scheduling(void **state)
{
	struct config_overrides o = { .foreground = true };
	struct config c;
	char file[PATH_MAX], err[CONFIG_ERR_MAX] = "", *out;

	(void)state;
	write_temp_conf(file, sizeof(file), "listen = 127.0.0.1:19500\nmaster_scheduling = normal\n");
	o.config_file = file;
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_int_equal(c.master_scheduling, MASTER_SCHED_NORMAL);
	out = printed(&c, NULL);
	assert_non_null(strstr(out, "master_scheduling  = normal"));
	free(out);
	unlink(file);
	write_temp_conf(file, sizeof(file), "master_scheduling = batch\n");
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), 0);
	assert_int_equal(c.master_scheduling, MASTER_SCHED_BATCH);
	unlink(file);
	write_temp_conf(file, sizeof(file), "\nmaster_scheduling = fifo\n");
	assert_int_equal(config_build(&o, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: master_scheduling: 'fifo' is not 'batch' or 'normal'"));
	unlink(file);
}

/* Capacity, the one definition: clients_per_worker, or what the open-file limit holds. */
static void test_capacity(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	c.clients_per_worker = 100;
	assert_int_equal(config_nofile_wanted(&c), 100 * CONFIG_FDS_PER_CLIENT + CONFIG_FDS_RESERVE);
	assert_int_equal(config_capacity(&c, CONFIG_NOFILE_UNLIMITED), 100);
	assert_int_equal(config_capacity(&c, config_nofile_wanted(&c)), 100);
	assert_int_equal(config_capacity(&c, config_nofile_wanted(&c) - 1), 99);
	assert_int_equal(config_capacity(&c, 1 << 20), 100);
	assert_int_equal(config_capacity(&c, CONFIG_FDS_RESERVE + 2 * CONFIG_FDS_PER_CLIENT), 2);
	/* a limit below the reserve still leaves one client */
	assert_int_equal(config_capacity(&c, CONFIG_FDS_RESERVE), 1);
	assert_int_equal(config_capacity(&c, 3), 1);
	assert_int_equal(config_capacity(&c, 0), 1);
}

/* One table of level names: parsing and printing agree. */
static void test_log_level_names(void **state)
{
	enum log_level level;

	(void)state;
	for (int i = LOG_LEVEL_ERROR; i <= LOG_LEVEL_DEBUG; i++) {
		assert_int_equal(log_level_parse(log_level_name((enum log_level)i), &level), 0);
		assert_int_equal(level, i);
	}
	assert_string_equal(log_level_name(LOG_LEVEL_WARN), "warn");
	assert_string_equal(log_level_name((enum log_level)7), "?");
	assert_int_equal(log_level_parse("warning", &level), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_status_listen),
		cmocka_unit_test(test_load_good),
		cmocka_unit_test(test_load_good_crlf),
		cmocka_unit_test(test_load_relative_file_names),
		cmocka_unit_test(test_load_empty_file),
		cmocka_unit_test(test_load_on_top_of_existing),
		cmocka_unit_test(test_bad_unknown_key),
		cmocka_unit_test(test_bad_missing_equals),
		cmocka_unit_test(test_bad_empty_value),
		cmocka_unit_test(test_bad_number),
		cmocka_unit_test(test_bad_out_of_range),
		cmocka_unit_test(test_bad_suffix),
		cmocka_unit_test(test_bad_slice_encoding),
		cmocka_unit_test(test_master_scheduling),
		cmocka_unit_test(test_bad_log_level_and_user),
		cmocka_unit_test(test_bad_duplicate_key),
		cmocka_unit_test(test_bad_duplicate_listen),
		cmocka_unit_test(test_bad_duplicate_listen_ipv6_spelling),
		cmocka_unit_test(test_bad_ipv6_without_brackets),
		cmocka_unit_test(test_bad_port),
		cmocka_unit_test(test_listen_proxy_protocol),
		cmocka_unit_test(test_bad_listen_option),
		cmocka_unit_test(test_access_lists),
		cmocka_unit_test(test_bad_access_lists),
		cmocka_unit_test(test_nonexistent_file),
		cmocka_unit_test(test_directory_as_file),
		cmocka_unit_test(test_error_truncated_to_errlen),
		cmocka_unit_test(test_parse_listen_good),
		cmocka_unit_test(test_parse_listen_bad),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_finish_defaults),
		cmocka_unit_test(test_finish_keeps_explicit),
		cmocka_unit_test(test_build_defaults),
		cmocka_unit_test(test_build_overrides_win),
		cmocka_unit_test(test_build_listen_halves),
		cmocka_unit_test(test_build_bad_file),
		cmocka_unit_test(test_build_address_with_port),
		cmocka_unit_test(test_build_user_group),
		cmocka_unit_test(test_print_effective_user),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_log_level_names),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
