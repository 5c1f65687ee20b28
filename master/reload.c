/*
 * reload.c — a new configuration for a running master (HUP), and the checks
 * a configuration must pass before the master serves with it (at start and
 * on reload).
 *
 * The config is built afresh (config_build: defaults, file, the command-line
 * overrides kept from the start); on error nothing changes.  On success
 * unchanged listeners keep their descriptor, new ones are opened, removed
 * ones closed; a new generation of workers is forked and the old one is
 * told to drain: it finishes its connections and exits, or is stopped at
 * shutdown_timeout.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "master.h"
#include "privsep.h"

#define RELOAD_NS_PER_US    1000ull

/* The pid file's folder exists and the master may create files in it. */
static int
reload_check_pid_folder(const struct config *c, char *err, size_t errlen)
{
	char        copy[PATH_MAX];
	const char *folder;
	struct stat st;

	if (c->pid_file[0] == '\0')
		return 0;
	snprintf(copy, sizeof(copy), "%s", c->pid_file);
	folder = dirname(copy);
	if (stat(folder, &st) == -1) {
		snprintf(err, errlen, "pid_file %s: folder %s: %s", c->pid_file, folder,
		    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "pid_file %s: %s is not a folder", c->pid_file, folder);
		return -1;
	}
	if (access(folder, W_OK | X_OK) == -1) {
		snprintf(err, errlen, "pid_file %s: cannot create it in %s: %s",
		    c->pid_file, folder, strerror(errno));
		return -1;
	}
	return 0;
}

int
reload_config_check(const struct config *c, bool foreground, char *err, size_t errlen)
{
	struct stat st;

	if (stat(c->directory, &st) == -1) {
		snprintf(err, errlen, "directory %s: %s", c->directory, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "directory %s: not a directory", c->directory);
		return -1;
	}
	if (access(c->directory, R_OK | X_OK) == -1) {
		snprintf(err, errlen, "directory %s: %s", c->directory, strerror(errno));
		return -1;
	}
	if (privsep_check(c, err, errlen) == -1 ||
	    logfiles_check(c, foreground, err, errlen) == -1)
		return -1;
	return reload_check_pid_folder(c, err, errlen);
}

/* Makes next (with its back-off table) the current generation. */
static void
reload_switch(struct master *m, struct config *next, struct spawn_backoff *backoff)
{
	char        err[CONFIG_ERR_MAX];
	const char *target;
	unsigned    old_gen = m->gen;
	int         access_fd;

	/* the new generation's access log (the old one keeps its own copy) */
	if (logfiles_create_all(next, m->options->foreground, &access_fd, err, sizeof(err)) == -1)
		log_warnx("%s", err);
	if (m->access_fd != -1)
		close(m->access_fd);
	m->access_fd = access_fd;
	target = logfiles_error_target(next, m->options->foreground);
	if (strcmp(target, logfiles_error_target(m->conf, m->options->foreground)) != 0 &&
	    log_open(target) == -1)
		log_warn("error_log %s: keeping the old log", target);
	log_set_level((enum log_level)next->log_level);
	(void)cpusched_master(next);
	if (config_warnings(next, err, sizeof(err)) > 0)
		log_warnx("%s", err);

	spawn_free_state(m);
	m->conf = next;
	m->backoff = backoff;
	m->gen++;
	log_set_role("master", m->gen);
	for (int i = 0; i < m->nslots; i++) {
		if (m->slots[i].gen == old_gen)
			slot_drain(&m->slots[i], m->conf->shutdown_timeout, clock_now_ms());
	}
	if (spawn_pool(m) == -1)
		log_warnx("reload: not every worker of generation %u could be started", m->gen);
	log_info("configuration reloaded: generation %u, %d workers", m->gen, m->conf->workers);
	status_count(m, STATUS_RELOAD);
	status_prune(m);
	m->announced = false;   /* READY=1 again once the new generation serves */
}

void
reload_run(struct master *m)
{
	struct config        *next;
	struct spawn_backoff *backoff = NULL;
	char                  err[CONFIG_ERR_MAX];

	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)(clock_now_ns() / RELOAD_NS_PER_US));
	log_info("reloading configuration");
	if ((next = malloc(sizeof(*next))) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (config_build(m->options, next, err, sizeof(err)) == -1 ||
	    reload_config_check(next, m->options->foreground, err, sizeof(err)) == -1)
		goto fail;
	if ((backoff = spawn_backoff_new(next->workers)) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (listen_open(m, next, err, sizeof(err)) == -1)
		goto fail;
	reload_switch(m, next, backoff);
	return;
fail:
	free(next);
	free(backoff);
	log_error("reload failed, keeping the running configuration: %s", err);
	notify_send("READY=1\nSTATUS=reload failed: %s", err);
}
