/*
 * Listening sockets: one SO_REUSEPORT socket per worker per address. The
 * master binds them all (it may need a low port) and keeps them for the
 * life of the process, so a worker crash never closes an accept queue.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "master/inherit.h"
#include "master/listeners.h"
#include "share/addr.h"
#include "share/log.h"
#include "share/msg.h"

#define LISTEN_BACKLOG 4096
#define LISTEN_DEFER_S 1	/* TCP_DEFER_ACCEPT: a silent client is accepted after about this */

/*
 * What accepted client sockets inherit (Linux copies the listener's TCP
 * options): TCP_NODELAY, so no connection pays a setsockopt; and deferred
 * accept, since an HTTP or TLS client speaks first: the worker wakes once,
 * when the first bytes are in, not also for the bare handshake. Set on
 * inherited sockets too, as an older master may not have.
 */
static int
listen_client_opts(int fd, const char *addr)
{
	int on = 1, secs = LISTEN_DEFER_S;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)) == -1) {
		log_warn("setsockopt for %s", addr);
		return -1;
	}
	return 0;
}

static int
listen_one(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, on = 1;

	if (addr_parse(addr, &ss, &len) == -1) {
		log_warnx("listen address %s: not ip:port", addr);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("socket for %s", addr);
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1 ||
	    (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)) {
		log_warn("setsockopt for %s", addr);
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		log_warn("bind %s", addr);
		goto fail;
	}
	if (listen(fd, LISTEN_BACKLOG) == -1) {
		log_warn("listen %s", addr);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int
listeners_open(struct listeners *l, char *const *addrs, size_t naddrs, size_t nworkers)
{
	return listeners_adopt(l, addrs, naddrs, nworkers, 0, NULL);
}

int
listeners_adopt(struct listeners *l, char *const *addrs, size_t naddrs, size_t nworkers,
    uint32_t kind, struct inherit *h)
{
	size_t a, w, got;

	l->naddrs = naddrs;
	l->nworkers = nworkers;
	if ((l->fds = calloc(naddrs * nworkers, sizeof(int))) == NULL) {
		log_warn("listeners");
		return -1;
	}
	for (a = 0; a < naddrs * nworkers; a++)
		l->fds[a] = -1;
	for (a = 0; a < naddrs; a++) {
		for (w = got = 0; w < nworkers; w++) {
			/* An inherited socket keeps its accept queue: bind only the missing. */
			int fd = inherit_take(h, kind, addrs[a], (uint32_t)w);
			if (fd >= 0)
				got++;
			else if ((fd = listen_one(addrs[a])) == -1) {
				listeners_close(l);
				return -1;
			}
			l->fds[a * nworkers + w] = fd;
			if ((kind == LISTENER_HTTP || kind == LISTENER_HTTPS) &&
			    listen_client_opts(fd, addrs[a]) == -1) {
				listeners_close(l);
				return -1;
			}
		}
		log_info("listening on %s (%zu sockets, %zu inherited)", addrs[a], nworkers, got);
	}
	return 0;
}

int
listeners_fd(const struct listeners *l, size_t addr, size_t worker)
{
	return l->fds[addr * l->nworkers + worker];
}

void
listeners_close(struct listeners *l)
{
	size_t i;

	for (i = 0; l->fds != NULL && i < l->naddrs * l->nworkers; i++)
		if (l->fds[i] >= 0)
			close(l->fds[i]);
	free(l->fds);
	l->fds = NULL;
	l->naddrs = 0;
}
