/*
 * The request step (see request.h): host, route, local answers, and the
 * start of an exchange. Every protocol's session calls request_step, so a
 * policy written here holds for all of them.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "share/hostname.h"
#include "share/log.h"
#include "share/snap.h"
#include "worker/accesslog.h"
#include "worker/acmechallenge.h"
#include "worker/cache.h"
#include "worker/context.h"
#include "worker/errpage.h"
#include "worker/exchange.h"
#include "worker/forward.h"
#include "worker/grpc.h"
#include "worker/pathroute.h"
#include "worker/ratelimit.h"
#include "worker/request.h"
#include "worker/tls.h"
#include "worker/upstream.h"

void
request_answer_free(struct answer *ans)
{
	msg_free(&ans->head);
}

/* A response head for a local answer with a body of len bytes (sent unless HEAD). */
static int
request_answer(struct worker *w, struct answer *ans, const struct msg_head *req, unsigned status,
    const char *type, const char *body, size_t len)
{
	struct msg_head *h = &ans->head;
	const char *reason = errpage_reason(status);

	msg_reset(h);
	h->status = status;
	h->major = 1;
	h->minor = 1;
	h->has_length = 1;
	h->length = len;
	ans->body = req != NULL && req->method == MSG_M_HEAD ? NULL : body;
	ans->body_len = ans->body != NULL ? len : 0;
	if (msg_str(h, reason, strlen(reason), &h->reason) == -1 ||
	    msg_add(h, "Date", httpdate_now(&w->date)) == -1 ||
	    (type != NULL && msg_add(h, "Content-Type", type) == -1))
		return -1;
	return 0;
}

int
request_error(struct worker *w, unsigned status, enum errpage_kind kind,
    const struct msg_head *h, int hsts, struct answer *ans)
{
	int code = grpc_local_status(h, status);
	const char *body, *retry = errpage_retry_after(status);
	size_t len;

	ans->close = status == 400 || status == 408;
	/* A gRPC client reads grpc-status, and "unexpected HTTP status" tells it nothing. */
	if (code >= 0) {
		ans->body = NULL;
		ans->body_len = 0;
		if (grpc_answer(&ans->head, (unsigned)code, grpc_message_of(status)) == -1 ||
		    forward_response(&ans->head, hsts, httpdate_now(&w->date)) == -1)
			return -1;
		return 0;
	}
	body = errpage_body(&w->errpages, status, kind, ans->page, sizeof(ans->page), &len);
	/* A 503 is a tunnel without agents (or a hop without its process): they come back. */
	if (request_answer(w, ans, h, status, "text/html; charset=utf-8", body, len) == -1 ||
	    msg_add(&ans->head, "Cache-Control", "no-store") == -1 ||
	    (retry != NULL && msg_add(&ans->head, "Retry-After", retry) == -1) ||
	    forward_response(&ans->head, hsts, httpdate_now(&w->date)) == -1)
		return -1;
	return 0;
}

/* An error page, logged: the request ends here. */
static int
request_refuse(struct worker *w, struct request *r, const struct msg_head *h, unsigned status,
    enum errpage_kind kind, uint64_t start_us)
{
	accesslog_local(w, h, r->host, r->route_id, status, start_us, r->client);
	return request_error(w, status, kind, h, r->hsts, &r->ans);
}

/*
 * The host the request names: an absolute-form target ("http://host/path")
 * must name the Host's host (RFC 9112 3.2.2: a mismatch is how requests get
 * past host-based rules) and is forwarded in origin-form. -1 refuses it.
 */
static int
request_host(struct msg_head *h, struct request *r)
{
	const struct msg_field *host = NULL;
	const char *t = msg_s(h, h->path);
	char name[HOSTNAME_MAX + 1];
	size_t skip, alen;
	uint32_t i, nhost = 0;

	/* RFC 9112 3.2: two Host fields are a 400 (which one would the backend believe?). */
	for (i = 0; i < msg_nheaders(h); i++)
		if (msg_field_is(h, &h->f[i], "host") && nhost++ == 0)
			host = &h->f[i];
	/* RFC 9112 3.2: HTTP/1.1 needs Host, even with an absolute-form target. */
	if (nhost > 1 || (nhost == 0 && h->major == 1 && h->minor >= 1))
		return -1;
	if (host != NULL && hostname_from_header(msg_value(h, host), host->value.len, r->host) < 0)
		return -1;
	/* HTTP/2: :authority, else Host; both, naming different hosts, is a 400. */
	if (h->authority.len > 0) {
		if (hostname_from_header(msg_s(h, h->authority), h->authority.len, name) < 0 ||
		    (host != NULL && strcmp(name, r->host) != 0))
			return -1;
		memcpy(r->host, name, sizeof(name));
	}
	if (h->major >= 2)
		return r->host[0] == '\0' ? -1 : 0;
	if (t[0] == '/')	/* origin-form, the usual one */
		return 0;
	if (strncasecmp(t, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(t, "https://", 8) == 0)
		skip = 8;
	else
		return 0;
	alen = strcspn(t + skip, "/?#");
	if (alen == 0 || memchr(t + skip, '@', alen) != NULL ||
	    hostname_from_header(t + skip, alen, name) < 0)
		return -1;
	if (host != NULL && strcmp(name, r->host) != 0)
		return -1;
	memcpy(r->host, name, sizeof(name));
	h->path.off += (uint32_t)(skip + alen);
	h->path.len -= (uint32_t)(skip + alen);
	return 0;
}

/*
 * What no route may see, whatever the protocol: a method we do not
 * forward (CONNECT: we are no forward proxy; TRACE would echo a client's
 * cookies to a script, cross-site tracing), an asterisk-form target on
 * another method than OPTIONS (RFC 9112 3.2.4), an expectation other than
 * 100-continue (RFC 9110 10.1.1: 417; HTTP/1.0 expectations are ignored).
 * The status, or 0.
 */
static unsigned
request_check(const struct msg_head *h)
{
	const struct msg_field *f;

	if (h->method == MSG_M_CONNECT || h->method == MSG_M_TRACE)
		return 501;
	if (h->path.len == 1 && msg_s(h, h->path)[0] == '*' && h->method != MSG_M_OPTIONS)
		return 400;
	if ((h->major > 1 || h->minor > 0) && (f = msg_find(h, "expect")) != NULL &&
	    strcasecmp(msg_value(h, f), "100-continue") != 0)
		return 417;
	return 0;
}

/* The ACME HTTP-01 answer from the snapshot, before any routing. */
static int
request_challenge(struct worker *w, struct request *r, const struct msg_head *h,
    const struct snap *s, uint64_t start_us)
{
	const char *ka = acmechal_lookup(s, h);
	unsigned status = ka != NULL ? 200 : 404;

	accesslog_local(w, h, r->host, r->route_id, status, start_us, r->client);
	return request_answer(w, &r->ans, h, status, "text/plain", ka, ka != NULL ? strlen(ka) : 0);
}

/*
 * Port 80 of a route with a certificate of its own goes to https:// (301
 * for GET and HEAD, else 308) unless the route opts out; 0 when it stays.
 */
static unsigned
request_redirect_status(struct worker *w, const struct msg_head *h, const struct snap_route *route,
    const char *host)
{
	if (route == NULL || tls_https_port(w->tls) == 0 ||
	    strncmp(msg_s(h, h->path), ACMECHAL_PREFIX, strlen(ACMECHAL_PREFIX)) == 0 ||
	    (route->flags & SNAP_ROUTE_NO_HTTPS_REDIRECT) ||
	    !tls_has_own_cert(w->tls, host, strlen(host)))
		return 0;
	return h->method == MSG_M_GET || h->method == MSG_M_HEAD ? 301 : 308;
}

static int
request_redirect(struct worker *w, struct request *r, const struct msg_head *h, unsigned status,
    uint64_t start_us)
{
	char loc[HOSTNAME_MAX + MSG_TARGET_MAX + 32], port[8] = "";
	const char *path = msg_s(h, h->path);

	if (tls_https_port(w->tls) != 443)
		snprintf(port, sizeof(port), ":%u", tls_https_port(w->tls));
	snprintf(loc, sizeof(loc), "https://%s%s%s%s", r->host, port, path[0] == '/' ? "" : "/", path);
	accesslog_local(w, h, r->host, r->route_id, status, start_us, r->client);
	if (request_answer(w, &r->ans, h, status, NULL, NULL, 0) == -1 ||
	    msg_add(&r->ans.head, "Location", loc) == -1 ||
	    msg_add(&r->ans.head, "Cache-Control", "no-store") == -1)
		return -1;
	return 0;
}

/*
 * The upstream that speaks the route's backend protocol; NULL (a reason
 * logged) when the request cannot go there: an upgrade has no HTTP/2 form
 * we speak to backends, and h2c and h2 never fall back to HTTP/1.1.
 */
static const struct upstream_ops *
request_upstream(const struct snap_route *route, const struct msg_head *h)
{
	switch (route->proto) {
	case SNAP_PROTO_HTTP1:
	case SNAP_PROTO_HTTPS:	/* h1client runs TLS itself (worker/tlsclient.c) */
		return &h1client_ops;
	case SNAP_PROTO_H2C:
	case SNAP_PROTO_H2:	/* h2client runs TLS itself (worker/tlsclient.c) */
		if (h->upgrade || h->method == MSG_M_CONNECT) {
			log_info("route %u: no upgrade over an HTTP/2 backend: 502", route->id);
			return NULL;
		}
		return &h2client_ops;
	default:
		log_info("route %u: backend protocol %s not available", route->id,
		    snap_proto_name(route->proto));
		return NULL;
	}
}

/* The rate limit refused it: 429 with Retry-After (a gRPC call: RESOURCE_EXHAUSTED). */
static int
request_limited(struct worker *w, struct request *r, const struct msg_head *h, uint32_t retry_s,
    uint64_t start_us)
{
	char v[16];

	if (request_refuse(w, r, h, 429, ERRPAGE_STATUS, start_us) == -1)
		return -1;
	snprintf(v, sizeof(v), "%u", retry_s);
	return msg_add(&r->ans.head, "Retry-After", v);
}

/* A fresh stored response answers the client's conditional request: 304, logged. */
static int
request_cache_304(struct worker *w, struct request *r, const struct msg_head *h,
    struct cache_hit *hit, uint64_t start_us, int debug)
{
	int rc = cache_not_modified(hit, &r->ans.head);

	cache_hit_free(hit);
	r->ans.body = NULL;
	r->ans.body_len = 0;
	accesslog_write(w, &(struct accesslog_entry){ .req = h, .host = r->host, .backend = "cache",
	    .status = 304, .route_id = r->route_id, .local = 1, .start_us = start_us,
	    .cache = "HIT", .client = r->client });
	if (rc == -1 || forward_response(&r->ans.head, r->hsts, httpdate_now(&w->date)) == -1)
		return -1;
	if (debug)
		return msg_add(&r->ans.head, "X-Cache", "HIT");
	return 0;
}

/*
 * The exchange of a request on a caching route: a stored answer, or the
 * backend with the response stored on the way (worker/cache.c decides).
 */
static int
request_start(struct worker *w, struct request *r, struct msg_head *h,
    const struct exchange_req *xr, const struct upstream_ops *ops, const struct sink_ops *sink,
    void *arg, unsigned *status)
{
	struct cache_hit *hit;
	struct cache_fill *cf;
	const char *what = "MISS";

	switch (cache_request(w, xr->route, h, xr->proto, r->host, &hit, &cf)) {
	case CACHE_NOT_MODIFIED:
		snap_unref(xr->snap);
		*status = 0;
		return request_cache_304(w, r, h, hit, xr->start_us,
		    (xr->route->flags & SNAP_ROUTE_CACHE_DEBUG) != 0);
	case CACHE_HIT:
		r->ex = exchange_start_cached(w, xr, hit, sink, arg, status);
		return 0;
	case CACHE_HIT_REFRESH:
		/* First: the hit's exchange may drop the snapshot reference when it fails. */
		(void)cache_refresh_start(w, xr, ops);
		r->ex = exchange_start_cached(w, xr, hit, sink, arg, status);
		if (r->ex != NULL)
			exchange_cache(r->ex, NULL, "STALE");
		return 0;
	case CACHE_WAIT:
		r->ex = exchange_start_waiting(w, xr, ops, cf, sink, arg, status);
		return 0;
	case CACHE_PASS:
	default:
		break;
	}
	r->ex = exchange_start(w, xr, ops, sink, arg, status);
	if (r->ex == NULL || cf == NULL) {
		cache_fill_free(cf);
		return 0;
	}
	if (h->method != MSG_M_GET && h->method != MSG_M_HEAD)
		what = NULL;
	else if (msg_find(h, "if-none-match") != NULL || msg_find(h, "if-modified-since") != NULL)
		what = "EXPIRED";
	exchange_cache(r->ex, cf, what);
	return 0;
}

/* The route's answer: an exchange, or why there is none. */
static int
request_forward(struct worker *w, const struct request_peer *peer, struct msg_head *h,
    uint64_t start_us, const struct sink_ops *sink, void *arg, struct request *r,
    struct snap *s, const struct snap_route *route)
{
	uint64_t limit = route->max_body != 0 ? route->max_body : w->cfg.max_body;
	const struct upstream_ops *ops;
	struct ratelimit_result rl;
	unsigned status;

	/* Before anything else costs: a refused request must be cheap. */
	ratelimit_request(w, peer->client_ip, peer->addrs, peer->trusted, h, route, &rl);
	if (rl.v == RATELIMIT_REFUSE)
		return request_limited(w, r, h, rl.retry_after_s, start_us);
	if (route->be_count == 0)
		return request_refuse(w, r, h, 502, ERRPAGE_STATUS, start_us);
	if (limit != 0 && h->has_length && h->length > limit)
		return request_refuse(w, r, h, 413, ERRPAGE_STATUS, start_us);
	if ((ops = request_upstream(route, h)) == NULL)
		return request_refuse(w, r, h, 502, ERRPAGE_STATUS, start_us);
	if (request_start(w, r, h, &(struct exchange_req){ h, snap_ref(s), route, r->host,
	    peer->client_ip, peer->tls ? "https" : "http", peer->trusted, peer->tls, start_us,
	    limit, rl.delay_ms, peer->addrs }, ops, sink, arg, &status) == -1)
		return -1;
	if (status == 0)	/* answered from the cache */
		return 0;
	if (r->ex == NULL)	/* the exchange logged it, with the backend it tried */
		return request_error(w, status, ERRPAGE_STATUS, h, r->hsts, &r->ans);
	return 0;
}

int
request_step(struct worker *w, const struct request_peer *peer, struct msg_head *h,
    uint64_t start_us, const struct sink_ops *sink, void *arg, struct request *r)
{
	struct snap *s = w->snap;	/* the request holds this one map throughout */
	const struct snap_route *route = NULL;
	unsigned status;
	size_t plen = 0;

	r->host[0] = '\0';
	r->client = peer->client_ip;
	r->route_id = 0;
	r->hsts = 0;
	r->ex = NULL;
	r->ans.close = 0;
	if (request_host(h, r) == -1)
		return request_refuse(w, r, h, 400, ERRPAGE_STATUS, start_us);
	if ((status = request_check(h)) != 0)
		return request_refuse(w, r, h, status, ERRPAGE_STATUS, start_us);
	/* RFC 9110 7.6.2: with no hop left, we are the final recipient. */
	if (forward_max_forwards(h) == 0) {
		accesslog_local(w, h, r->host, r->route_id, 200, start_us, r->client);
		return request_answer(w, &r->ans, h, 200, NULL, NULL, 0);
	}
	if (acmechal_wanted(h))
		return request_challenge(w, r, h, s, start_us);
	if (s != NULL)
		route = snap_lookup(s, r->host, strlen(r->host));	/* else the default route */
	/* A prefix route's own settings (redirect, HSTS, limits) apply from here on. */
	if (route != NULL)
		plen = pathroute_pick(s, &route, h);
	r->route_id = route != NULL ? route->id : 0;
	r->hsts = peer->tls && route != NULL && (route->flags & SNAP_ROUTE_HSTS);
	if (!peer->tls && (status = request_redirect_status(w, h, route, r->host)) != 0)
		return request_redirect(w, r, h, status, start_us);
	if (route == NULL)
		return request_refuse(w, r, h, 404, s == NULL || snap_route_count(s) == 0 ?
		    ERRPAGE_WELCOME : ERRPAGE_STATUS, start_us);
	/* Only now: the redirect above keeps the path the client asked for. */
	if (pathroute_strip(route, h, plen) == -1)
		return request_refuse(w, r, h, 500, ERRPAGE_STATUS, start_us);
	return request_forward(w, peer, h, start_us, sink, arg, r, s, route);
}
