/*
 * The proxy core (see proxy.h): choosing a backend round-robin, retrying
 * where it is safe, writing the request, parsing and streaming the response
 * with back-pressure in both directions, and the timeouts of an exchange.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "share/addr.h"
#include "share/log.h"
#include "share/snap.h"
#include "worker/accesslog.h"
#include "worker/context.h"
#include "worker/headers.h"
#include "worker/proxy.h"
#include "worker/upstream.h"

#define CHUNK_SLACK 64			/* chunk framing added per write */
#define RESP_HEAD_RESERVE (HEAD_MAX_BYTES + 2048)

struct exchange {
	struct worker *w;
	struct snap *snap;		/* the map this request started with */
	const struct snap_route *route;
	struct proxy_req req;
	const struct proxy_sink_ops *ops;
	void *arg;

	uint32_t first_be, tries;	/* round-robin start, backends tried */
	uint64_t max_body;		/* request body limit, 0 = none */
	int too_large;			/* the body crossed it: 413, the rest is dropped */
	int retried;			/* the one retry of a sent request is used */
	struct upstream *up;
	const struct snap_backend *be;
	struct ev_timer timer;

	struct buf out;			/* request bytes for the backend */
	size_t out_sent;		/* written but kept for a replay */
	int replay_lost;		/* bytes were dropped: no replay */
	int req_done;

	struct buf in;			/* response bytes from the backend */
	struct h1 h1;
	struct http_head *resp;
	int got_byte, head_sent, resp_done, upstream_eof;
	int upgraded;			/* 101 to an upgrade request */

	int dead, kick_pending;
	uint64_t bytes_in, bytes_out;
	char reqid[20];
};

static void ex_run(struct exchange *ex);
static void ex_on_upstream(struct upstream *u, uint32_t events, void *arg);
static void ex_upstream_failed(struct exchange *ex, int connect_failed);
static const struct h1_events ex_resp_events;

static void
ex_free(struct exchange *ex)
{
	struct worker *w = ex->w;

	if (ex->up != NULL)
		upstream_release(ex->up, 0);
	ev_timer_stop(w->loop, &ex->timer);
	buf_put(&w->bufs, &ex->out);
	buf_put(&w->bufs, &ex->in);
	pool_free(&w->heads, ex->resp);
	snap_unref(ex->snap);
	free(ex);
}

static void
ex_kick_run(void *arg)
{
	struct exchange *ex = arg;

	ex->kick_pending = 0;
	if (ex->dead)
		ex_free(ex);
	else
		ex_run(ex);
}

/* Runs the exchange after this batch of events (never inside the caller's call). */
static void
ex_kick(struct exchange *ex)
{
	if (ex->kick_pending)
		return;
	if (ev_defer(ex->w->loop, ex_kick_run, ex) == -1) {
		log_warnx("out of memory scheduling a request");
		return;
	}
	ex->kick_pending = 1;
}

static void
ex_log(struct exchange *ex, unsigned status)
{
	char be[ADDR_STR_MAX] = "";

	if (ex->be != NULL)
		accesslog_backend(ex->be, be, sizeof(be));
	accesslog_write(ex->w, &(struct accesslog_entry){
	    .req = ex->req.head, .host = ex->req.host, .backend = be, .request_id = ex->reqid,
	    .status = status, .bytes_in = ex->bytes_in, .bytes_out = ex->bytes_out,
	    .start_us = ex->req.start_us });
}

/* The end: tell the sink, then go (the sink may start the next request at once). */
static void
ex_finish(struct exchange *ex, unsigned status)
{
	const struct proxy_sink_ops *ops = ex->ops;
	void *arg = ex->arg;

	ex_log(ex, status == 0 ? (ex->resp != NULL ? ex->resp->status : 502) : status);
	if (ex->resp_done && status == 0)
		ops->end(arg, ex->resp);
	else
		ops->fail(arg, ex->head_sent ? 0 : status != 0 ? status : 502);
	ex->ops = NULL;
	ex->dead = 1;
	ex_kick(ex);
}

static int
ex_idempotent(const struct exchange *ex)
{
	switch (ex->req.head->method) {
	case HTTP_GET: case HTTP_HEAD: case HTTP_PUT: case HTTP_DELETE:
	case HTTP_OPTIONS: case HTTP_TRACE:
		return 1;
	default:
		return 0;
	}
}

static uint32_t
ex_timeout(const struct exchange *ex, uint32_t route_ms, uint32_t global_ms)
{
	return route_ms != 0 ? route_ms : global_ms;
}

static void
ex_on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct exchange *ex = t->arg;

	(void)l;
	if (ex->dead)
		return;
	if (ex->up != NULL && ex->up->connecting) {
		log_info("backend %u: connect timed out", ex->up->backend_id);
		ex_upstream_failed(ex, 1);
		return;
	}
	log_info("backend %u: no answer in time", ex->be->id);
	ex_finish(ex, 504);
}

/* Connects to the next backend to try; 0, or -1 when none is left. */
static int
ex_connect(struct exchange *ex, int fresh)
{
	const struct snap_route *r = ex->route;

	while (ex->tries < r->be_count) {
		uint32_t i = r->be_first + (ex->first_be + ex->tries) % r->be_count;

		ex->be = snap_backend_at(ex->snap, i);
		if (upstream_is_down(ex->w, ex->be->id)) {
			ex->tries++;
			continue;
		}
		ex->up = upstream_get(ex->w, ex->be, fresh, ex_on_upstream, ex);
		if (ex->up != NULL) {
			ev_timer_start(ex->w->loop, &ex->timer, ex->up->connecting ?
			    ex_timeout(ex, r->connect_ms, ex->w->cfg.connect_timeout_ms) :
			    ex_timeout(ex, r->response_ms, ex->w->cfg.response_timeout_ms));
			if (!ex->up->connecting)
				ex_kick(ex);
			return 0;
		}
		log_info("backend %u: connect: %s", ex->be->id, strerror(errno));
		if (upstream_backend_fault(errno))
			upstream_mark_down(ex->w, ex->be->id);
		ex->tries++;
	}
	return -1;
}

/* The backend connection failed before the response was complete. */
static void
ex_upstream_failed(struct exchange *ex, int connect_failed)
{
	int reused = ex->up->reused;

	upstream_release(ex->up, 0);
	ex->up = NULL;
	if (ex->got_byte) {
		ex_finish(ex, 502);
		return;
	}
	if (connect_failed) {
		upstream_mark_down(ex->w, ex->be->id);
		ex->tries++;		/* nothing was sent: the next backend may take it */
	}
	else if (!reused) {
		if (ex->retried || !ex_idempotent(ex) || ex->replay_lost) {
			ex_finish(ex, 502);
			return;
		}
		ex->retried = 1;
	} else if (ex->replay_lost) {
		ex_finish(ex, 502);
		return;
	}
	/* Nothing of the dead attempt's response may leak into the next one. */
	ex->out_sent = 0;
	ex->upstream_eof = 0;
	buf_put(&ex->w->bufs, &ex->in);
	h1_init(&ex->h1, HTTP_RESPONSE, ex->resp, &ex_resp_events, ex);
	if (ex_connect(ex, 1) == -1)
		ex_finish(ex, 502);
}

/* Writes pending request bytes; 0, or -1 when the connection failed. */
static int
ex_write(struct exchange *ex)
{
	while (ex->out_sent < ex->out.len) {
		ssize_t n = send(ex->up->fd, buf_head(&ex->out) + ex->out_sent,
		    ex->out.len - ex->out_sent, MSG_NOSIGNAL);

		if (n > 0) {
			ex->out_sent += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		return n == -1 && errno == EAGAIN ? 0 : -1;
	}
	/* Once the backend answered, sent bytes are never needed again. */
	if (ex->got_byte) {
		buf_consume(&ex->out, ex->out_sent);
		ex->out_sent = 0;
	}
	return 0;
}

/* Reads what fits; 0, or -1 when the connection failed. Sets upstream_eof. */
static int
ex_read(struct exchange *ex)
{
	ssize_t n;

	if (buf_get(&ex->w->bufs, &ex->in) == -1)
		return -1;
	if (buf_room(&ex->in) == 0 || ex->upstream_eof)
		return 0;
	n = buf_read_fd(&ex->in, ex->up->fd);
	if (n > 0) {
		ex->got_byte = 1;
		return 0;
	}
	if (n == 0) {
		ex->upstream_eof = 1;
		return 0;
	}
	return errno == EAGAIN ? 0 : -1;
}

/* --- the response parser's events */

static int
ex_on_head(void *arg, struct http_head *h)
{
	struct exchange *ex = arg;
	int nobody = ex->req.head->method == HTTP_HEAD || h->status / 100 == 1 ||
	    h->status == 204 || h->status == 304;

	if (h->status == 101) {
		if (!ex->req.head->upgrade)
			return -1;
		ex->upgraded = 1;
		return 0;
	}
	if (ex->ops->head(ex->arg, h, nobody) == -1)
		return -1;
	if (h->status / 100 != 1)
		ex->head_sent = 1;
	return ex->req.head->method == HTTP_HEAD ? 1 : 0;
}

static int
ex_on_body(void *arg, const char *p, size_t n)
{
	struct exchange *ex = arg;

	ex->bytes_out += n;
	return ex->ops->body(ex->arg, p, n);
}

static int
ex_on_end(void *arg, struct http_head *h)
{
	struct exchange *ex = arg;

	if (h->status / 100 != 1)
		ex->resp_done = 1;
	return 0;
}

static const struct h1_events ex_resp_events = { ex_on_head, ex_on_body, ex_on_end };

/* Parses buffered response bytes as far as the sink has room; -1 on a bad response. */
static int
ex_parse(struct exchange *ex)
{
	while (ex->in.len > 0 && !ex->resp_done) {
		size_t room = ex->ops->room(ex->arg);
		size_t reserve = ex->head_sent ? CHUNK_SLACK + HEAD_MAX_TRAILER : RESP_HEAD_RESERVE;
		size_t feed = ex->in.len;
		ssize_t n;

		if (room <= reserve)
			return 0;
		if (feed > room - reserve)
			feed = room - reserve;
		if ((n = h1_feed(&ex->h1, buf_head(&ex->in), feed)) == -1) {
			log_info("backend %u: bad response (%s)", ex->be->id,
			    http_errno_name(HTTP_PARSER_ERRNO(&ex->h1.p)));
			return -1;
		}
		buf_consume(&ex->in, (size_t)n);
		if (ex->upgraded)
			return 0;
		if (ex->h1.done && !ex->resp_done)
			h1_reset(&ex->h1);	/* an interim 1xx: the final head follows */
	}
	if (ex->upstream_eof && !ex->resp_done && ex->in.len == 0 && h1_eof(&ex->h1) == -1)
		return -1;
	return 0;
}

/* The response is complete: the connection goes back to the pool if it can. */
static void
ex_done(struct exchange *ex)
{
	int reuse = ex->req_done && ex->resp->keepalive && ex->in.len == 0 &&
	    ex->out_sent == ex->out.len && !ex->upstream_eof && ex->h1.p.upgrade == 0;

	upstream_release(ex->up, reuse);
	ex->up = NULL;
	ex_finish(ex, 0);
}

/* The backend switched protocols: the sink turns both sockets into a tunnel. */
static void
ex_upgrade(struct exchange *ex)
{
	const struct proxy_sink_ops *ops = ex->ops;
	int fd = upstream_detach(ex->up);

	ex->up = NULL;
	ex_log(ex, 101);
	ops->upgrade(ex->arg, ex->resp, fd, &ex->in,
	    ex_timeout(ex, ex->route->tunnel_ms, ex->w->cfg.tunnel_timeout_ms));
	ex->ops = NULL;
	ex->dead = 1;
	ex_kick(ex);
}

static void
ex_update_watch(struct exchange *ex)
{
	uint32_t ev = 0;

	if (ex->out_sent < ex->out.len)
		ev |= EPOLLOUT;
	if (!ex->upstream_eof && (ex->in.data == NULL || ex->in.len < BUF_SIZE))
		ev |= EPOLLIN;
	if (upstream_watch(ex->up, ev) == -1)
		ex_finish(ex, 502);
}

/* Any progress restarts the clock: the response timeout until the first byte, then the idle one. */
static void
ex_rearm(struct exchange *ex)
{
	const struct snap_route *r = ex->route;

	ev_timer_start(ex->w->loop, &ex->timer, ex->got_byte ?
	    ex_timeout(ex, r->idle_ms, ex->w->cfg.idle_timeout_ms) :
	    ex_timeout(ex, r->response_ms, ex->w->cfg.response_timeout_ms));
}

static void
ex_run(struct exchange *ex)
{
	size_t before = ex->out.len - ex->out_sent, inlen = ex->in.len;

	if (ex->too_large) {
		ex_finish(ex, 413);
		return;
	}
	if (ex->up == NULL || ex->up->connecting)
		return;
	if (ex_write(ex) == -1 || ex_read(ex) == -1) {
		ex_upstream_failed(ex, 0);
		return;
	}
	if (ex->out.len - ex->out_sent != before || ex->in.len != inlen)
		ex_rearm(ex);
	if (ex_parse(ex) == -1) {
		ex_finish(ex, ex->head_sent ? 0 : 502);
		return;
	}
	if (ex->resp_done) {
		ex_done(ex);
		return;
	}
	if (ex->upgraded) {
		ex_upgrade(ex);
		return;
	}
	if (ex->upstream_eof && ex->in.len == 0) {
		if (ex->got_byte)
			ex_finish(ex, ex->head_sent ? 0 : 502);
		else
			ex_upstream_failed(ex, 0);
		return;
	}
	if (before > 0 && ex->out_sent == ex->out.len && !ex->req_done && ex->ops->more != NULL)
		ex->ops->more(ex->arg);
	ex_update_watch(ex);
}

static void
ex_on_upstream(struct upstream *u, uint32_t events, void *arg)
{
	struct exchange *ex = arg;

	(void)events;
	if (ex->dead)
		return;		/* aborted in this batch; freed after it */
	if (u->connecting) {
		if (upstream_connected(u) == -1) {
			log_info("backend %u: connect: %s", u->backend_id, strerror(errno));
			ex_upstream_failed(ex, 1);
			return;
		}
		ex_rearm(ex);
	}
	ex_run(ex);
}

static struct exchange *
ex_new(struct worker *w, const struct proxy_req *r, const struct snap_route *route)
{
	struct exchange *ex = calloc(1, sizeof(*ex));

	if (ex == NULL || (ex->resp = pool_alloc(&w->heads)) == NULL) {
		free(ex);
		return NULL;
	}
	ex->w = w;
	ex->snap = snap_ref(w->snap);
	ex->route = route;
	ex->req = *r;
	ev_timer_init(&ex->timer, ex_on_timer, ex);
	h1_init(&ex->h1, HTTP_RESPONSE, ex->resp, &ex_resp_events, ex);
	snprintf(ex->reqid, sizeof(ex->reqid), "%016" PRIx64, w->reqid_base + w->requests);
	return ex;
}

struct exchange *
proxy_start(struct worker *w, const struct proxy_req *r, const struct proxy_sink_ops *ops,
    void *arg, unsigned *status)
{
	const struct snap_route *route;
	struct exchange *ex;
	uint64_t limit;

	*status = 404;
	if (w->snap == NULL || (route = snap_lookup(w->snap, r->host, strlen(r->host))) == NULL)
		return NULL;
	*status = 502;
	if (route->be_count == 0)
		return NULL;
	limit = route->max_body != 0 ? route->max_body : w->cfg.max_body;
	*status = 413;
	if (limit != 0 && r->head->has_length && r->head->length > limit)
		return NULL;
	*status = 500;
	if ((ex = ex_new(w, r, route)) == NULL)
		return NULL;
	ex->max_body = limit;
	ex->ops = ops;
	ex->arg = arg;
	ex->first_be = w->rr[route->id % WORKER_RR_SLOTS]++;
	if (buf_get(&w->bufs, &ex->out) == -1 ||
	    headers_write_request(&ex->out, r->head, &(struct fwd_info){ r->client_ip, r->proto,
	    ex->reqid, r->trusted }) == -1)
		goto fail;
	*status = 502;
	if (ex_connect(ex, 0) == -1)
		goto fail;
	return ex;
fail:
	ex_free(ex);
	return NULL;
}

size_t
proxy_room(struct exchange *ex)
{
	size_t room;

	if (ex->too_large)
		return BUF_SIZE;	/* dropped until the 413 goes out */
	room = buf_room(&ex->out);
	if (room < BUF_SIZE / 2 && ex->out_sent > 0) {
		/* Keep sent bytes for a replay only while they cost nothing. */
		buf_consume(&ex->out, ex->out_sent);
		ex->out_sent = 0;
		ex->replay_lost = 1;
		room = buf_room(&ex->out);
	}
	return room > CHUNK_SLACK ? room - CHUNK_SLACK : 0;
}

int
proxy_body(struct exchange *ex, const char *p, size_t n)
{
	int chunked = ex->req.head->chunked;

	if (n == 0 || ex->too_large)
		return 0;
	if (ex->max_body != 0 && ex->bytes_in + n > ex->max_body) {
		log_info("request body over %" PRIu64 " bytes: 413", ex->max_body);
		ex->too_large = 1;
		ex_kick(ex);
		return 0;
	}
	if (n + CHUNK_SLACK > buf_room(&ex->out)) {
		log_warnx("request body overran its buffer");
		return -1;
	}
	if (chunked && buf_printf(&ex->out, "%zx\r\n", n) == -1)
		return -1;
	buf_append(&ex->out, p, n);
	if (chunked)
		buf_append(&ex->out, "\r\n", 2);
	ex->bytes_in += n;
	ex_kick(ex);
	return 0;
}

int
proxy_body_end(struct exchange *ex, const struct http_head *req)
{
	if (ex->too_large)
		return 0;
	ex->req_done = 1;
	if (req->chunked && headers_write_last_chunk(&ex->out, req) == -1)
		return -1;
	ex_kick(ex);
	return 0;
}

void
proxy_resume(struct exchange *ex)
{
	ex_kick(ex);
}

void
proxy_abort(struct exchange *ex, unsigned status)
{
	if (ex->dead)
		return;
	if (status != 0)
		ex_log(ex, status);
	ex->ops = NULL;
	ex->dead = 1;
	ex_kick(ex);
}
