/*
 * The HTTP/1.1 upstream (see upstream.h): backend connections, their
 * keep-alive pools, and one request at a time on each. A pool is keyed by the
 * backend's store id (not a snapshot pointer), so it survives snapshot swaps,
 * and by the route's TLS configuration (tlsclient_config_key, 0 for plain),
 * so a route switched to https or to another CA never reuses an old
 * connection; it holds at most H1C_POOL_MAX idle connections for at most
 * H1C_IDLE_MS each, and drops one as soon as the backend closes it. A
 * connection goes back only after a complete, well-framed response. Buffers
 * are held only while bytes are in flight.
 *
 * Proto https is the same protocol over TLS (worker/tlsclient.c): the
 * handshake follows the TCP connect inside the connect phase and its
 * timeout, and its failure is UPSTREAM_CONNECT, logged with OpenSSL's reason.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "share/log.h"
#include "share/snap.h"
#include "worker/context.h"
#include "worker/dial.h"
#include "worker/http1.h"
#include "worker/tls.h"
#include "worker/tlsclient.h"
#include "worker/proxyproto.h"
#include "worker/upstream.h"

#define H1C_POOL_MAX 512	/* HTTP/2 clients keep hundreds of requests in flight: fewer would churn */
#define H1C_IDLE_MS 30000
#define H1C_BUCKETS 256
#define H1C_CHUNK_SLACK 64	/* chunk framing added per send */

/* A backend connection: in a pool while idle, else owned by one stream. */
struct h1conn {
	struct worker *w;
	uint32_t backend_id;
	int fd;
	int reused;		/* came from the pool: may be stale */
	int connecting;		/* connect() still in progress */
	int readable;		/* epoll said input (or EOF) is waiting: a read will not be wasted */
	int handshaking;	/* TLS handshake still in progress (after the connect) */
	struct tls_conn *tls;	/* proto https, else NULL */
	uint64_t key;		/* the pool's: tlsclient_config_key of the route */
	uint32_t route_id;	/* TLS: whose session cache it feeds */
	int session_kept;	/* its TLS session went to tlsclient_keep_session */
	struct ev_io io;
	struct ev_timer timer;	/* idle in the pool, connect timeout in use */
	struct ustream *s;	/* the stream using it, NULL in the pool */
	struct h1conn *next;	/* in the pool's idle list */
	int private;		/* began with one client's PROXY header: never pooled */
	uint8_t pp_len;		/* that header, sent once the connect is done (before TLS) */
	uint8_t pp[PROXYPROTO_OUT_MAX];
};

struct h1pool {
	uint32_t backend_id;
	uint64_t key;		/* tlsclient_config_key: 0 plain, else one TLS configuration */
	uint32_t nidle;
	struct h1conn *idle;	/* most recently used first */
	struct h1pool *next;	/* in the bucket */
};

struct h1client_pools {
	struct h1pool *bucket[H1C_BUCKETS];
};

struct ustream {
	struct worker *w;
	struct h1conn *c;
	const struct upstream_events *ev;
	void *arg;
	const struct msg_head *req;
	struct msg_head resp;
	struct h1 *h1;
	struct buf out, in;
	unsigned got_byte : 1;		/* the backend answered something */
	unsigned resp_done : 1;		/* the whole response was parsed */
	unsigned ended : 1;		/* end() delivered to the exchange */
	unsigned eof : 1;		/* the backend closed its side */
	unsigned req_done : 1;		/* the exchange called end() */
	unsigned sent : 1;		/* sent() delivered */
	unsigned pipe : 1;		/* after a 101: raw bytes both ways */
	unsigned failed : 1;
	unsigned dead : 1;		/* closed by the exchange; freed after this batch */
	uint8_t kick_pending;
};

/* Where the response parser starts in a stream's allocation. */
#define USTREAM_SIZE ((sizeof(struct ustream) + 15) & ~(size_t)15)

static void h1c_run(struct ustream *s);
static int h1c_connect_done(struct ustream *s);
static const struct h1_events h1c_resp_events;

/* --- pools */

int
h1client_pools_init(struct worker *w)
{
	w->pools = calloc(1, sizeof(*w->pools));
	return w->pools == NULL ? -1 : 0;
}

static void
h1conn_close(struct h1conn *c)
{
	ev_io_stop(c->w->loop, &c->io);
	ev_timer_stop(c->w->loop, &c->timer);
	tls_conn_free(c->tls);	/* close_notify when it is healthy */
	close(c->fd);
	free(c);
}

void
h1client_pools_free(struct worker *w)
{
	struct h1pool *p, *pn;
	struct h1conn *c, *cn;
	size_t i;

	if (w->pools == NULL)
		return;
	for (i = 0; i < H1C_BUCKETS; i++)
		for (p = w->pools->bucket[i]; p != NULL; p = pn) {
			pn = p->next;
			for (c = p->idle; c != NULL; c = cn) {
				cn = c->next;
				h1conn_close(c);
			}
			free(p);
		}
	free(w->pools);
	w->pools = NULL;
}

static struct h1pool *
h1pool_find(struct worker *w, uint32_t id, uint64_t key, int create)
{
	struct h1pool **head = &w->pools->bucket[id % H1C_BUCKETS], *p;

	for (p = *head; p != NULL; p = p->next)
		if (p->backend_id == id && p->key == key)
			return p;
	if (!create || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->backend_id = id;
	p->key = key;
	p->next = *head;
	*head = p;
	return p;
}

/* An idle connection became readable or timed out: the backend closed it or broke the protocol. */
static void
h1pool_drop(struct h1conn *c)
{
	struct h1pool *p = h1pool_find(c->w, c->backend_id, c->key, 0);
	struct h1conn **pp;

	for (pp = p != NULL ? &p->idle : NULL; pp != NULL && *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			p->nidle--;
			break;
		}
	h1conn_close(c);
}

static void
h1conn_on_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct h1conn *c = io->arg;

	(void)l;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		c->readable = 1;
	if (c->s == NULL)
		h1pool_drop(c);
	else if (!c->connecting || h1c_connect_done(c->s) == 0)
		h1c_run(c->s);
}

static void
h1conn_on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct h1conn *c = t->arg;
	struct ustream *s = c->s;

	(void)l;
	if (s == NULL) {
		h1pool_drop(c);
		return;
	}
	/* In use, the timer only guards the connect and the TLS handshake. */
	log_info("backend %u: %s timed out", c->backend_id,
	    c->connecting ? "connect" : "TLS handshake");
	s->failed = 1;
	s->ev->fail(s->arg, UPSTREAM_CONNECT, ETIMEDOUT);
}

static struct h1conn *
h1pool_take(struct worker *w, uint32_t id, uint64_t key)
{
	struct h1pool *p = h1pool_find(w, id, key, 0);
	struct h1conn *c;

	if (p == NULL || p->idle == NULL)
		return NULL;
	c = p->idle;
	p->idle = c->next;
	p->nidle--;
	c->next = NULL;
	c->reused = 1;
	ev_timer_stop(w->loop, &c->timer);
	return c;
}

/* Back to the pool when reuse is set and the pool has room, else closed. */
static void
h1pool_put(struct h1conn *c, int reuse)
{
	struct worker *w = c->w;
	struct h1pool *p;

	c->s = NULL;
	if (!reuse || c->private || c->connecting || c->handshaking || w->stopping ||
	    (p = h1pool_find(w, c->backend_id, c->key, 1)) == NULL || p->nidle >= H1C_POOL_MAX) {
		h1conn_close(c);
		return;
	}
	c->next = p->idle;
	p->idle = c;
	p->nidle++;
	ev_timer_stop(w->loop, &c->timer);
	if (c->io.events != EPOLLIN && ev_io_modify(w->loop, &c->io, EPOLLIN) == -1) {
		h1pool_drop(c);
		return;
	}
	ev_timer_start(w->loop, &c->timer, H1C_IDLE_MS);
}

/* A new non-blocking connect; NULL with errno when it failed at once. */
static struct h1conn *
h1conn_connect(struct worker *w, const struct snap *snap, const struct snap_backend *b)
{
	struct h1conn *c;
	int pending, saved;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->w = w;
	c->backend_id = b->id;
	if ((c->fd = dial_backend(snap, b, w->cfg.tunnel_hop, &pending)) == -1)
		goto fail;
	c->connecting = pending;
	ev_timer_init(&c->timer, h1conn_on_timer, c);
	if (ev_io_start(w->loop, &c->io, c->fd, c->connecting ? EPOLLOUT : EPOLLIN,
	    h1conn_on_io, c) == -1) {
		errno = ENOMEM;
		goto fail;
	}
	return c;
fail:
	saved = errno;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	errno = saved;
	return NULL;
}

/* --- the stream */

static void
h1c_kick_run(void *arg)
{
	struct ustream *s = arg;

	s->kick_pending = 0;
	if (s->dead) {
		buf_put(&s->w->bufs, &s->out);
		buf_put(&s->w->bufs, &s->in);
		msg_free(&s->resp);
		free(s);
	} else
		h1c_run(s);
}

/* Runs the stream after this batch of events (never inside an ops call). */
static void
h1c_kick(struct ustream *s)
{
	(void)ev_defer_once(s->w->loop, h1c_kick_run, s, &s->kick_pending);
}

/*
 * The PROXY header, first on the wire (before TLS): a new socket's send
 * buffer takes its 16 to 107 bytes at once, so a short write is a failure.
 */
static int
h1conn_send_pp(struct h1conn *c)
{
	ssize_t n;

	if (c->pp_len == 0)
		return 0;
	n = send(c->fd, c->pp, c->pp_len, MSG_NOSIGNAL);
	if (n != (ssize_t)c->pp_len) {
		log_info("backend %u: PROXY header: %s", c->backend_id,
		    n == -1 ? strerror(errno) : "short write");
		return -1;
	}
	c->pp_len = 0;
	return 0;
}

/* A new connection for the pool key: the TCP connect, then TLS on it for proto https. */
static struct h1conn *
h1c_dial(struct worker *w, const struct upstream_opts *o, const struct snap_backend *b,
    uint64_t key)
{
	static const struct proxyproto_addrs unknown;	/* AF_UNSPEC: const, not state */
	struct h1conn *c = h1conn_connect(w, o->snap, b);

	if (c != NULL && o->pp != 0) {
		c->private = 1;
		c->pp_len = (uint8_t)proxyproto_write(o->pp, o->client != NULL ? o->client : &unknown,
		    c->pp);
		if (!c->connecting && h1conn_send_pp(c) == -1) {
			h1conn_close(c);
			errno = EPROTO;
			return NULL;
		}
	}
	if (c == NULL || key == 0)
		return c;
	c->key = key;
	c->route_id = o->route->id;
	if ((c->tls = tlsclient_conn_new(w, o->snap, o->route, b, c->fd)) == NULL) {
		h1conn_close(c);
		errno = EPROTO;
		return NULL;
	}
	c->handshaking = 1;
	return c;
}

static struct ustream *
h1c_open(struct worker *w, const struct snap_backend *b, const struct upstream_opts *o,
    const struct msg_head *req, const struct upstream_events *ev, void *arg)
{
	/* malloc and an initialiser, not calloc: glibc's calloc skips its thread cache (per request). */
	struct ustream *s = malloc(USTREAM_SIZE + h1_size());	/* the parser after it */
	uint64_t key;

	if (s == NULL)
		return NULL;
	*s = (struct ustream){ 0 };
	s->w = w;
	s->ev = ev;
	s->arg = arg;
	s->req = req;
	s->h1 = h1_init((char *)s + USTREAM_SIZE, H1_RESPONSE, &s->resp, &h1c_resp_events, s);
	if (buf_get(&w->bufs, &s->out) == -1 || h1_write_request(&s->out, req) == -1) {
		log_warnx("request head for backend %u does not fit", b->id);
		errno = ENOMEM;
		goto fail;
	}
	key = o->route != NULL ? tlsclient_config_key(w, o->snap, o->route) : 0;
	s->c = o->fresh || o->pp != 0 ? NULL : h1pool_take(w, b->id, key);
	if (s->c == NULL && (s->c = h1c_dial(w, o, b, key)) == NULL)
		goto fail;
	s->c->s = s;
	if (s->c->connecting || s->c->handshaking)
		ev_timer_start(w->loop, &s->c->timer, o->connect_ms);
	else
		h1c_kick(s);	/* no event announces that a connected socket may be written */
	return s;
fail:
	s->dead = 1;
	s->kick_pending = 1;
	h1c_kick_run(s);
	return NULL;
}

static size_t
h1c_room(struct ustream *s)
{
	size_t room;

	if (buf_get(&s->w->bufs, &s->out) == -1)
		return 0;
	room = buf_room(&s->out);
	return room > H1C_CHUNK_SLACK ? room - H1C_CHUNK_SLACK : 0;
}

static int
h1c_send(struct ustream *s, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (n > h1c_room(s)) {
		log_warnx("request body overran its buffer");
		return -1;
	}
	if (s->req->chunked && !s->pipe) {
		if (h1_write_chunk(&s->out, p, n) == -1)
			return -1;
	} else
		buf_append(&s->out, p, n);
	h1c_kick(s);
	return 0;
}

static int
h1c_end(struct ustream *s, const struct msg_head *trailers)
{
	s->req_done = 1;
	if (s->req->chunked && !s->pipe &&
	    (buf_get(&s->w->bufs, &s->out) == -1 || h1_write_last_chunk(&s->out, trailers) == -1))
		return -1;
	h1c_kick(s);
	return 0;
}

static void
h1c_resume(struct ustream *s)
{
	h1c_kick(s);
}

static void
h1c_close(struct ustream *s)
{
	int reuse = s->resp_done && s->req_done && !s->pipe && !s->failed && !s->eof &&
	    s->out.len == 0 && s->in.len == 0 && s->resp.keepalive && !h1_upgraded(s->h1) &&
	    s->c != NULL && !tls_conn_pending(s->c->tls);

	/* After a response a TLS 1.3 server's tickets are in: the next connection resumes. */
	if (s->c != NULL && s->c->tls != NULL && s->resp_done && !s->c->session_kept) {
		tlsclient_keep_session(s->w, s->c->route_id, s->c->key, s->c->backend_id, s->c->tls);
		s->c->session_kept = 1;
	}
	if (s->c != NULL)
		h1pool_put(s->c, reuse);
	s->c = NULL;
	s->dead = 1;
	h1c_kick(s);	/* the free runs after this batch */
}

static int
h1c_connecting(const struct ustream *s)
{
	return s->c != NULL && (s->c->connecting || s->c->handshaking);
}

const struct upstream_ops h1client_ops = {
	"http/1.1", h1c_open, h1c_send, h1c_room, h1c_end, h1c_resume, h1c_close, h1c_connecting,
};

/* --- the response parser's events */

static int
h1c_on_head(void *arg, struct msg_head *h)
{
	struct ustream *s = arg;

	if (h->status == 101) {
		if (!s->req->upgrade)
			return -1;
		s->pipe = 1;
		s->req_done = s->sent = 0;	/* the request side starts over as raw bytes */
	}
	if (s->ev->head(s->arg, h) == -1)
		return -1;
	/*
	 * RFC 9112 6.3: a 204 or 304 ends at its head, whatever Content-Length
	 * says (a 304's names the stored representation's length).
	 */
	if (h->status == 204 || h->status == 304)
		return 1;
	return s->req->method == MSG_M_HEAD && h->status / 100 != 1 ? 1 : 0;
}

static int
h1c_on_body(void *arg, const char *p, size_t n)
{
	struct ustream *s = arg;

	return s->ev->body(s->arg, p, n);
}

static int
h1c_on_end(void *arg, struct msg_head *h)
{
	struct ustream *s = arg;

	if (h->status / 100 != 1)
		s->resp_done = 1;
	return 0;
}

static const struct h1_events h1c_resp_events = { h1c_on_head, h1c_on_body, h1c_on_end };

/* --- running */

static void
h1c_fail(struct ustream *s, enum upstream_err err, int code)
{
	if (s->failed)
		return;
	s->failed = 1;
	s->ev->fail(s->arg, err, code);
}

/* The connection died: what it means depends on what the backend had said. */
static void
h1c_broke(struct ustream *s)
{
	h1c_fail(s, s->got_byte ? UPSTREAM_BROKEN : s->c->reused ? UPSTREAM_STALE : UPSTREAM_RESET, 0);
}

/* Writes pending request bytes; 1 when some went out, 0 when none, -1 when the connection failed. */
static int
h1c_write(struct ustream *s)
{
	int moved = 0;

	while (s->out.len > 0) {
		ssize_t n = tls_buf_write(s->c->tls, s->c->fd, &s->out);	/* plain without TLS */

		if (n > 0) {
			moved = 1;
			continue;
		}
		if (n == -1 && errno == EAGAIN)
			break;
		return -1;
	}
	if (s->out.len == 0)
		buf_put(&s->w->bufs, &s->out);
	return moved;
}

/*
 * Reads what fits; 0, or -1 when the connection failed. Sets eof. Over TLS
 * it reads on while OpenSSL holds whole records epoll will not announce.
 */
static int
h1c_read(struct ustream *s)
{
	ssize_t n;
	size_t room;

	/*
	 * Only after epoll said so, or while OpenSSL holds bytes it will not
	 * announce: right after a request went out, the answer is not there
	 * yet, and a read would only say EAGAIN. Epoll is level triggered:
	 * whatever a short read left is reported again.
	 */
	do {
		if (s->eof || (!s->c->readable && !tls_conn_pending(s->c->tls)) ||
		    buf_get(&s->w->bufs, &s->in) == -1 || (room = buf_room(&s->in)) == 0)
			return 0;
		n = tls_buf_read(s->c->tls, s->c->fd, &s->in);
		if (n == -1 || (size_t)n < room)
			s->c->readable = 0;
		if (n > 0)
			s->got_byte = 1;
		else if (n == 0)
			s->eof = 1;
		else if (errno != EAGAIN && errno != EINTR)
			return -1;
	} while (n > 0 && tls_conn_pending(s->c->tls));
	return 0;
}

/* Parses buffered response bytes as far as the exchange has room; -1 on a bad response. */
static int
h1c_parse(struct ustream *s)
{
	while (s->in.len > 0 && !s->resp_done && !s->pipe && !s->dead) {
		size_t room = s->ev->room(s->arg), feed = s->in.len;
		ssize_t n;

		if (room == 0)
			return 0;
		if (feed > room)
			feed = room;
		if ((n = h1_feed(s->h1, buf_head(&s->in), feed)) == -1) {
			log_info("backend %u: bad response (%s)", s->c->backend_id, h1_error_name(s->h1));
			return -1;
		}
		buf_consume(&s->in, (size_t)n);
		if (h1_done(s->h1) && !s->resp_done && !s->pipe)
			h1_reset(s->h1);	/* an interim 1xx: the final head follows */
	}
	if (!s->dead && s->eof && !s->resp_done && !s->pipe && s->in.len == 0 && h1_eof(s->h1) == -1)
		return -1;
	return 0;
}

/* After a 101: raw bytes to the exchange as far as it has room. */
static void
h1c_pipe(struct ustream *s)
{
	size_t n = s->in.len, room = s->ev->room(s->arg);

	if (n > room)
		n = room;
	if (n > 0) {
		if (s->ev->body(s->arg, buf_head(&s->in), n) == -1) {
			h1c_fail(s, UPSTREAM_BROKEN, 0);
			return;
		}
		buf_consume(&s->in, n);
	}
}

/* Tells the exchange what finished: the response (end) and the request (sent). */
static void
h1c_report(struct ustream *s)
{
	if (!s->ended && (s->resp_done || (s->pipe && s->eof && s->in.len == 0))) {
		s->ended = 1;
		s->ev->end(s->arg, s->pipe ? NULL : &s->resp);
		if (s->dead)
			return;
	}
	if (s->req_done && !s->sent && s->out.len == 0) {
		if (s->pipe) {
			tls_conn_shutdown(s->c->tls);	/* the client's half-close */
			(void)shutdown(s->c->fd, SHUT_WR);
		}
		s->sent = 1;
		s->ev->sent(s->arg);
	}
}

static void
h1c_watch(struct ustream *s)
{
	uint32_t ev = 0;

	if (s->out.len > 0)
		ev |= EPOLLOUT;
	if (!s->eof && (s->in.data == NULL || s->in.len < BUF_SIZE))
		ev |= EPOLLIN;
	ev |= tls_conn_events(s->c->tls);
	if (ev != s->c->io.events && ev_io_modify(s->w->loop, &s->c->io, ev) == -1)
		h1c_fail(s, UPSTREAM_BROKEN, 0);
}

/* The pending connect's event came: 0 when connected, -1 when it failed (reported). */
static int
h1c_connect_done(struct ustream *s)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(s->c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		log_info("backend %u: connect: %s", s->c->backend_id, strerror(err));
		h1c_fail(s, UPSTREAM_CONNECT, err);
		return -1;
	}
	if (h1conn_send_pp(s->c) == -1) {
		h1c_fail(s, UPSTREAM_CONNECT, EPROTO);
		return -1;
	}
	s->c->connecting = 0;
	if (s->c->handshaking)
		return 0;	/* the connect phase goes on: h1c_run runs the handshake */
	ev_timer_stop(s->w->loop, &s->c->timer);
	s->ev->more(s->arg);
	return s->dead ? -1 : 0;
}

/*
 * Drives the TLS handshake: 1 when done (the connect phase is over), 0
 * while it waits for the socket, -1 when it failed (reported).
 */
static int
h1c_handshake(struct ustream *s)
{
	struct h1conn *c = s->c;
	uint32_t want;

	switch (tls_conn_handshake(c->tls)) {
	case 1:
		c->handshaking = 0;
		ev_timer_stop(s->w->loop, &c->timer);
		s->ev->more(s->arg);
		return s->dead ? -1 : 1;
	case 0:
		want = tls_conn_events(c->tls);
		if (want == 0)
			want = EPOLLIN;
		if (want != c->io.events && ev_io_modify(s->w->loop, &c->io, want) == -1)
			h1c_fail(s, UPSTREAM_CONNECT, ENOMEM);
		return 0;
	default:
		log_info("%s: TLS handshake failed: %s", tls_conn_peer(c->tls),
		    tls_conn_error(c->tls));
		h1c_fail(s, UPSTREAM_CONNECT, EPROTO);
		return -1;
	}
}

static void
h1c_run(struct ustream *s)
{
	int wrote;

	/* A pending connect finishes only on its own event: SO_ERROR says 0 before that too. */
	if (s->dead || s->failed || s->c == NULL || s->c->connecting)
		return;
	if (s->c->handshaking && h1c_handshake(s) != 1)
		return;
	if ((wrote = h1c_write(s)) == -1 || h1c_read(s) == -1) {
		h1c_broke(s);
		return;
	}
	if (wrote && !s->req_done) {
		s->ev->more(s->arg);
		if (s->dead)
			return;
	}
	if (!s->pipe && h1c_parse(s) == -1) {
		h1c_fail(s, UPSTREAM_BROKEN, 0);
		return;
	}
	/* A 101 just parsed: the bytes after it are the pipe's already. */
	if (!s->dead && !s->failed && s->pipe)
		h1c_pipe(s);
	if (s->dead || s->failed)
		return;
	if (s->eof && s->in.len == 0 && !s->resp_done && !s->pipe) {
		h1c_broke(s);
		return;
	}
	if (s->in.len == 0)
		buf_put(&s->w->bufs, &s->in);
	h1c_report(s);
	if (!s->dead && !s->failed && !(s->resp_done && !s->pipe))
		h1c_watch(s);
	/* Records OpenSSL holds wait for buffer room, not for epoll: come back once there is. */
	if (!s->dead && !s->failed && !s->eof && tls_conn_pending(s->c->tls) &&
	    (s->in.data == NULL || buf_room(&s->in) > 0))
		h1c_kick(s);
}
