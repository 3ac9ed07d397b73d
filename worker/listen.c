/*
 * Accepting clients on the worker's own SO_REUSEPORT listeners. At
 * max_connections, or while stopping, the listeners are not watched and new
 * connections wait in the kernel's accept queue.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "share/log.h"
#include "worker/conn.h"
#include "worker/context.h"
#include "worker/worker.h"

#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 100	/* after EMFILE / ENFILE / ENOMEM */

void
listen_note_local(struct listener *ls)
{
	socklen_t sl = sizeof(ls->local);
	const struct sockaddr_in *in = (const struct sockaddr_in *)&ls->local;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ls->local;

	ls->local_fixed = 0;
	if (getsockname(ls->fd, (struct sockaddr *)&ls->local, &sl) == -1)
		return;
	/* A wildcard's clients each have their own local address: those ask the kernel. */
	if (ls->local.ss_family == AF_INET)
		ls->local_fixed = in->sin_addr.s_addr != htonl(INADDR_ANY);
	else if (ls->local.ss_family == AF_INET6)
		ls->local_fixed = !IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
}

static void
listen_on_accept(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct listener *ls = io->arg;
	struct worker *w = ls->w;
	struct sockaddr_storage ss;
	socklen_t sl;
	int i, fd;

	(void)l;
	(void)events;
	for (i = 0; i < ACCEPT_BATCH && w->nconns < w->cfg.max_conns && !w->stopping; i++) {
		sl = sizeof(ss);
		fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
				log_warn("accept");
				w->accept_paused = 1;
				ev_timer_start(w->loop, &w->accept_timer, ACCEPT_PAUSE_MS);
			}
			break;
		}
		if (ls->kind == LISTENER_TUNNEL) {
			/* Agents dialling in: the tunnel process's own hand-shake, not a client. */
			if (w->role != NULL && w->role->accept != NULL)
				w->role->accept(w, fd, (struct sockaddr *)&ss);
			else
				close(fd);
			continue;
		}
		(void)conn_new(w, fd, ls, (struct sockaddr *)&ss);
	}
	listen_update(w);
}

static void
listen_on_pause_end(struct ev_loop *l, struct ev_timer *t)
{
	struct worker *w = t->arg;

	(void)l;
	w->accept_paused = 0;
	listen_update(w);
}

void
listen_update(struct worker *w)
{
	/* A worker accepts once its first set is in: its images come one message each. */
	int want = !w->stopping && !w->accept_paused && w->nconns < w->cfg.max_conns &&
	    (w->role != NULL || w->snap_ready);
	size_t i;

	if (w->accept_timer.fn == NULL)
		ev_timer_init(&w->accept_timer, listen_on_pause_end, w);
	for (i = 0; i < w->nlst; i++) {
		struct listener *ls = &w->lst[i];

		if (want && !ls->io.active) {
			if (ev_io_start(w->loop, &ls->io, ls->fd, EPOLLIN, listen_on_accept, ls) == -1)
				log_warn("watching listener %u", ls->id);
		} else if (!want && ls->io.active)
			ev_io_stop(w->loop, &ls->io);
	}
	w->accepting = want;
}

void
listen_close_all(struct worker *w)
{
	size_t i;

	for (i = 0; i < w->nlst; i++) {
		ev_io_stop(w->loop, &w->lst[i].io);
		close(w->lst[i].fd);
	}
	w->nlst = 0;
	w->accepting = 0;
}
