/*
 * admit.c — which connections the master lets in, decided at accept from
 * the address accept4 gives (no other system call): allow / deny for
 * direct listeners, proxy_trusted for proxy_protocol ones, and the count
 * of open connections per client address behind max_clients_per_address.
 *
 * The count is the master's, across all workers: a connection is counted
 * when it is handed off (its id, the worker's pid and its address) and
 * uncounted when that worker reports the id closed (CLOSED) or dies.  On a
 * proxy_protocol listener the balancer's address says nothing, so the
 * worker reports the PROXY header's address (PEER) and the connection is
 * counted then.  Two hash tables: id -> connection, address -> count; one
 * small entry per open connection and per address with any open, no scan
 * per accept.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "log.h"
#include "master.h"

#define ADMIT_BUCKETS_MIN   1024

struct admit_addr {
	uint8_t            key[16];     /* IPv6, IPv4 as ::ffff:a.b.c.d */
	uint32_t           count;
	struct admit_addr *next;
};

struct admit_conn {
	uint64_t           id;
	pid_t              pid;         /* the worker holding it */
	struct admit_addr *addr;
	struct admit_conn *next;
};

/* Two chained hash tables, each doubled when it holds more than its buckets. */
struct admit_table {
	struct admit_conn **conns;      /* by id */
	size_t              nconn_buckets; /* a power of two */
	size_t              nconns;
	struct admit_addr **addrs;      /* by address */
	size_t              naddr_buckets;
	size_t              naddrs;
};

static uint64_t
admit_hash_id(uint64_t id)
{
	return id * 0x9e3779b97f4a7c15ull;
}

static uint64_t
admit_hash_key(const uint8_t *key)
{
	uint64_t a, b;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	return admit_hash_id(a ^ (b * 0xff51afd7ed558ccdull) ^ (b >> 29));
}

/* Bucket of hash in a table of n buckets (n a power of two). */
static size_t
admit_index(size_t n, uint64_t hash)
{
	return (size_t)(hash >> 32) & (n - 1);
}

/*
 * Doubles the tables that are full.  Out of memory they stay as they are
 * (longer chains, still correct); -1 only when a table has no buckets.
 */
static int
admit_grow(struct admit_table *t)
{
	if (t->nconns >= t->nconn_buckets) {
		size_t              n = t->nconn_buckets ? t->nconn_buckets * 2 : ADMIT_BUCKETS_MIN;
		struct admit_conn **b = calloc(n, sizeof(*b));

		for (size_t i = 0; b != NULL && i < t->nconn_buckets; i++) {
			struct admit_conn *c, *next;
			for (c = t->conns[i]; c != NULL; c = next) {
				size_t j = admit_index(n, admit_hash_id(c->id));
				next = c->next;
				c->next = b[j];
				b[j] = c;
			}
		}
		if (b != NULL) {
			free(t->conns);
			t->conns = b;
			t->nconn_buckets = n;
		}
	}
	if (t->naddrs >= t->naddr_buckets) {
		size_t              n = t->naddr_buckets ? t->naddr_buckets * 2 : ADMIT_BUCKETS_MIN;
		struct admit_addr **b = calloc(n, sizeof(*b));

		for (size_t i = 0; b != NULL && i < t->naddr_buckets; i++) {
			struct admit_addr *a, *next;
			for (a = t->addrs[i]; a != NULL; a = next) {
				size_t j = admit_index(n, admit_hash_key(a->key));
				next = a->next;
				a->next = b[j];
				b[j] = a;
			}
		}
		if (b != NULL) {
			free(t->addrs);
			t->addrs = b;
			t->naddr_buckets = n;
		}
	}
	return t->conns != NULL && t->addrs != NULL ? 0 : -1;
}

/* The client's address as a key; -1 for a family that has none. */
static int
admit_key(const struct sockaddr *sa, uint8_t key[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (sa->sa_family == AF_INET) {
		memcpy(key, mapped, sizeof(mapped));
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

static struct admit_addr *
admit_addr_find(struct admit_table *t, const uint8_t *key)
{
	struct admit_addr *a;

	if (t->addrs == NULL)
		return NULL;
	a = t->addrs[admit_index(t->naddr_buckets, admit_hash_key(key))];
	while (a != NULL && memcmp(a->key, key, 16) != 0)
		a = a->next;
	return a;
}

static struct admit_table *
admit_table(struct master *m)
{
	if (m->admit == NULL && (m->admit = calloc(1, sizeof(*m->admit))) == NULL)
		log_warnx("admission table: out of memory; max_clients_per_address not counted");
	return m->admit;
}

uint32_t
admit_count(struct master *m, const struct sockaddr *sa)
{
	struct admit_addr *a;
	uint8_t            key[16];

	if (m->admit == NULL || admit_key(sa, key) == -1 ||
	    (a = admit_addr_find(m->admit, key)) == NULL)
		return 0;
	return a->count;
}

/* How many of the n addresses in list are sa's. */
static uint32_t
admit_among(const struct sockaddr *sa, const struct sockaddr_storage *list, int n)
{
	uint8_t  key[16], other[16];
	uint32_t same = 0;

	if (admit_key(sa, key) == -1)
		return 0;
	for (int i = 0; i < n; i++) {
		if (admit_key((const struct sockaddr *)&list[i], other) == 0 &&
		    memcmp(key, other, sizeof(key)) == 0)
			same++;
	}
	return same;
}

enum admit_verdict
admit_check_among(struct master *m, bool proxy, const struct sockaddr *sa,
    const struct sockaddr_storage *uncounted, int nuncounted)
{
	const struct config *c = m->conf;

	if (proxy)      /* the client's own address comes with its header */
		return c->proxy_trusted.n == 0 || acl_match(&c->proxy_trusted, sa) != -1 ?
		    ADMIT_OK : ADMIT_UNTRUSTED;
	if (!acl_allows(&c->access, sa))
		return ADMIT_DENIED;
	if (c->max_clients_per_address > 0 &&
	    admit_count(m, sa) + admit_among(sa, uncounted, nuncounted) >=
	    (uint32_t)c->max_clients_per_address)
		return ADMIT_OVER_CAP;
	return ADMIT_OK;
}

enum admit_verdict
admit_check(struct master *m, bool proxy, const struct sockaddr *sa)
{
	return admit_check_among(m, proxy, sa, NULL, 0);
}

/* Counts connection id of worker pid under sa's address; -1 when out of memory. */
static int
admit_add(struct admit_table *t, uint64_t id, pid_t pid, const uint8_t *key)
{
	struct admit_conn *conn;
	struct admit_addr *a;
	size_t             i;

	if (admit_grow(t) == -1 || (conn = calloc(1, sizeof(*conn))) == NULL)
		return -1;
	if ((a = admit_addr_find(t, key)) == NULL) {
		if ((a = calloc(1, sizeof(*a))) == NULL) {
			free(conn);
			return -1;
		}
		memcpy(a->key, key, 16);
		i = admit_index(t->naddr_buckets, admit_hash_key(key));
		a->next = t->addrs[i];
		t->addrs[i] = a;
		t->naddrs++;
	}
	a->count++;
	conn->id = id;
	conn->pid = pid;
	conn->addr = a;
	i = admit_index(t->nconn_buckets, admit_hash_id(id));
	conn->next = t->conns[i];
	t->conns[i] = conn;
	t->nconns++;
	return 0;
}

void
admit_opened(struct master *m, uint64_t id, pid_t pid, const struct sockaddr *sa)
{
	struct admit_table *t;
	uint8_t             key[16];

	if (m->conf->max_clients_per_address == 0 || admit_key(sa, key) == -1 ||
	    (t = admit_table(m)) == NULL)
		return;
	if (admit_add(t, id, pid, key) == -1)
		log_warnx("admission table: out of memory; a connection not counted");
}

bool
admit_proxied(struct master *m, uint64_t id, pid_t pid, const struct sockaddr *sa)
{
	if (m->conf->max_clients_per_address > 0 &&
	    admit_count(m, sa) >= (uint32_t)m->conf->max_clients_per_address)
		return false;
	admit_opened(m, id, pid, sa);
	return true;
}

/* Unlinks *link (a connection) and drops its address's count. */
static void
admit_remove(struct admit_table *t, struct admit_conn **link)
{
	struct admit_conn  *conn = *link;
	struct admit_addr **al;

	*link = conn->next;
	t->nconns--;
	if (--conn->addr->count == 0) {
		al = &t->addrs[admit_index(t->naddr_buckets, admit_hash_key(conn->addr->key))];
		while (*al != conn->addr)
			al = &(*al)->next;
		*al = conn->addr->next;
		free(conn->addr);
		t->naddrs--;
	}
	free(conn);
}

void
admit_closed(struct master *m, uint64_t id)
{
	struct admit_table *t = m->admit;
	struct admit_conn **link;

	if (t == NULL || t->conns == NULL)
		return;
	link = &t->conns[admit_index(t->nconn_buckets, admit_hash_id(id))];
	for (; *link != NULL; link = &(*link)->next) {
		if ((*link)->id == id) {
			admit_remove(t, link);
			return;
		}
	}
	/* not counted (no cap then, or over it): nothing to do */
}

void
admit_worker_gone(struct master *m, pid_t pid)
{
	struct admit_table *t = m->admit;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nconn_buckets; i++) {
		struct admit_conn **link = &t->conns[i];
		while (*link != NULL) {
			if ((*link)->pid == pid)
				admit_remove(t, link);
			else
				link = &(*link)->next;
		}
	}
}

size_t
admit_open_total(const struct master *m)
{
	return m->admit != NULL ? m->admit->nconns : 0;
}

void
admit_free(struct master *m)
{
	struct admit_table *t = m->admit;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nconn_buckets; i++) {
		struct admit_conn *c = t->conns[i], *next;
		for (; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
	}
	for (size_t i = 0; i < t->naddr_buckets; i++) {
		struct admit_addr *a = t->addrs[i], *next;
		for (; a != NULL; a = next) {
			next = a->next;
			free(a);
		}
	}
	free(t->conns);
	free(t->addrs);
	free(t);
	m->admit = NULL;
}
