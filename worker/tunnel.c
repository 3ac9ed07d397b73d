/* Upgraded connections as two-way byte tunnels (see tunnel.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "share/log.h"
#include "worker/context.h"
#include "worker/tls.h"
#include "worker/tunnel.h"

/* One direction: bytes read from src wait in b until written to dst. */
struct flow {
	struct buf b;
	int src_eof;		/* src will send nothing more */
	int dst_shut;		/* we shut dst's write side */
};

struct side {
	struct tunnel *t;
	int fd;
	struct tls_conn *tls;	/* the client's side of an HTTPS connection, else NULL */
	struct ev_io io;
};

struct tunnel {
	struct worker *w;
	struct tunnel *prev, *next;
	struct side c, u;	/* client, backend */
	struct flow up, down;	/* client -> backend, backend -> client */
	struct ev_timer idle;
	uint32_t idle_ms;
	int dead;
	int rerun;		/* a run is deferred: TLS holds bytes epoll will not report */
};

static void
tunnel_free(void *arg)
{
	struct tunnel *t = arg;

	buf_put(&t->w->bufs, &t->up.b);
	buf_put(&t->w->bufs, &t->down.b);
	free(t);
}

static void
tunnel_close(struct tunnel *t)
{
	struct worker *w = t->w;

	if (t->dead)
		return;
	t->dead = 1;
	ev_io_stop(w->loop, &t->c.io);
	ev_io_stop(w->loop, &t->u.io);
	ev_timer_stop(w->loop, &t->idle);
	tls_conn_free(t->c.tls);
	t->c.tls = NULL;
	close(t->c.fd);
	close(t->u.fd);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		w->tunnels = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	w->nclients--;
	if (ev_defer(w->loop, tunnel_free, t) == -1)
		log_warnx("out of memory freeing a tunnel");
	listen_update(w);
	worker_check_stopped(w);
}

/* Moves bytes src -> f -> dst; 1 when bytes moved, 0 when not, -1 when the tunnel broke. */
static int
flow_pump(struct worker *w, struct flow *f, struct side *src, struct side *dst)
{
	int moved = 0;
	ssize_t n;

	if (!f->src_eof && buf_get(&w->bufs, &f->b) == 0 && buf_room(&f->b) > 0) {
		n = tls_buf_read(src->tls, src->fd, &f->b);
		if (n == 0)
			f->src_eof = 1;
		else if (n > 0)
			moved = 1;
		else if (errno != EAGAIN)
			return -1;
	}
	if (f->b.len > 0) {
		n = tls_buf_write(dst->tls, dst->fd, &f->b);
		if (n > 0)
			moved = 1;
		else if (errno != EAGAIN)
			return -1;
	}
	if (f->src_eof && f->b.len == 0 && !f->dst_shut) {
		/* Half-close: the other direction keeps flowing. */
		tls_conn_shutdown(dst->tls);
		(void)shutdown(dst->fd, SHUT_WR);
		f->dst_shut = 1;
	}
	if (f->b.len == 0)
		buf_put(&w->bufs, &f->b);
	return moved;
}

static uint32_t
flow_events_src(const struct flow *f)
{
	return !f->src_eof && (f->b.data == NULL || f->b.len < BUF_SIZE) ? EPOLLIN : 0;
}

static void tunnel_run(struct tunnel *t);

static void
tunnel_rerun(void *arg)
{
	struct tunnel *t = arg;

	t->rerun = 0;
	if (!t->dead)
		tunnel_run(t);
}

static void
tunnel_run(struct tunnel *t)
{
	struct worker *w = t->w;
	int a = flow_pump(w, &t->up, &t->c, &t->u);
	int b = a == -1 ? -1 : flow_pump(w, &t->down, &t->u, &t->c);

	if (a == -1 || b == -1 || (t->up.dst_shut && t->down.dst_shut)) {
		tunnel_close(t);
		return;
	}
	if (a > 0 || b > 0)
		ev_timer_start(w->loop, &t->idle, t->idle_ms);
	if (ev_io_modify(w->loop, &t->c.io, flow_events_src(&t->up) |
	    (t->down.b.len > 0 ? EPOLLOUT : 0) | tls_conn_events(t->c.tls)) == -1 ||
	    ev_io_modify(w->loop, &t->u.io, flow_events_src(&t->down) |
	    (t->up.b.len > 0 ? EPOLLOUT : 0)) == -1) {
		tunnel_close(t);
		return;
	}
	/* Decrypted bytes wait inside OpenSSL: no epoll event will say so. */
	if (!t->rerun && (flow_events_src(&t->up) & EPOLLIN) && tls_conn_pending(t->c.tls) &&
	    ev_defer(w->loop, tunnel_rerun, t) == 0)
		t->rerun = 1;
}

static void
tunnel_on_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct side *s = io->arg;

	(void)l;
	(void)events;
	tunnel_run(s->t);
}

static void
tunnel_on_idle(struct ev_loop *l, struct ev_timer *tm)
{
	(void)l;
	tunnel_close(tm->arg);
}

int
tunnel_start(struct worker *w, int client_fd, struct tls_conn *client_tls, int backend_fd,
    struct buf *to_client, struct buf *to_backend, uint32_t idle_ms)
{
	struct tunnel *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		tls_conn_free(client_tls);
		close(client_fd);
		close(backend_fd);
		buf_put(&w->bufs, to_client);
		buf_put(&w->bufs, to_backend);
		w->nclients--;
		return -1;
	}
	t->w = w;
	t->idle_ms = idle_ms;
	t->c = (struct side){ t, client_fd, client_tls, { 0 } };
	t->u = (struct side){ t, backend_fd, NULL, { 0 } };
	t->down.b = *to_client;
	t->up.b = *to_backend;
	*to_client = (struct buf){ 0 };
	*to_backend = (struct buf){ 0 };
	ev_timer_init(&t->idle, tunnel_on_idle, t);
	t->next = w->tunnels;
	if (w->tunnels != NULL)
		w->tunnels->prev = t;
	w->tunnels = t;
	if (ev_io_start(w->loop, &t->c.io, client_fd, EPOLLIN, tunnel_on_io, &t->c) == -1 ||
	    ev_io_start(w->loop, &t->u.io, backend_fd, EPOLLIN, tunnel_on_io, &t->u) == -1) {
		tunnel_close(t);
		return -1;
	}
	tunnel_run(t);
	return 0;
}

void
tunnel_close_all(struct worker *w)
{
	while (w->tunnels != NULL)
		tunnel_close(w->tunnels);
}
