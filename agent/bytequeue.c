/* The agent's capped byte queues (see bytequeue.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/bytequeue.h"

int
bytequeue_add(struct bytequeue *q, const void *p, size_t n, size_t max)
{
	size_t cap;
	char *np;

	if (q->len + n > max)
		return -1;
	if (q->off > 0 && q->off + q->len + n > q->cap) {
		memmove(q->p, q->p + q->off, q->len);
		q->off = 0;
	}
	if (q->len + n > q->cap) {
		cap = q->cap > 0 ? q->cap : 4096;
		while (cap < q->len + n)
			cap *= 2;
		if ((np = realloc(q->p, cap)) == NULL)
			return -1;
		q->p = np;
		q->cap = cap;
	}
	if (n > 0)
		memcpy(q->p + q->off + q->len, p, n);
	q->len += n;
	return 0;
}

void
bytequeue_consume(struct bytequeue *q, size_t n)
{
	if (n >= q->len) {
		q->off = q->len = 0;
		return;
	}
	q->off += n;
	q->len -= n;
}

void
bytequeue_free(struct bytequeue *q)
{
	free(q->p);
	memset(q, 0, sizeof(*q));
}

ssize_t
bytequeue_write_fd(struct bytequeue *q, int fd)
{
	ssize_t n;

	do
		n = send(fd, bytequeue_head(q), q->len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n > 0)
		bytequeue_consume(q, (size_t)n);
	return n;
}
