/*
 * room.c — a full worker's room for newcomers (see room.h): the choice of
 * the client to close for one, the count of such clients the master is
 * told, and the waiting room.
 */
#include <string.h>

#include "client.h"
#include "room.h"

int
room_victim(struct client *const *clients, int n)
{
	int best = 0;

	for (int i = 1; i <= n; i++) {
		const struct client *c = clients[i];

		if (client_evictable(c, ROOM_EVICT_QUIET_MS) &&
		    (best == 0 || c->last_active < clients[best]->last_active))
			best = i;
	}
	return best;
}

uint32_t
room_evictable(struct client *const *clients, int n)
{
	uint32_t count = 0;

	for (int i = 1; i <= n; i++)
		count += client_evictable(clients[i], ROOM_EVICT_QUIET_MS);
	return count;
}

int
room_wait(struct room_queue *q, int fd, uint64_t id, bool proxy)
{
	if (q->n >= ROOM_WAITING_MAX)
		return -1;
	q->entry[q->n++] = (struct room_waiting){ fd, id, proxy };
	return 0;
}

bool
room_next(struct room_queue *q, struct room_waiting *out)
{
	if (q->n == 0)
		return false;
	*out = q->entry[0];
	q->n--;
	memmove(&q->entry[0], &q->entry[1], (size_t)q->n * sizeof(q->entry[0]));
	return true;
}
