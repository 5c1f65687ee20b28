/*
 * test_fscache.c — unit tests for worker/fscache.c and its use by
 * worker/files.c (metadata_cache inotify): each kind of change made through
 * the file system forgets the entry of the name changed and only it; an
 * overflowed queue, the directory's own watch ending and an event on its
 * parent for its name forget everything; the directory removed and
 * recreated, or renamed over, is reopened; the cache's size and its open
 * descriptors stay bounded; files with two links are not cached; inotify
 * failing to start leaves the files served uncached; a lent descriptor
 * outlives its entry until given back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "fscache.h"

struct fixture {
	char         dir[64];
	char         path[128];     /* scratch */
	struct files files;
	uint64_t     turn;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *at(struct fixture *fx, const char *name)
{
	snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, name);
	return fx->path;
}

static void make_file(struct fixture *fx, const char *name, const char *content)
{
	int fd = open(at(fx, name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static int setup(void **state)
{
	static struct fixture fx;

	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/hftpd-test-fscache.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	fx.files.dirfd = -1;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	files_free(&fx->files);
	rm_tree(fx->dir);
	rm_tree("/tmp/hftpd-test-fscache-away");
	return 0;
}

/* A request's turn: a new poll turn, the events so far read. */
static void sync_turn(struct fixture *fx)
{
	files_sync(&fx->files, ++fx->turn, 1);
}

/* The served directory with files a, b (and c missing), all looked up. */
static void start_cached(struct fixture *fx)
{
	struct stat st;

	make_file(fx, "a", "aaaa");
	make_file(fx, "b", "bb");
	files_init(&fx->files, fx->dir);
	assert_int_equal(files_cache_start(&fx->files), 0);
	sync_turn(fx);
	assert_false(fx->files.watch_failed);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_int_equal(files_stat(&fx->files, "b", &st), 0);
	assert_int_equal(files_stat(&fx->files, "c", &st), -1);
	assert_non_null(fscache_get(fx->files.cache, "a"));
	assert_non_null(fscache_get(fx->files.cache, "b"));
	assert_non_null(fscache_get(fx->files.cache, "c"));
}

static void op_write(struct fixture *fx)
{
	int fd = open(at(fx, "a"), O_WRONLY | O_APPEND);

	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
}

static void op_truncate(struct fixture *fx)
{
	assert_int_equal(truncate(at(fx, "a"), 1), 0);
}

static void op_chmod(struct fixture *fx)
{
	assert_int_equal(chmod(at(fx, "a"), 0600), 0);
}

/* Opened for writing and closed, nothing written: IN_CLOSE_WRITE alone. */
static void op_close_write(struct fixture *fx)
{
	int fd = open(at(fx, "a"), O_WRONLY);

	assert_true(fd >= 0);
	close(fd);
}

static void op_unlink(struct fixture *fx)
{
	assert_int_equal(unlink(at(fx, "a")), 0);
}

static void op_rename_away(struct fixture *fx)
{
	char from[128];

	snprintf(from, sizeof(from), "%s", at(fx, "a"));
	assert_int_equal(rename(from, "/tmp/hftpd-test-fscache-away"), 0);
}

/* IN_MOVED_TO: another file renamed over a. */
static void op_rename_over(struct fixture *fx)
{
	char from[128];

	make_file(fx, "tmp", "new contents");
	snprintf(from, sizeof(from), "%s", at(fx, "tmp"));
	assert_int_equal(rename(from, at(fx, "a")), 0);
}

/* The name c, cached as missing, created. */
static void op_create_c(struct fixture *fx)
{
	make_file(fx, "c", "c");
}

struct change {
	const char *what;
	void      (*op)(struct fixture *);
	const char *forgotten;      /* the one entry that must go */
};

static const struct change changes[] = {
	{ "write (IN_MODIFY)", op_write, "a" },
	{ "truncate (IN_MODIFY)", op_truncate, "a" },
	{ "chmod (IN_ATTRIB)", op_chmod, "a" },
	{ "open for writing, close (IN_CLOSE_WRITE)", op_close_write, "a" },
	{ "unlink (IN_DELETE)", op_unlink, "a" },
	{ "rename away (IN_MOVED_FROM)", op_rename_away, "a" },
	{ "rename over (IN_MOVED_TO)", op_rename_over, "a" },
	{ "create (IN_CREATE)", op_create_c, "c" },
};

static void test_each_change_forgets_its_name_only(void **state)
{
	struct fixture *fx = *state;
	const char     *names[] = { "a", "b", "c" };

	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		files_free(&fx->files);
		rm_tree(fx->dir);
		rm_tree("/tmp/hftpd-test-fscache-away");
		assert_int_equal(mkdir(fx->dir, 0700), 0);
		start_cached(fx);
		changes[i].op(fx);
		/* read before the next answer, as files_sync does */
		assert_false(fscache_drain(fx->files.cache));
		for (size_t k = 0; k < 3; k++) {
			bool gone = fscache_get(fx->files.cache, names[k]) == NULL;
			if (gone != (strcmp(names[k], changes[i].forgotten) == 0))
				fail_msg("%s: entry %s %s", changes[i].what, names[k],
				    gone ? "forgotten" : "kept");
		}
	}
}

/* A change is seen by the next answer: files_sync reads the events. */
static void test_answer_after_change_is_new(void **state)
{
	struct fixture *fx = *state;
	struct stat     st;

	start_cached(fx);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_int_equal(st.st_size, 4);
	op_write(fx);
	/* nothing received since the drain: answered from what it read */
	files_sync(&fx->files, fx->turn, 1);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_int_equal(st.st_size, 4);
	/* a receive since (another connection, same turn): it reads again */
	files_sync(&fx->files, fx->turn, 2);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_int_equal(st.st_size, 5);
	op_unlink(fx);
	sync_turn(fx);
	assert_int_equal(files_stat(&fx->files, "a", &st), -1);
	op_create_c(fx);
	sync_turn(fx);
	assert_int_equal(files_stat(&fx->files, "c", &st), 0);
	assert_int_equal(st.st_size, 1);
}

static void event_on(struct fscache *c, int wd, uint32_t mask, const char *name,
    bool want_dir_changed, bool want_flushed)
{
	union {
		struct inotify_event ev;
		char                 bytes[sizeof(struct inotify_event) + NAME_MAX + 1];
	} u;
	uint64_t flushes = c->flushes;

	memset(&u, 0, sizeof(u));
	u.ev.wd = wd;
	u.ev.mask = mask;
	if (name != NULL) {
		u.ev.len = (uint32_t)strlen(name) + 1;
		memcpy(u.ev.name, name, strlen(name));
	}
	assert_int_equal(fscache_event(c, &u.ev), want_dir_changed);
	assert_int_equal(c->flushes != flushes, want_flushed);
	if (want_flushed)
		assert_int_equal(c->count, 0);
}

static void refill(struct fixture *fx)
{
	struct stat st;

	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_int_equal(files_stat(&fx->files, "b", &st), 0);
	assert_int_equal(fx->files.cache->count, 2);
}

static void test_rules_for_whole_cache_events(void **state)
{
	struct fixture *fx = *state;
	struct fscache *c;
	const char     *base;

	start_cached(fx);
	c = fx->files.cache;
	base = strrchr(fx->dir, '/') + 1;
	event_on(c, -1, IN_Q_OVERFLOW, NULL, true, true);
	refill(fx);
	/* the parent's other names do not matter */
	event_on(c, c->wd_parent, IN_CREATE | IN_ISDIR, "other", false, false);
	event_on(c, c->wd_parent, IN_DELETE | IN_ISDIR, base, true, true);
	refill(fx);
	event_on(c, c->wd_parent, IN_MOVED_TO | IN_ISDIR, base, true, true);
	refill(fx);
	/* a watch given up (an old directory's) is not ours */
	event_on(c, c->wd_dir + 1000, IN_MODIFY, "a", false, false);
	assert_int_equal(c->count, 2);
	/* the directory's own attributes: who may read; forget all */
	event_on(c, c->wd_dir, IN_ATTRIB | IN_ISDIR, NULL, false, true);
	refill(fx);
	event_on(c, c->wd_dir, IN_IGNORED, NULL, true, true);
	assert_int_equal(c->wd_dir, -1);
}

static void test_directory_self_events_reopen(void **state)
{
	struct fixture *fx = *state;
	struct fscache *c;

	start_cached(fx);
	c = fx->files.cache;
	event_on(c, c->wd_dir, IN_DELETE_SELF, NULL, true, true);
	assert_int_equal(fscache_watch(c, fx->dir), 0);
	assert_true(c->wd_dir >= 0);
	refill(fx);
	event_on(c, c->wd_dir, IN_MOVE_SELF, NULL, true, true);
	assert_int_equal(fscache_watch(c, fx->dir), 0);
	refill(fx);
	event_on(c, c->wd_parent, IN_DELETE_SELF, NULL, true, true);
	assert_int_equal(c->wd_parent, -1);
	assert_int_equal(fscache_watch(c, fx->dir), 0);
	assert_true(c->wd_parent >= 0);
}

static void test_directory_recreated_is_reopened(void **state)
{
	struct fixture *fx = *state;
	struct stat     st, dir;
	char            next[96];

	start_cached(fx);
	rm_tree(fx->dir);
	sync_turn(fx);
	assert_int_equal(fx->files.dirfd, -1);
	assert_int_equal(files_stat(&fx->files, "a", &st), -1);
	assert_int_equal(mkdir(fx->dir, 0700), 0);
	make_file(fx, "a", "recreated");
	sync_turn(fx);
	assert_true(fx->files.dirfd >= 0);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_int_equal(st.st_size, 9);
	/* renamed over: a new directory moved in under the name */
	snprintf(next, sizeof(next), "%s.next", fx->dir);
	assert_int_equal(mkdir(next, 0700), 0);
	snprintf(fx->path, sizeof(fx->path), "%s/a", next);
	close(open(fx->path, O_WRONLY | O_CREAT, 0644));
	assert_int_equal(rename(fx->dir, "/tmp/hftpd-test-fscache-away"), 0);
	assert_int_equal(rename(next, fx->dir), 0);
	sync_turn(fx);
	assert_int_equal(fstat(fx->files.dirfd, &dir), 0);
	assert_int_equal(stat(fx->dir, &st), 0);
	assert_int_equal(dir.st_ino, st.st_ino);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_int_equal(st.st_size, 0);
	/* the old directory, still there elsewhere, is no longer watched */
	close(open("/tmp/hftpd-test-fscache-away/a", O_WRONLY | O_APPEND));
	sync_turn(fx);
	assert_non_null(fscache_get(fx->files.cache, "a"));
}

static void test_size_and_descriptors_bounded(void **state)
{
	struct fixture *fx = *state;
	struct fscache *c;
	struct stat     st;
	char            name[32];
	int             fd, kept = 0;

	start_cached(fx);
	c = fx->files.cache;
	for (int i = 0; i < FSCACHE_ENTRIES * 3; i++) {
		snprintf(name, sizeof(name), "missing%d", i);
		assert_int_equal(files_stat(&fx->files, name, &st), -1);
		assert_true(c->count <= FSCACHE_ENTRIES);
	}
	assert_int_equal(c->count, FSCACHE_ENTRIES);
	assert_non_null(fscache_get(c, name));      /* the newest is there */
	for (int i = 0; i < FSCACHE_FDS * 3; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		make_file(fx, name, "x");
		sync_turn(fx);
		fd = files_open(&fx->files, name, &st);
		assert_true(fd >= 0);
		close(fd);
	}
	for (int i = 0; i < FSCACHE_ENTRIES; i++)
		kept += c->entries[i].name != NULL && c->entries[i].fd != -1;
	assert_int_equal(kept, FSCACHE_FDS);
	/* a kept descriptor serves the next open of its file */
	assert_true(fscache_get(c, name)->fd >= 0);
	fd = files_open(&fx->files, name, &st);
	assert_true(fd >= 0);
	assert_int_not_equal(fd, fscache_get(c, name)->fd);
	assert_int_equal(st.st_size, 1);
	close(fd);
}

static void test_two_links_not_cached(void **state)
{
	struct fixture *fx = *state;
	struct stat     st;
	int             fd;

	make_file(fx, "a", "aaaa");
	assert_int_equal(link(at(fx, "a"), "/tmp/hftpd-test-fscache-away"), 0);
	files_init(&fx->files, fx->dir);
	assert_int_equal(files_cache_start(&fx->files), 0);
	sync_turn(fx);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_null(fscache_get(fx->files.cache, "a"));
	fd = files_open(&fx->files, "a", &st);
	assert_true(fd >= 0);
	close(fd);
	assert_null(fscache_get(fx->files.cache, "a"));
	/* written through the other name: no event here, still exact */
	fd = open("/tmp/hftpd-test-fscache-away", O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "zz", 2), 2);
	close(fd);
	sync_turn(fx);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_int_equal(st.st_size, 6);
}

static void test_no_inotify_serves_uncached(void **state)
{
	struct fixture *fx = *state;
	struct rlimit   old, low;
	struct stat     st;
	int             rc;

	make_file(fx, "a", "aaaa");
	files_init(&fx->files, fx->dir);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 0;       /* no new descriptor can open */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	rc = files_cache_start(&fx->files);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, -1);
	assert_null(fx->files.cache);
	sync_turn(fx);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	make_file(fx, "a", "aaaaaaa");
	sync_turn(fx);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	assert_int_equal(st.st_size, 7);
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/*
 * A slice borrows the kept descriptor (no dup); one the cache forgets while
 * lent stays open for its borrowers and is closed by the last one's give
 * back; a descriptor of the borrower's own is closed by its give back.
 */
static void test_lent_descriptor_outlives_its_entry(void **state)
{
	struct fixture *fx = *state;
	struct stat     st;
	char            got[8];
	int             own, lent1, lent2, kept;

	start_cached(fx);
	own = files_borrow(&fx->files, "a", &st);      /* opened: a copy is kept */
	assert_true(own >= 0);
	kept = fscache_get(fx->files.cache, "a")->fd;
	assert_true(kept >= 0);
	assert_int_not_equal(own, kept);
	lent1 = files_borrow(&fx->files, "a", &st);
	lent2 = files_borrow(&fx->files, "a", &st);
	assert_int_equal(lent1, kept);
	assert_int_equal(lent2, kept);
	assert_int_equal(st.st_size, 4);
	files_give_back(own);
	assert_false(fd_open(own));
	/* still kept: a give back leaves it open */
	files_give_back(lent2);
	assert_true(fd_open(kept));
	lent2 = files_borrow(&fx->files, "a", &st);
	assert_int_equal(lent2, kept);
	/* forgotten while lent: open until the last borrower gives it back */
	op_write(fx);
	sync_turn(fx);
	assert_null(fscache_get(fx->files.cache, "a"));
	assert_true(fd_open(kept));
	assert_int_equal(pread(kept, got, sizeof(got), 0), 5);
	assert_memory_equal(got, "aaaax", 5);
	files_give_back(lent1);
	assert_true(fd_open(kept));
	files_give_back(lent2);
	assert_false(fd_open(kept));
}

#define FT(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		FT(test_each_change_forgets_its_name_only),
		FT(test_answer_after_change_is_new),
		FT(test_rules_for_whole_cache_events),
		FT(test_directory_self_events_reopen),
		FT(test_directory_recreated_is_reopened),
		FT(test_size_and_descriptors_bounded),
		FT(test_two_links_not_cached),
		FT(test_no_inotify_serves_uncached),
		FT(test_lent_descriptor_outlives_its_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
