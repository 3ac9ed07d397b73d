/*
 * Agents dialling in (haloyd issue 13, the rhttp dialect): accept, the TLS
 * handshake with a verified client certificate whose CN is the tunnel name,
 * the agent's 24-byte HTTP/2 client magic read and checked, then the
 * session (worker/h2csession.c, h2client_attach) in the name's pool. All of
 * it within TUN_ATTACH_MS; the session counts as ready only after the
 * SETTINGS exchange. Attach and detach are logged with HALOYD_TUNNEL.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "share/log.h"
#include "share/util.h"
#include "tunnel/tunproc.h"
#include "tunnel/tuntls.h"
#include "worker/buf.h"
#include "worker/context.h"
#include "worker/tls.h"
#include "worker/upstream.h"

/* A handshake in progress. */
struct tun_pending {
	struct tunnel_ctx *t;
	struct tun_pending *prev, *next;
	int fd;
	struct ssl_st *ssl;		/* owned by tc */
	struct tls_conn *tc;
	struct ev_io io;
	struct ev_timer timer;
	struct buf in;
	uint64_t born;
	char peer[ADDR_STR_MAX];
	uint8_t kick_pending;
	unsigned dead : 1;
};

/* "tunnel NAME from PEER what: why", with the name and peer as journal fields too. */
static void
tun_log(int prio, const char *name, const char *peer, const char *what, const char *why)
{
	char f1[16 + TUNNAME_MAX + 1], f2[32 + ADDR_STR_MAX];
	const char *fields[] = { f1, f2, NULL };

	snprintf(f1, sizeof(f1), "HALOYD_TUNNEL=%s", name);
	snprintf(f2, sizeof(f2), "HALOYD_TUNNEL_REMOTE=%s", peer);
	log_fields(prio, fields, "tunnel %s from %s %s: %s", name, peer, what, why);
}

/* --- attached tunnels */

static void
tun_rec_unlink(struct tunnel_rec *r)
{
	struct tunnel_ctx *t = r->t;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		t->recs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	t->nrecs--;
}

static void
tun_on_ready(void *owner)
{
	struct tunnel_rec *r = owner;

	r->ready = 1;
	r->since_s = util_wall_ns() / 1000000000u;
	tun_log(LOG_INFO, r->name, r->peer, "attached", r->subject);
}

static void
tun_on_close(void *owner, const char *why)
{
	struct tunnel_rec *r = owner;
	struct worker *w = r->t->w;

	tun_log(LOG_INFO, r->name, r->peer, r->ready ? "detached" : "not attached", why);
	tun_rec_unlink(r);
	free(r);
	worker_check_stopped(w);
}

/* --- handshakes */

static void
tun_pending_close(struct tun_pending *p)
{
	struct tunnel_ctx *t = p->t;

	if (p->dead)
		return;
	p->dead = 1;
	ev_io_stop(t->w->loop, &p->io);
	ev_timer_stop(t->w->loop, &p->timer);
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		t->pending = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	t->npending--;
	buf_put(&t->w->bufs, &p->in);
	tls_conn_free(p->tc);
	if (p->fd != -1)
		close(p->fd);
	free(p);
	listen_update(t->w);
}

static void
tun_refuse(struct tun_pending *p, const char *name, const char *why)
{
	tun_log(LOG_NOTICE, name, p->peer, "refused", why);
	tun_pending_close(p);
}

/* Magic read and checked: the session takes the socket, TLS and the bytes after the magic. */
static void
tun_attach(struct tun_pending *p, const struct tuntls_peer *id)
{
	struct tunnel_ctx *t = p->t;
	struct tunnel_rec *r;
	uint64_t spent = ev_now(t->w->loop) - p->born;
	struct h2client_attach a;
	int fd = p->fd;
	struct tls_conn *tc = p->tc;

	if (t->nrecs >= TUN_MAX || (r = calloc(1, sizeof(*r))) == NULL) {
		tun_refuse(p, id->name, t->nrecs >= TUN_MAX ? "too many tunnels" : "out of memory");
		return;
	}
	r->t = t;
	memcpy(r->name, id->name, sizeof(r->name));
	memcpy(r->subject, id->subject, sizeof(r->subject));
	util_strlcpy(r->peer, p->peer, sizeof(r->peer));
	r->not_after = id->not_after;
	a = (struct h2client_attach){ r->name, buf_head(&p->in) + NGHTTP2_CLIENT_MAGIC_LEN,
	    p->in.len - NGHTTP2_CLIENT_MAGIC_LEN, (uint32_t)(TUN_ATTACH_MS - spent), r,
	    tun_on_ready, tun_on_close };
	p->fd = -1;
	p->tc = NULL;
	ev_io_stop(t->w->loop, &p->io);	/* the session watches the socket from now on */
	if ((r->c = h2client_attach(t->w, fd, tc, &a)) == NULL) {
		tun_log(LOG_NOTICE, r->name, r->peer, "refused", "no session");
		free(r);
		tun_pending_close(p);
		return;
	}
	r->next = t->recs;
	if (t->recs != NULL)
		t->recs->prev = r;
	t->recs = r;
	t->nrecs++;
	tun_pending_close(p);
}

/* TLS done: who it is, then the magic. 0 to wait, -1 when p is gone. */
static int
tun_magic(struct tun_pending *p)
{
	static const char magic[] = NGHTTP2_CLIENT_MAGIC;
	struct tuntls_peer id;
	char err[160];
	ssize_t n;
	size_t cmp;

	if (tuntls_peer(p->ssl, &id, err, sizeof(err)) == -1) {
		tun_refuse(p, "-", err);
		return -1;
	}
	if (buf_get(&p->t->w->bufs, &p->in) == -1) {
		tun_refuse(p, id.name, "out of memory");
		return -1;
	}
	n = 1;
	while (p->in.len < NGHTTP2_CLIENT_MAGIC_LEN && buf_room(&p->in) > 0 &&
	    (n = tls_buf_read(p->tc, p->fd, &p->in)) > 0)
		;
	cmp = p->in.len < NGHTTP2_CLIENT_MAGIC_LEN ? p->in.len : NGHTTP2_CLIENT_MAGIC_LEN;
	if (memcmp(buf_head(&p->in), magic, cmp) != 0) {
		tun_refuse(p, id.name, "no HTTP/2 client magic");
		return -1;
	}
	if (p->in.len >= NGHTTP2_CLIENT_MAGIC_LEN) {
		tun_attach(p, &id);
		return -1;
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		tun_refuse(p, id.name, "closed before the HTTP/2 client magic");
		return -1;
	}
	return 0;
}

static void
tun_pending_run(struct tun_pending *p)
{
	int hs = tls_conn_handshake(p->tc);
	uint32_t ev;

	if (hs == -1) {
		tun_refuse(p, "-", tls_conn_error(p->tc));
		return;
	}
	if (hs == 1 && tun_magic(p) == -1)
		return;
	ev = EPOLLIN | tls_conn_events(p->tc);
	if (ev != p->io.events && ev_io_modify(p->t->w->loop, &p->io, ev) == -1)
		tun_refuse(p, "-", "epoll");
}

static void
tun_pending_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	(void)l;
	(void)events;
	tun_pending_run(io->arg);
}

static void
tun_pending_timer(struct ev_loop *l, struct ev_timer *tm)
{
	struct tun_pending *p = tm->arg;

	(void)l;
	tun_refuse(p, "-", tls_conn_established(p->tc) ? "no HTTP/2 client magic in time" :
	    "TLS handshake not done in time");
}

void
tunattach_accept(struct worker *w, int fd, const struct sockaddr *peer)
{
	struct tunnel_ctx *t = w->role_ctx;
	struct tun_pending *p = NULL;
	int one = 1;

	if (t->ctx == NULL || t->npending >= TUN_PENDING_MAX || w->stopping ||
	    (p = calloc(1, sizeof(*p))) == NULL)
		goto fail;
	p->t = t;
	p->fd = fd;
	p->born = ev_now(w->loop);
	if (addr_format(peer, p->peer, sizeof(p->peer)) == -1)
		util_strlcpy(p->peer, "unknown", sizeof(p->peer));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((p->ssl = tuntls_ssl_new(t->ctx, fd)) == NULL ||
	    (p->tc = tls_conn_wrap(p->ssl, p->peer)) == NULL)
		goto fail;
	ev_timer_init(&p->timer, tun_pending_timer, p);
	if (ev_io_start(w->loop, &p->io, fd, EPOLLIN, tun_pending_io, p) == -1) {
		tls_conn_free(p->tc);
		goto fail;
	}
	ev_timer_start(w->loop, &p->timer, TUN_ATTACH_MS);
	p->next = t->pending;
	if (t->pending != NULL)
		t->pending->prev = p;
	t->pending = p;
	t->npending++;
	tun_pending_run(p);
	return;
fail:
	if (p != NULL && p->tc == NULL && p->ssl != NULL)
		SSL_free(p->ssl);
	free(p);
	close(fd);
}

void
tunattach_stop(struct tunnel_ctx *t)
{
	struct tunnel_rec *r;

	while (t->pending != NULL)
		tun_pending_close(t->pending);
	for (r = t->recs; r != NULL; r = r->next)
		h2client_session_goaway(r->c);
}

int
tunattach_busy(const struct tunnel_ctx *t)
{
	return t->recs != NULL;
}

void
tunattach_free(struct tunnel_ctx *t)
{
	while (t->pending != NULL)
		tun_pending_close(t->pending);
}
