/*
 * test_filemap.c — unit tests for worker/filemap.c: whole files mapped in
 * the per-worker cache and shared by the views that read them; a cached
 * mapping kept across responses until it has been idle FILEMAP_IDLE_MS;
 * the least recently used idle one given up for a new file when the cache
 * is full; a per-response window (page-aligned, at most 4 MiB, moved along)
 * when no slot is free or the file grew under a view; and the SIGBUS
 * guard turning a read past the end of a file that shrank into -1.
 * Mappings are observed in /proc/self/maps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filemap.h"

#define NFILES  10      /* more than the cache's 8 slots */
#define IDLE_MS 2000

static char                dir[] = "/tmp/hftpd-test-filemap-XXXXXX";
static char                paths[NFILES][sizeof(dir) + 16];
static struct filemap_file files[NFILES];

/* How many mappings of file i the process holds. */
static int
mappings_of(int i)
{
	char  line[1024];
	FILE *fp = fopen("/proc/self/maps", "r");
	int   n = 0;

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *p = strstr(line, paths[i]);
		n += p != NULL && p[strlen(paths[i])] == '\n';
	}
	fclose(fp);
	return n;
}

/* (Re)writes file i with size bytes of 'a' + i and refreshes its fstat. */
static void
make_file(int i, uint64_t size)
{
	struct stat st;
	char        buf[4096];
	int         fd;

	if (files[i].fd != -1)
		close(files[i].fd);
	fd = open(paths[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	memset(buf, 'a' + i, sizeof(buf));
	for (uint64_t done = 0; done < size; done += sizeof(buf))
		assert_true(write(fd, buf, size - done < sizeof(buf) ? size - done : sizeof(buf)) > 0);
	assert_int_equal(fstat(fd, &st), 0);
	files[i] = (struct filemap_file){ .fd = fd, .dev = st.st_dev, .ino = st.st_ino,
	    .size = (uint64_t)st.st_size };
}

static void test_cached_whole_file_shared(void **state)
{
	struct filemap_view a = { 0 }, b = { 0 };

	(void)state;
	make_file(0, 10000);
	assert_true(filemap_cover(&a, &files[0], 100, 50, 10000, 1000));
	assert_non_null(a.cached);
	assert_int_equal(a.off, 0);
	assert_int_equal(a.len, 10000);
	assert_int_equal(a.addr[9999], 'a');
	/* any part of it: no new mapping */
	assert_true(filemap_cover(&a, &files[0], 9000, 1000, 10000, 1000));
	assert_true(filemap_cover(&b, &files[0], 0, 10, 10000, 1000));
	assert_ptr_equal(b.addr, a.addr);
	assert_int_equal(mappings_of(0), 1);
	filemap_release(&a, 1000);
	filemap_release(&b, 1000);
	assert_null(a.addr);
	assert_null(b.cached);
	/* kept for the next response while recently used */
	assert_int_equal(mappings_of(0), 1);
	filemap_sweep(1000 + IDLE_MS - 1);
	assert_int_equal(mappings_of(0), 1);
	filemap_sweep(1000 + IDLE_MS);
	assert_int_equal(mappings_of(0), 0);
}

static void test_in_use_never_swept(void **state)
{
	struct filemap_view a = { 0 };

	(void)state;
	make_file(0, 5000);
	assert_true(filemap_cover(&a, &files[0], 0, 5000, 5000, 0));
	filemap_sweep(100 * IDLE_MS);
	assert_int_equal(mappings_of(0), 1);
	assert_int_equal(a.addr[4999], 'a');
	filemap_release(&a, 100 * IDLE_MS);
	filemap_close_all();
	assert_int_equal(mappings_of(0), 0);
}

static void test_full_cache_gives_up_least_recent(void **state)
{
	struct filemap_view v = { 0 };

	(void)state;
	for (int i = 0; i < 8; i++) {
		make_file(i, 4096);
		assert_true(filemap_cover(&v, &files[i], 0, 1, 4096, 100 + (uint64_t)i));
		assert_non_null(v.cached);
		filemap_release(&v, 100 + (uint64_t)i);
	}
	/* file 0 used again: file 1 is now the least recent */
	assert_true(filemap_cover(&v, &files[0], 0, 1, 4096, 200));
	filemap_release(&v, 200);
	make_file(8, 4096);
	assert_true(filemap_cover(&v, &files[8], 0, 1, 4096, 300));
	assert_non_null(v.cached);
	filemap_release(&v, 300);
	assert_int_equal(mappings_of(1), 0);
	assert_int_equal(mappings_of(0), 1);
	assert_int_equal(mappings_of(8), 1);
	filemap_close_all();
	for (int i = 0; i < 9; i++)
		assert_int_equal(mappings_of(i), 0);
}

static void test_window_when_no_slot_is_free(void **state)
{
	struct filemap_view held[8], w = { 0 };
	uint64_t            big = 10u << 20;
	long                page = sysconf(_SC_PAGESIZE);

	(void)state;
	memset(held, 0, sizeof(held));
	for (int i = 0; i < 8; i++) {
		make_file(i, 4096);
		assert_true(filemap_cover(&held[i], &files[i], 0, 1, 4096, 0));
	}
	make_file(9, big);
	assert_true(filemap_cover(&w, &files[9], 5000000, 100, big, 0));
	assert_null(w.cached);
	assert_int_equal(w.off % (uint64_t)page, 0);
	assert_true(w.off <= 5000000 && w.off + w.len >= 5000100);
	assert_int_equal(w.len, 4u << 20);
	assert_int_equal(w.addr[5000000 - w.off], 'a' + 9);
	/* inside the window: the same mapping; past it: the window moves */
	unsigned char *first = w.addr;
	assert_true(filemap_cover(&w, &files[9], 5000100, 100, big, 0));
	assert_ptr_equal(w.addr, first);
	assert_true(filemap_cover(&w, &files[9], big - 10, 10, big, 0));
	assert_true(w.off + w.len == big);       /* not past the response's end */
	assert_int_equal(mappings_of(9), 1);
	/* more than a window at once: the caller must pread */
	assert_false(filemap_cover(&w, &files[9], 0, (5u << 20), big, 0));
	assert_null(w.addr);
	assert_int_equal(mappings_of(9), 0);
	for (int i = 0; i < 8; i++)
		filemap_release(&held[i], 0);
	filemap_close_all();
}

static void test_grown_file_remapped_when_free(void **state)
{
	struct filemap_view a = { 0 }, b = { 0 };

	(void)state;
	make_file(0, 4096);
	assert_true(filemap_cover(&a, &files[0], 0, 1, 4096, 0));
	/* the file grows; a's mapping is too short and in use: b gets a window */
	assert_int_equal(ftruncate(files[0].fd, 20000), 0);
	files[0].size = 20000;
	assert_true(filemap_cover(&b, &files[0], 15000, 100, 20000, 0));
	assert_null(b.cached);
	assert_int_equal(mappings_of(0), 2);
	filemap_release(&a, 0);
	filemap_release(&b, 0);
	/* once free, the whole new size is cached */
	assert_true(filemap_cover(&b, &files[0], 15000, 100, 20000, 0));
	assert_non_null(b.cached);
	assert_int_equal(b.len, 20000);
	assert_int_equal(mappings_of(0), 1);
	filemap_release(&b, 0);
	filemap_close_all();
}

static const unsigned char *touch_addr;
static volatile unsigned char touched;

static void
touch(void *arg)
{
	(void)arg;
	touched = *touch_addr;
}

static void test_sigbus_guard(void **state)
{
	struct filemap_view v = { 0 };
	long                page = sysconf(_SC_PAGESIZE);

	(void)state;
	filemap_init();
	make_file(0, 3 * (uint64_t)page);
	assert_true(filemap_cover(&v, &files[0], 0, 1, 3 * (uint64_t)page, 0));
	touch_addr = v.addr + 2 * page;
	assert_int_equal(filemap_guarded(touch, NULL), 0);
	assert_int_equal(touched, 'a');
	/* shrunk to one page: the third is past the end of the file */
	assert_int_equal(ftruncate(files[0].fd, page), 0);
	assert_int_equal(filemap_guarded(touch, NULL), -1);
	/* and again: the handler is still armed for the next time */
	assert_int_equal(filemap_guarded(touch, NULL), -1);
	touch_addr = v.addr;
	assert_int_equal(filemap_guarded(touch, NULL), 0);
	filemap_release(&v, 0);
	filemap_close_all();
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	for (int i = 0; i < NFILES; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/f%d", dir, i);
		files[i].fd = -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	filemap_close_all();
	for (int i = 0; i < NFILES; i++) {
		if (files[i].fd != -1)
			close(files[i].fd);
		unlink(paths[i]);
	}
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cached_whole_file_shared),
		cmocka_unit_test(test_in_use_never_swept),
		cmocka_unit_test(test_full_cache_gives_up_least_recent),
		cmocka_unit_test(test_window_when_no_slot_is_free),
		cmocka_unit_test(test_grown_file_remapped_when_free),
		cmocka_unit_test(test_sigbus_guard),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
