/*
 * The exchange (see exchange.h): backend choice through worker/balance.c,
 * retries where they are safe, the response and idle timeouts and gRPC
 * deadlines (one timer), back-pressure
 * between sink and upstream in both directions, the access entry, and the
 * byte pipe after a 101.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "share/beaddr.h"
#include "share/health.h"
#include "share/hostname.h"
#include "share/log.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/accesslog.h"
#include "worker/balance.h"
#include "worker/cache.h"
#include "worker/compress.h"
#include "worker/context.h"
#include "worker/exchange.h"
#include "worker/forward.h"
#include "worker/grpc.h"
#include "worker/message.h"
#include "worker/upstream.h"

/*
 * Request body bytes kept to replay on a retry. A larger body is not
 * replayed: holding it would cost a buffer for the life of the request.
 */
#define REPLAY_MAX (16 * 1024)

struct exchange {
	struct worker *w;
	struct exchange_req req;
	const struct sink_ops *ops;
	void *arg;
	const struct upstream_ops *route_ops;	/* the route's protocol; a tunnel's is HTTP/2 */
	const struct upstream_ops *up_ops;	/* what opened up */
	struct ustream *up;
	const struct snap_backend *be;
	struct upstream_tunnel pin;	/* pinned: where every attempt goes */
	struct ev_timer timer;

	uint32_t start, tries;		/* round-robin start, backends tried */
	char *replay;			/* the body so far, while a retry may need it */
	size_t replay_len;
	const struct msg_head *trailers;	/* the request's end, for a replay */
	struct compress *cz;		/* the response's compression stage, if any */
	struct cache_fill *cf;		/* the response is stored while it streams (cache.h) */
	struct cache_hit *swap_hit;	/* cache_swap: what is served instead at the backend's end */
	struct msg_head *end_resp;	/* end_wait: the response's end, held by the open upstream */
	unsigned status;		/* the final response's, for the log */
	char host[HOSTNAME_MAX + 1];	/* req.host points here */
	unsigned too_large : 1;		/* the body crossed max_body: 413, the rest is dropped */
	unsigned retried : 1;		/* the one retry of a sent request is used */
	unsigned replay_lost : 1;	/* body bytes went out that replay no longer holds */
	unsigned req_done : 1;		/* the session ended the request */
	unsigned got_byte : 1;		/* the backend answered something */
	unsigned head_sent : 1;		/* a final head went to the sink */
	unsigned pipe : 1;		/* after a 101 */
	unsigned resp_ended : 1;	/* pipe: the backend half-closed */
	unsigned req_sent : 1;		/* pipe: the client's half-close reached the backend */
	unsigned logged : 1;
	unsigned dead : 1;
	unsigned grpc : 1;		/* a gRPC call: no response timeout, the idle one from the start */
	unsigned has_deadline : 1;	/* its grpc-timeout: deadline is when it expires */
	unsigned opened : 1;		/* a backend stream was opened once: the next is a retry */
	unsigned end_wait : 1;		/* the backend is done; compressed bytes wait for the sink */
	unsigned cz_resume : 1;		/* the sink has room: drain the stage (deferred) */
	unsigned hop_down : 1;		/* the last failure: no tunnel process on the hop (503) */
	unsigned delayed : 1;		/* waiting out the rate limit's delay: no backend yet */
	unsigned pinned : 1;		/* exchange_start_pinned: a tunnel's agents, no route */
	unsigned cached : 1;		/* served from the cache (worker/cacheserve.c) */
	unsigned cache_swap : 1;	/* the backend's 304 or error is replaced by swap_hit */
	unsigned cache_wait : 1;	/* another request fills the entry: no backend yet */
	unsigned detached : 1;		/* the client left; the fill goes on (cache_drop_sink) */
	unsigned detach_resume : 1;	/* detached: resume the upstream (deferred) */
	const char *cache_status;	/* the access entry's cache field, or NULL */
	unsigned picked : 1;		/* the balancer gave a backend once: not all were down */
	struct shm_backend *flight;	/* the shared entry up counts in flight against */
	uint8_t kick_pending;
	uint64_t deadline;		/* loop time (ms) */
	uint64_t bytes_in, bytes_out;
	char reqid[20];
};

static const struct upstream_events ex_events;
static const struct sink_ops ex_cz_sink;

/* A pinned exchange's route: zero timeouts (the global ones rule), no flags. */
static const struct snap_route ex_no_route;
/* What an exchange served from the cache names as its backend. */
static const struct snap_backend ex_cache_be;

/* Closes the stream to the backend; its request is no longer in flight there. */
static void
ex_up_close(struct exchange *ex)
{
	ex->up_ops->close(ex->up);
	if (ex->flight != NULL)
		health_inflight_done(&ex->w->shm, ex->flight, (uint32_t)ex->w->index);
	ex->flight = NULL;
}

static void
ex_free(struct exchange *ex)
{
	if (ex->up != NULL)
		ex_up_close(ex);
	ev_timer_stop(ex->w->loop, &ex->timer);
	free(ex->replay);
	compress_free(ex->cz);
	cache_fill_free(ex->cf);
	cache_hit_free(ex->swap_hit);
	snap_unref(ex->req.snap);
	free(ex);
}

static void ex_finish(struct exchange *ex, int ok, struct msg_head *resp, unsigned status);
static void ex_rearm(struct exchange *ex);
static int ex_open(struct exchange *ex, int fresh);
static unsigned ex_none_left(const struct exchange *ex);

/* The sink had room again: compressed bytes go first, then the upstream's, or the end. */
static void
ex_cz_run(struct exchange *ex)
{
	ex->cz_resume = 0;
	if (compress_drain(ex->cz, &ex_cz_sink, ex) == -1) {
		ex_finish(ex, 0, NULL, 502);
		return;
	}
	if (ex->end_wait) {
		if (!compress_pending(ex->cz))
			ex_finish(ex, 1, ex->end_resp, 0);
		else
			ex_rearm(ex);	/* the client reads: the idle timeout starts again */
		return;
	}
	if (ex->up != NULL)
		ex->up_ops->resume(ex->up);
}

static void
ex_kick_run(void *arg)
{
	struct exchange *ex = arg;
	const struct sink_ops *ops = ex->ops;

	ex->kick_pending = 0;
	if (ex->dead) {
		ex_free(ex);
		return;
	}
	if (ex->cz_resume) {
		ex_cz_run(ex);
		return;
	}
	if (ex->detach_resume) {
		ex->detach_resume = 0;
		if (ex->up != NULL)
			ex->up_ops->resume(ex->up);
		return;
	}
	if (ex->too_large) {
		ex->ops = NULL;
		ex->dead = 1;
		accesslog_write(ex->w, &(struct accesslog_entry){
		    .req = ex->req.head, .host = ex->req.host, .backend = "", .request_id = ex->reqid,
		    .status = 413, .local = !ex->head_sent, .bytes_in = ex->bytes_in,
		    .route_id = ex->req.route->id, .client = ex->req.client_ip,
		    .start_us = ex->req.start_us });
		ops->fail(ex->arg, ex->head_sent ? 0 : 413);
		ex_free(ex);
	}
}

/* Runs the exchange after this batch of events (never inside the session's call). */
static void
ex_kick(struct exchange *ex)
{
	(void)ev_defer_once(ex->w->loop, ex_kick_run, ex, &ex->kick_pending);
}

/* The backend as the logs name it: "ip:port", "unix:/path", "tunnel:NAME". */
static const char *
ex_be_name(const struct exchange *ex, char *buf, size_t len)
{
	buf[0] = '\0';
	if (ex->cached)
		snprintf(buf, len, "cache");
	else if (ex->pinned)
		snprintf(buf, len, "tunnel:%.40s", ex->pin.name);
	else if (ex->be != NULL)
		accesslog_backend(ex->req.snap, ex->be, buf, len);
	return buf;
}

/* local: the status is an answer of ours (the sink answers it), not the backend's. */
static void
ex_log(struct exchange *ex, unsigned status, int local)
{
	char be[BEADDR_STR_MAX];

	if (ex->logged)
		return;
	ex->logged = 1;
	/* The backend's name is for the log line only: no formatting when there is none. */
	if (ex->w->cfg.access_log)
		ex_be_name(ex, be, sizeof(be));
	else
		be[0] = '\0';
	accesslog_write(ex->w, &(struct accesslog_entry){
	    .req = ex->req.head, .host = ex->req.host, .backend = be, .request_id = ex->reqid,
	    .status = status, .local = local, .bytes_in = ex->bytes_in, .bytes_out = ex->bytes_out,
	    .route_id = ex->req.route->id, .start_us = ex->req.start_us,
	    .client = ex->req.client_ip, .cache = ex->cache_status });
}

/*
 * The answer comes from the cache from here on: the backend's stream (if
 * any) is closed and the cache upstream opened on hit, which it owns.
 */
static int
ex_serve_hit(struct exchange *ex, struct cache_hit *hit)
{
	if (ex->up != NULL)
		ex->up_ops->close(ex->up);
	ex->up = NULL;
	ex->cached = 1;
	ex->cache_swap = 0;
	ex->up_ops = &cacheserve_ops;
	ex->be = &ex_cache_be;
	ex->up = cacheserve_ops.open(ex->w, &hit->be, NULL, ex->req.head, &ex_events, ex);
	if (ex->up == NULL)
		return -1;
	ex_rearm(ex);
	return 0;
}

/* The end: tell the sink (ok: the response is complete), then go. */
static void
ex_finish(struct exchange *ex, int ok, struct msg_head *resp, unsigned status)
{
	const struct sink_ops *ops = ex->ops;
	struct cache_hit *hit;

	/* After the compression stage's last bytes: a fill of its variant has them all. */
	if (ok && !ex->pipe && ex->cf != NULL && !ex->cached)
		cache_fill_end(ex->cf);
	/* stale-if-error: a stored answer instead of the backend's failure. */
	if (!ok && !ex->head_sent && !ex->cached && ex->cf != NULL &&
	    (hit = cache_fill_failed(ex->cf)) != NULL) {
		ex->cache_status = "STALE";
		if (ex_serve_hit(ex, hit) == 0)
			return;
	}
	ex_log(ex, ok ? ex->status : status, !ok && !ex->head_sent);
	ex->ops = NULL;
	ex->dead = 1;
	/* No more events; a response it ends stays readable until the stream's deferred free. */
	if (ex->up != NULL)
		ex_up_close(ex);
	ex->up = NULL;
	/* Pinned: a bad gateway is a reset on the hop; the worker answers the 502 itself. */
	if (!ok && ex->pinned && status == 502)
		status = 0;
	if (ok)
		ops->end(ex->arg, resp);
	else
		ops->fail(ex->arg, ex->head_sent ? 0 : status);
	ex_kick(ex);
}

static uint32_t
ex_ms(uint32_t route_ms, uint32_t global_ms)
{
	return route_ms != 0 ? route_ms : global_ms;
}

/*
 * Any progress restarts the clock: the response timeout until the first
 * byte, then the idle one. A gRPC call may stream for hours before its
 * first response byte, so it has the idle timeout from the start, and its
 * grpc-timeout, when it set one, as a deadline no progress moves. While the
 * upstream connects its connect timeout rules, and the deadline.
 */
static void
ex_rearm(struct exchange *ex)
{
	const struct snap_route *r = ex->req.route;
	const struct msg_wconfig *cfg = &ex->w->cfg;
	uint64_t now = ev_now(ex->w->loop), ms = ex->pipe ?
	    ex_ms(r->upgrade_ms, cfg->upgrade_timeout_ms) : ex->got_byte || ex->grpc ?
	    ex_ms(r->idle_ms, cfg->idle_timeout_ms) : ex_ms(r->response_ms, cfg->response_timeout_ms);
	uint64_t left = ex->has_deadline && ex->deadline > now ? ex->deadline - now : 0;
	int connecting = ex->up != NULL && ex->up_ops->connecting(ex->up);

	if (connecting && !ex->has_deadline)
		return;
	if (ex->has_deadline && (connecting || left < ms))
		ms = left;
	ev_timer_start(ex->w->loop, &ex->timer, ms);
}


/*
 * The rate limit's wait is over: the backend is opened now, with what the
 * request's end brought meanwhile, and the session may push its body.
 */
static void
ex_delay_end(struct exchange *ex)
{
	ex->delayed = 0;
	if (ex_open(ex, 0) == -1) {
		ex_finish(ex, 0, NULL, ex_none_left(ex));
		return;
	}
	if (ex->ops != NULL)
		ex->ops->more(ex->arg);
}

/* Waiting for another request's fill: its entry, more waiting, or the backend. */
static void
ex_cache_poll(struct exchange *ex)
{
	struct cache_hit *hit;

	switch (cache_fill_poll(ex->cf, &hit)) {
	case CACHE_POLL_WAIT:
		ev_timer_start(ex->w->loop, &ex->timer, CACHE_POLL_MS);
		return;
	case CACHE_POLL_HIT:
		ex->cache_wait = 0;
		ex->delayed = 0;
		ex->cache_status = "HIT";
		if (ex_serve_hit(ex, hit) == -1)
			ex_finish(ex, 0, NULL, 502);
		return;
	case CACHE_POLL_GO:
	default:
		ex->cache_wait = 0;
		ex_delay_end(ex);
		return;
	}
}

static void
ex_on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct exchange *ex = t->arg;
	char be[BEADDR_STR_MAX];

	(void)l;
	if (ex->dead)
		return;
	if (ex->cache_wait) {
		ex_cache_poll(ex);
		return;
	}
	if (ex->delayed) {
		ex_delay_end(ex);
		return;
	}
	if (ex->has_deadline && ev_now(ex->w->loop) >= ex->deadline)
		log_info("backend %u (%s): the call's grpc-timeout passed", ex->be->id,
		    ex_be_name(ex, be, sizeof(be)));
	else if (!ex->pipe)
		log_info("backend %u (%s): no answer in time", ex->be->id,
		    ex_be_name(ex, be, sizeof(be)));
	ex_finish(ex, 0, NULL, 504);
}

/* Gives the new stream what the dead one had: the replayed body and the request's end. */
static int
ex_replay(struct exchange *ex)
{
	if (ex->replay_len > 0 && ex->up_ops->send(ex->up, ex->replay, ex->replay_len) == -1)
		return -1;
	if (ex->req_done && ex->up_ops->end(ex->up, ex->trailers) == -1)
		return -1;
	return 0;
}

/*
 * What a route answers when no backend is left: 503 while the tunnel hop
 * is down, or when none was tried because its health checks took them
 * out (they come back: errpage's Retry-After says when to ask again).
 */
static unsigned
ex_none_left(const struct exchange *ex)
{
	if (ex->hop_down)
		return 503;
	return !ex->picked && !ex->pinned &&
	    balance_checked_out(ex->w, ex->req.snap, ex->req.route) ? 503 : 502;
}

/*
 * The upstream for be: a tunnel is reached over the hop with HTTP/2
 * whatever the route's protocol (the tunnel's own leg is HTTP/2); NULL for
 * an upgrade, which has no form over a tunnel yet, and for a DNS name not
 * resolved yet (skipped: 502 when no other backend takes the request).
 */
static const struct upstream_ops *
ex_ops_for(struct exchange *ex, const struct snap_backend *be)
{
	char name[BEADDR_STR_MAX];

	if ((be->flags & SNAP_BACKEND_NAME) && be->family == AF_UNSPEC) {
		log_info("backend %u (%s): the master has no address for this name yet "
		    "(route show says why)", be->id, ex_be_name(ex, name, sizeof(name)));
		return NULL;
	}
	if (!(be->flags & SNAP_BACKEND_TUNNEL))
		return ex->route_ops;
	if (ex->req.head->upgrade || ex->req.head->method == MSG_M_CONNECT) {
		log_info("backend %u (%s): no WebSocket or other upgrade over a tunnel: 502",
		    be->id, ex_be_name(ex, name, sizeof(name)));
		return NULL;
	}
	return &h2client_ops;
}

/*
 * A stream to be could not be opened (errno err): passive health, or the
 * hop is down. logged: the upstream said why already (a connect that
 * failed later, on the loop).
 */
static void
ex_open_failed(struct exchange *ex, const struct snap_backend *be, int err, int logged)
{
	char name[BEADDR_STR_MAX];

	ex_be_name(ex, name, sizeof(name));
	shm_add(&ex->w->stats->connect_failures, 1);
	ex->hop_down = (be->flags & SNAP_BACKEND_TUNNEL) != 0;
	if (ex->hop_down) {
		/* The tunnel process is not there: no fault of this backend's. */
		log_info("backend %u (%s): the tunnel hop %s: %s", be->id, name,
		    ex->w->cfg.tunnel_hop[0] != '\0' ? ex->w->cfg.tunnel_hop : "(none)",
		    ex->w->cfg.tunnel_hop[0] != '\0' ? strerror(err) : "listen_tunnel is not set");
		return;
	}
	if (!logged)
		log_info("backend %u (%s): connect: %s", be->id, name, strerror(err));
	if (balance_backend_fault(err))
		balance_mark_down(ex->w, ex->req.snap, be);
}

/* A pinned exchange has one place to go: its tunnel's agents (the upstream picks one). */
static int
ex_open_pinned(struct exchange *ex, struct upstream_opts *o)
{
	o->snap = NULL;
	o->route = NULL;
	ex->be = &ex->pin.be;
	if (ex->opened)
		shm_add(&ex->w->stats->retries, 1);
	ex->opened = 1;
	ex->up = ex->up_ops->open(ex->w, ex->be, o, ex->req.head, &ex_events, ex);
	if (ex->up == NULL) {
		log_info("tunnel %s: %s", ex->pin.name, errno == ENOENT ? "no agent attached" :
		    strerror(errno));
		return -1;
	}
	ex_rearm(ex);
	return ex_replay(ex);
}

/* Opens a stream to the next backend to try; 0, or -1 when none is left. */
static int
ex_open(struct exchange *ex, int fresh)
{
	const struct snap_route *r = ex->req.route;
	struct upstream_opts o = { ex_ms(r->connect_ms, ex->w->cfg.connect_timeout_ms), fresh,
	    ex->req.snap, r, 0, NULL };

	const struct snap_backend *be;

	if (ex->pinned)
		return ex_open_pinned(ex, &o);
	if (ex->cached) {
		struct cache_hit *hit = ex->swap_hit;

		ex->swap_hit = NULL;	/* the cache upstream owns it, also when it fails */
		return hit != NULL ? ex_serve_hit(ex, hit) : -1;
	}
	/* ex->be stays the last one tried: the log names it when all failed. */
	while ((be = balance_pick(ex->w, ex->req.snap, r, &ex->start, &ex->tries)) != NULL) {
		ex->be = be;
		ex->picked = 1;
		if ((ex->up_ops = ex_ops_for(ex, be)) == NULL) {
			ex->up_ops = ex->route_ops;
			ex->hop_down = 0;
			ex->tries++;
			continue;
		}
		/* Every attempt after the first is a retry, whichever failure led to it. */
		if (ex->opened)
			shm_add(&ex->w->stats->retries, 1);
		ex->opened = 1;
		/* The hop to the tunnel process is ours: no PROXY header on it. */
		o.pp = (be->flags & SNAP_BACKEND_TUNNEL) ? 0 : r->backend_pp;
		o.client = ex->req.addrs;
		ex->up = ex->up_ops->open(ex->w, ex->be, &o, ex->req.head, &ex_events, ex);
		if (ex->up != NULL) {
			if ((ex->flight = balance_entry(ex->w, ex->req.snap, be)) != NULL)
				health_inflight_add(&ex->w->shm, ex->flight, (uint32_t)ex->w->index);
			ex_rearm(ex);
			return ex_replay(ex);
		}
		ex_open_failed(ex, be, errno, 0);
		ex->tries++;
	}
	return -1;
}

/* --- the upstream's events */

static int
ex_on_head(void *arg, struct msg_head *resp)
{
	struct exchange *ex = arg;
	int nobody = ex->req.head->method == MSG_M_HEAD || resp->status / 100 == 1 ||
	    resp->status == 204 || resp->status == 304 || resp->complete;
	int hsts = ex->req.tls && (ex->req.route->flags & SNAP_ROUTE_HSTS), varies;
	char name[BEADDR_STR_MAX];

	ex->got_byte = 1;
	if (forward_response(resp, hsts, httpdate_now(&ex->w->date)) == -1) {
		log_info("backend %u (%s): response head too large", ex->be->id,
		    ex_be_name(ex, name, sizeof(name)));
		return -1;
	}
	if (resp->status == 101) {
		ex->pipe = 1;
		ex->req_done = 0;	/* the client's bytes flow on until it half-closes */
		ex->status = 101;
		ex_log(ex, 101, 0);
	} else if (resp->status / 100 != 1) {
		ex->status = resp->status;
		if (ex->cache_status != NULL && !ex->cache_swap &&
		    (ex->req.route->flags & SNAP_ROUTE_CACHE_DEBUG) &&
		    msg_add(resp, "X-Cache", ex->cache_status) == -1)
			return -1;
		if (ex->cf != NULL && !ex->cached &&
		    cache_fill_head(ex->cf, resp, &ex->swap_hit) == 1) {
			/* The stored response answers: it is opened at the backend's end. */
			ex->cache_status = resp->status == 304 ? "REVALIDATED" : "STALE";
			ex->cache_swap = 1;
			ex_rearm(ex);
			return 0;
		}
		varies = ex->cf != NULL && !ex->cached &&
		    compress_varies(ex->req.head, resp, ex->req.route->flags, nobody);
		if (compress_begin(&ex->cz, ex->req.head, resp, ex->req.route->flags, nobody) == -1) {
			log_info("backend %u (%s): response head too large to compress",
			    ex->be->id, ex_be_name(ex, name, sizeof(name)));
			return -1;
		}
		if (varies)	/* the variant the client gets is what is stored */
			cache_fill_encoded(ex->cf, resp);
	}
	if (ex->ops->head(ex->arg, resp, nobody) == -1)
		return -1;
	if (resp->status / 100 != 1 || ex->pipe) {
		ex->head_sent = 1;
		free(ex->replay);	/* no retry once the answer has begun */
		ex->replay = NULL;
		ex->replay_len = 0;
	}
	ex_rearm(ex);
	return 0;
}

static int
ex_on_body(void *arg, const char *p, size_t n)
{
	struct exchange *ex = arg;

	ex_rearm(ex);
	if (ex->cache_swap)
		return 0;	/* the 304's or error's body is not what the client gets */
	ex->bytes_out += n;
	if (ex->cf != NULL && !ex->cached && ex->cz == NULL)
		cache_fill_body(ex->cf, p, n);	/* else the stage's output (ex_cz_sink) */
	if (ex->detached && !cache_fill_storing(ex->cf))
		return -1;	/* past the object limit: nobody wants the rest */
	if (ex->cz != NULL)
		return compress_body(ex->cz, p, n) == -1 ? -1 :
		    compress_drain(ex->cz, &ex_cz_sink, ex);
	return ex->ops->body(ex->arg, p, n);
}

/* A hit's body straight from the map to the socket, when nothing stands between. */
static size_t
ex_on_body_direct(void *arg, const char *p, size_t n)
{
	struct exchange *ex = arg;
	size_t k;

	if (ex->cache_swap || ex->cz != NULL || ex->detached ||
	    (ex->cf != NULL && !ex->cached) || ex->ops->body_direct == NULL)
		return 0;
	ex_rearm(ex);
	k = ex->ops->body_direct(ex->arg, p, n);
	ex->bytes_out += k;
	return k;
}

/* Between the compression stage and the sink: a fill stores the encoded bytes. */
static int
ex_cz_body(void *arg, const char *p, size_t n)
{
	struct exchange *ex = arg;

	if (ex->cf != NULL && !ex->cached)
		cache_fill_body(ex->cf, p, n);
	return ex->ops->body(ex->arg, p, n);
}

static size_t
ex_cz_room(void *arg)
{
	struct exchange *ex = arg;

	return ex->ops->room(ex->arg);
}

/* compress_drain calls body() and room() only. */
static const struct sink_ops ex_cz_sink = {
	NULL, ex_cz_body, NULL, NULL, NULL, ex_cz_room, NULL, NULL,
};

static void
ex_pipe_check(struct exchange *ex)
{
	if (ex->resp_ended && ex->req_sent)
		ex_finish(ex, 1, NULL, 0);
}

static void
ex_on_end(void *arg, struct msg_head *resp)
{
	struct exchange *ex = arg;
	struct cache_hit *hit;

	if (ex->cache_swap) {
		hit = ex->swap_hit;
		ex->swap_hit = NULL;
		if (ex_serve_hit(ex, hit) == -1)
			ex_finish(ex, 0, NULL, 502);
		return;
	}
	if (!ex->pipe && ex->cz != NULL) {
		compress_end(ex->cz);
		if (compress_drain(ex->cz, &ex_cz_sink, ex) == -1) {
			ex_finish(ex, 0, NULL, 502);
			return;
		}
		if (compress_pending(ex->cz)) {
			/* The upstream stays open (resp stays valid) until the sink took the rest. */
			ex->end_resp = resp;
			ex->end_wait = 1;
			return;
		}
	}
	if (!ex->pipe) {
		ex_finish(ex, 1, resp, 0);
		return;
	}
	ex->resp_ended = 1;
	ex->ops->shut(ex->arg);
	ex_pipe_check(ex);
}

static void
ex_on_sent(void *arg)
{
	struct exchange *ex = arg;

	if (!ex->pipe)
		return;
	ex->req_sent = 1;
	ex_pipe_check(ex);
}

/*
 * Pinned: only a stream the agent provably never processed (STALE: refused,
 * or above its GOAWAY) goes to another agent; no slot in time is a 503.
 */
static void
ex_fail_pinned(struct exchange *ex, enum upstream_err err)
{
	if (err == UPSTREAM_CONNECT) {
		ex_finish(ex, 0, NULL, 503);
		return;
	}
	if (err != UPSTREAM_STALE || ex->replay_lost) {
		ex_finish(ex, 0, NULL, 502);
		return;
	}
	if (ex_open(ex, 1) == -1)
		ex_finish(ex, 0, NULL, 503);
}

static void
ex_on_fail(void *arg, enum upstream_err err, int code)
{
	struct exchange *ex = arg;

	ex_up_close(ex);
	ex->up = NULL;
	if (ex->pinned) {
		ex_fail_pinned(ex, err);
		return;
	}
	if (ex->detached) {	/* the request head is the client's, gone: no retry */
		ex_finish(ex, 0, NULL, 502);
		return;
	}
	switch (err) {
	case UPSTREAM_CONNECT:
		/* Nothing was sent: the next backend may take it, if the replay holds the body. */
		ex_open_failed(ex, ex->be, code, 1);
		ex->tries++;
		if (ex->replay_lost) {
			ex_finish(ex, 0, NULL, ex_none_left(ex));
			return;
		}
		break;
	case UPSTREAM_RESET:
		if (ex->retried || !msg_idempotent(ex->req.head) || ex->replay_lost) {
			ex_finish(ex, 0, NULL, 502);
			return;
		}
		ex->retried = 1;
		break;
	case UPSTREAM_STALE:
		if (ex->replay_lost) {
			ex_finish(ex, 0, NULL, 502);
			return;
		}
		break;
	case UPSTREAM_BROKEN:
	default:
		ex_finish(ex, 0, NULL, 502);
		return;
	}
	if (ex_open(ex, 1) == -1)
		ex_finish(ex, 0, NULL, ex_none_left(ex));
}

static size_t
ex_on_room(void *arg)
{
	struct exchange *ex = arg;

	if (ex->ops == NULL)
		return 0;
	if (ex->cz != NULL) {
		/* What waits goes first; a sink that failed is failed from the loop. */
		if (compress_drain(ex->cz, &ex_cz_sink, ex) == -1) {
			ex->cz_resume = 1;
			ex_kick(ex);
			return 0;
		}
		return compress_room(ex->cz, ex->ops->room(ex->arg));
	}
	return ex->ops->room(ex->arg);
}

static void
ex_on_more(void *arg)
{
	struct exchange *ex = arg;

	if (ex->dead)
		return;
	ex_rearm(ex);
	if (!ex->req_done && ex->ops->more != NULL)
		ex->ops->more(ex->arg);
}

static const struct upstream_events ex_events = {
	ex_on_head, ex_on_body, ex_on_end, ex_on_fail, ex_on_room, ex_on_more, ex_on_sent,
	ex_on_body_direct,
};

/* --- the session's side */

/* A gRPC call, and the deadline its valid grpc-timeout sets (an invalid one is ignored). */
static void
ex_deadline(struct exchange *ex)
{
	uint64_t ms;

	ex->grpc = grpc_is_call(ex->req.head) != 0;
	if (ex->grpc && grpc_timeout_of(ex->req.head, &ms) == 0) {
		ex->has_deadline = 1;
		ex->deadline = ev_now(ex->w->loop) + ms;
	}
}

/* What both starts share: the exchange, not yet opened; NULL when out of memory. */
static struct exchange *
ex_new(struct worker *w, const struct exchange_req *r, const struct upstream_ops *ops,
    const struct sink_ops *sink, void *arg)
{
	/* malloc and an initialiser, not calloc: glibc's calloc skips its thread cache (per request). */
	struct exchange *ex = malloc(sizeof(*ex));

	if (ex == NULL) {
		snap_unref(r->snap);
		return NULL;
	}
	*ex = (struct exchange){ 0 };
	ex->w = w;
	ex->req = *r;
	util_strlcpy(ex->host, r->host, sizeof(ex->host));
	ex->req.host = ex->host;
	ex->ops = sink;
	ex->arg = arg;
	ex->route_ops = ops != NULL ? ops : &h1client_ops;
	ex->up_ops = ex->route_ops;
	ev_timer_init(&ex->timer, ex_on_timer, ex);
	ex_deadline(ex);
	util_hex64(ex->reqid, w->reqid_base + w->requests);
	return ex;
}

/* cf: wait for its entry first (cache_wait), the exchange owns it from here. */
static struct exchange *
ex_start(struct worker *w, const struct exchange_req *r, const struct upstream_ops *ops,
    const struct sink_ops *sink, void *arg, unsigned *status, struct cache_fill *cf)
{
	struct exchange *ex = ex_new(w, r, ops, sink, arg);

	*status = 500;
	if (ex == NULL) {
		cache_fill_free(cf);
		return NULL;
	}
	if (cf != NULL) {
		ex->cf = cf;
		ex->cache_wait = 1;
		ex->delayed = 1;	/* the rate limit's wait and this one end alike */
		ex->cache_status = "MISS";
	}
	ex->start = balance_start(w, r->route);
	if (forward_request(r->head, &(struct fwd_info){ r->client_ip, r->proto, ex->reqid,
	    r->trusted }) == -1) {
		*status = 431;
		goto fail;
	}
	if (r->delay_ms > 0 || ex->cache_wait) {
		/* In the worker's loop, on the exchange's own timer: nothing blocks. */
		ex->delayed = 1;
		ev_timer_start(w->loop, &ex->timer, r->delay_ms > 0 ? r->delay_ms : CACHE_POLL_MS);
		return ex;
	}
	if (ex_open(ex, 0) == -1) {
		*status = ex_none_left(ex);
		goto fail;
	}
	return ex;
fail:
	ex_log(ex, *status, 1);	/* with the last backend tried */
	ex_free(ex);
	return NULL;
}

struct exchange *
exchange_start(struct worker *w, const struct exchange_req *r, const struct upstream_ops *ops,
    const struct sink_ops *sink, void *arg, unsigned *status)
{
	return ex_start(w, r, ops, sink, arg, status, NULL);
}

struct exchange *
exchange_start_waiting(struct worker *w, const struct exchange_req *r,
    const struct upstream_ops *ops, struct cache_fill *cf, const struct sink_ops *sink,
    void *arg, unsigned *status)
{
	return ex_start(w, r, ops, sink, arg, status, cf);
}

struct exchange *
exchange_start_pinned(struct worker *w, const struct exchange_req *r,
    const struct upstream_tunnel *to, const struct upstream_ops *ops,
    const struct sink_ops *sink, void *arg, unsigned *status)
{
	struct exchange *ex = ex_new(w, r, ops != NULL ? ops : &h2client_tunnel_ops, sink, arg);

	*status = 500;
	if (ex == NULL)
		return NULL;
	ex->pinned = 1;
	ex->pin = *to;
	ex->req.route = &ex_no_route;
	*status = 503;
	if (ex_open(ex, 0) == -1) {
		ex_log(ex, *status, 1);
		ex_free(ex);
		return NULL;
	}
	return ex;
}

struct exchange *
exchange_start_cached(struct worker *w, const struct exchange_req *r, struct cache_hit *hit,
    const struct sink_ops *sink, void *arg, unsigned *status)
{
	struct exchange *ex = ex_new(w, r, &cacheserve_ops, sink, arg);

	*status = 500;
	if (ex == NULL) {
		cache_hit_free(hit);
		return NULL;
	}
	ex->cached = 1;
	ex->cache_status = "HIT";
	ex->be = &ex_cache_be;
	ex->swap_hit = hit;
	if (ex_open(ex, 0) == -1) {
		ex_log(ex, *status, 1);
		ex_free(ex);
		return NULL;
	}
	return ex;
}

void
exchange_cache(struct exchange *ex, struct cache_fill *cf, const char *status)
{
	ex->cf = cf;
	ex->cache_status = status;
}

size_t
exchange_room(struct exchange *ex)
{
	if (ex->too_large)
		return BUF_SIZE;	/* dropped until the 413 goes out */
	return ex->up != NULL ? ex->up_ops->room(ex->up) : 0;
}

/* Keeps what a retry would have to send again, while that is cheap. */
static void
ex_keep(struct exchange *ex, const char *p, size_t n)
{
	char *r;

	if (ex->replay_lost || ex->head_sent || ex->pipe)
		return;
	if (ex->replay_len + n > REPLAY_MAX || (r = realloc(ex->replay, ex->replay_len + n)) == NULL) {
		free(ex->replay);
		ex->replay = NULL;
		ex->replay_len = 0;
		ex->replay_lost = 1;
		return;
	}
	memcpy(r + ex->replay_len, p, n);
	ex->replay = r;
	ex->replay_len += n;
}

int
exchange_body(struct exchange *ex, const char *p, size_t n)
{
	if (n == 0 || ex->too_large)
		return 0;
	if (!ex->pipe && ex->req.max_body != 0 && ex->bytes_in + n > ex->req.max_body) {
		log_info("request body over %" PRIu64 " bytes: 413", ex->req.max_body);
		ex->too_large = 1;
		ex_kick(ex);
		return 0;
	}
	if (ex->up == NULL || ex->up_ops->send(ex->up, p, n) == -1)
		return -1;
	ex_keep(ex, p, n);
	ex->bytes_in += n;
	if (ex->pipe || ex->grpc)	/* bytes either way keep a long stream alive */
		ex_rearm(ex);
	return 0;
}

int
exchange_body_end(struct exchange *ex, const struct msg_head *req)
{
	if (ex->too_large)
		return 0;
	ex->req_done = 1;
	ex->trailers = req;
	if (ex->delayed)
		return 0;	/* ex_open's replay ends the request */
	return ex->up != NULL ? ex->up_ops->end(ex->up, req) : -1;
}

void
exchange_resume(struct exchange *ex)
{
	if (ex->cz != NULL) {
		/* Called inside the session's call: the sink is fed from the loop. */
		ex->cz_resume = 1;
		ex_kick(ex);
		return;
	}
	if (ex->up != NULL)
		ex->up_ops->resume(ex->up);
}

/*
 * The client left mid-response: a fill the cache can finish goes on into
 * cache_drop_sink (the request is complete: the exchange needs nothing of
 * the client's from here on, its head included). 1 when it goes on.
 */
static int
ex_detach(struct exchange *ex)
{
	if (ex->cf == NULL || ex->cached || ex->cache_swap || ex->pipe || !ex->head_sent ||
	    !ex->req_done || ex->up == NULL || !cache_fill_storing(ex->cf))
		return 0;
	ex->ops = &cache_drop_sink;
	ex->arg = NULL;
	ex->detached = 1;
	/* It may have been paused for the client's room; a stage drains into the drop first. */
	if (ex->cz != NULL)
		ex->cz_resume = 1;
	else
		ex->detach_resume = 1;
	ex_kick(ex);
	return 1;
}

void
exchange_abort(struct exchange *ex, unsigned status)
{
	if (ex->dead)
		return;
	if (status != 0)
		ex_log(ex, ex->pipe ? ex->status : status, 0);
	if (status == 499 && ex_detach(ex))
		return;
	ex->ops = NULL;
	ex->dead = 1;
	if (ex->up != NULL)
		ex_up_close(ex);
	ex->up = NULL;
	ex_kick(ex);
}
