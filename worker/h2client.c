/*
 * The HTTP/2 upstream (see upstream.h): streams multiplexed over HTTP/2
 * sessions to backends (one session is worker/h2csession.c), driven by the
 * worker's loop: no threads, no blocking. A session runs over any connected
 * socket, plain or TLS, whoever opened it: dial.c for a route's backends, a
 * reverse tunnel's agent later (h2client_session_new).
 *
 * Sessions are pooled per key (the backend's store id) and TLS configuration
 * (tlsclient_config_key: 0 for h2c, else h2 over TLS with ALPN h2, so a
 * route switched to another CA never reuses an old session): a stream goes to a
 * session of its key with a free slot (the peer's MAX_CONCURRENT_STREAMS, at
 * most H2C_STREAMS_MAX), or waits in the pool's queue for one; a connection
 * is dialled when streams wait and none is being made, up to H2C_CONNS_MAX
 * per key. A connect in progress serves every stream that waits for it.
 *
 * Flow control is ours: the connection window is opened as soon as bytes
 * arrive (they are bounded per stream), a stream's only when its exchange
 * took them (nghttp2_session_consume_stream), so a slow client stalls its
 * own stream and nothing else.
 *
 * Events reach the exchange from h2client_pump only, run by the session's
 * turn or the stream's deferred kick, never from inside an ops call.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "share/log.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/context.h"
#include "worker/dial.h"
#include "worker/h2clientint.h"
#include "worker/message.h"
#include "worker/tlsclient.h"
#include "worker/upstream.h"

/* A header list as nghttp2 takes it (it copies the strings), names lower-cased. */
struct h2c_reqbuf {
	nghttp2_nv nv[H2C_NV_MAX + 7];	/* 5 pseudo-headers and content-length, 2 tunnel fields */
	char names[MSG_MEM_MAX];
	char path[MSG_TARGET_MAX + 2];
	char clen[24];
};

/* --- streams: kicks, errors, the free */

/* Everything a stream holds but itself. */
static void
h2c_stream_release(struct ustream *s)
{
	ev_timer_stop(s->w->loop, &s->timer);
	buf_put(&s->w->bufs, &s->out);
	msg_free(&s->resp);
	msg_free(&s->trailers);
	msg_free(&s->rtrailers);
	free(s->in);
	s->in = NULL;
	s->in_off = s->in_len = s->in_cap = 0;
}

static void
h2c_stream_free(struct ustream *s)
{
	h2c_stream_release(s);
	free(s);
}

/* Leaves the session's list; a dead stream is freed after nghttp2 let go of it. */
void
h2client_stream_unlink(struct ustream *s)
{
	if (s->c == NULL)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		s->c->streams = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->c = NULL;
}

static void
h2c_stream_kick_run(void *arg)
{
	struct ustream *s = arg;

	s->kick_pending = 0;
	if (!s->dead) {
		h2client_pump(s);
		return;
	}
	/* A closed stream nghttp2 still knows waits for its on_stream_close (RST_STREAM is queued). */
	if (s->c != NULL && !s->ng_closed) {
		h2c_stream_release(s);
		return;
	}
	h2client_stream_unlink(s);
	h2c_stream_free(s);
}

void
h2client_stream_kick(struct ustream *s)
{
	(void)ev_defer_once(s->w->loop, h2c_stream_kick_run, s, &s->kick_pending);
}

/* --- pools */

int
h2client_pools_init(struct worker *w)
{
	if ((w->h2pools = calloc(1, sizeof(*w->h2pools))) == NULL)
		return -1;
	if ((w->h2pools->rb = malloc(sizeof(*w->h2pools->rb))) == NULL) {
		free(w->h2pools);
		w->h2pools = NULL;
		return -1;
	}
	w->h2pools->ping_ms = H2C_PING_MS;
	w->h2pools->idle_ms = H2C_IDLE_MS;
	w->h2pools->tun_ping_ms = H2C_TUN_PING_MS;
	w->h2pools->tun_ping_timeout_ms = H2C_TUN_PING_TIMEOUT_MS;
	return 0;
}

void
h2client_set_tunnel_times(struct worker *w, uint32_t ping_ms, uint32_t ping_timeout_ms)
{
	w->h2pools->tun_ping_ms = ping_ms;
	w->h2pools->tun_ping_timeout_ms = ping_timeout_ms;
}

void
h2client_set_times(struct worker *w, uint32_t ping_ms, uint32_t idle_ms)
{
	w->h2pools->ping_ms = ping_ms;
	w->h2pools->idle_ms = idle_ms;
}

void
h2client_pools_free(struct worker *w)
{
	struct h2cpool *p, *pn;
	size_t i;

	if (w->h2pools == NULL)
		return;
	for (i = 0; i < H2C_BUCKETS; i++)
		for (p = w->h2pools->bucket[i]; p != NULL; p = pn) {
			pn = p->next;
			while (p->conns != NULL)
				h2csession_close(p->conns);	/* freed by the next turn of the loop */
			free(p);
		}
	free(w->h2pools->rb);
	free(w->h2pools);
	w->h2pools = NULL;
}

struct h2cpool *
h2client_pool(struct worker *w, uint32_t key, uint64_t cfg)
{
	struct h2cpool **head = &w->h2pools->bucket[key % H2C_BUCKETS], *p;

	for (p = *head; p != NULL; p = p->next)
		if (p->key == key && p->cfg == cfg && p->name[0] == '\0')
			return p;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->key = key;
	p->cfg = cfg;
	p->next = *head;
	*head = p;
	return p;
}

struct h2cpool *
h2client_pool_named(struct worker *w, const char *name)
{
	uint32_t key = 2166136261u;	/* FNV-1a: only spreads the buckets, names are compared */
	struct h2cpool **head, *p;
	const char *c;

	for (c = name; *c != '\0'; c++)
		key = (key ^ (uint8_t)*c) * 16777619u;
	head = &w->h2pools->bucket[key % H2C_BUCKETS];
	for (p = *head; p != NULL; p = p->next)
		if (p->key == key && strcmp(p->name, name) == 0)
			return p;
	if (strlen(name) > H2C_TUNNEL_NAME_MAX || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->key = key;
	util_strlcpy(p->name, name, sizeof(p->name));
	p->next = *head;
	*head = p;
	return p;
}

static void
h2cpool_enqueue(struct h2cpool *p, struct ustream *s)
{
	s->pool = p;
	s->queued = 1;
	s->next = NULL;
	s->prev = p->qtail;
	if (p->qtail != NULL)
		p->qtail->next = s;
	else
		p->qhead = s;
	p->qtail = s;
}

static void
h2cpool_dequeue(struct ustream *s)
{
	struct h2cpool *p = s->pool;

	if (!s->queued)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		p->qhead = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		p->qtail = s->prev;
	s->prev = s->next = NULL;
	s->queued = 0;
	s->pool = NULL;
	ev_timer_stop(s->w->loop, &s->timer);
}

/* The stream fails with err as soon as its kick runs (never inside an ops call). */
void
h2client_stream_error(struct ustream *s, enum upstream_err err, int code)
{
	if (s->err_due || s->failed || s->dead)
		return;
	s->err_due = 1;
	s->err = err;
	s->code = code;
	h2client_stream_kick(s);
}

/* Every waiting stream fails: its backend could not be reached. */
void
h2client_fail_queue(struct h2cpool *p, int code)
{
	while (p->qhead != NULL) {
		struct ustream *s = p->qhead;

		h2cpool_dequeue(s);
		h2client_stream_error(s, UPSTREAM_CONNECT, code);
	}
}

/* --- requests as HTTP/2 header lists */

/* Fields HTTP/2 forbids (RFC 9113 8.2.2) or that we write ourselves. */
static int
h2c_field_dropped(const struct msg_head *h, const struct msg_field *f)
{
	static const char *const drop[] = {
		"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
		"host", "content-length",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(drop); i++)
		if (msg_field_is(h, f, drop[i]))
			return 1;
	return msg_field_is(h, f, "te") && strcasecmp(msg_value(h, f), "trailers") != 0;
}

static nghttp2_nv
h2c_nv(const char *name, size_t nlen, const char *value, size_t vlen)
{
	return (nghttp2_nv){ (uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, nlen, vlen,
	    NGHTTP2_NV_FLAG_NONE };
}

/* Fields from..to of h, names lower-cased into names; -1 when they do not fit. */
static int
h2c_nv_fields(const struct msg_head *h, uint32_t from, uint32_t to, nghttp2_nv *nv, size_t *n,
    char *names, size_t nameslen)
{
	size_t used = 0, j;
	uint32_t i;

	for (i = from; i < to; i++) {
		const struct msg_field *f = &h->f[i];

		if (i < msg_nheaders(h) && h2c_field_dropped(h, f))
			continue;
		if (*n >= H2C_NV_MAX || used + f->name.len + 1 > nameslen)
			return -1;
		for (j = 0; j < f->name.len; j++)
			names[used + j] = (char)tolower((unsigned char)msg_name(h, f)[j]);
		nv[(*n)++] = h2c_nv(names + used, f->name.len, msg_value(h, f), f->value.len);
		used += f->name.len + 1;
	}
	return 0;
}


/*
 * The hop's fields for a tunnel backend (the tunnel process removes them):
 * which tunnel, and round-robin when the route asks for it.
 */
static void
h2c_nv_tunnel(const struct ustream *s, struct h2c_reqbuf *rb, size_t *n)
{
	if (s->tunnel == NULL)
		return;
	rb->nv[(*n)++] = h2c_nv("haloyd-tunnel", 13, s->tunnel, strlen(s->tunnel));
	if (s->tunnel_rr)
		rb->nv[(*n)++] = h2c_nv("haloyd-tunnel-balance", 21, "round-robin", 11);
}

/* The request's pseudo-headers and fields: Host becomes :authority. */
static int
h2c_nv_request(const struct msg_head *req, int tls, struct h2c_reqbuf *rb, size_t *n)
{
	const struct msg_field *host = msg_find(req, "host");
	const char *m = msg_method_str(req), *path = msg_s(req, req->path);

	*n = 0;
	rb->nv[(*n)++] = h2c_nv(":method", 7, m, strlen(m));
	rb->nv[(*n)++] = h2c_nv(":scheme", 7, tls ? "https" : "http", tls ? 5 : 4);
	if (req->authority.len > 0)
		rb->nv[(*n)++] = h2c_nv(":authority", 10, msg_s(req, req->authority),
		    req->authority.len);
	else if (host != NULL)
		rb->nv[(*n)++] = h2c_nv(":authority", 10, msg_value(req, host), host->value.len);
	/* An absolute-form target arrives as its path, possibly empty or "?query". */
	snprintf(rb->path, sizeof(rb->path), "%s%s", path[0] == '/' || path[0] == '*' ? "" : "/",
	    path);
	rb->nv[(*n)++] = h2c_nv(":path", 5, rb->path, strlen(rb->path));
	if (req->has_length) {
		snprintf(rb->clen, sizeof(rb->clen), "%" PRIu64, req->length);
		rb->nv[(*n)++] = h2c_nv("content-length", 14, rb->clen, strlen(rb->clen));
	}
	return h2c_nv_fields(req, 0, msg_nheaders(req), rb->nv, n, rb->names, sizeof(rb->names));
}

/* The request body's DATA: what the exchange gave, then END_STREAM or the trailers. */
static ssize_t
h2c_read_body(nghttp2_session *ng, int32_t id, uint8_t *to, size_t len, uint32_t *flags,
    nghttp2_data_source *src, void *arg)
{
	struct ustream *s = nghttp2_session_get_stream_user_data(ng, id);
	size_t n;

	(void)src;
	(void)arg;
	if (s == NULL || s->dead)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = s->out.len < len ? s->out.len : len;
	if (n > 0) {
		memcpy(to, buf_head(&s->out), n);
		buf_consume(&s->out, n);
		s->more_due = 1;
		h2client_stream_kick(s);
	}
	if (s->out.len > 0)
		return (ssize_t)n;
	buf_put(&s->w->bufs, &s->out);
	if (!s->req_done)
		return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (s->trailers.nf > 0) {
		struct h2c_reqbuf *rb = s->w->h2pools->rb;
		size_t nnv = 0;

		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (h2c_nv_fields(&s->trailers, 0, s->trailers.nf, rb->nv, &nnv, rb->names,
		    sizeof(rb->names)) == -1 || nghttp2_submit_trailer(ng, id, rb->nv, nnv) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/* Submits s on c; -1 when its head cannot be encoded. */
static int
h2c_submit(struct h2conn *c, struct ustream *s)
{
	nghttp2_data_provider prd = { .source.ptr = NULL, .read_callback = h2c_read_body };
	struct h2c_reqbuf *rb = c->w->h2pools->rb;	/* nghttp2 copies the list */
	size_t n;
	int32_t id = -1;

	if (h2c_nv_request(s->req, c->tc != NULL, rb, &n) == 0) {
		h2c_nv_tunnel(s, rb, &n);
		id = nghttp2_submit_request(c->ng, NULL, rb->nv, n, s->has_body ? &prd : NULL, s);
	}
	if (id < 0) {
		log_warnx("backend %u: the request head cannot be sent over HTTP/2", c->pool->key);
		return -1;
	}
	s->id = id;
	s->c = c;
	s->reused = c->nsubmitted > 0;
	s->rx_at_submit = c->rx_frames;
	s->next = c->streams;
	if (c->streams != NULL)
		c->streams->prev = s;
	c->streams = s;
	c->nactive++;
	c->nsubmitted++;
	ev_timer_stop(s->w->loop, &s->timer);
	s->more_due = 1;	/* "connected": the exchange's timer starts */
	h2client_stream_kick(s);
	return 0;
}

/* --- placing streams on sessions */

static uint32_t
h2c_slots(const struct h2conn *c)
{
	uint32_t max = nghttp2_session_get_remote_settings(c->ng,
	    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

	if (max > H2C_STREAMS_MAX)
		max = H2C_STREAMS_MAX;
	return c->nactive < max ? max - c->nactive : 0;
}

static int
h2c_takes(const struct h2conn *c)
{
	return c->ready && !c->goaway && !c->broken && !c->lost && !c->dead && h2c_slots(c) > 0;
}

/* The i-th session of p that takes a stream now. */
static struct h2conn *
h2cpool_nth(struct h2cpool *p, uint32_t i)
{
	struct h2conn *c;

	for (c = p->conns; c != NULL; c = c->next)
		if (h2c_takes(c) && i-- == 0)
			return c;
	return NULL;
}

/*
 * A tunnel's agents (issue 13): the least in flight, ties broken by a
 * rotating start so equal loads alternate, or plain rotation (round-robin);
 * a retry avoids the agent that just refused when another one has room.
 */
static struct h2conn *
h2cpool_pick_tunnel(struct h2cpool *p, const struct ustream *s)
{
	struct h2conn *c, *best = NULL;
	uint32_t n = 0, i, start;

	for (c = p->conns; c != NULL; c = c->next)
		n += (uint32_t)h2c_takes(c);
	if (n == 0)
		return NULL;
	start = p->rr++;
	for (i = 0; i < n; i++) {
		c = h2cpool_nth(p, (start + i) % n);
		if (s->fresh && c == p->refused && n > 1)
			continue;
		if (s->rr)
			return c;
		if (best == NULL || c->nactive < best->nactive)
			best = c;
	}
	return best;
}

/* A session that takes a stream now: ready, not going away, a free slot. */
static struct h2conn *
h2cpool_pick(struct h2cpool *p, const struct ustream *s)
{
	struct h2conn *c;

	if (p->name[0] != '\0')
		return h2cpool_pick_tunnel(p, s);
	for (c = p->conns; c != NULL; c = c->next)
		if (h2c_takes(c))
			return c;
	return NULL;
}

static int
h2cpool_connecting(const struct h2cpool *p)
{
	const struct h2conn *c;

	for (c = p->conns; c != NULL; c = c->next)
		if (!c->ready && !c->goaway && !c->dead)
			return 1;
	return 0;
}

/* Waiting streams onto sessions with room; a new connection when none has and none is coming. */
int
h2client_dispatch(struct h2cpool *p, uint32_t connect_ms)
{
	struct tls_conn *tc = NULL;
	struct h2conn *c;
	int fd, pending;

	while (p->qhead != NULL && (c = h2cpool_pick(p, p->qhead)) != NULL) {
		struct ustream *s = p->qhead;

		h2cpool_dequeue(s);
		if (h2c_submit(c, s) == -1)
			h2client_stream_error(s, UPSTREAM_BROKEN, 0);
		h2csession_kick(c);
	}
	if (p->qhead == NULL || !p->can_dial || h2cpool_connecting(p) || p->nconns >= H2C_CONNS_MAX)
		return 0;
	if ((fd = dial_connect(&p->tgt, &pending)) == -1)
		return -1;
	/* h2: TLS with ALPN h2 on it; the handshake is part of the connect (its timer too). */
	if (p->cfg != 0 && (tc = tlsclient_conn_new(p->qhead->w, p->qhead->snap, p->qhead->route,
	    &p->be, fd)) == NULL) {
		close(fd);
		errno = EPROTO;
		return -1;
	}
	if ((c = h2csession_new(p->qhead->w, p, fd, tc, pending, connect_ms)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* --- delivery to the exchange */

static void
h2c_fail(struct ustream *s, enum upstream_err err, int code)
{
	if (s->failed)
		return;
	s->failed = 1;
	s->ev->fail(s->arg, err, code);
}

/* A response the exchange cannot take: the stream is reset, the exchange hears BROKEN. */
static void
h2c_broken(struct ustream *s)
{
	if (s->c != NULL && !s->ng_closed) {
		(void)nghttp2_submit_rst_stream(s->c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
		h2csession_kick(s->c);
	}
	h2c_fail(s, UPSTREAM_BROKEN, 0);
}

/* Response DATA as far as the exchange has room; what it took reopens the stream's window. */
static int
h2c_body(struct ustream *s)
{
	while (s->in_len > 0 && !s->dead) {
		size_t n = s->ev->room(s->arg);

		if (n == 0)
			return 0;
		if (n > s->in_len)
			n = s->in_len;
		if (s->ev->body(s->arg, s->in + s->in_off, n) == -1)
			return -1;
		s->in_off += n;
		s->in_len -= n;
		if (s->in_len == 0)
			s->in_off = 0;
		if (s->c != NULL && !s->ng_closed) {
			(void)nghttp2_session_consume_stream(s->c->ng, s->id, n);
			h2csession_kick(s->c);
		}
	}
	return 0;
}

/* The response's trailers after its (transformed) head, where end() finds them. */
static int
h2c_join_trailers(struct ustream *s)
{
	const struct msg_head *t = &s->rtrailers;
	uint32_t i;

	for (i = 0; i < t->nf; i++)
		if (msg_add_n(&s->resp, msg_name(t, &t->f[i]), t->f[i].name.len,
		    msg_value(t, &t->f[i]), t->f[i].value.len, 1) == -1)
			return -1;
	return 0;
}

void
h2client_pump(struct ustream *s)
{
	if (s->dead || s->failed)
		return;
	if (s->err_due) {
		h2c_fail(s, s->err, s->code);
		return;
	}
	if (s->more_due) {
		s->more_due = 0;
		s->ev->more(s->arg);
		if (s->dead)
			return;
	}
	if (s->head_ready && !s->head_sent) {
		if (s->ev->room(s->arg) < h2csession_head_size(&s->resp))
			return;
		s->head_sent = 1;
		if (s->ev->head(s->arg, &s->resp) == -1) {
			h2c_broken(s);
			return;
		}
	}
	if (!s->dead && s->req_done && s->req_out && !s->sent) {
		s->sent = 1;
		s->ev->sent(s->arg);
	}
	if (s->dead || !s->head_sent)
		return;
	if (h2c_body(s) == -1) {
		h2c_broken(s);
		return;
	}
	if (!s->dead && s->resp_done && s->in_len == 0 && !s->ended) {
		s->ended = 1;
		if (h2c_join_trailers(s) == -1) {
			h2c_broken(s);
			return;
		}
		s->ev->end(s->arg, &s->resp);
	}
}

/* --- the upstream's ops */

static void
h2c_on_wait_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct ustream *s = t->arg;

	struct h2cpool *p = s->pool;
	/* Waited for a connect: it timed out; for a slot: the backend is busy, not down. */
	int code = p != NULL && h2cpool_connecting(p) ? ETIMEDOUT : EBUSY;

	(void)l;
	log_info("backend %u: no HTTP/2 stream slot in time%s", p != NULL ? p->key : 0,
	    code == ETIMEDOUT ? " (connect timed out)" : " (all sessions full)");
	h2cpool_dequeue(s);
	h2client_stream_error(s, UPSTREAM_CONNECT, code);
}

/*
 * The pool of a tunnel with an agent attached or attaching, or of any tunnel
 * while the process is young (w->tunnel_hold_until: its stream waits for an
 * agent up to connect_ms); NULL with ENOENT when none is.
 */
static struct h2cpool *
h2c_tunnel_pool(struct worker *w, const char *name)
{
	struct h2cpool *p = h2client_pool_named(w, name);
	const struct h2conn *c;

	if (p == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	for (c = p->conns; c != NULL; c = c->next)
		if (!c->goaway && !c->broken && !c->lost && !c->dead)
			return p;
	if (!w->stopping && util_now_ms() < w->tunnel_hold_until)
		return p;
	errno = ENOENT;
	return NULL;
}

/*
 * How a stream is placed: rr, round-robin among a tunnel pool's agents (the
 * tunnel process); hop_tunnel and hop_rr, the fields a worker's request to the
 * tunnel process carries (haloyd-tunnel, haloyd-tunnel-balance).
 */
struct h2c_placing {
	int rr;
	const char *hop_tunnel;
	int hop_rr;
};

static struct ustream *h2c_open_on(struct h2cpool *p, struct worker *w,
    const struct upstream_opts *o, const struct msg_head *req, const struct upstream_events *ev,
    void *arg, const struct h2c_placing *how);

static struct ustream *
h2c_open(struct worker *w, const struct snap_backend *b, const struct upstream_opts *o,
    const struct msg_head *req, const struct upstream_events *ev, void *arg)
{
	struct h2c_placing how = { 0, NULL, 0 };
	struct dial_target tgt;
	struct h2cpool *p;
	uint64_t cfg;

	/* No upgrades over HTTP/2 backends (the request step answers 502 before this). */
	if (req->upgrade || req->method == MSG_M_CONNECT) {
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	/* The hop to the tunnel process is h2c, whatever the route speaks to its other backends. */
	if (dial_target_of(o->snap, b, w->cfg.tunnel_hop, &tgt) == -1)
		return NULL;
	cfg = o->route != NULL && !(b->flags & SNAP_BACKEND_TUNNEL) ?
	    tlsclient_config_key(w, o->snap, o->route) : 0;
	if ((p = h2client_pool(w, b->id, cfg)) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	p->be = *b;
	p->tgt = tgt;
	p->can_dial = 1;
	if (b->flags & SNAP_BACKEND_TUNNEL) {
		how.hop_tunnel = snap_string(o->snap, b->name);
		how.hop_rr = o->route != NULL && (o->route->flags & SNAP_ROUTE_BALANCE_RR) != 0;
	}
	return h2c_open_on(p, w, o, req, ev, arg, &how);
}

/* A tunnel's stream: b is the be of a struct upstream_tunnel (upstream.h). */
static struct ustream *
h2c_open_tunnel(struct worker *w, const struct snap_backend *b, const struct upstream_opts *o,
    const struct msg_head *req, const struct upstream_events *ev, void *arg)
{
	const struct upstream_tunnel *to = (const struct upstream_tunnel *)(const void *)b;
	struct h2c_placing how = { to->round_robin != 0, NULL, 0 };
	struct h2cpool *p;

	if (req->upgrade || req->method == MSG_M_CONNECT) {
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	if ((p = h2c_tunnel_pool(w, to->name)) == NULL)
		return NULL;
	return h2c_open_on(p, w, o, req, ev, arg, &how);
}

/* The stream, queued on p and placed on a session when one has room. */
static struct ustream *
h2c_open_on(struct h2cpool *p, struct worker *w, const struct upstream_opts *o,
    const struct msg_head *req, const struct upstream_events *ev, void *arg,
    const struct h2c_placing *how)
{
	struct ustream *s;
	int saved;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	s->rr = how->rr;
	s->tunnel = how->hop_tunnel;
	s->tunnel_rr = how->hop_rr;
	s->w = w;
	s->ev = ev;
	s->arg = arg;
	s->req = req;
	s->snap = o->snap;
	s->route = o->route;
	s->fresh = o->fresh != 0;
	s->has_body = (req->has_length && req->length > 0) || req->chunked;
	ev_timer_init(&s->timer, h2c_on_wait_timer, s);
	h2cpool_enqueue(p, s);
	if (h2client_dispatch(p, o->connect_ms) == -1) {
		saved = errno;	/* the exchange logs it */
		if (s->queued) {	/* else a session took it before the dial was tried */
			h2cpool_dequeue(s);
			h2c_stream_free(s);
			s = NULL;
		}
		h2client_fail_queue(p, saved);
		errno = saved;
		if (s == NULL)
			return NULL;
	}
	if (s->id == 0 && !s->err_due)
		ev_timer_start(w->loop, &s->timer, o->connect_ms);
	return s;
}

static size_t
h2c_room(struct ustream *s)
{
	if (!s->has_body || s->req_done || buf_get(&s->w->bufs, &s->out) == -1)
		return 0;
	return buf_room(&s->out);
}

static int
h2c_send_body(struct ustream *s, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (n > h2c_room(s)) {
		log_warnx("request body overran its buffer");
		return -1;
	}
	buf_append(&s->out, p, n);
	if (s->c != NULL && !s->ng_closed) {
		(void)nghttp2_session_resume_data(s->c->ng, s->id);
		h2csession_kick(s->c);
	}
	return 0;
}

static int
h2c_end(struct ustream *s, const struct msg_head *trailers)
{
	uint32_t i;

	s->req_done = 1;
	for (i = trailers != NULL ? msg_nheaders(trailers) : 0; trailers != NULL && i < trailers->nf;
	    i++)
		if (msg_add_n(&s->trailers, msg_name(trailers, &trailers->f[i]),
		    trailers->f[i].name.len, msg_value(trailers, &trailers->f[i]),
		    trailers->f[i].value.len, 0) == -1)
			return -1;
	if (s->c != NULL && !s->ng_closed) {
		(void)nghttp2_session_resume_data(s->c->ng, s->id);
		h2csession_kick(s->c);
	}
	h2client_stream_kick(s);	/* a request without body went out with its head: sent */
	return 0;
}

static void
h2c_resume(struct ustream *s)
{
	h2client_stream_kick(s);
}

/* No more events; an unfinished stream is cancelled at the backend (RST_STREAM CANCEL). */
static void
h2c_close(struct ustream *s)
{
	s->dead = 1;
	ev_timer_stop(s->w->loop, &s->timer);
	h2cpool_dequeue(s);
	if (s->c != NULL && !s->ng_closed) {
		(void)nghttp2_submit_rst_stream(s->c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
		h2csession_kick(s->c);
	}
	h2client_stream_kick(s);	/* the free runs after this batch */
}

static int
h2c_connecting(const struct ustream *s)
{
	return s->id == 0;
}

const struct upstream_ops h2client_ops = {
	"h2", h2c_open, h2c_send_body, h2c_room, h2c_end, h2c_resume, h2c_close, h2c_connecting,
};

const struct upstream_ops h2client_tunnel_ops = {
	"tunnel", h2c_open_tunnel, h2c_send_body, h2c_room, h2c_end, h2c_resume, h2c_close,
	h2c_connecting,
};
