/* The responses a worker writes itself: error pages and the "no routes yet" page. */
#ifndef HALOYD_WORKER_ERRPAGE_H
#define HALOYD_WORKER_ERRPAGE_H

#include "worker/buf.h"

#define ERRPAGE_MAX 2048	/* room a page needs, head included */

enum errpage_kind {
	ERRPAGE_STATUS = 0,	/* the page for the status */
	ERRPAGE_WELCOME,	/* no route at all: how to add one */
};

/* Writes a whole response (head and small HTML body); -1 when b lacks room. */
int errpage_write(struct buf *b, unsigned status, enum errpage_kind kind, int keepalive,
    int head_only);

const char *errpage_reason(unsigned status);

#endif
