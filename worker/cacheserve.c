/*
 * The cache upstream (cacheserve_ops, see cache.h): a stored response
 * delivered to an exchange as a backend would deliver it — the head with
 * its Age, then the body as far as the exchange has room, then the end —
 * always from the loop, never inside an ops call.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "share/evloop.h"
#include "worker/cache.h"
#include "worker/context.h"
#include "worker/upstream.h"

/* Body bytes handed on per event: the sinks' buffers are 32 KiB. */
#define CACHESERVE_CHUNK (16 * 1024)
/*
 * A hit is served from the cache's map (no copy) while its read
 * transaction holds the pages; a response still going after this long (a
 * slow client) copies its entry out and lets them go (cache_hit_own).
 */
#define CACHESERVE_HOLD_MS 1000

struct ustream {
	struct worker *w;
	struct cache_hit *hit;
	const struct upstream_events *ev;
	void *arg;
	uint64_t off;
	struct ev_timer hold;		/* CACHESERVE_HOLD_MS after the open */
	uint8_t pending;
	unsigned nobody : 1;	/* HEAD: no body */
	unsigned head_done : 1;
	unsigned running : 1;
	unsigned closed : 1;
};

static void
cs_free(struct ustream *s)
{
	ev_timer_stop(s->w->loop, &s->hold);
	cache_hit_free(s->hit);
	free(s);
}

/* One step; 1 when the stream was closed under it (freed here). */
static int
cs_gone(struct ustream *s)
{
	if (!s->closed)
		return 0;
	s->running = 0;
	if (!s->pending)
		cs_free(s);
	return 1;
}

static void
cs_run(void *arg)
{
	struct ustream *s = arg;
	struct cache_hit *hit = s->hit;
	size_t room, n;

	s->pending = 0;
	if (s->closed) {
		cs_free(s);
		return;
	}
	s->running = 1;
	if (!s->head_done) {
		s->head_done = 1;
		if (s->ev->head(s->arg, &hit->head) == -1) {
			s->ev->fail(s->arg, UPSTREAM_BROKEN, 0);
			(void)cs_gone(s);
			return;
		}
		if (cs_gone(s))
			return;
	}
	/*
	 * First the rest straight from the map (or the owned copy) in one
	 * write, as much as the socket takes; what it did not take is copied
	 * into the sink's buffer below and waits for room.
	 */
	if (!s->nobody && s->off < hit->body_len && s->ev->body_direct != NULL) {
		s->off += s->ev->body_direct(s->arg, hit->body + s->off,
		    (size_t)(hit->body_len - s->off));
		if (cs_gone(s))
			return;
	}
	while (!s->nobody && s->off < hit->body_len) {
		if ((room = s->ev->room(s->arg)) == 0 || cs_gone(s)) {
			if (!s->closed)
				s->running = 0;	/* resume() comes when there is room */
			return;
		}
		n = hit->body_len - s->off < room ? (size_t)(hit->body_len - s->off) : room;
		if (n > CACHESERVE_CHUNK)
			n = CACHESERVE_CHUNK;
		if (s->ev->body(s->arg, hit->body + s->off, n) == -1) {
			s->ev->fail(s->arg, UPSTREAM_BROKEN, 0);
			(void)cs_gone(s);
			return;
		}
		s->off += n;
		if (cs_gone(s))
			return;
	}
	s->off = hit->body_len;
	s->ev->end(s->arg, &hit->head);
	if (!cs_gone(s))
		s->running = 0;
}

/* Still going after CACHESERVE_HOLD_MS: the rest comes from a copy. */
static void
cs_hold_over(struct ev_loop *l, struct ev_timer *t)
{
	struct ustream *s = t->arg;

	(void)l;
	if (cache_hit_own(s->hit) == -1)
		(void)ev_timer_start(s->w->loop, &s->hold, CACHESERVE_HOLD_MS);
}

static struct ustream *
cs_open(struct worker *w, const struct snap_backend *b, const struct upstream_opts *o,
    const struct msg_head *req, const struct upstream_events *ev, void *arg)
{
	struct cache_hit *hit = (struct cache_hit *)(uintptr_t)b;	/* be is its first member */
	struct ustream *s = calloc(1, sizeof(*s));
	char age[24];

	(void)o;
	if (s == NULL) {
		cache_hit_free(hit);
		return NULL;
	}
	s->w = w;
	s->hit = hit;
	s->ev = ev;
	s->arg = arg;
	s->nobody = req->method == MSG_M_HEAD;
	ev_timer_init(&s->hold, cs_hold_over, s);
	snprintf(age, sizeof(age), "%" PRIu32, cachepol_age(&hit->times, (int64_t)time(NULL)));
	if (msg_add(&hit->head, "Age", age) == -1 ||
	    (hit->ref != NULL && ev_timer_start(w->loop, &s->hold, CACHESERVE_HOLD_MS) == -1) ||
	    ev_defer_once(w->loop, cs_run, s, &s->pending) == -1) {
		cs_free(s);
		return NULL;
	}
	return s;
}

static int
cs_send(struct ustream *s, const char *p, size_t n)
{
	(void)s;
	(void)p;
	(void)n;
	return 0;	/* a GET's body means nothing to a stored answer */
}

static size_t
cs_room(struct ustream *s)
{
	(void)s;
	return CACHESERVE_CHUNK;
}

static int
cs_end(struct ustream *s, const struct msg_head *trailers)
{
	(void)s;
	(void)trailers;
	return 0;
}

static void
cs_resume(struct ustream *s)
{
	if (!s->closed && !s->running)
		(void)ev_defer_once(s->w->loop, cs_run, s, &s->pending);
}

static void
cs_close(struct ustream *s)
{
	s->closed = 1;
	if (!s->running && !s->pending)
		cs_free(s);
}

static int
cs_connecting(const struct ustream *s)
{
	(void)s;
	return 0;
}

const struct upstream_ops cacheserve_ops = {
	"cache", cs_open, cs_send, cs_room, cs_end, cs_resume, cs_close, cs_connecting,
};
