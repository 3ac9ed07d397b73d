/*
 * Client connections (see conn.h): accept-time set-up, the session choice,
 * socket and TLS I/O on the connection's buffers, lingering close, and the
 * worker's list. Work triggered from callbacks runs deferred (conn_kick), so
 * no callback frees what its caller still uses.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "share/log.h"
#include "share/util.h"
#include "worker/conn.h"
#include "worker/context.h"
#include "worker/ppconn.h"
#include "worker/odwait.h"
#include "worker/ratelimit.h"
#include "worker/tls.h"

/*
 * After an answer that leaves request bytes unread (413, 408...), closing at
 * once would make the kernel reset the connection and the client could lose
 * the answer: the write side is shut and input drained for a while first.
 */
#define LINGER_MS 2000
#define LINGER_MAX (1024 * 1024)

/* RFC 9113 3.4: what an HTTP/2 client with prior knowledge sends first. */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

static void conn_pick(struct conn *c);
static int conn_proxied(struct conn *c);

static void
conn_free(struct conn *c)
{
	if (c->sess != NULL)
		c->sops->free(c);
	buf_put(&c->w->bufs, &c->in);
	buf_put(&c->w->bufs, &c->out);
	ratelimit_conn_close(c->w, c->client_entry);
	ppconn_free(c);
	free(c);
}

static void
conn_drain(struct conn *c)
{
	char sink[4096];
	ssize_t n = -1;

	while (c->drained <= LINGER_MAX && (n = read(c->fd, sink, sizeof(sink))) > 0)
		c->drained += (size_t)n;
	if (c->drained > LINGER_MAX || n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		conn_close(c);
}

static void
conn_kick_run(void *arg)
{
	struct conn *c = arg;

	c->kick_pending = 0;
	if (c->dead)
		conn_free(c);
	else if (c->lingering)
		conn_drain(c);
	else if (c->sops == NULL)
		conn_pick(c);
	else
		c->sops->run(c);
}

void
conn_kick(struct conn *c)
{
	(void)ev_defer_once(c->w->loop, conn_kick_run, c, &c->kick_pending);
}

static void
conn_unlink(struct conn *c)
{
	struct worker *w = c->w;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
}

void
conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (c->dead)
		return;
	if (!c->lingering && c->sops != NULL)
		c->sops->stop(c);
	c->dead = 1;
	if (c->od_waiting)
		odwait_forget(w->odwait, c);
	ev_timer_stop(w->loop, &c->timer);
	tls_conn_free(c->tls);
	c->tls = NULL;
	/* The worker alone holds a client's socket: its close leaves the epoll set. */
	ev_io_forget(w->loop, &c->io);
	close(c->fd);
	conn_unlink(c);
	w->nconns--;
	shm_set(&w->stats->connections, w->nconns);
	conn_kick(c);		/* the free runs after this batch */
	listen_update(w);
	worker_check_stopped(w);
}

int
conn_flush(struct conn *c, int *moved)
{
	size_t before = c->out.len;
	int rc = 0;

	while (c->out.len > 0) {
		if (tls_buf_write(c->tls, c->fd, &c->out) == -1) {
			rc = errno == EAGAIN ? 0 : -1;
			break;
		}
	}
	*moved = c->out.len < before;
	return rc;
}

size_t
conn_write_direct(struct conn *c, const char *p, size_t n)
{
	ssize_t k;

	if (c->tls != NULL)
		return 0;
	k = buf_writev_fd(&c->out, c->fd, p, n);
	return k > 0 ? (size_t)k : 0;
}

int
conn_read(struct conn *c)
{
	ssize_t n;

	size_t room;

	/*
	 * Only when epoll said so or OpenSSL holds bytes: a session runs again
	 * whenever its exchanges move, and a read then would only say EAGAIN.
	 * Epoll is level triggered: whatever a short read left is reported again.
	 */
	if (c->peer_eof || (!c->readable && !tls_conn_pending(c->tls)) ||
	    buf_get(&c->w->bufs, &c->in) == -1 || (room = buf_room(&c->in)) == 0)
		return 0;
	n = tls_buf_read(c->tls, c->fd, &c->in);
	if (n == -1 || (size_t)n < room)
		c->readable = 0;
	if (n == 0)
		c->peer_eof = 1;
	if (n == -1 && errno != EAGAIN)
		return -1;
	return 0;
}

int
conn_watch(struct conn *c, int want_in)
{
	uint32_t ev = 0;

	if (c->lingering)
		ev = EPOLLIN;
	else if (want_in && !c->peer_eof && (c->in.data == NULL || c->in.len < BUF_SIZE))
		ev |= EPOLLIN;
	if (c->out.len > 0)
		ev |= EPOLLOUT;
	ev |= tls_conn_events(c->tls);
	/* Bytes already inside OpenSSL: epoll will not report them again. */
	if ((ev & EPOLLIN) && !c->lingering && tls_conn_pending(c->tls))
		conn_kick(c);
	if (ev != c->io.events && ev_io_modify(c->w->loop, &c->io, ev) == -1) {
		conn_close(c);
		return -1;
	}
	return 0;
}

void
conn_shut_write(struct conn *c)
{
	if (c->wr_shut)
		return;
	c->wr_shut = 1;
	tls_conn_shutdown(c->tls);
	(void)shutdown(c->fd, SHUT_WR);
}

void
conn_linger(struct conn *c, int all_read)
{
	tls_conn_shutdown(c->tls);
	if (c->peer_eof || all_read || shutdown(c->fd, SHUT_WR) == -1) {
		conn_close(c);
		return;
	}
	c->sops->stop(c);
	c->lingering = 1;
	buf_put(&c->w->bufs, &c->in);
	buf_put(&c->w->bufs, &c->out);
	ev_timer_start(c->w->loop, &c->timer, LINGER_MS);
	(void)conn_watch(c, 1);
}

static void
conn_on_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct conn *c = io->arg;

	(void)l;
	/* Level-triggered hang-up of a held handshake (worker/odwait.h) would spin until released. */
	if (c->od_waiting && (events & (EPOLLHUP | EPOLLERR))) {
		conn_close(c);
		return;
	}
	/* A TLS read may wait for the socket to take bytes: any event it waited for counts. */
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || tls_conn_events(c->tls) != 0)
		c->readable = 1;
	if (c->lingering)
		conn_drain(c);
	else if (c->sops == NULL)
		conn_pick(c);
	else
		c->sops->run(c);
}

static void
conn_on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct conn *c = t->arg;

	(void)l;
	if (c->pp_wait)
		ppconn_timed_out(c);
	if (c->lingering || c->sops == NULL)
		conn_close(c);
	else
		c->sops->timeout(c);
}

/* The session for what the client speaks: 0 to wait for more bytes, 1 when chosen. */
static int
conn_choose(struct conn *c)
{
	size_t n = c->in.len < H2_PREFACE_LEN ? c->in.len : H2_PREFACE_LEN;
	int h2 = c->w->cfg.http2 != 0;

	if (c->tls != NULL) {
		if (!tls_conn_established(c->tls))
			return 0;
		c->sops = h2 && tls_conn_h2(c->tls) ? &h2server_ops : &h1server_ops;
		return 1;
	}
	if (n == 0)
		return 0;
	/* Prior knowledge: the preface, as HAProxy recognises it; anything else is HTTP/1. */
	if (h2 && memcmp(buf_head(&c->in), H2_PREFACE, n) == 0) {
		if (n < H2_PREFACE_LEN)
			return 0;
		c->sops = &h2server_ops;
		return 1;
	}
	c->sops = &h1server_ops;
	return 1;
}

/* Reads until the session can be chosen (the TLS handshake runs inside), then starts it. */
static void
conn_pick(struct conn *c)
{
	if (c->pp_wait && conn_proxied(c) != 1)
		return;
	if (conn_read(c) == -1) {
		conn_close(c);
		return;
	}
	if (!conn_choose(c)) {
		if (c->peer_eof)
			conn_close(c);
		else
			(void)conn_watch(c, !c->od_waiting);	/* held: only its release runs it */
		return;
	}
	ev_timer_stop(c->w->loop, &c->timer);
	if (c->sops->start(c) == -1) {
		c->sops = NULL;
		conn_close(c);
		return;
	}
	c->sops->run(c);
}

static int
conn_trusted(const struct worker *w, const struct sockaddr *peer)
{
	uint32_t i;

	for (i = 0; i < w->cfg.ntrusted; i++)
		if (addr_cidr_match(&w->trusted[i], peer))
			return 1;
	return 0;
}

/*
 * Who the client is, now known: counted for max_connections_per_ip (the
 * balancer's connection was not), and the TLS of an HTTPS listener starts
 * after the header. 0, or -1 with the connection closed.
 */
static int
conn_client_known(struct conn *c)
{
	if (ratelimit_conn_open(c->w, c->ip, &c->client_entry) == -1) {
		c->client_entry = RATELIMIT_NO_ENTRY;
		goto fail;
	}
	if (strcmp(c->proto, "https") == 0 && (c->tls = tls_conn_new(c->w->tls, c->fd, c->ip)) == NULL)
		goto fail;
	return 0;
fail:
	conn_close(c);
	return -1;
}

/* Reads the PROXY header: 1 when it is in and applied, 0 waiting, -1 closed. */
static int
conn_proxied(struct conn *c)
{
	struct proxyproto_hdr h;
	struct sockaddr_storage ss;
	int rc = ppconn_read(c, &h);

	if (rc == -1)
		conn_close(c);
	else if (rc == 0)
		(void)conn_watch(c, 1);
	if (rc != 1)
		return rc;
	c->pp_wait = 0;
	c->readable = 1;	/* the request may have come in the header's packet */
	/* LOCAL, UNKNOWN, AF_UNIX: the balancer's own address stays, as the specification says. */
	if (!h.local && proxyproto_src_sockaddr(&h.a, &ss) == 0) {
		c->addrs = h.a;
		c->trusted = conn_trusted(c->w, (struct sockaddr *)&ss);
		if (addr_format_ip((struct sockaddr *)&ss, c->ip, sizeof(c->ip)) == -1)
			util_strlcpy(c->ip, "unknown", sizeof(c->ip));
	}
	if (conn_client_known(c) == -1)
		return -1;
	ev_timer_start(c->w->loop, &c->timer, c->w->cfg.keepalive_timeout_ms);
	return 1;
}

/*
 * The connection's two ends, for a PROXY header toward a backend. The local
 * one is the listener's when it is bound to one address: no system call per
 * connection (a new connection per request paid one).
 */
static void
conn_ends(struct conn *c, const struct sockaddr *peer, const struct listener *ls)
{
	struct sockaddr_storage local;
	socklen_t sl = sizeof(local);

	if (ls->local_fixed)
		local = ls->local;
	else if (getsockname(c->fd, (struct sockaddr *)&local, &sl) == -1)
		local.ss_family = AF_UNSPEC;
	proxyproto_addrs_set(&c->addrs, peer, (struct sockaddr *)&local);
}

int
conn_new(struct worker *w, int fd, const struct listener *ls, const struct sockaddr *peer)
{
	struct conn *c = NULL;

	/* Only a trusted balancer may say who the client is; anyone else is closed at once. */
	if (ls->proxy && ppconn_admit(w, peer) == -1)
		goto fail;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->w = w;
	c->fd = fd;
	c->client_entry = RATELIMIT_NO_ENTRY;
	c->readable = 1;	/* deferred accept (master/listeners.c): the first bytes are in */
	c->proto = ls->kind == LISTENER_HTTPS ? "https" : "http";
	c->pp_wait = ls->proxy != 0;
	if (addr_format_ip(peer, c->ip, sizeof(c->ip)) == -1)
		util_strlcpy(c->ip, "unknown", sizeof(c->ip));
	conn_ends(c, peer, ls);
	c->trusted = conn_trusted(w, peer);
	/* Before any TLS: a client over its cap costs no handshake. Behind a balancer: its header first. */
	if (!c->pp_wait && ratelimit_conn_open(w, c->ip, &c->client_entry) == -1) {
		c->client_entry = RATELIMIT_NO_ENTRY;
		goto fail;
	}
	if (!c->pp_wait && ls->kind == LISTENER_HTTPS &&
	    (c->tls = tls_conn_new(w->tls, fd, c->ip)) == NULL)
		goto fail;
	tls_conn_set_cookie(c->tls, c);
	/* TCP_NODELAY comes from the listener. */
	ev_timer_init(&c->timer, conn_on_timer, c);
	if (ev_io_start(w->loop, &c->io, fd, EPOLLIN, conn_on_io, c) == -1)
		goto fail;
	/*
	 * The session is chosen by ALPN or the first bytes (conn_pick); until
	 * then, an idle clock; a PROXY header has header_timeout to arrive.
	 */
	ev_timer_start(w->loop, &c->timer,
	    c->pp_wait ? w->cfg.header_timeout_ms : w->cfg.keepalive_timeout_ms);
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	shm_set(&w->stats->connections, w->nconns);
	conn_kick(c);	/* read now, not after another epoll_wait: the bytes are there */
	return 0;
fail:
	if (c != NULL) {
		tls_conn_free(c->tls);
		ratelimit_conn_close(w, c->client_entry);
	}
	free(c);
	close(fd);
	return -1;
}

void
conn_close_idle(struct worker *w, int fresh_too)
{
	struct conn *c, *next;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		/*
		 * A connection that has carried no request yet (its session maybe not
		 * chosen: a TLS handshake) is kept until fresh_too: its first request
		 * may be on the wire, and its client cannot retry it (a restart under
		 * systemd lost such requests); it is answered with Connection: close.
		 * A hand-over's drain keeps even those past the grace.
		 */
		if (c->lingering ||
		    (c->sops == NULL && fresh_too && !w->stop_keep_fresh) ||
		    (c->sops != NULL && (c->served || fresh_too) && c->sops->idle(c)))
			conn_close(c);
		else
			conn_kick(c);	/* its session sees the stop now (HTTP/2: GOAWAY) */
	}
}

void
conn_close_all(struct worker *w)
{
	while (w->conns != NULL)
		conn_close(w->conns);
}
