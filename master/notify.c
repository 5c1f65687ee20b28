/*
 * notify.c — the systemd readiness protocol without libsystemd: one
 * datagram of "KEY=VALUE\n" lines to the AF_UNIX socket named by
 * NOTIFY_SOCKET ('@' starts an abstract name).  Silent when unset.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

void
notify_send(const char *fmt, ...)
{
	const char        *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t          len;
	char               msg[512];
	va_list            ap;
	int                fd, n;

	if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sun.sun_path))
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sun, len) == -1)
		log_debug("sd_notify: %s", msg);
	close(fd);
}
