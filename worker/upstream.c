/* Backend connections and per-backend keep-alive pools (see upstream.h). */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "share/log.h"
#include "worker/context.h"
#include "worker/upstream.h"

#define POOL_BUCKETS 256

struct pool {
	uint32_t backend_id;
	uint32_t nidle;
	uint64_t down_until;	/* loop time (ms) until which the backend is skipped */
	struct upstream *idle;	/* most recently used first */
	struct pool *next;	/* in the bucket */
};

struct upstream_pools {
	struct pool *bucket[POOL_BUCKETS];
};

int
upstream_pools_init(struct worker *w)
{
	w->pools = calloc(1, sizeof(*w->pools));
	return w->pools == NULL ? -1 : 0;
}

static void
upstream_close(struct upstream *u)
{
	ev_io_stop(u->w->loop, &u->io);
	ev_timer_stop(u->w->loop, &u->idle);
	close(u->fd);
	free(u);
}

void
upstream_pools_free(struct worker *w)
{
	struct pool *p, *pn;
	struct upstream *u, *un;
	size_t i;

	if (w->pools == NULL)
		return;
	for (i = 0; i < POOL_BUCKETS; i++)
		for (p = w->pools->bucket[i]; p != NULL; p = pn) {
			pn = p->next;
			for (u = p->idle; u != NULL; u = un) {
				un = u->next;
				upstream_close(u);
			}
			free(p);
		}
	free(w->pools);
	w->pools = NULL;
}

static struct pool *
pool_find(struct worker *w, uint32_t id, int create)
{
	struct pool **head = &w->pools->bucket[id % POOL_BUCKETS], *p;

	for (p = *head; p != NULL; p = p->next)
		if (p->backend_id == id)
			return p;
	if (!create || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->backend_id = id;
	p->next = *head;
	*head = p;
	return p;
}

static void
pool_unlink(struct pool *p, struct upstream *u)
{
	struct upstream **pp;

	for (pp = &p->idle; *pp != NULL; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			p->nidle--;
			return;
		}
}

static void
upstream_dispatch(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct upstream *u = io->arg;

	(void)l;
	u->fn(u, events, u->arg);
}

/* An idle pooled connection became readable or timed out: the backend closed it or broke the protocol. */
static void
upstream_idle_drop(struct upstream *u)
{
	struct pool *p = pool_find(u->w, u->backend_id, 0);

	if (p != NULL)
		pool_unlink(p, u);
	upstream_close(u);
}

static void
upstream_idle_event(struct upstream *u, uint32_t events, void *arg)
{
	(void)events;
	(void)arg;
	upstream_idle_drop(u);
}

static void
upstream_idle_timeout(struct ev_loop *l, struct ev_timer *t)
{
	(void)l;
	upstream_idle_drop(t->arg);
}

static struct upstream *
upstream_from_pool(struct worker *w, uint32_t id)
{
	struct pool *p = pool_find(w, id, 0);
	struct upstream *u;

	if (p == NULL || p->idle == NULL)
		return NULL;
	u = p->idle;
	p->idle = u->next;
	p->nidle--;
	u->next = NULL;
	u->reused = 1;
	ev_timer_stop(w->loop, &u->idle);
	return u;
}

static struct upstream *
upstream_connect(struct worker *w, const struct snap_backend *b)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	struct upstream *u;
	int one = 1;

	if (b->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(b->port);
		memcpy(&s6->sin6_addr, b->addr, 16);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(b->port);
		memcpy(&s4->sin_addr, b->addr, 4);
		sl = sizeof(*s4);
	}
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->w = w;
	u->backend_id = b->id;
	u->fd = socket(b->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd == -1)
		goto fail;
	(void)setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(u->fd, (struct sockaddr *)&ss, sl) == -1) {
		if (errno != EINPROGRESS)
			goto fail;
		u->connecting = 1;
	}
	ev_timer_init(&u->idle, upstream_idle_timeout, u);
	return u;
fail:
	if (u->fd >= 0) {
		int saved = errno;
		close(u->fd);
		errno = saved;
	}
	free(u);
	return NULL;
}

struct upstream *
upstream_get(struct worker *w, const struct snap_backend *b, int fresh, upstream_fn *fn, void *arg)
{
	struct upstream *u = fresh ? NULL : upstream_from_pool(w, b->id);

	if (u == NULL && (u = upstream_connect(w, b)) == NULL)
		return NULL;
	u->fn = fn;
	u->arg = arg;
	/* A pooled connection keeps watching EPOLLIN: the caller writes at once. */
	if (!u->io.active && ev_io_start(w->loop, &u->io, u->fd, u->connecting ? EPOLLOUT : EPOLLIN,
	    upstream_dispatch, u) == -1) {
		upstream_close(u);
		errno = ENOMEM;
		return NULL;
	}
	return u;
}

int
upstream_watch(struct upstream *u, uint32_t events)
{
	if (u->io.events == events)
		return 0;
	return ev_io_modify(u->w->loop, &u->io, events);
}

int
upstream_connected(struct upstream *u)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	u->connecting = 0;
	return 0;
}

int
upstream_detach(struct upstream *u)
{
	int fd = u->fd;

	ev_io_stop(u->w->loop, &u->io);
	ev_timer_stop(u->w->loop, &u->idle);
	free(u);
	return fd;
}

void
upstream_release(struct upstream *u, int reuse)
{
	struct worker *w = u->w;
	struct pool *p;

	if (!reuse || u->connecting || w->stopping ||
	    (p = pool_find(w, u->backend_id, 1)) == NULL || p->nidle >= UPSTREAM_POOL_MAX) {
		upstream_close(u);
		return;
	}
	u->fn = upstream_idle_event;
	u->arg = NULL;
	u->next = p->idle;
	p->idle = u;
	p->nidle++;
	if (upstream_watch(u, EPOLLIN) == -1) {
		upstream_idle_drop(u);
		return;
	}
	ev_timer_start(w->loop, &u->idle, UPSTREAM_IDLE_MS);
}

void
upstream_mark_down(struct worker *w, uint32_t backend_id)
{
	struct pool *p;

	if (w->cfg.backend_down_ms == 0 || (p = pool_find(w, backend_id, 1)) == NULL)
		return;
	if (p->down_until <= ev_now(w->loop))
		log_notice("backend %u: down for %u ms", backend_id, w->cfg.backend_down_ms);
	p->down_until = ev_now(w->loop) + w->cfg.backend_down_ms;
}

int
upstream_is_down(struct worker *w, uint32_t backend_id)
{
	struct pool *p = pool_find(w, backend_id, 0);

	return p != NULL && p->down_until > ev_now(w->loop);
}

int
upstream_backend_fault(int err)
{
	switch (err) {
	case ECONNREFUSED: case ETIMEDOUT: case EHOSTUNREACH: case ENETUNREACH:
	case ECONNRESET: case EHOSTDOWN: case ENETDOWN:
		return 1;
	default:
		return 0;
	}
}
