/*
 * The HTTP/2 upstream (see upstream.h): client sessions on libnghttp2 with
 * memory I/O (nghttp2_session_mem_recv/mem_send through 32 KiB buffers),
 * driven by the worker's loop: no threads, no blocking. A session runs over
 * any connected socket, plain or TLS (tls_buf_read/tls_buf_write take a NULL
 * tls_conn as plain TCP), whoever opened it: dial.c for backends of a route,
 * a reverse tunnel's agent later (h2client_session_new).
 *
 * Sessions are pooled per key (the backend's store id): a stream goes to a
 * session of its key with a free slot (the peer's MAX_CONCURRENT_STREAMS, at
 * most H2C_STREAMS_MAX), or waits in the pool's queue for one; a connection
 * is dialled when streams wait and none is being made, up to H2C_CONNS_MAX
 * per key. A connect in progress serves every stream that waits for it.
 *
 * Flow control is ours: the connection window is opened as soon as bytes
 * arrive (they are bounded per stream below), a stream's only when its
 * exchange took them (nghttp2_session_consume_stream), so a slow client
 * stalls its own stream and nothing else.
 *
 * nghttp2's callbacks only record what happened; events reach the exchange
 * from h2c_pump, run by the session's turn or the stream's deferred kick,
 * never from inside an ops call.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "share/log.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/context.h"
#include "worker/dial.h"
#include "worker/message.h"
#include "worker/tls.h"
#include "worker/upstream.h"

#define H2C_BUCKETS 64
#define H2C_CONNS_MAX 16	/* sessions per backend that take new streams */
#define H2C_STREAMS_MAX 128	/* streams per session, whatever the peer allows */
#define H2C_STREAM_WINDOW 65535	/* the protocol default: bounds what a stream buffers */
#define H2C_CONN_WINDOW (1024 * 1024)
#define H2C_IN_MAX (2 * H2C_STREAM_WINDOW)	/* past the window: the peer broke flow control */
#define H2C_PING_MS 30000	/* nothing heard for this long: PING */
#define H2C_IDLE_MS 60000	/* no stream for this long: the session closes */
#define H2C_INTERIM_MAX 8	/* 1xx heads before the final one */
#define H2C_DECODED_MAX (4 * MSG_HEAD_MAX)	/* HPACK bombs, as on the server side */
#define H2C_MAX_CONTINUATIONS 8
#define H2C_MAX_OUTBOUND_ACK 1000
#define H2C_NV_MAX (MSG_FIELDS_MAX + 8)
#define H2C_HEAD_SLACK 256	/* status line, framing and HSTS an encoder adds to a head */

struct h2conn;

struct h2cpool {
	uint32_t key;
	uint32_t nconns;		/* sessions that take new streams */
	int can_dial;			/* be holds the backend's address */
	struct snap_backend be;
	struct h2conn *conns;		/* every session of the key */
	struct ustream *qhead, *qtail;	/* streams waiting for a slot */
	struct h2cpool *next;		/* in the bucket */
};

struct h2client_pools {
	struct h2cpool *bucket[H2C_BUCKETS];
	uint32_t ping_ms, idle_ms;	/* H2C_PING_MS, H2C_IDLE_MS unless a test shortens them */
};

/* One HTTP/2 connection to a backend. */
struct h2conn {
	struct worker *w;
	struct h2cpool *pool;
	struct h2conn *next;		/* in pool->conns */
	int fd;
	struct tls_conn *tc;
	nghttp2_session *ng;
	struct ev_io io;
	struct ev_timer timer;		/* connect, PING, idle */
	struct buf in, out;
	const uint8_t *pend;		/* mem_send output not yet in out */
	size_t pend_len;
	struct ustream *streams;	/* submitted streams, closed ones until nghttp2 says so */
	uint32_t nactive;		/* submitted and not closed by nghttp2 */
	uint32_t nsubmitted;		/* ever: a session that carried one is reused */
	uint32_t connect_ms;
	uint64_t born, last_rx, idle_since, ping_at, rx_frames;
	unsigned connecting : 1;	/* connect() in progress */
	unsigned ready : 1;		/* the peer's SETTINGS arrived */
	unsigned goaway : 1;		/* GOAWAY received or sent: no new streams */
	unsigned counted : 1;		/* in pool->nconns */
	unsigned broken : 1;		/* flush what is queued, then close */
	unsigned lost : 1;		/* the transport failed */
	unsigned ping_out : 1;
	unsigned dead : 1;
	uint8_t kick_pending;
};

struct ustream {
	struct worker *w;
	struct h2cpool *pool;		/* while queued */
	struct h2conn *c;		/* once submitted, until its session goes */
	struct ustream *prev, *next;	/* in the pool's queue or c->streams */
	int32_t id;			/* 0 until submitted */
	const struct upstream_events *ev;
	void *arg;
	const struct msg_head *req;
	struct msg_head resp;
	struct msg_head trailers;	/* the request's, copied at end() */
	struct msg_head rtrailers;	/* the response's, joined to resp at its end */
	struct buf out;			/* request body for the DATA provider */
	char *in;			/* response DATA the exchange has not taken */
	size_t in_off, in_len, in_cap;
	struct ev_timer timer;		/* waiting for a slot */
	uint64_t rx_at_submit;		/* c->rx_frames then: silence since means a dead session */
	size_t decoded;			/* header bytes of the current block */
	unsigned interim;
	enum upstream_err err;
	int code;
	unsigned fresh : 1, queued : 1, has_body : 1, reused : 1;
	unsigned req_done : 1;		/* end() called */
	unsigned req_out : 1;		/* END_STREAM went out */
	unsigned sent : 1, more_due : 1;
	unsigned got_byte : 1;		/* the backend said something on the stream */
	unsigned head_ready : 1, head_sent : 1, resp_done : 1, ended : 1;
	unsigned ng_closed : 1;		/* nghttp2 closed the stream (or the session went) */
	unsigned err_due : 1, failed : 1, dead : 1;
	uint8_t kick_pending;
};

static void h2c_run(struct h2conn *c);
static void h2c_pump(struct ustream *s);
static void h2c_conn_close(struct h2conn *c);

/* --- kicks: everything runs after the current batch of events */

static void
h2c_stream_free(struct ustream *s)
{
	ev_timer_stop(s->w->loop, &s->timer);
	buf_put(&s->w->bufs, &s->out);
	msg_free(&s->resp);
	msg_free(&s->trailers);
	msg_free(&s->rtrailers);
	free(s->in);
	free(s);
}

/* Leaves the session's list; a dead stream is freed after nghttp2 let go of it. */
static void
h2c_stream_unlink(struct ustream *s)
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
		h2c_pump(s);
		return;
	}
	/* A closed stream nghttp2 still knows waits for its on_stream_close (RST_STREAM is queued). */
	if (s->c != NULL && !s->ng_closed)
		return;
	h2c_stream_unlink(s);
	h2c_stream_free(s);
}

static void
h2c_stream_kick(struct ustream *s)
{
	(void)ev_defer_once(s->w->loop, h2c_stream_kick_run, s, &s->kick_pending);
}

static void
h2c_conn_kick_run(void *arg)
{
	struct h2conn *c = arg;

	c->kick_pending = 0;
	if (c->dead)
		free(c);
	else
		h2c_run(c);
}

static void
h2c_conn_kick(struct h2conn *c)
{
	(void)ev_defer_once(c->w->loop, h2c_conn_kick_run, c, &c->kick_pending);
}

/* --- pools */

int
h2client_pools_init(struct worker *w)
{
	if ((w->h2pools = calloc(1, sizeof(*w->h2pools))) == NULL)
		return -1;
	w->h2pools->ping_ms = H2C_PING_MS;
	w->h2pools->idle_ms = H2C_IDLE_MS;
	return 0;
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
				h2c_conn_close(p->conns);	/* freed by the next turn of the loop */
			free(p);
		}
	free(w->h2pools);
	w->h2pools = NULL;
}

static struct h2cpool *
h2cpool_find(struct worker *w, uint32_t key)
{
	struct h2cpool **head = &w->h2pools->bucket[key % H2C_BUCKETS], *p;

	for (p = *head; p != NULL; p = p->next)
		if (p->key == key)
			return p;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->key = key;
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
static void
h2c_stream_error(struct ustream *s, enum upstream_err err, int code)
{
	if (s->err_due || s->failed || s->dead)
		return;
	s->err_due = 1;
	s->err = err;
	s->code = code;
	h2c_stream_kick(s);
}

/* Every waiting stream fails: its backend could not be reached. */
static void
h2cpool_fail_queue(struct h2cpool *p, int code)
{
	while (p->qhead != NULL) {
		struct ustream *s = p->qhead;

		h2cpool_dequeue(s);
		h2c_stream_error(s, UPSTREAM_CONNECT, code);
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

struct h2c_reqbuf {
	nghttp2_nv nv[H2C_NV_MAX + 5];
	char names[MSG_MEM_MAX];
	char path[MSG_TARGET_MAX + 2];
	char clen[24];
};

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
		h2c_stream_kick(s);
	}
	if (s->out.len > 0)
		return (ssize_t)n;
	buf_put(&s->w->bufs, &s->out);
	if (!s->req_done)
		return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (s->trailers.nf > 0) {
		struct h2c_reqbuf *rb = malloc(sizeof(*rb));
		size_t nnv = 0;
		int rc;

		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		rc = rb == NULL || h2c_nv_fields(&s->trailers, 0, s->trailers.nf, rb->nv, &nnv,
		    rb->names, sizeof(rb->names)) == -1 ||
		    nghttp2_submit_trailer(ng, id, rb->nv, nnv) != 0 ? -1 : 0;
		free(rb);
		if (rc == -1)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/* Submits s on c; -1 when its head cannot be encoded. */
static int
h2c_submit(struct h2conn *c, struct ustream *s)
{
	nghttp2_data_provider prd = { .source.ptr = NULL, .read_callback = h2c_read_body };
	struct h2c_reqbuf *rb = malloc(sizeof(*rb));
	size_t n;
	int32_t id = -1;

	if (rb != NULL && h2c_nv_request(s->req, c->tc != NULL, rb, &n) == 0)
		id = nghttp2_submit_request(c->ng, NULL, rb->nv, n, s->has_body ? &prd : NULL, s);
	free(rb);
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
	h2c_stream_kick(s);
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

/* A session that takes a stream now: ready, not going away, a free slot. */
static struct h2conn *
h2cpool_pick(struct h2cpool *p)
{
	struct h2conn *c;

	for (c = p->conns; c != NULL; c = c->next)
		if (c->ready && !c->goaway && !c->broken && !c->lost && !c->dead && h2c_slots(c) > 0)
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

static struct h2conn *h2c_conn_new(struct worker *w, struct h2cpool *p, int fd,
    struct tls_conn *tc, int connecting, uint32_t connect_ms);

/* Waiting streams onto sessions with room; a new connection when none has and none is coming. */
static int
h2cpool_dispatch(struct h2cpool *p, uint32_t connect_ms)
{
	struct h2conn *c;
	int fd, pending;

	while (p->qhead != NULL && (c = h2cpool_pick(p)) != NULL) {
		struct ustream *s = p->qhead;

		h2cpool_dequeue(s);
		if (h2c_submit(c, s) == -1)
			h2c_stream_error(s, UPSTREAM_BROKEN, 0);
		h2c_conn_kick(c);
	}
	if (p->qhead == NULL || !p->can_dial || h2cpool_connecting(p) || p->nconns >= H2C_CONNS_MAX)
		return 0;
	if ((fd = dial_backend(&p->be, &pending)) == -1)
		return -1;
	if ((c = h2c_conn_new(p->qhead->w, p, fd, NULL, pending, connect_ms)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* --- the session's transport */

static int
h2c_flush(struct h2conn *c)
{
	while (c->out.len > 0) {
		ssize_t n = tls_buf_write(c->tc, c->fd, &c->out);

		if (n >= 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			break;
		return -1;
	}
	if (c->out.len == 0)
		buf_put(&c->w->bufs, &c->out);
	return 0;
}

/* Reads what fits; 0, or -1 when the connection ended or failed. */
static int
h2c_read(struct h2conn *c)
{
	ssize_t n;

	if (buf_get(&c->w->bufs, &c->in) == -1 || buf_room(&c->in) == 0)
		return 0;
	n = tls_buf_read(c->tc, c->fd, &c->in);
	if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR)))
		return 0;
	if (n == 0)
		log_debug("backend %u: HTTP/2 connection closed by the backend", c->pool->key);
	else
		log_info("backend %u: HTTP/2 connection: %s", c->pool->key, strerror(errno));
	return -1;
}

static void
h2c_recv(struct h2conn *c)
{
	ssize_t n;

	if (c->in.len == 0)
		return;
	n = nghttp2_session_mem_recv(c->ng, (const uint8_t *)buf_head(&c->in), c->in.len);
	if (n < 0) {
		log_info("backend %u: HTTP/2: %s", c->pool->key, nghttp2_strerror((int)n));
		if (!c->broken)
			(void)nghttp2_session_terminate_session(c->ng, n == NGHTTP2_ERR_FLOODED ||
			    n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? NGHTTP2_ENHANCE_YOUR_CALM :
			    NGHTTP2_PROTOCOL_ERROR);
		c->broken = 1;
		return;
	}
	buf_consume(&c->in, (size_t)n);
}

/* Copies what nghttp2 has to send into out, as far as it has room. */
static int
h2c_send(struct h2conn *c)
{
	for (;;) {
		size_t room, n;

		if (c->pend_len == 0) {
			ssize_t got = nghttp2_session_mem_send(c->ng, &c->pend);

			if (got < 0) {
				log_info("backend %u: HTTP/2: %s", c->pool->key,
				    nghttp2_strerror((int)got));
				return -1;
			}
			if (got == 0)
				return 0;
			c->pend_len = (size_t)got;
		}
		if (buf_get(&c->w->bufs, &c->out) == -1 || (room = buf_room(&c->out)) == 0)
			return 0;
		n = c->pend_len < room ? c->pend_len : room;
		buf_append(&c->out, c->pend, n);
		c->pend += n;
		c->pend_len -= n;
	}
}

/* What a stream hears when its session died under it. */
static void
h2c_stream_orphan(struct ustream *s)
{
	if (!s->ng_closed && !s->resp_done) {
		if (s->got_byte)
			h2c_stream_error(s, UPSTREAM_BROKEN, 0);
		else if (s->reused && !s->fresh && s->rx_at_submit == s->c->rx_frames)
			h2c_stream_error(s, UPSTREAM_STALE, 0);	/* not a word since: it was dead */
		else
			h2c_stream_error(s, UPSTREAM_RESET, 0);
	}
	s->ng_closed = 1;
	h2c_stream_unlink(s);
	h2c_stream_kick(s);
}

static void
h2c_uncount(struct h2conn *c)
{
	if (c->counted)
		c->pool->nconns--;
	c->counted = 0;
}

/* Closes the connection; its streams are told (or reaped), the struct goes after this batch. */
static void
h2c_conn_close(struct h2conn *c)
{
	struct h2conn **pp;

	if (c->dead)
		return;
	c->dead = 1;
	h2c_uncount(c);
	for (pp = &c->pool->conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	while (c->streams != NULL)
		h2c_stream_orphan(c->streams);
	ev_io_stop(c->w->loop, &c->io);
	ev_timer_stop(c->w->loop, &c->timer);
	nghttp2_session_del(c->ng);
	tls_conn_free(c->tc);
	close(c->fd);
	buf_put(&c->w->bufs, &c->in);
	buf_put(&c->w->bufs, &c->out);
	h2c_conn_kick(c);	/* the free */
}

/* The session's next deadline: connect, PING answer, PING due, idle close. */
static void
h2c_arm(struct h2conn *c)
{
	uint64_t now = ev_now(c->w->loop), at;

	const struct h2client_pools *t = c->w->h2pools;

	if (!c->ready)
		at = c->born + c->connect_ms;
	else {
		at = c->ping_out ? c->ping_at + c->connect_ms : c->last_rx + t->ping_ms;
		if (c->nactive == 0 && c->idle_since + t->idle_ms < at)
			at = c->idle_since + t->idle_ms;
	}
	ev_timer_start(c->w->loop, &c->timer, at > now ? at - now : 0);
}

static void
h2c_watch(struct h2conn *c)
{
	uint32_t ev = EPOLLIN;

	if (c->out.len > 0 || c->pend_len > 0 || c->connecting)
		ev |= EPOLLOUT;
	if (c->connecting)
		ev = EPOLLOUT;
	ev |= tls_conn_events(c->tc);
	if (ev != c->io.events && ev_io_modify(c->w->loop, &c->io, ev) == -1)
		c->lost = 1;
}

/* One turn: write, read, feed nghttp2, deliver to the streams, place waiting ones, write. */
static void
h2c_run(struct h2conn *c)
{
	struct ustream *s, *next;

	if (c->dead || c->connecting)
		return;
	if (h2c_flush(c) == -1 || (!c->broken && h2c_read(c) == -1))
		c->lost = 1;
	if (!c->lost && !c->broken)
		h2c_recv(c);
	if (c->in.len == 0)
		buf_put(&c->w->bufs, &c->in);
	for (s = c->streams; s != NULL; s = next) {
		next = s->next;
		h2c_pump(s);
	}
	if (c->lost) {
		h2c_conn_close(c);
		return;
	}
	if (!c->broken && !c->goaway && c->ready &&
	    h2cpool_dispatch(c->pool, c->connect_ms) == -1)
		h2cpool_fail_queue(c->pool, errno);
	if (h2c_send(c) == -1 || h2c_flush(c) == -1) {
		h2c_conn_close(c);
		return;
	}
	if (c->out.len == 0 && c->pend_len == 0 && (c->broken || (c->goaway && c->nactive == 0) ||
	    (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng)))) {
		h2c_conn_close(c);
		return;
	}
	if (c->pend_len > 0 || tls_conn_pending(c->tc))
		h2c_conn_kick(c);
	h2c_watch(c);
	h2c_arm(c);
	if (c->lost)
		h2c_conn_close(c);
}

/* The pending connect's event came: on its way, or the streams waiting for it fail. */
static int
h2c_connect_done(struct h2conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		log_info("backend %u: connect: %s", c->pool->key, strerror(err));
		h2cpool_fail_queue(c->pool, err);
		h2c_conn_close(c);
		return -1;
	}
	c->connecting = 0;
	return 0;
}

static void
h2c_on_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct h2conn *c = io->arg;

	(void)l;
	(void)events;
	if (!c->connecting || h2c_connect_done(c) == 0)
		h2c_run(c);
}

static void
h2c_on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct h2conn *c = t->arg;
	uint64_t now = ev_now(l);

	if (!c->ready) {
		log_info("backend %u: HTTP/2 connect timed out", c->pool->key);
		h2cpool_fail_queue(c->pool, ETIMEDOUT);
		h2c_conn_close(c);
		return;
	}
	if (c->ping_out && now >= c->ping_at + c->connect_ms) {
		log_info("backend %u: no answer to HTTP/2 PING: closing", c->pool->key);
		h2c_conn_close(c);
		return;
	}
	if (c->nactive == 0 && now >= c->idle_since + c->w->h2pools->idle_ms) {
		(void)nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
		h2c_uncount(c);
		c->goaway = c->broken = 1;
	} else if (!c->ping_out && now >= c->last_rx + c->w->h2pools->ping_ms) {
		if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) == 0) {
			c->ping_out = 1;
			c->ping_at = now;
		}
	}
	h2c_run(c);
}

/* --- nghttp2's callbacks: they record, h2c_pump delivers */

static struct ustream *
h2c_stream_of(nghttp2_session *ng, int32_t id)
{
	struct ustream *s = nghttp2_session_get_stream_user_data(ng, id);

	return s != NULL && !s->dead ? s : NULL;
}

/* The head is complete: its framing as the neutral message says it. */
static int
h2c_final_head(struct ustream *s, int end_stream)
{
	struct msg_head *h = &s->resp;
	const struct msg_field *cl = msg_find(h, "content-length");
	int nobody = s->req->method == MSG_M_HEAD || h->status == 204 || h->status == 304;

	h->major = 2;
	h->minor = 0;
	h->keepalive = 1;
	if (cl != NULL) {
		if (util_parse_u64(msg_value(h, cl), 0, UINT64_MAX, &h->length) == -1)
			return -1;
		h->has_length = 1;
	} else if (end_stream && !nobody)
		h->has_length = 1;	/* length 0: an HTTP/1.1 client needs no chunks */
	else if (!nobody)
		h->chunked = 1;	/* DATA of a length nobody said: chunked for HTTP/1.1 */
	s->head_ready = 1;
	return 0;
}

/* About what h encodes to in HTTP/1.1: ": " and CRLF where the head has two NULs per field. */
static size_t
h2c_head_size(const struct msg_head *h)
{
	return h->len + 2 * (size_t)h->nf + H2C_HEAD_SLACK;
}

/* An interim 1xx goes to the exchange at once when it has room; else it is dropped. */
static void
h2c_interim(struct ustream *s)
{
	if (s->ev->room(s->arg) >= h2c_head_size(&s->resp) &&
	    s->ev->head(s->arg, &s->resp) == -1)
		h2c_stream_error(s, UPSTREAM_BROKEN, 0);
	msg_reset(&s->resp);
}

static int
h2c_on_headers(struct h2conn *c, struct ustream *s, const nghttp2_frame *f)
{
	int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	if (s->head_ready) {	/* trailers */
		s->resp_done = end;
		return 0;
	}
	if (s->resp.status / 100 == 1) {
		if (++s->interim > H2C_INTERIM_MAX) {
			log_info("backend %u: too many interim responses", c->pool->key);
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		h2c_interim(s);
		return 0;
	}
	if (h2c_final_head(s, end) == -1) {
		log_info("backend %u: bad content-length", c->pool->key);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	s->resp_done = end;
	return 0;
}

static int
h2c_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2conn *c = arg;
	struct ustream *s;

	c->rx_frames++;
	c->last_rx = ev_now(c->w->loop);
	c->ping_out = 0;	/* anything heard proves the session alive */
	switch (f->hd.type) {
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && !c->ready) {
			c->ready = 1;
			c->idle_since = c->last_rx;
		}
		return 0;
	case NGHTTP2_GOAWAY:
		log_info("backend %u: HTTP/2 GOAWAY (last stream %d, error %u)", c->pool->key,
		    f->goaway.last_stream_id, f->goaway.error_code);
		c->goaway = 1;
		h2c_uncount(c);
		return 0;
	case NGHTTP2_HEADERS:
		if ((s = h2c_stream_of(ng, f->hd.stream_id)) == NULL)
			return 0;
		h2c_stream_kick(s);
		return h2c_on_headers(c, s, f);
	case NGHTTP2_DATA:
		if ((s = h2c_stream_of(ng, f->hd.stream_id)) != NULL &&
		    (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			s->resp_done = 1;
			h2c_stream_kick(s);
		}
		return 0;
	default:
		return 0;
	}
}

static int
h2c_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct ustream *s = h2c_stream_of(ng, f->hd.stream_id);

	(void)arg;
	if (s != NULL)
		s->decoded = 0;
	return 0;
}

static int
h2c_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct h2conn *c = arg;
	struct ustream *s = h2c_stream_of(ng, f->hd.stream_id);
	struct msg_head *h;
	uint64_t status;

	(void)flags;
	if (s == NULL || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	h = &s->resp;
	s->got_byte = 1;
	if ((s->decoded += nlen + vlen + 32) > H2C_DECODED_MAX) {
		log_info("backend %u: HTTP/2 header block decodes too large", c->pool->key);
		(void)nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
		c->broken = 1;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
		/* nghttp2 checked it is three digits. */
		if (util_parse_u64((const char *)value, 100, 999, &status) == -1)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		h->status = (unsigned)status;
		return 0;
	}
	if (nlen > 0 && name[0] == ':')
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	/* Trailers wait apart: the exchange transforms the head, which must stay trailer-free. */
	if (s->head_ready)
		h = &s->rtrailers;
	if (h->len + nlen + vlen > (s->head_ready ? MSG_TRAILER_MAX : MSG_HEAD_MAX) ||
	    h->nf >= MSG_FIELDS_MAX ||
	    msg_add_n(h, (const char *)name, nlen, (const char *)value, vlen, 0) == -1) {
		log_info("backend %u: HTTP/2 response head too large", c->pool->key);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

static int
h2c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
    void *arg)
{
	struct h2conn *c = arg;
	struct ustream *s = h2c_stream_of(ng, id);
	char *p;

	(void)flags;
	/* The connection's window reopens at once: each stream's own bounds what waits here. */
	(void)nghttp2_session_consume_connection(ng, len);
	if (s == NULL || !s->head_ready) {
		(void)nghttp2_session_consume_stream(ng, id, len);
		return 0;
	}
	if (s->in_off > 0 && s->in_off + s->in_len + len > s->in_cap) {
		memmove(s->in, s->in + s->in_off, s->in_len);
		s->in_off = 0;
	}
	if (s->in_len + len > s->in_cap) {
		if (s->in_len + len > H2C_IN_MAX || (p = realloc(s->in, s->in_len + len)) == NULL) {
			log_info("backend %u: HTTP/2 stream %d overran its window", c->pool->key, id);
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		s->in = p;
		s->in_cap = s->in_len + len;
	}
	memcpy(s->in + s->in_off + s->in_len, data, len);
	s->in_len += len;
	h2c_stream_kick(s);
	return 0;
}

/* What a stream that nghttp2 closed before its response ended tells the exchange. */
static void
h2c_closed_early(struct ustream *s, uint32_t code)
{
	if (s->got_byte)
		h2c_stream_error(s, UPSTREAM_BROKEN, 0);
	else if (code == NGHTTP2_REFUSED_STREAM && !s->fresh)
		h2c_stream_error(s, UPSTREAM_STALE, 0);	/* RFC 9113 8.7: not processed */
	else
		h2c_stream_error(s, UPSTREAM_RESET, 0);
}

static int
h2c_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	struct h2conn *c = arg;
	struct ustream *s = nghttp2_session_get_stream_user_data(ng, id);

	if (s == NULL)
		return 0;
	if (c->nactive > 0 && --c->nactive == 0)
		c->idle_since = ev_now(c->w->loop);
	s->ng_closed = 1;
	if (!s->dead && !s->resp_done) {
		if (code != NGHTTP2_NO_ERROR && code != NGHTTP2_REFUSED_STREAM)
			log_info("backend %u: HTTP/2 stream %d reset (error %u)", c->pool->key, id,
			    code);
		h2c_closed_early(s, code);
	}
	h2c_stream_kick(s);	/* delivery, or the free of a closed stream */
	h2c_conn_kick(c);	/* a slot is free */
	return 0;
}

static int
h2c_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct ustream *s;

	(void)arg;
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    (s = h2c_stream_of(ng, f->hd.stream_id)) != NULL) {
		s->req_out = 1;
		h2c_stream_kick(s);
	}
	return 0;
}

/* --- sessions */

static int
h2c_settings(struct h2conn *c)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2C_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MSG_HEAD_MAX },
	};

	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, ARRAY_LEN(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, H2C_CONN_WINDOW) != 0)
		return -1;
	return 0;
}

static int
h2c_ng_new(struct h2conn *c)
{
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	int rc = -1;

	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2c_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2c_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2c_on_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2c_on_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, h2c_on_frame_send);
	/* Windows open as the exchanges take bytes (h2c_pump), not as nghttp2 reads them. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_continuations(opt, H2C_MAX_CONTINUATIONS);
	nghttp2_option_set_max_outbound_ack(opt, H2C_MAX_OUTBOUND_ACK);
	if (nghttp2_session_client_new2(&c->ng, cb, c, opt) != 0)
		goto out;
	rc = h2c_settings(c);
out:
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	return rc;
}

/* A session on fd (connected, or connecting when connecting is set); it owns fd and tc. */
static struct h2conn *
h2c_conn_new(struct worker *w, struct h2cpool *p, int fd, struct tls_conn *tc, int connecting,
    uint32_t connect_ms)
{
	struct h2conn *c = calloc(1, sizeof(*c));

	if (c == NULL || h2c_ng_new(c) == -1 ||
	    ev_io_start(w->loop, &c->io, fd, connecting ? EPOLLOUT : EPOLLIN | EPOLLOUT, h2c_on_io,
	    c) == -1) {
		if (c != NULL && c->ng != NULL)
			nghttp2_session_del(c->ng);
		free(c);
		tls_conn_free(tc);
		close(fd);
		return NULL;
	}
	c->w = w;
	c->pool = p;
	c->fd = fd;
	c->tc = tc;
	c->connecting = connecting != 0;
	c->connect_ms = connect_ms;
	c->born = c->last_rx = ev_now(w->loop);
	ev_timer_init(&c->timer, h2c_on_timer, c);
	h2c_arm(c);
	c->next = p->conns;
	p->conns = c;
	c->counted = 1;
	p->nconns++;
	return c;
}

int
h2client_session_new(struct worker *w, int fd, struct tls_conn *tc, uint32_t pool_key)
{
	struct h2cpool *p = h2cpool_find(w, pool_key);

	if (p == NULL) {
		tls_conn_free(tc);
		close(fd);
		return -1;
	}
	return h2c_conn_new(w, p, fd, tc, 0, w->cfg.connect_timeout_ms) == NULL ? -1 : 0;
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
		h2c_conn_kick(s->c);
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
			h2c_conn_kick(s->c);
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

static void
h2c_pump(struct ustream *s)
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
		if (s->ev->room(s->arg) < h2c_head_size(&s->resp))
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

	(void)l;
	log_info("backend %u: no HTTP/2 stream slot in time", s->pool != NULL ? s->pool->key : 0);
	h2cpool_dequeue(s);
	h2c_stream_error(s, UPSTREAM_CONNECT, ETIMEDOUT);
}

static struct ustream *
h2c_open(struct worker *w, const struct snap_backend *b, const struct upstream_opts *o,
    const struct msg_head *req, const struct upstream_events *ev, void *arg)
{
	struct h2cpool *p;
	struct ustream *s;
	int saved;

	/* No upgrades over HTTP/2 backends (the request step answers 502 before this). */
	if (req->upgrade || req->method == MSG_M_CONNECT) {
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	if ((p = h2cpool_find(w, b->id)) == NULL || (s = calloc(1, sizeof(*s))) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	p->be = *b;
	p->can_dial = 1;
	s->w = w;
	s->ev = ev;
	s->arg = arg;
	s->req = req;
	s->fresh = o->fresh != 0;
	s->has_body = (req->has_length && req->length > 0) || req->chunked;
	ev_timer_init(&s->timer, h2c_on_wait_timer, s);
	h2cpool_enqueue(p, s);
	if (h2cpool_dispatch(p, o->connect_ms) == -1) {
		saved = errno;	/* the exchange logs it */
		if (s->queued) {	/* else a session took it before the dial was tried */
			h2cpool_dequeue(s);
			h2c_stream_free(s);
			s = NULL;
		}
		h2cpool_fail_queue(p, saved);
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
		h2c_conn_kick(s->c);
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
		h2c_conn_kick(s->c);
	}
	h2c_stream_kick(s);	/* a request without body went out with its head: sent */
	return 0;
}

static void
h2c_resume(struct ustream *s)
{
	h2c_stream_kick(s);
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
		h2c_conn_kick(s->c);
	}
	h2c_stream_kick(s);	/* the free runs after this batch */
}

static int
h2c_connecting(const struct ustream *s)
{
	return s->id == 0;
}

const struct upstream_ops h2client_ops = {
	"h2", h2c_open, h2c_send_body, h2c_room, h2c_end, h2c_resume, h2c_close, h2c_connecting,
};
