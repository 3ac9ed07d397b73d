/*
 * Dialing a backend: the non-blocking TCP connect every upstream that opens
 * its own connections starts with (worker/h1client.c, worker/h2client.c).
 * Connections that arrive some other way (a reverse tunnel's) skip this.
 */
#ifndef HALOYD_WORKER_DIAL_H
#define HALOYD_WORKER_DIAL_H

struct snap_backend;

/*
 * A non-blocking, close-on-exec socket with TCP_NODELAY, connecting to b:
 * the fd, or -1 with errno when the connect failed at once. *pending is 1
 * while the connect is in progress (wait for EPOLLOUT, then read SO_ERROR).
 */
int dial_backend(const struct snap_backend *b, int *pending);

#endif
