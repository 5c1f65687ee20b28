/*
 * commands.h — the HFTP command table: each row names a command, the kinds
 * of its arguments (for the parser) and the handler that answers it.
 */
#ifndef HFTPD_COMMANDS_H
#define HFTPD_COMMANDS_H

#include <stddef.h>

#include "request.h"

struct client;

/* Answers the complete request line the client's parser holds. */
void commands_run(struct client *c);
/* The parser's shape function: the argument kinds of a known command. */
const struct request_shape *commands_shape(const char *cmd, size_t len);

#endif
