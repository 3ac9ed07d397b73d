/*
 * Dialing a backend: the non-blocking connect every upstream that opens
 * its own connections starts with (worker/h1client.c, worker/h2client.c),
 * over TCP to an address, or over a unix stream socket to a unix backend's
 * path or, for a tunnel backend, to the local hop of the tunnel process
 * (cfg.tunnel_hop). Connections that arrive some other way skip this.
 */
#ifndef HALOYD_WORKER_DIAL_H
#define HALOYD_WORKER_DIAL_H

#include <sys/socket.h>

struct snap;
struct snap_backend;

/* Where a connection goes, resolved from the snapshot while it is held. */
struct dial_target {
	struct sockaddr_storage ss;
	socklen_t len;
};

/*
 * The target of backend b of snapshot s; hop is the tunnel hop's path (""
 * when the master configured none). 0, or -1 with errno ENOENT for a
 * tunnel when there is no hop, EINVAL for a kind it does not know.
 */
int dial_target_of(const struct snap *s, const struct snap_backend *b, const char *hop,
    struct dial_target *t);
/*
 * A non-blocking, close-on-exec socket (TCP_NODELAY over TCP) connecting
 * to t: the fd, or -1 with errno when the connect failed at once. *pending
 * is 1 while the connect is in progress (wait for EPOLLOUT, then read
 * SO_ERROR). A unix socket whose listener's backlog is full fails at once
 * with EAGAIN, as it never reports one in progress.
 */
int dial_connect(const struct dial_target *t, int *pending);
/* dial_target_of, then dial_connect. */
int dial_backend(const struct snap *s, const struct snap_backend *b, const char *hop,
    int *pending);

#endif
