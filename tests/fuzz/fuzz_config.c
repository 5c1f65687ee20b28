/*
 * fuzz_config.c — libFuzzer harness for the config file parser
 * (shared/config.c): the input is written to a temporary file and read by
 * config_load on top of the defaults.  No crash and no leak (the
 * sanitizers and libFuzzer's leak check see to those), and on error the
 * message is always "FILE:LINE: ..." or "FILE: ...", with FILE the path
 * given; on success config_finish runs too.
 *
 * Built by `make fuzz` (see the Makefile); seeds in tests/fuzz/corpus/.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[64];

static void
fuzz_cleanup(void)
{
	unlink(fuzz_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	(void)argc;
	(void)argv;
	snprintf(fuzz_path, sizeof(fuzz_path), "/tmp/hftpd-fuzz-config.XXXXXX");
	if ((fd = mkstemp(fuzz_path)) == -1)
		abort();
	close(fd);
	atexit(fuzz_cleanup);
	return 0;
}

/* "FILE: text" or "FILE:LINE: text", LINE a decimal line number from 1. */
static int
fuzz_err_ok(const char *err)
{
	size_t      n = strlen(fuzz_path);
	const char *p;

	if (strncmp(err, fuzz_path, n) != 0 || err[n] != ':')
		return 0;
	p = err + n + 1;
	if (*p >= '1' && *p <= '9') {
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p != ':')
			return 0;
		p++;
	}
	return p[0] == ' ' && p[1] != '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c;
	char           err[CONFIG_ERR_MAX];
	FILE          *fp;

	if ((fp = fopen(fuzz_path, "we")) == NULL)
		abort();
	if (fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
		abort();
	/* a struct config is large (paths): on the heap, where ASan watches it */
	if ((c = malloc(sizeof(*c))) == NULL)
		abort();
	config_defaults(c);
	err[0] = '\0';
	if (config_load(c, fuzz_path, err, sizeof(err)) == -1) {
		if (!fuzz_err_ok(err)) {
			fprintf(stderr, "fuzz_config: error text not \"FILE:LINE: ...\" or "
			    "\"FILE: ...\": \"%s\"\n", err);
			abort();
		}
	} else if (config_finish(c, err, sizeof(err)) == -1 && err[0] == '\0') {
		fprintf(stderr, "fuzz_config: config_finish failed without a message\n");
		abort();
	}
	free(c);
	return 0;
}
