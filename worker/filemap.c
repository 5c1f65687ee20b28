/*
 * filemap.c — mapped views of served files (see filemap.h).
 *
 * base64 and raw bodies read the file through a mapping so the encoder (or
 * send) reads the page cache directly, saving the copy that pread makes.
 * Whole files stay mapped in a small per-worker cache across requests
 * (mapping and unmapping per request cost more than the encoding:
 * page-table setup, faults, TLB flushes), keyed by (device, inode).  A file
 * that grew past its mapping is mapped again once no response uses the old
 * one; one unused for FILEMAP_IDLE_MS is unmapped, so the pages of a deleted
 * or replaced file are not held for long.  The key cannot go stale: the
 * mapping holds a reference to its inode, so while it exists no other file
 * can be given the same number on that device.  When the cache cannot take
 * a file, a window of FILEMAP_WINDOW bytes is mapped for one response.
 *
 * A mapped file that shrinks raises SIGBUS on access past its new end; the
 * handler jumps back out of the guarded function (only while armed around
 * it), and the caller ends the response short.
 */
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "filemap.h"

#define FILEMAP_CACHED      8
#define FILEMAP_IDLE_MS     2000
#define FILEMAP_WINDOW      (4u << 20)

struct filemap_entry {
	dev_t          dev;
	ino_t          ino;
	unsigned char *addr;        /* NULL: slot free */
	size_t         len;
	unsigned       users;       /* views reading through it */
	uint64_t       last_used_ms;
};

static struct filemap_entry filemap_cache[FILEMAP_CACHED];

static sigjmp_buf            filemap_bus_jmp;
static volatile sig_atomic_t filemap_bus_armed;

static void
filemap_on_sigbus(int sig)
{
	if (filemap_bus_armed) {
		filemap_bus_armed = 0;
		siglongjmp(filemap_bus_jmp, 1);
	}
	/* not ours: die of it as we would have */
	signal(sig, SIG_DFL);
	raise(sig);
}

void
filemap_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = filemap_on_sigbus;
	sa.sa_flags = SA_NODEFER;   /* jumping out leaves SIGBUS unblocked */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

int
filemap_guarded(void (*fn)(void *), void *arg)
{
	if (sigsetjmp(filemap_bus_jmp, 0) != 0)
		return -1;
	filemap_bus_armed = 1;
	fn(arg);
	filemap_bus_armed = 0;
	return 0;
}

static void
filemap_entry_drop(struct filemap_entry *m)
{
	munmap(m->addr, m->len);
	memset(m, 0, sizeof(*m));
}

/* The cached mapping of f, holding [0, end); NULL when there is none to be had. */
static struct filemap_entry *
filemap_cache_get(const struct filemap_file *f, uint64_t end, uint64_t now_ms)
{
	struct filemap_entry *m, *victim = NULL;
	void                 *addr;

	for (int i = 0; i < FILEMAP_CACHED; i++) {
		m = &filemap_cache[i];
		if (m->addr != NULL && m->dev == f->dev && m->ino == f->ino) {
			if (m->len >= end)
				goto found;
			if (m->users > 0)
				return NULL;    /* grown: remap once it is free */
			filemap_entry_drop(m);
		}
		if (m->users > 0)
			continue;
		/* a free slot, else the idle mapping used least recently */
		if (victim == NULL || (victim->addr != NULL &&
		    (m->addr == NULL || m->last_used_ms < victim->last_used_ms)))
			victim = m;
	}
	if (victim == NULL || f->size < end || f->size > SIZE_MAX)
		return NULL;
	addr = mmap(NULL, (size_t)f->size, PROT_READ, MAP_SHARED, f->fd, 0);
	if (addr == MAP_FAILED)
		return NULL;
	if (victim->addr != NULL)
		filemap_entry_drop(victim);
	m = victim;
	m->dev = f->dev;
	m->ino = f->ino;
	m->addr = addr;
	m->len = (size_t)f->size;
found:
	m->users++;
	m->last_used_ms = now_ms;
	return m;
}

void
filemap_sweep(uint64_t now_ms)
{
	for (int i = 0; i < FILEMAP_CACHED; i++) {
		struct filemap_entry *m = &filemap_cache[i];
		if (m->addr != NULL && m->users == 0 && now_ms - m->last_used_ms >= FILEMAP_IDLE_MS)
			filemap_entry_drop(m);
	}
}

void
filemap_close_all(void)
{
	for (int i = 0; i < FILEMAP_CACHED; i++) {
		if (filemap_cache[i].addr != NULL)
			filemap_entry_drop(&filemap_cache[i]);
	}
}

void
filemap_release(struct filemap_view *v, uint64_t now_ms)
{
	if (v->cached != NULL) {
		v->cached->users--;
		v->cached->last_used_ms = now_ms;
	} else if (v->addr != NULL)
		munmap(v->addr, v->len);
	memset(v, 0, sizeof(*v));
}

bool
filemap_cover(struct filemap_view *v, const struct filemap_file *f,
    uint64_t offset, size_t n, uint64_t end, uint64_t now_ms)
{
	static long page;
	uint64_t    start, stop;
	void       *addr;

	if (v->addr != NULL && offset >= v->off && offset + n <= v->off + v->len)
		return true;
	if (v->addr == NULL && (v->cached = filemap_cache_get(f, end, now_ms)) != NULL) {
		/* the whole file: it holds the rest of the response */
		v->addr = v->cached->addr;
		v->off = 0;
		v->len = v->cached->len;
		return true;
	}
	filemap_release(v, now_ms);
	if (page == 0)
		page = sysconf(_SC_PAGESIZE);
	start = offset & ~((uint64_t)page - 1);
	stop = end;
	if (stop - start > FILEMAP_WINDOW)
		stop = start + FILEMAP_WINDOW;
	if (stop < offset + n)
		return false;
	addr = mmap(NULL, (size_t)(stop - start), PROT_READ, MAP_SHARED | MAP_POPULATE,
	    f->fd, (off_t)start);
	if (addr == MAP_FAILED)
		return false;
	v->addr = addr;
	v->off = start;
	v->len = (size_t)(stop - start);
	return true;
}
