/*
 * Connections to backends and their keep-alive pools. A pool is keyed by the
 * backend's store id (not a snapshot pointer), so it survives snapshot
 * swaps; it holds at most UPSTREAM_POOL_MAX idle connections for at most
 * UPSTREAM_IDLE_MS each, and drops one as soon as the backend closes it.
 */
#ifndef HALOYD_WORKER_UPSTREAM_H
#define HALOYD_WORKER_UPSTREAM_H

#include <stdint.h>

#include "share/evloop.h"
#include "share/snap.h"

#define UPSTREAM_POOL_MAX 64
#define UPSTREAM_IDLE_MS 30000

struct worker;
struct upstream;

/* Called with the epoll events while the upstream is in use. */
typedef void upstream_fn(struct upstream *u, uint32_t events, void *arg);

struct upstream {
	struct worker *w;
	uint32_t backend_id;
	int fd;
	int reused;		/* came from the pool: may be stale */
	int connecting;		/* connect() still in progress */
	struct ev_io io;
	struct ev_timer idle;
	upstream_fn *fn;
	void *arg;
	struct upstream *next;	/* in the pool's idle list */
};

int upstream_pools_init(struct worker *w);
void upstream_pools_free(struct worker *w);

/*
 * An idle pooled connection to b, else a new non-blocking connect. The
 * upstream reports to fn(arg) until released; unless it is connecting, the
 * caller writes first (no event announces that it may). NULL with errno
 * when the connect failed at once.
 */
struct upstream *upstream_get(struct worker *w, const struct snap_backend *b, int fresh,
    upstream_fn *fn, void *arg);
/* Changes the events watched (EPOLLIN / EPOLLOUT). */
int upstream_watch(struct upstream *u, uint32_t events);
/* After connect() completed: 0, or -1 with errno set to the connect error. */
int upstream_connected(struct upstream *u);
/* Frees u and returns its socket, now the caller's (an upgraded connection). */
int upstream_detach(struct upstream *u);
/* Back to the pool when reuse is set and the pool has room, else closed. */
void upstream_release(struct upstream *u, int reuse);

/*
 * Passive health: a backend whose connect failed or timed out is skipped for
 * backend_down_time (haloyd.conf). Per worker, keyed by store id like the pools.
 */
void upstream_mark_down(struct worker *w, uint32_t backend_id);
/* 1 when a connect error is the backend's doing, not a shortage of our own (EMFILE...). */
int upstream_backend_fault(int err);
int upstream_is_down(struct worker *w, uint32_t backend_id);

#endif
