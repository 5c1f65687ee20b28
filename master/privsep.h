/*
 * privsep.h — dropping root in workers (user / group / chroot config keys).
 */
#ifndef HFTPD_PRIVSEP_H
#define HFTPD_PRIVSEP_H

#include <stddef.h>
#include <sys/types.h>

struct config;
struct config_ids;

/* The workers' user: `user`, else "nobody" when root, else "" (no change). */
const char *privsep_user(const struct config *c);
/* Checks that user/group exist and reach the directory; 0 / -1 with err. */
int privsep_check(const struct config *c, char *err, size_t errlen);
/* Proves (in a forked probe) that the workers' user opens the directory. */
int privsep_check_reach(const struct config *c, char *err, size_t errlen);
/* In a worker: become the workers' user when started as root; 0 / -1 (logged). */
int privsep_drop(const struct config *c);
/* Logs, once at start, whom the workers run as (a warning for root). */
void privsep_announce(const struct config *c);
/* Whom the workers run as when the config names no user / group (-T). */
void privsep_effective(const struct config *c, struct config_ids *ids);
/* uid/gid that files shared with workers (logs) should belong to; 0 / -1. */
int privsep_ids(const struct config *c, uid_t *uid, gid_t *gid);

#endif
