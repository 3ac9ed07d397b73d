/*
 * The exchange (the proxy core): one request forwarded to a backend of its
 * route and the response streamed back. It sees a request head, body bytes
 * pushed by the session, a response sink (struct sink_ops: the client's
 * session) and an upstream (worker/upstream.h) — never a socket — so every
 * client protocol and every backend transport meet here: backend choice,
 * retries, timeouts, back-pressure both ways, the access log, and after a
 * 101 the byte pipe of an upgraded connection.
 *
 * Nothing here calls the sink from inside the session's own calls: work is
 * deferred to the event loop, so a sink may free itself in any callback.
 * The exchange is gone after it called end() or fail().
 */
#ifndef HALOYD_WORKER_EXCHANGE_H
#define HALOYD_WORKER_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct exchange;
struct msg_head;
struct snap;
struct snap_route;
struct upstream_ops;
struct proxyproto_addrs;

struct sink_ops {
	/*
	 * A response head: an interim 1xx (more follow), a 101 (from now on
	 * body() carries raw bytes both ways) or the final one. nobody: no body
	 * follows. The head is transformed for the client already.
	 */
	int (*head)(void *arg, struct msg_head *resp, int nobody);
	/* Body bytes (never more than room() said). 0 or -1. */
	int (*body)(void *arg, const char *p, size_t n);
	/* Upgraded only: the backend sent its last byte; half-close toward the client. */
	void (*shut)(void *arg);
	/* The response is complete; trailers are in resp (NULL after an upgrade). Gone after this. */
	void (*end)(void *arg, struct msg_head *resp);
	/* It failed: answer status if nothing was sent yet, else (status 0) cut the response. Gone after this. */
	void (*fail)(void *arg, unsigned status);
	/* Bytes the sink takes now. */
	size_t (*room)(void *arg);
	/* The exchange takes request body again (after exchange_room() was short). */
	void (*more)(void *arg);
	/*
	 * Optional (NULL: none): body bytes straight to the client without a
	 * copy, as many as its socket takes now; how many (0: it cannot, use
	 * body()). p need not stay valid after the call.
	 */
	size_t (*body_direct)(void *arg, const char *p, size_t n);
};

/* A routed request, as the request step (worker/request.c) hands it over. */
struct exchange_req {
	struct msg_head *head;		/* the session's; valid until end() or fail() */
	struct snap *snap;		/* the map it was routed with: the exchange takes this reference */
	const struct snap_route *route;
	const char *host;		/* normalised */
	const char *client_ip;
	const char *proto;		/* "http" / "https" */
	int trusted;			/* the peer is a trusted proxy (X-Forwarded-For kept) */
	int tls;			/* the client came over TLS (HSTS) */
	uint64_t start_us;
	uint64_t max_body;		/* request body limit, 0 = none */
	uint32_t delay_ms;		/* the rate limit's wait before a backend is opened */
	const struct proxyproto_addrs *addrs;	/* the client connection's ends, or NULL; lives
						 * as long as client_ip */
};

/*
 * Starts an exchange on upstream ops (NULL: the HTTP/1.1 pool). NULL with
 * *status set, logged, and the snapshot reference dropped when it cannot start.
 */
struct exchange *exchange_start(struct worker *w, const struct exchange_req *r,
    const struct upstream_ops *ops, const struct sink_ops *sink, void *arg, unsigned *status);
/*
 * Pinned (the tunnel process's hop, tunnel/hop.c): every attempt goes to
 * the agents of tunnel to (worker/upstream.h: h2client_tunnel_ops), with no
 * route (r->route and r->snap NULL: the global timeouts), no forwarding
 * transform (the worker on the other side of the hop did it), no
 * compression, no HSTS. None attached or no stream slot in time: 503; lost
 * before the head: a reset instead of the 502 (the worker answers it);
 * only a stream the agent provably did not process (refused, above its
 * GOAWAY) is retried, on another agent when there is one. ops NULL:
 * h2client_tunnel_ops (the unit tests give a fake).
 */
struct upstream_tunnel;
struct exchange *exchange_start_pinned(struct worker *w, const struct exchange_req *r,
    const struct upstream_tunnel *to, const struct upstream_ops *ops,
    const struct sink_ops *sink, void *arg, unsigned *status);
/*
 * Served from the cache (worker/cache.h): hit (owned from here, also on
 * failure) goes to the sink through the cache upstream as a backend's
 * response would, with the route's response transforms and the access entry.
 */
struct cache_hit;
struct cache_fill;
struct exchange *exchange_start_cached(struct worker *w, const struct exchange_req *r,
    struct cache_hit *hit, const struct sink_ops *sink, void *arg, unsigned *status);
/*
 * As exchange_start, but another request fills the cache entry: the
 * backend is opened only when cf's poll says so (worker/cache.h), else the
 * entry answers. cf is owned from here, also on failure.
 */
struct exchange *exchange_start_waiting(struct worker *w, const struct exchange_req *r,
    const struct upstream_ops *ops, struct cache_fill *cf, const struct sink_ops *sink,
    void *arg, unsigned *status);
/*
 * The response is stored while it streams (cf owned from here); status is
 * the access entry's cache field ("MISS", "EXPIRED", "BYPASS").
 */
void exchange_cache(struct exchange *ex, struct cache_fill *cf, const char *status);
/* Request body bytes (raw bytes after an upgrade), at most exchange_room(); 0 or -1. */
int exchange_body(struct exchange *ex, const char *p, size_t n);
/* The request is complete (after an upgrade: the client half-closed); trailers in req. */
int exchange_body_end(struct exchange *ex, const struct msg_head *req);
/* Request body bytes exchange_body() takes now. */
size_t exchange_room(struct exchange *ex);
/* The sink has room again. */
void exchange_resume(struct exchange *ex);
/*
 * The client went away (log status 499) or the session answers itself (0:
 * it logs): drop everything, no more callbacks.
 */
void exchange_abort(struct exchange *ex, unsigned status);

#endif
