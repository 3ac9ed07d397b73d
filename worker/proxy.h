/*
 * The proxy core: one exchange forwards one request to a backend of its
 * route and streams the response back. It sees a request head, body bytes
 * pushed by the caller, and a response sink (struct proxy_sink_ops) — never
 * the client's socket — so HTTP/1.1, HTTP/2 and tunnel streams share it.
 *
 * Nothing here calls the sink from inside the caller's own calls: work is
 * deferred to the event loop, so a sink may free itself in any callback.
 * The exchange frees itself after calling end() or fail().
 */
#ifndef HALOYD_WORKER_PROXY_H
#define HALOYD_WORKER_PROXY_H

#include <stddef.h>

#include "worker/buf.h"
#include "worker/http1.h"

struct worker;
struct exchange;

struct proxy_sink_ops {
	/* A response head: an interim 1xx (more follow) or the final one. nobody: no body follows. */
	int (*head)(void *arg, struct http_head *resp, int nobody);
	/* Body bytes (never more than room() said). 0 or -1. */
	int (*body)(void *arg, const char *p, size_t n);
	/* The response is complete; trailers are in resp. The exchange is gone after this. */
	void (*end)(void *arg, struct http_head *resp);
	/* It failed: answer status if nothing was sent yet, else (status 0) cut the response. Gone after this. */
	void (*fail)(void *arg, unsigned status);
	/* Bytes the sink takes now. */
	size_t (*room)(void *arg);
	/* The exchange takes request body again (after proxy_room() was short). */
	void (*more)(void *arg);
	/*
	 * The backend accepted an upgrade with 101: the sink takes the backend
	 * socket and the bytes that followed the head (rest's block); idle_ms is
	 * the route's tunnel timeout. Gone after this.
	 */
	void (*upgrade)(void *arg, struct http_head *resp, int fd, struct buf *rest,
	    uint32_t idle_ms);
};

struct proxy_req {
	const struct http_head *head;	/* valid until end() or fail() */
	const char *host;		/* normalised */
	const char *client_ip;
	const char *proto;		/* "http" / "https" */
	int trusted;			/* the peer is a trusted proxy (X-Forwarded-For kept) */
	uint64_t start_us;
};

/*
 * Starts an exchange for r on the worker's current snapshot. NULL with
 * *status set when the worker answers itself (404 no route, 502...).
 */
struct exchange *proxy_start(struct worker *w, const struct proxy_req *r,
    const struct proxy_sink_ops *ops, void *arg, unsigned *status);
/* Request body bytes, at most proxy_room(); 0 or -1. */
int proxy_body(struct exchange *ex, const char *p, size_t n);
/* The request is complete; trailers are in req. */
int proxy_body_end(struct exchange *ex, const struct http_head *req);
/* Request body bytes proxy_body() takes now. */
size_t proxy_room(struct exchange *ex);
/* The sink has room again. */
void proxy_resume(struct exchange *ex);
/*
 * The client went away (log status 499) or the caller answers itself (0: it
 * logs): drop everything, no more callbacks.
 */
void proxy_abort(struct exchange *ex, unsigned status);

#endif
