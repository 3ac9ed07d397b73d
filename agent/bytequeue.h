/*
 * A growable byte queue with a hard cap, for the agent's stream bodies: the
 * HTTP/2 flow-control window bounds what arrives unasked, the cap makes a
 * peer that ignores it an error instead of unbounded memory.
 */
#ifndef HALOYD_AGENT_BYTEQUEUE_H
#define HALOYD_AGENT_BYTEQUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bytequeue {
	char *p;
	size_t off, len, cap;
};

/* Appends n bytes unless the queue would pass max bytes. 0 or -1. */
int bytequeue_add(struct bytequeue *q, const void *p, size_t n, size_t max);
void bytequeue_consume(struct bytequeue *q, size_t n);
static inline const char *
bytequeue_head(const struct bytequeue *q)
{
	return q->p + q->off;
}
void bytequeue_free(struct bytequeue *q);
/* write() from the head, consuming what went: bytes written or -1 with errno. */
ssize_t bytequeue_write_fd(struct bytequeue *q, int fd);

#endif
