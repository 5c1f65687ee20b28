/*
 * worker.h — the entry point the master calls in a freshly forked worker.
 */
#ifndef HFTPD_WORKER_H
#define HFTPD_WORKER_H

struct config;

/* Serves clients handed over chan until told to stop; the exit status. */
int worker_main(const struct config *conf, unsigned gen, int chan);

#endif
