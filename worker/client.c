/*
 * HTTP/1.1 client connections (see client.h). A connection owns buffers and
 * a parsed head only while a request is in progress; between requests it
 * costs the struct below. Work triggered from the proxy's callbacks runs
 * deferred (client_kick), so no callback frees what its caller still uses.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "share/addr.h"
#include "share/hostname.h"
#include "share/log.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/acmechallenge.h"
#include "worker/accesslog.h"
#include "worker/buf.h"
#include "worker/client.h"
#include "worker/context.h"
#include "worker/errpage.h"
#include "worker/headers.h"
#include "worker/http1.h"
#include "worker/proxy.h"
#include "worker/tls.h"
#include "worker/tunnel.h"

#define HEAD_FEED_MAX (12 * 1024)	/* see proxy_room(): what one feed may turn into */
/*
 * After an answer that leaves request bytes unread (413, 408...), closing at
 * once would make the kernel reset the connection and the client could lose
 * the answer: the write side is shut and input drained for a while first.
 */
#define LINGER_MS 2000
#define LINGER_MAX (1024 * 1024)

struct client {
	struct worker *w;
	struct client *prev, *next;
	int fd;
	struct tls_conn *tls;		/* on an HTTPS listener, else NULL (worker/tls.h) */
	struct ev_io io;
	struct ev_timer timer;
	const char *proto;
	char ip[ADDR_STR_MAX];
	int trusted;			/* the peer is in trusted_proxies */
	size_t drained;			/* bytes dropped while lingering */
	struct buf in, out;
	struct h1 h1;
	struct http_head *req;
	struct exchange *ex;
	char host[HOSTNAME_MAX + 1];
	uint64_t start_us;
	enum resp_framing fr;
	unsigned req_active : 1;	/* a request started and is not answered yet */
	unsigned req_done : 1;		/* the whole request was read */
	unsigned resp_started : 1;	/* a response head is written */
	unsigned resp_done : 1;		/* the whole response is written to out */
	unsigned keepalive : 1;
	unsigned close_after : 1;	/* close once out is flushed */
	unsigned peer_eof : 1;
	unsigned dead : 1;
	unsigned kick_pending : 1;
	unsigned lingering : 1;		/* answered, closing: unread input is drained */
	unsigned timer_phase : 3;	/* what the armed timer is for */
};

enum { TIMER_NONE, TIMER_KEEPALIVE, TIMER_HEADER, TIMER_BODY, TIMER_LINGER };

static void client_run(struct client *c);

static void
client_free(struct client *c)
{
	struct worker *w = c->w;

	buf_put(&w->bufs, &c->in);
	buf_put(&w->bufs, &c->out);
	pool_free(&w->heads, c->req);
	free(c);
}

static void
client_kick_run(void *arg)
{
	struct client *c = arg;

	c->kick_pending = 0;
	if (c->dead)
		client_free(c);
	else
		client_run(c);
}

static void
client_kick(struct client *c)
{
	if (c->kick_pending)
		return;
	if (ev_defer(c->w->loop, client_kick_run, c) == -1) {
		log_warnx("out of memory scheduling a connection");
		return;
	}
	c->kick_pending = 1;
}

/* Takes c off the worker's list of clients. */
static void
client_unlink(struct client *c)
{
	struct worker *w = c->w;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
}

static void
client_close(struct client *c)
{
	struct worker *w = c->w;

	if (c->dead)
		return;
	if (c->ex != NULL)
		proxy_abort(c->ex, 499);
	c->ex = NULL;
	c->dead = 1;
	ev_io_stop(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->timer);
	tls_conn_free(c->tls);
	c->tls = NULL;
	close(c->fd);
	client_unlink(c);
	w->nclients--;
	client_kick(c);		/* the free runs after this batch */
	listen_update(w);
	worker_check_stopped(w);
}

/* Our own answer into out: a redirect to https:// (301, 308) or a page; HSTS over TLS. */
static int
client_local_write(struct client *c, unsigned status, enum errpage_kind kind, int head_only)
{
	struct worker *w = c->w;
	size_t at = c->out.len;
	int rc;

	if (status == 301 || status == 308)
		rc = tls_redirect_write(w->tls, status, c->host, c->req, &c->out, !c->close_after);
	else
		rc = errpage_write(&c->out, &w->errpages, status, kind, !c->close_after, head_only);
	if (rc == 0 && c->tls != NULL && tls_hsts_wanted(w->snap, c->host))
		rc = tls_hsts_add(&c->out, at);
	return rc;
}

/* An answer of our own (logged unless the exchange did); the request's body, if any, is not read. */
static void
client_answer(struct client *c, unsigned status, enum errpage_kind kind, int log)
{
	int head_done = c->h1.head_done && c->req != NULL;
	int head_only = head_done && c->req->method == HTTP_HEAD;

	/* A body we will not read, or a request we could not parse, ends the connection. */
	if (!c->req_done && (!head_done || c->req->chunked || c->req->length > 0))
		c->close_after = 1;
	if (c->w->stopping || !c->keepalive || status == 400 || status == 408)
		c->close_after = 1;
	if (buf_get(&c->w->bufs, &c->out) == -1 ||
	    client_local_write(c, status, kind, head_only) == -1) {
		c->out.len = 0;
		c->close_after = 1;
	}
	c->resp_started = c->resp_done = 1;
	if (log)
		accesslog_write(c->w, &(struct accesslog_entry){
		    .req = c->h1.head_done ? c->req : NULL, .host = c->host, .backend = "",
		    .status = status, .start_us = c->start_us });
	client_kick(c);
}

static void
client_local(struct client *c, unsigned status, enum errpage_kind kind)
{
	client_answer(c, status, kind, 1);
}

/* A broken or stalled request: drop its exchange (the backend's connection with it) and answer. */
static void
client_refuse(struct client *c, unsigned status)
{
	if (c->ex != NULL)
		proxy_abort(c->ex, 0);
	c->ex = NULL;
	client_local(c, status, ERRPAGE_STATUS);
}

/* --- the proxy's sink */

static int
sink_head(void *arg, struct http_head *resp, int nobody)
{
	struct client *c = arg;
	int minor = c->req->major == 1 ? c->req->minor : 0;
	int keepalive;
	size_t at;

	if (resp->status / 100 == 1) {
		if (minor == 0)
			return 0;	/* HTTP/1.0 clients get no interim responses */
		client_kick(c);
		return headers_write_response(&c->out, resp, FRAME_NONE, 1, minor);
	}
	if (nobody)
		c->fr = FRAME_NONE;
	else if (resp->has_length)
		c->fr = FRAME_LENGTH;
	else
		c->fr = minor > 0 ? FRAME_CHUNKED : FRAME_CLOSE;
	keepalive = c->keepalive && !c->close_after && !c->w->stopping && c->fr != FRAME_CLOSE;
	if (!keepalive)
		c->close_after = 1;
	c->resp_started = 1;
	client_kick(c);
	at = c->out.len;
	if (headers_write_response(&c->out, resp, c->fr, keepalive, minor) == -1)
		return -1;
	return c->tls != NULL && tls_hsts_wanted(c->w->snap, c->host) ? tls_hsts_add(&c->out, at) : 0;
}

static int
sink_body(void *arg, const char *p, size_t n)
{
	struct client *c = arg;

	if (c->fr == FRAME_CHUNKED && buf_printf(&c->out, "%zx\r\n", n) == -1)
		return -1;
	if (n > buf_room(&c->out))
		return -1;
	buf_append(&c->out, p, n);
	if (c->fr == FRAME_CHUNKED)
		buf_append(&c->out, "\r\n", 2);
	client_kick(c);
	return 0;
}

static void
sink_end(void *arg, struct http_head *resp)
{
	struct client *c = arg;

	c->ex = NULL;
	if (c->fr == FRAME_CHUNKED && headers_write_last_chunk(&c->out, resp) == -1)
		c->close_after = 1;
	if (!c->req_done)
		c->close_after = 1;
	c->resp_done = 1;
	client_kick(c);
}

static void
sink_fail(void *arg, unsigned status)
{
	struct client *c = arg;

	c->ex = NULL;
	if (status != 0 && !c->resp_started) {
		client_answer(c, status, ERRPAGE_STATUS, 0);	/* the exchange logged it */
		return;
	}
	/* Part of the response went out: cutting the connection is the only honest signal. */
	c->close_after = 1;
	c->resp_done = 1;
	client_kick(c);
}

static size_t
sink_room(void *arg)
{
	struct client *c = arg;

	if (buf_get(&c->w->bufs, &c->out) == -1)
		return 0;
	return buf_room(&c->out);
}

static void
sink_more(void *arg)
{
	client_kick(arg);
}

/* Hands the socket and buffered bytes to a tunnel; the client struct goes. */
static void
client_handover(struct client *c, int backend_fd, uint32_t idle_ms)
{
	struct worker *w = c->w;
	int fd = c->fd;

	c->dead = 1;
	ev_io_stop(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->timer);
	client_unlink(c);
	client_kick(c);
	/* The connection stays counted in nclients: the tunnel owns it now. */
	(void)tunnel_start(w, fd, c->tls, backend_fd, &c->out, &c->in, idle_ms);
	c->tls = NULL;
}

static void
sink_upgrade(void *arg, struct http_head *resp, int fd, struct buf *rest, uint32_t idle_ms)
{
	struct client *c = arg;

	c->ex = NULL;
	if (buf_get(&c->w->bufs, &c->out) == -1 ||
	    headers_write_response(&c->out, resp, FRAME_UPGRADE, 1, 1) == -1 ||
	    rest->len > buf_room(&c->out)) {
		close(fd);
		buf_put(&c->w->bufs, rest);
		client_close(c);
		return;
	}
	buf_append(&c->out, buf_head(rest), rest->len);
	buf_put(&c->w->bufs, rest);
	client_handover(c, fd, idle_ms);
}

static const struct proxy_sink_ops client_sink = {
	sink_head, sink_body, sink_end, sink_fail, sink_room, sink_more, sink_upgrade,
};

/* --- the request parser's events */

/*
 * An absolute-form target ("http://host/path") must name the Host's host
 * (RFC 9112 3.2.2: a mismatch is how requests get past host-based rules);
 * it is forwarded in origin-form. -1 refuses the request.
 */
static int
client_absolute_form(struct client *c, struct http_head *h, int has_host)
{
	char *t = h->raw + h->target_off, name[HOSTNAME_MAX + 1];
	size_t skip, alen;

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
	if (has_host && strcmp(name, c->host) != 0)
		return -1;
	util_strlcpy(c->host, name, sizeof(c->host));
	h->target_off += (uint32_t)(skip + alen);
	h->target_len -= (uint32_t)(skip + alen);
	return 0;
}

static int
client_on_head(void *arg, struct http_head *h)
{
	struct client *c = arg;
	const struct http_field *host = http_find(h, "host");
	unsigned status;

	c->keepalive = h->keepalive != 0;
	if ((host != NULL &&
	    hostname_from_header(http_value(h, host), host->value_len, c->host) < 0) ||
	    client_absolute_form(c, h, host != NULL) == -1) {
		client_local(c, 400, ERRPAGE_STATUS);
		return 1;
	}
	if ((host == NULL && h->major == 1 && h->minor >= 1) || h->method == HTTP_CONNECT) {
		client_local(c, host == NULL ? 400 : 501, ERRPAGE_STATUS);
		return 1;
	}
	/* ACME HTTP-01 answers come from the snapshot, before routing (acmechallenge.c). */
	if (buf_get(&c->w->bufs, &c->out) == 0 && (status = (unsigned)acmechal_answer(c->w, h,
	    &c->out, c->keepalive && !c->w->stopping && !h->chunked && h->length == 0)) != 0) {
		c->close_after |= !c->keepalive || c->w->stopping || h->chunked || h->length > 0 ||
		    status == (unsigned)-1;
		c->resp_started = c->resp_done = 1;
		accesslog_write(c->w, &(struct accesslog_entry){ .req = h, .host = c->host,
		    .backend = "", .status = status, .start_us = c->start_us });
		client_kick(c);
		return 1;
	}
	if (c->tls == NULL &&
	    (status = tls_redirect_status(c->w->tls, c->w->snap, c->host, h)) != 0) {
		client_local(c, status, ERRPAGE_STATUS);
		return 1;
	}
	c->ex = proxy_start(c->w, &(struct proxy_req){ h, c->host, c->ip, c->proto, c->trusted,
	    c->start_us },
	    &client_sink, c, &status);
	if (c->ex == NULL) {
		client_local(c, status, status == 404 && (c->w->snap == NULL ||
		    snap_route_count(c->w->snap) == 0) ? ERRPAGE_WELCOME : ERRPAGE_STATUS);
		return 1;
	}
	return 0;
}

static int
client_on_body(void *arg, const char *p, size_t n)
{
	struct client *c = arg;

	return c->ex != NULL ? proxy_body(c->ex, p, n) : 0;
}

static int
client_on_end(void *arg, struct http_head *h)
{
	struct client *c = arg;

	c->req_done = 1;
	return c->ex != NULL ? proxy_body_end(c->ex, h) : 0;
}

static const struct h1_events client_req_events = { client_on_head, client_on_body, client_on_end };

/* --- the connection */

static int
client_begin_request(struct client *c)
{
	struct worker *w = c->w;

	if (c->req == NULL && (c->req = pool_alloc(&w->heads)) == NULL)
		return -1;
	h1_init(&c->h1, HTTP_REQUEST, c->req, &client_req_events, c);
	c->req->rawlen = 0;
	c->req_active = 1;
	c->start_us = util_now_us();
	c->host[0] = '\0';
	w->requests++;
	return 0;
}

/* Feeds buffered bytes to the request parser as far as the exchange takes them. */
static void
client_parse(struct client *c)
{
	while (c->in.len > 0 && !c->dead && !c->req_done && !c->close_after) {
		size_t feed = c->in.len;
		ssize_t n;

		if (!c->req_active) {
			if (c->out.len > 0)
				return;	/* the previous answer goes out first */
			if (client_begin_request(c) == -1) {
				client_close(c);
				return;
			}
		}
		if (!c->h1.head_done && feed > HEAD_FEED_MAX)
			feed = HEAD_FEED_MAX;
		if (c->h1.head_done) {
			size_t room = c->ex != NULL ? proxy_room(c->ex) : 0;
			if (room == 0)
				return;
			if (feed > room)
				feed = room;
		}
		if ((n = h1_feed(&c->h1, buf_head(&c->in), feed)) == -1) {
			if (c->resp_started)
				client_close(c);	/* too late for an answer of our own */
			else
				client_refuse(c, c->h1.error != 0 ? c->h1.error : 400);
			return;
		}
		buf_consume(&c->in, (size_t)n);
	}
}

/* Starts the lingering close, or closes when nothing can be left unread. */
static void
client_linger(struct client *c)
{
	tls_conn_shutdown(c->tls);
	if (c->peer_eof || (c->req_done && c->in.len == 0) || shutdown(c->fd, SHUT_WR) == -1) {
		client_close(c);
		return;
	}
	c->lingering = 1;
	buf_put(&c->w->bufs, &c->in);
	buf_put(&c->w->bufs, &c->out);
}

/* Reads and drops input until EOF, LINGER_MAX bytes or the timer. */
static void
client_drain(struct client *c)
{
	char sink[4096];
	ssize_t n = -1;

	while (c->drained <= LINGER_MAX && (n = read(c->fd, sink, sizeof(sink))) > 0)
		c->drained += (size_t)n;
	if (c->drained > LINGER_MAX || n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		client_close(c);
}

/* The answer is out: close, or get ready for the next request. */
static void
client_next(struct client *c)
{
	if (c->close_after || c->w->stopping || (c->peer_eof && c->in.len == 0)) {
		client_linger(c);
		return;
	}
	c->req_active = c->req_done = c->resp_started = c->resp_done = 0;
	buf_put(&c->w->bufs, &c->out);
	if (c->in.len == 0) {
		buf_put(&c->w->bufs, &c->in);
		pool_free(&c->w->heads, c->req);
		c->req = NULL;
	}
}

static int
client_flush(struct client *c)
{
	size_t before = c->out.len;
	int rc = 0;

	while (c->out.len > 0) {
		if (tls_buf_write(c->tls, c->fd, &c->out) == -1) {
			rc = errno == EAGAIN ? 0 : -1;
			break;
		}
	}
	if (rc == 0 && c->out.len < before && c->ex != NULL)
		proxy_resume(c->ex);
	return rc;
}

static int
client_read(struct client *c)
{
	ssize_t n;

	/*
	 * Reading on while a response is pending (pipelined bytes wait in in)
	 * keeps the socket's epoll interest unchanged from request to request.
	 */
	if (c->peer_eof || c->close_after || buf_get(&c->w->bufs, &c->in) == -1 ||
	    buf_room(&c->in) == 0)
		return 0;
	n = tls_buf_read(c->tls, c->fd, &c->in);
	if (n > 0 && c->timer_phase == TIMER_BODY)
		ev_timer_start(c->w->loop, &c->timer, c->w->cfg.body_timeout_ms);
	if (n == 0)
		c->peer_eof = 1;
	if (n == -1 && errno != EAGAIN)
		return -1;
	if (c->in.len == 0 && !c->req_active)
		buf_put(&c->w->bufs, &c->in);
	return 0;
}

static void
client_on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct client *c = t->arg;

	(void)l;
	if (c->timer_phase == TIMER_BODY && c->in.len > 0) {
		/* Input is waiting for the backend, not the other way round. */
		ev_timer_start(c->w->loop, &c->timer, c->w->cfg.body_timeout_ms);
		return;
	}
	if ((c->timer_phase == TIMER_HEADER || c->timer_phase == TIMER_BODY) && !c->resp_started) {
		log_info("client %s: %s timed out", c->ip,
		    c->timer_phase == TIMER_HEADER ? "request head" : "request body");
		c->timer_phase = TIMER_NONE;
		client_refuse(c, 408);
		return;
	}
	client_close(c);
}

static void
client_update_timer(struct client *c)
{
	struct worker *w = c->w;
	unsigned phase = c->lingering ? TIMER_LINGER : !c->req_active ? TIMER_KEEPALIVE :
	    !c->h1.head_done && !c->resp_started ? TIMER_HEADER :
	    c->ex != NULL && !c->req_done ? TIMER_BODY : TIMER_NONE;
	uint32_t ms[] = { 0, w->cfg.keepalive_timeout_ms, w->cfg.header_timeout_ms,
	    w->cfg.body_timeout_ms, LINGER_MS };

	if (phase == c->timer_phase)
		return;
	c->timer_phase = phase;
	if (phase == TIMER_NONE)
		ev_timer_stop(w->loop, &c->timer);
	else
		ev_timer_start(w->loop, &c->timer, ms[phase]);
}

static void
client_update_watch(struct client *c)
{
	uint32_t ev = 0;

	if (c->lingering)
		ev = EPOLLIN;
	else if (!c->peer_eof && !c->close_after &&
	    (c->in.data == NULL || c->in.len < BUF_SIZE))
		ev |= EPOLLIN;
	if (c->out.len > 0)
		ev |= EPOLLOUT;
	ev |= tls_conn_events(c->tls);
	/* Bytes already inside OpenSSL: epoll will not report them again. */
	if ((ev & EPOLLIN) && !c->lingering && tls_conn_pending(c->tls))
		client_kick(c);
	if (ev != c->io.events && ev_io_modify(c->w->loop, &c->io, ev) == -1)
		client_close(c);
}

static void
client_run(struct client *c)
{
	if (c->lingering) {
		client_drain(c);
		if (!c->dead)
			client_update_timer(c);
		return;
	}
	if (client_flush(c) == -1 || client_read(c) == -1) {
		client_close(c);
		return;
	}
	client_parse(c);
	if (c->dead)
		return;
	if (client_flush(c) == -1) {
		client_close(c);
		return;
	}
	if (c->resp_done && c->out.len == 0) {
		client_next(c);
		if (c->dead)
			return;
		if (c->lingering)
			goto out;
		client_parse(c);
		if (c->dead)
			return;
	}
	if (c->peer_eof && c->in.len == 0 && c->out.len == 0 &&
	    (!c->req_active || (!c->req_done && !c->resp_started))) {
		client_close(c);
		return;
	}
out:
	client_update_timer(c);
	client_update_watch(c);
}

static void
client_on_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	(void)l;
	(void)events;
	client_run(io->arg);
}

static int
client_trusted(const struct worker *w, const struct sockaddr *peer)
{
	uint32_t i;

	for (i = 0; i < w->cfg.ntrusted; i++)
		if (addr_cidr_match(&w->trusted[i], peer))
			return 1;
	return 0;
}

int
client_new(struct worker *w, int fd, const struct listener *ls, const struct sockaddr *peer)
{
	struct client *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL) {
		close(fd);
		return -1;
	}
	c->w = w;
	c->fd = fd;
	c->proto = ls->kind == LISTENER_HTTPS ? "https" : "http";
	if (addr_format_ip(peer, c->ip, sizeof(c->ip)) == -1)
		util_strlcpy(c->ip, "unknown", sizeof(c->ip));
	c->trusted = client_trusted(w, peer);
	if (ls->kind == LISTENER_HTTPS && (c->tls = tls_conn_new(w->tls, fd, c->ip)) == NULL) {
		close(fd);
		free(c);
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev_timer_init(&c->timer, client_on_timer, c);
	if (ev_io_start(w->loop, &c->io, fd, EPOLLIN, client_on_io, c) == -1) {
		tls_conn_free(c->tls);
		close(fd);
		free(c);
		return -1;
	}
	c->next = w->clients;
	if (w->clients != NULL)
		w->clients->prev = c;
	w->clients = c;
	w->nclients++;
	client_update_timer(c);
	return 0;
}

void
client_close_idle(struct worker *w)
{
	struct client *c, *next;

	for (c = w->clients; c != NULL; c = next) {
		next = c->next;
		if ((!c->req_active && c->in.len == 0) || c->lingering)
			client_close(c);
	}
}

void
client_close_all(struct worker *w)
{
	while (w->clients != NULL)
		client_close(w->clients);
}
