/*
 * test_commands.c — unit tests for worker/commands.c alone: each handler
 * is called on a parsed line and a temporary directory, with no socket,
 * no client and no worker, and its reply is checked: every status in the
 * protocol's order (200 -> 201 -> 202 -> 203 -> 199), the small bodies
 * (sizes, help), the stream descriptions (kind, open file, offset, size;
 * the listing), that a failed reply holds no descriptor, and the shapes
 * commands_shape gives the parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "files.h"
#include "request.h"

#define ARCHIVO         "Qu\xc3\xa9 calor que hace hoy, pinta una birra"

struct fixture {
	char                dir[64];
	struct config       conf;
	struct files        files;
	struct commands_ctx ctx;
	struct rlimit       nofile;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
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

static int setup(void **state)
{
	static struct fixture fx;
	char                  path[128];

	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/hftpd-test-handlers.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	make_file(fx.dir, "archivo.txt", ARCHIVO);
	make_file(fx.dir, "empty", "");
	snprintf(path, sizeof(path), "%s/subdir", fx.dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/link", fx.dir);
	if (symlink("archivo.txt", path) == -1)
		return -1;
	config_defaults(&fx.conf);
	files_init(&fx.files, fx.dir);
	fx.ctx = (struct commands_ctx){ &fx.files, &fx.conf, 1, 7, 1 };
	if (getrlimit(RLIMIT_NOFILE, &fx.nofile) == -1)
		return -1;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	setrlimit(RLIMIT_NOFILE, &fx->nofile);
	files_free(&fx->files);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* Descriptors this process holds. */
static int count_fds(void)
{
	DIR           *d = opendir("/proc/self/fd");
	struct dirent *e;
	int            n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Parses line (with its CRLF) as the client would and runs the handler. */
static void run(struct fixture *fx, const char *line, struct commands_reply *r)
{
	struct request_parser p;
	enum request_result   res;
	size_t                used;

	request_init(&p, fx->conf.request_line_max, commands_shape);
	used = request_feed(&p, line, strlen(line), &res);
	if (res != REQUEST_LINE || used != strlen(line))
		fail_msg("\"%s\": not one complete line", line);
	memset(r, 0xa5, sizeof(*r));        /* nothing left over from a last reply */
	fx->ctx.turn++;
	commands_run(&p, &fx->ctx, r);
}

/* A status alone: no body, no descriptor held, the connection kept. */
static void expect_status(struct fixture *fx, const char *line, enum status status)
{
	struct commands_reply r;
	int                   before = count_fds();

	run(fx, line, &r);
	if (r.status != status)
		fail_msg("\"%s\": status %d, want %d", line, (int)r.status, (int)status);
	assert_int_equal(r.body, COMMANDS_BODY_NONE);
	assert_false(r.close);
	assert_int_equal(count_fds(), before);
}

static void expect_text(struct fixture *fx, const char *line, const char *want)
{
	struct commands_reply r;

	run(fx, line, &r);
	assert_int_equal(r.status, STATUS_OK);
	assert_int_equal(r.body, COMMANDS_BODY_TEXT);
	assert_false(r.close);
	assert_int_equal(r.len, strlen(want));
	assert_memory_equal(r.text, want, r.len);
}

static void test_metadata(void **state)
{
	struct fixture *fx = *state;
	char            want[32];

	snprintf(want, sizeof(want), "%zu\r\n", strlen(ARCHIVO));
	expect_text(fx, "get_metadata archivo.txt\r\n", want);
	expect_text(fx, "get_metadata empty\r\n", "0\r\n");
}

static void test_help(void **state)
{
	expect_text(*state, "help\r\n",
	    "get_file_listing\r\nget_metadata\r\nget_slice\r\nhelp\r\nquit\r\n\r\n");
}

static void test_quit(void **state)
{
	struct commands_reply r;

	run(*state, "quit\r\n", &r);
	assert_int_equal(r.status, STATUS_OK);
	assert_int_equal(r.body, COMMANDS_BODY_NONE);
	assert_true(r.close);
}

static void test_listing(void **state)
{
	struct commands_reply r;

	run(*state, "get_file_listing\r\n", &r);
	assert_int_equal(r.status, STATUS_OK);
	assert_int_equal(r.body, COMMANDS_BODY_LISTING);
	assert_false(r.close);
	/* subdir and link are not listed; sorted by byte value */
	assert_int_equal(r.listing.count, 2);
	assert_string_equal(r.listing.names[0], "archivo.txt");
	assert_string_equal(r.listing.names[1], "empty");
	files_listing_free(&r.listing);
}

/* A slice reply: the described stream, its file open; closed here. */
static void expect_slice(struct fixture *fx, const char *line, enum stream_kind kind,
    uint64_t offset, uint64_t size)
{
	struct commands_reply r;
	struct stat           st;

	run(fx, line, &r);
	assert_int_equal(r.status, STATUS_OK);
	assert_int_equal(r.body, COMMANDS_BODY_SLICE);
	assert_false(r.close);
	assert_int_equal(r.slice.kind, kind);
	assert_int_equal(r.slice.offset, offset);
	assert_int_equal(r.slice.size, size);
	assert_int_equal(fstat(r.slice.fd, &st), 0);
	assert_int_equal(st.st_ino, r.slice.st.st_ino);
	assert_int_equal(r.slice.st.st_size, strlen(ARCHIVO));
	assert_int_equal(close(r.slice.fd), 0);
}

static void test_slice(void **state)
{
	struct fixture *fx = *state;

	expect_slice(fx, "get_slice archivo.txt 5 20\r\n", STREAM_BASE64, 5, 20);
	expect_slice(fx, "get_slice archivo.txt 5 20 raw\r\n", STREAM_RAW, 5, 20);
	expect_slice(fx, "get_slice archivo.txt 00000 0000000000000000000001\r\n",
	    STREAM_BASE64, 0, 1);
	fx->conf.slice_encoding = SLICE_FRAGMENTS;
	expect_slice(fx, "get_slice archivo.txt 0 0\r\n", STREAM_FRAGMENTS, 0, 0);
	/* raw is per request, whatever the configured framing */
	expect_slice(fx, "get_slice archivo.txt 1 2 raw\r\n", STREAM_RAW, 1, 2);
}

/* Each check in the protocol's order: the first that fails answers. */
static void test_status_order(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		const char *line;
		enum status status;
	} cases[] = {
		{ "nope missing x 1\r\n",                           STATUS_NO_SUCH_COMMAND },
		{ "HELP\r\n",                                       STATUS_NO_SUCH_COMMAND },
		{ "get_metadata\r\n",                               STATUS_INVALID_ARGUMENTS },
		{ "get_metadata a b\r\n",                           STATUS_INVALID_ARGUMENTS },
		{ "help x\r\n",                                     STATUS_INVALID_ARGUMENTS },
		{ "quit now\r\n",                                   STATUS_INVALID_ARGUMENTS },
		{ "get_file_listing x\r\n",                         STATUS_INVALID_ARGUMENTS },
		{ "get_slice missing x 1\r\n",                      STATUS_INVALID_ARGUMENTS },
		{ "get_slice bad/name 0 1\r\n",                     STATUS_INVALID_ARGUMENTS },
		{ "get_slice missing 0 1 RAW\r\n",                  STATUS_INVALID_ARGUMENTS },
		{ "get_slice missing 0 1 raw x\r\n",                STATUS_INVALID_ARGUMENTS },
		{ "get_metadata bad/name\r\n",                      STATUS_INVALID_ARGUMENTS },
		{ "get_metadata missing\r\n",                       STATUS_FILE_NOT_FOUND },
		{ "get_metadata link\r\n",                          STATUS_FILE_NOT_FOUND },
		{ "get_metadata subdir\r\n",                        STATUS_FILE_NOT_FOUND },
		{ "get_slice missing 99999 1\r\n",                  STATUS_FILE_NOT_FOUND },
		{ "get_slice subdir 99999999999999999999999 1\r\n", STATUS_FILE_NOT_FOUND },
		{ "get_slice archivo.txt 99999 1\r\n",              STATUS_BAD_OFFSET },
		{ "get_slice empty 0 1 raw\r\n",                    STATUS_BAD_OFFSET },
		{ "get_slice archivo.txt 1 18446744073709551615\r\n", STATUS_BAD_OFFSET },
		{ "get_slice archivo.txt 18446744073709551616 0\r\n", STATUS_BAD_OFFSET },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_status(fx, cases[i].line, cases[i].status);
}

/* Longer than any file name: 202, even when its first NAME_MAX bytes name a file. */
static void test_long_name(void **state)
{
	struct fixture *fx = *state;
	char            name[NAME_MAX + 1], line[NAME_MAX + 64];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	make_file(fx->dir, name, "abc");
	snprintf(line, sizeof(line), "get_metadata %s\r\n", name);
	expect_text(fx, line, "3\r\n");
	snprintf(line, sizeof(line), "get_metadata %sn\r\n", name);
	expect_status(fx, line, STATUS_FILE_NOT_FOUND);
	snprintf(line, sizeof(line), "get_slice %sn 0 1\r\n", name);
	expect_status(fx, line, STATUS_FILE_NOT_FOUND);
}

/* The reply's status and that it has no body (checked without a descriptor). */
static void expect_bare(struct fixture *fx, const char *line, enum status status)
{
	struct commands_reply r;

	run(fx, line, &r);
	if (r.status != status || r.body != COMMANDS_BODY_NONE)
		fail_msg("\"%s\": status %d body %d, want %d alone", line, (int)r.status,
		    (int)r.body, (int)status);
}

/* The open file limit reached: 199 after every earlier check, no descriptor held. */
static void test_status_199(void **state)
{
	struct fixture *fx = *state;
	struct rlimit   low = fx->nofile;
	int             fd, before;

	/* the directory's descriptor is opened while it can be */
	expect_status(fx, "get_slice archivo.txt 0 999\r\n", STATUS_BAD_OFFSET);
	before = count_fds();
	assert_true((fd = dup(0)) >= 0);
	close(fd);
	low.rlim_cur = (rlim_t)fd;      /* the next open fails with EMFILE */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	expect_bare(fx, "get_slice missing 0 1\r\n", STATUS_FILE_NOT_FOUND);
	expect_bare(fx, "get_slice archivo.txt 0 999\r\n", STATUS_BAD_OFFSET);
	expect_bare(fx, "get_slice archivo.txt 0 1\r\n", STATUS_INTERNAL_ERROR);
	expect_bare(fx, "get_slice archivo.txt 0 1 raw\r\n", STATUS_INTERNAL_ERROR);
	expect_bare(fx, "get_file_listing\r\n", STATUS_INTERNAL_ERROR);
	expect_text(fx, "get_metadata empty\r\n", "0\r\n");
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &fx->nofile), 0);
	assert_int_equal(count_fds(), before);
}

static void assert_shape(const char *cmd, int nargs, const enum request_arg *kinds)
{
	const struct request_shape *shape = commands_shape(cmd, strlen(cmd));

	if (shape == NULL)
		fail_msg("%s: no shape", cmd);
	assert_int_equal(shape->nargs, nargs);
	for (int i = 0; i < nargs; i++) {
		if (shape->arg[i] != kinds[i])
			fail_msg("%s: argument %d is kind %d, want %d", cmd, i,
			    (int)shape->arg[i], (int)kinds[i]);
	}
	assert_true(request_shape_fits(shape));
}

static void test_shapes(void **state)
{
	static const enum request_arg slice[] = {
		REQUEST_ARG_NAME, REQUEST_ARG_NUMBER, REQUEST_ARG_NUMBER, REQUEST_ARG_KEYWORD,
	};
	static const enum request_arg metadata[] = { REQUEST_ARG_NAME };

	(void)state;
	assert_shape("get_file_listing", 0, NULL);
	assert_shape("get_metadata", 1, metadata);
	assert_shape("get_slice", 4, slice);
	assert_shape("help", 0, NULL);
	assert_shape("quit", 0, NULL);
	assert_null(commands_shape("nope", 4));
	assert_null(commands_shape("", 0));
	assert_null(commands_shape("get_slic", 8));
	assert_null(commands_shape("HELP", 4));
	/* the length counts: a prefix, or a text holding a NUL, is no command */
	assert_null(commands_shape("help", 3));
	assert_null(commands_shape("help\0x", 6));
	assert_null(commands_shape("quit\0", 5));
}

#define CT(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		CT(test_metadata),
		CT(test_help),
		CT(test_quit),
		CT(test_listing),
		CT(test_slice),
		CT(test_status_order),
		CT(test_long_name),
		CT(test_status_199),
		CT(test_shapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
