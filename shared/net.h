/*
 * net.h — socket helpers: listeners, address text.
 */
#ifndef HFTPD_NET_H
#define HFTPD_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct config_listen;

/* Binds and listens (SO_REUSEADDR, non-blocking, close-on-exec); fd / -1. */
int  net_listen(const struct config_listen *l, int backlog);
/*
 * Caps the kernel send buffer of fd (SO_SNDBUF; accepted sockets inherit a
 * listener's); 0 leaves the kernel's autotuning.  0 / -1.
 */
int  net_send_buffer(int fd, uint64_t bytes);
/*
 * Closes a connection with a reset (SO_LINGER 0): the kernel frees its
 * send queue at once instead of keeping it in FIN-WAIT for a peer that
 * does not read.  For connections cut for misbehaviour only: a normal end
 * closes gracefully.
 */
void net_close_abortive(int fd);
/* "1.2.3.4:5678" or "[::1]:5678" of a socket's peer, "?" on failure. */
void net_peer_text(int fd, char *buf, size_t len);
void net_addr_text(const struct sockaddr *sa, char *buf, size_t len);

#endif
