/*
 * test_admit.c — unit tests for master/admit.c without sockets: allow /
 * deny and proxy_trusted verdicts, the count per address (opened, closed,
 * a worker's death, unknown ids ignored), IPv4 and IPv4-mapped IPv6 as one
 * address, PROXY addresses refused at the cap and not counted then, a cap
 * of 0 counting nothing, and tables grown well past their first size.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "master.h"

static struct master m;
static struct config conf;

static const struct sockaddr *
addr(const char *text)
{
	static struct sockaddr_storage ss[4];
	static int                     next;
	struct sockaddr_storage       *s = &ss[next++ % 4];

	memset(s, 0, sizeof(*s));
	if (strchr(text, ':') != NULL) {
		s->ss_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)s)->sin6_addr), 1);
	} else {
		s->ss_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &((struct sockaddr_in *)s)->sin_addr), 1);
	}
	return (const struct sockaddr *)s;
}

static int
setup(void **state)
{
	char err[256];

	(void)state;
	memset(&m, 0, sizeof(m));
	config_defaults(&conf);
	conf.max_clients_per_address = 3;
	assert_int_equal(acl_add(&conf.access, "127.0.0.1", true, 1, err, sizeof(err)), 0);
	assert_int_equal(acl_add(&conf.access, "127.0.0.3/32", false, 2, err, sizeof(err)), 0);
	assert_int_equal(acl_add(&conf.access, "127.0.0.0/8", true, 3, err, sizeof(err)), 0);
	assert_int_equal(acl_add(&conf.access, "all", false, 4, err, sizeof(err)), 0);
	m.conf = &conf;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	admit_free(&m);
	assert_null(m.admit);
	return 0;
}

static void
test_verdicts(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(admit_check(&m, false, addr("127.0.0.1")), ADMIT_OK);
	assert_int_equal(admit_check(&m, false, addr("127.0.0.2")), ADMIT_OK);
	assert_int_equal(admit_check(&m, false, addr("127.0.0.3")), ADMIT_DENIED);
	assert_int_equal(admit_check(&m, false, addr("10.9.9.9")), ADMIT_DENIED);
	assert_int_equal(admit_check(&m, false, addr("::ffff:127.0.0.3")), ADMIT_DENIED);
	/* a proxy listener's peer: only proxy_trusted counts (none: anyone) */
	assert_int_equal(admit_check(&m, true, addr("10.9.9.9")), ADMIT_OK);
	assert_int_equal(acl_add(&conf.proxy_trusted, "10.0.0.0/8", true, 5, err, sizeof(err)), 0);
	assert_int_equal(admit_check(&m, true, addr("10.9.9.9")), ADMIT_OK);
	assert_int_equal(admit_check(&m, true, addr("127.0.0.1")), ADMIT_UNTRUSTED);
	assert_int_equal(admit_check(&m, true, addr("::ffff:10.0.0.1")), ADMIT_OK);
}

static void
test_cap_opened_closed(void **state)
{
	(void)state;
	admit_opened(&m, 1, 100, addr("127.0.0.2"));
	admit_opened(&m, 2, 101, addr("127.0.0.2"));
	admit_opened(&m, 3, 100, addr("::ffff:127.0.0.2"));    /* the same host */
	assert_int_equal(admit_count(&m, addr("127.0.0.2")), 3);
	assert_int_equal(admit_check(&m, false, addr("127.0.0.2")), ADMIT_OVER_CAP);
	assert_int_equal(admit_check(&m, false, addr("127.0.0.4")), ADMIT_OK);
	admit_closed(&m, 2);
	admit_closed(&m, 2);        /* reported twice, or never counted: ignored */
	admit_closed(&m, 99);
	assert_int_equal(admit_count(&m, addr("127.0.0.2")), 2);
	assert_int_equal(admit_check(&m, false, addr("127.0.0.2")), ADMIT_OK);
	assert_int_equal(admit_open_total(&m), 2);
	/* a worker's death closes what it held, and only that */
	admit_opened(&m, 4, 101, addr("127.0.0.5"));
	admit_worker_gone(&m, 100);
	assert_int_equal(admit_count(&m, addr("127.0.0.2")), 0);
	assert_int_equal(admit_count(&m, addr("127.0.0.5")), 1);
	assert_int_equal(admit_open_total(&m), 1);
}

static void
test_cap_proxied(void **state)
{
	(void)state;
	assert_true(admit_proxied(&m, 10, 100, addr("10.1.1.1")));
	assert_true(admit_proxied(&m, 11, 100, addr("10.1.1.1")));
	assert_true(admit_proxied(&m, 12, 101, addr("10.1.1.1")));
	assert_false(admit_proxied(&m, 13, 101, addr("10.1.1.1")));
	assert_int_equal(admit_count(&m, addr("10.1.1.1")), 3);     /* 13 not counted */
	admit_closed(&m, 13);
	assert_int_equal(admit_count(&m, addr("10.1.1.1")), 3);
	admit_closed(&m, 10);
	assert_true(admit_proxied(&m, 14, 101, addr("10.1.1.1")));
	assert_true(admit_proxied(&m, 15, 101, addr("2001:db8::1")));
}

static void
test_cap_off_counts_nothing(void **state)
{
	(void)state;
	conf.max_clients_per_address = 0;
	for (uint64_t id = 1; id <= 10; id++)
		admit_opened(&m, id, 100, addr("127.0.0.2"));
	assert_int_equal(admit_count(&m, addr("127.0.0.2")), 0);
	assert_int_equal(admit_check(&m, false, addr("127.0.0.2")), ADMIT_OK);
	assert_true(admit_proxied(&m, 11, 100, addr("127.0.0.2")));
	conf.max_clients_per_address = 3;
}

/* Many connections and addresses: the tables grow; counts stay exact. */
static void
test_grows(void **state)
{
	char text[32];

	(void)state;
	conf.max_clients_per_address = 1000000;
	for (uint64_t id = 1; id <= 20000; id++) {
		snprintf(text, sizeof(text), "10.0.%u.%u", (unsigned)(id % 50) / 256,
		    (unsigned)(id % 50) % 256);
		admit_opened(&m, id, (pid_t)(100 + id % 3), addr(text));
	}
	for (uint64_t id = 20001; id <= 25000; id++) {
		snprintf(text, sizeof(text), "2001:db8::%x", (unsigned)id);
		admit_opened(&m, id, 200, addr(text));
	}
	assert_int_equal(admit_open_total(&m), 25000);
	assert_int_equal(admit_count(&m, addr("10.0.0.7")), 400);
	for (uint64_t id = 2; id <= 20000; id += 2)
		admit_closed(&m, id);
	/* ids 7 + 50k are all odd, 8 + 50k all even */
	assert_int_equal(admit_count(&m, addr("10.0.0.7")), 400);
	assert_int_equal(admit_count(&m, addr("10.0.0.8")), 0);
	assert_int_equal(admit_open_total(&m), 15000);
	admit_worker_gone(&m, 200);
	assert_int_equal(admit_open_total(&m), 10000);
	assert_int_equal(admit_count(&m, addr("2001:db8::5000")), 0);
	conf.max_clients_per_address = 3;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verdicts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_opened_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_proxied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_off_counts_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
