/*
 * privsep.h — dropping root in workers (user / group config keys).
 */
#ifndef HFTPD_PRIVSEP_H
#define HFTPD_PRIVSEP_H

#include <stddef.h>
#include <sys/types.h>

struct config;

/* Checks that user/group exist; 0 / -1 with err filled. */
int privsep_check(const struct config *c, char *err, size_t errlen);
/* In a worker: become user/group when started as root; 0 / -1 (logged). */
int privsep_drop(const struct config *c);
/* uid/gid that files shared with workers (logs) should belong to; 0 / -1. */
int privsep_ids(const struct config *c, uid_t *uid, gid_t *gid);

#endif
