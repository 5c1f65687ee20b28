/*
 * test_files.c — unit tests for worker/files.c, the served directory: the
 * listing (regular files with valid FILENAMEs only, sorted by byte value),
 * a missing directory listing empty, what files_stat / files_open refuse
 * (symlinks, directories, FIFOs without blocking, "." and ".."), a directory
 * that exists but cannot be opened, and files_refresh / files_refresh_turn
 * noticing the directory deleted and recreated.
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

/* A FIFO open that blocked would hang the run: this ends it instead. */
#define FIFO_GUARD_SECONDS  10

struct fixture {
	char         dir[64];
	struct files files;
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

static void make_file(const char *dir, const char *name, const char *content)
{
	char path[512];
	int  fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static void make_entry(const char *dir, const char *name, char kind, const char *target)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	switch (kind) {
	case 'd':
		assert_int_equal(mkdir(path, 0755), 0);
		break;
	case 'l':
		assert_int_equal(symlink(target, path), 0);
		break;
	case 'p':
		assert_int_equal(mkfifo(path, 0644), 0);
		break;
	default:
		fail_msg("unknown entry kind %c", kind);
	}
}

static int setup(void **state)
{
	static struct fixture fx;

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/hftpd-test-files.XXXXXX");
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
	return 0;
}

/* The listing must be exactly want[0..n), in that order. */
static void assert_listing(struct files *f, const char *const *want, size_t n)
{
	struct files_listing l;

	assert_int_equal(files_list(f, &l), 0);
	for (size_t i = 0; i < l.count || i < n; i++) {
		if (i < l.count && i < n && strcmp(l.names[i], want[i]) == 0)
			continue;
		fail_msg("listing [%zu]: got \"%s\", want \"%s\" (%zu listed, %zu wanted)",
		    i, i < l.count ? l.names[i] : "(none)", i < n ? want[i] : "(none)",
		    l.count, n);
	}
	files_listing_free(&l);
	assert_null(l.names);
	assert_int_equal(l.count, 0);
}

static void test_listing_sorted_and_filtered(void **state)
{
	struct fixture *fx = *state;
	/* strcmp order: '-' < '.' < digits < upper case < '_' < lower case */
	static const char *const want[] = {
		"-x", "...", "0", "B", "Z9", "_z", "a", "a.b", "b",
	};
	static const char *const regular[] = {
		"b", "a.b", "_z", "Z9", "a", "B", "0", "...", "-x",
	};

	for (size_t i = 0; i < sizeof(regular) / sizeof(regular[0]); i++)
		make_file(fx->dir, regular[i], "x");
	/* Regular files whose names are not FILENAMEs. */
	make_file(fx->dir, "with space", "x");
	make_file(fx->dir, "caf\xc3\xa9", "x");
	make_file(fx->dir, "tab\there", "x");
	make_file(fx->dir, "star*", "x");
	/* Valid names that are not regular files. */
	make_entry(fx->dir, "subdir", 'd', NULL);
	make_entry(fx->dir, "link", 'l', "a");
	make_entry(fx->dir, "dirlink", 'l', "subdir");
	make_entry(fx->dir, "dangling", 'l', "nowhere");
	make_entry(fx->dir, "fifo", 'p', NULL);
	files_init(&fx->files, fx->dir);
	assert_true(fx->files.dirfd >= 0);
	assert_listing(&fx->files, want, sizeof(want) / sizeof(want[0]));
}

static void test_listing_empty_directory(void **state)
{
	struct fixture *fx = *state;

	files_init(&fx->files, fx->dir);
	assert_listing(&fx->files, NULL, 0);
}

static void test_missing_directory_lists_empty(void **state)
{
	struct fixture      *fx = *state;
	struct files_listing l = { (char **)&l, 99, NULL };   /* garbage the call must reset */
	char                 path[128];
	struct stat          st;

	snprintf(path, sizeof(path), "%s/absent", fx->dir);
	files_init(&fx->files, path);
	assert_int_equal(fx->files.dirfd, -1);
	assert_int_equal(files_list(&fx->files, &l), 0);
	assert_int_equal(l.count, 0);
	assert_null(l.names);
	assert_int_equal(files_stat(&fx->files, "a", &st), -1);
	errno = 0;
	assert_int_equal(files_open(&fx->files, "a", &st), -1);
	assert_int_equal(errno, ENOENT);
}

/* A path naming a regular file is no directory: it lists empty too. */
static void test_path_is_a_file_lists_empty(void **state)
{
	struct fixture *fx = *state;
	char            path[128];

	make_file(fx->dir, "plain", "x");
	snprintf(path, sizeof(path), "%s/plain", fx->dir);
	files_init(&fx->files, path);
	assert_int_equal(fx->files.dirfd, -1);
	assert_listing(&fx->files, NULL, 0);
}

static void test_stat_and_open_regular_file(void **state)
{
	struct fixture *fx = *state;
	struct stat     st;
	char            got[16];
	int             fd;

	make_file(fx->dir, "hello", "hello world");
	files_init(&fx->files, fx->dir);
	memset(&st, 0, sizeof(st));
	assert_int_equal(files_stat(&fx->files, "hello", &st), 0);
	assert_int_equal(st.st_size, 11);
	memset(&st, 0, sizeof(st));
	fd = files_open(&fx->files, "hello", &st);
	assert_true(fd >= 0);
	assert_int_equal(st.st_size, 11);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(read(fd, got, sizeof(got)), 11);
	assert_memory_equal(got, "hello world", 11);
	/* Not inherited across exec. */
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

/* Every name here exists in the directory but is not servable. */
static void test_stat_and_open_refuse(void **state)
{
	struct fixture *fx = *state;
	static const char *const refused[] = {
		"link", "dirlink", "dangling", "outside", "subdir", "fifo", ".", "..",
		"absent",
	};
	struct stat st;

	make_file(fx->dir, "a", "regular");
	make_entry(fx->dir, "subdir", 'd', NULL);
	make_entry(fx->dir, "link", 'l', "a");
	make_entry(fx->dir, "dirlink", 'l', "subdir");
	make_entry(fx->dir, "dangling", 'l', "nowhere");
	make_entry(fx->dir, "outside", 'l', "/etc/passwd");
	make_entry(fx->dir, "fifo", 'p', NULL);
	files_init(&fx->files, fx->dir);
	/* A FIFO with no writer blocks a plain open: SIGALRM ends the run then. */
	alarm(FIFO_GUARD_SECONDS);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int fd;

		if (files_stat(&fx->files, refused[i], &st) != -1)
			fail_msg("files_stat accepted \"%s\"", refused[i]);
		errno = 0;
		if ((fd = files_open(&fx->files, refused[i], &st)) != -1 || errno != ENOENT)
			fail_msg("files_open \"%s\": fd %d, errno %d (want -1, ENOENT)",
			    refused[i], fd, errno);
	}
	alarm(0);
	/* The file the symlink points at is itself fine. */
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
}

/* Lowest descriptor number free now: a soft limit there makes the next open fail. */
static int lowest_free_fd(void)
{
	int fd = dup(0);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

/*
 * A directory that exists but cannot be opened is an error (EMFILE here,
 * which root cannot bypass as it can a mode), not an empty listing.
 */
static void test_unopenable_directory_fails_listing(void **state)
{
	struct fixture      *fx = *state;
	struct files_listing l;
	struct rlimit        saved, low;

	make_file(fx->dir, "a", "x");
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	low = saved;
	low.rlim_cur = (rlim_t)lowest_free_fd();
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	files_init(&fx->files, fx->dir);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_int_equal(fx->files.dirfd, -1);
	assert_int_equal(fx->files.open_errno, EMFILE);
	errno = 0;
	assert_int_equal(files_list(&fx->files, &l), -1);
	assert_int_equal(errno, EMFILE);
	/* Once it can be opened, the next refresh serves it. */
	files_refresh(&fx->files);
	assert_true(fx->files.dirfd >= 0);
	assert_int_equal(fx->files.open_errno, 0);
	{
		static const char *const want[] = { "a" };
		assert_listing(&fx->files, want, 1);
	}
}

/* Deletes the served directory and makes a new one at the same path. */
static void recreate_dir(const char *dir)
{
	rm_tree(dir);
	assert_int_equal(mkdir(dir, 0700), 0);
}

static void test_refresh_follows_recreated_directory(void **state)
{
	struct fixture *fx = *state;
	static const char *const want_old[] = { "old" };
	static const char *const want_new[] = { "new" };
	struct stat st;

	make_file(fx->dir, "old", "x");
	files_init(&fx->files, fx->dir);
	assert_listing(&fx->files, want_old, 1);
	recreate_dir(fx->dir);
	make_file(fx->dir, "new", "x");
	/* Until refreshed, the descriptor still names the deleted directory. */
	assert_int_equal(files_stat(&fx->files, "new", &st), -1);
	files_refresh(&fx->files);
	assert_int_equal(files_stat(&fx->files, "new", &st), 0);
	assert_int_equal(files_stat(&fx->files, "old", &st), -1);
	assert_listing(&fx->files, want_new, 1);
}

static void test_refresh_notices_deleted_directory(void **state)
{
	struct fixture *fx = *state;
	struct stat     st;

	make_file(fx->dir, "a", "x");
	files_init(&fx->files, fx->dir);
	assert_int_equal(files_stat(&fx->files, "a", &st), 0);
	rm_tree(fx->dir);
	files_refresh(&fx->files);
	assert_int_equal(fx->files.dirfd, -1);
	assert_int_equal(files_stat(&fx->files, "a", &st), -1);
	assert_listing(&fx->files, NULL, 0);
	/* Back again: served again. */
	assert_int_equal(mkdir(fx->dir, 0700), 0);
	make_file(fx->dir, "b", "x");
	files_refresh(&fx->files);
	assert_int_equal(files_stat(&fx->files, "b", &st), 0);
}

/* One check per poll turn; turn 0 (no turns counted) always checks. */
static void test_refresh_turn_checks_once_per_turn(void **state)
{
	struct fixture *fx = *state;
	struct stat     st;

	files_init(&fx->files, fx->dir);
	recreate_dir(fx->dir);
	make_file(fx->dir, "zero", "x");
	files_refresh_turn(&fx->files, 0);
	assert_int_equal(files_stat(&fx->files, "zero", &st), 0);
	files_refresh_turn(&fx->files, 5);
	recreate_dir(fx->dir);
	make_file(fx->dir, "one", "x");
	files_refresh_turn(&fx->files, 5);
	assert_int_equal(files_stat(&fx->files, "one", &st), -1);
	files_refresh_turn(&fx->files, 6);
	assert_int_equal(files_stat(&fx->files, "one", &st), 0);
	recreate_dir(fx->dir);
	make_file(fx->dir, "two", "x");
	files_refresh_turn(&fx->files, 0);
	assert_int_equal(files_stat(&fx->files, "two", &st), 0);
}

#define FT(f) cmocka_unit_test_setup_teardown(f, setup, teardown)


/* Back-dates the directory's mtime, as if it last changed 10 s ago. */
static void age_directory(const char *dir)
{
	struct timespec times[2];

	clock_gettime(CLOCK_REALTIME, &times[0]);
	times[0].tv_sec -= 10;
	times[1] = times[0];
	assert_int_equal(utimensat(AT_FDCWD, dir, times, 0), 0);
}

/*
 * One snapshot per state of the directory, shared by every listing of it:
 * a large directory costs one copy per worker, not one per connection.
 * A change makes a new one; listings of the old one stay valid.
 */
static void test_listing_snapshot_shared_until_change(void **state)
{
	struct fixture      *fx = *state;
	struct files_listing a, b, c;

	make_file(fx->dir, "one", "x");
	age_directory(fx->dir);
	files_init(&fx->files, fx->dir);
	assert_int_equal(files_list(&fx->files, &a), 0);
	assert_int_equal(files_list(&fx->files, &b), 0);
	assert_non_null(a.snap);
	assert_ptr_equal(a.snap, b.snap);
	assert_ptr_equal(a.names, b.names);
	assert_int_equal(a.snap->refs, 3);      /* a, b and the cache */

	make_file(fx->dir, "two", "x");         /* the directory changes */
	assert_int_equal(files_list(&fx->files, &c), 0);
	assert_ptr_not_equal(c.snap, a.snap);
	assert_int_equal(c.count, 2);
	assert_string_equal(c.names[1], "two");
	assert_int_equal(a.count, 1);           /* the old listing is intact */
	assert_string_equal(a.names[0], "one");
	files_listing_free(&a);
	files_listing_free(&b);
	/* Just changed: not trusted (same-tick changes may keep mtime), rebuilt. */
	assert_false(c.snap->reusable);
	assert_int_equal(files_list(&fx->files, &a), 0);
	assert_ptr_not_equal(a.snap, c.snap);
	files_listing_free(&a);
	files_listing_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FT(test_listing_sorted_and_filtered),
		FT(test_listing_empty_directory),
		FT(test_listing_snapshot_shared_until_change),
		FT(test_missing_directory_lists_empty),
		FT(test_path_is_a_file_lists_empty),
		FT(test_stat_and_open_regular_file),
		FT(test_stat_and_open_refuse),
		FT(test_unopenable_directory_fails_listing),
		FT(test_refresh_follows_recreated_directory),
		FT(test_refresh_notices_deleted_directory),
		FT(test_refresh_turn_checks_once_per_turn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
