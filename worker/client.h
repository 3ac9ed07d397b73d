/*
 * HTTP/1.1 client connections: reading requests (pipelined ones in order),
 * handing each to the proxy core as a head, body bytes and a sink, writing
 * the responses, keep-alive, and the client-side timeouts.
 */
#ifndef HALOYD_WORKER_CLIENT_H
#define HALOYD_WORKER_CLIENT_H

#include <sys/socket.h>

struct worker;
struct listener;

/* Takes over an accepted, non-blocking socket; 0, or -1 with fd closed. */
int client_new(struct worker *w, int fd, const struct listener *ls, const struct sockaddr *peer);
/* Closes every client with no request in progress (a graceful stop has begun). */
void client_close_idle(struct worker *w);
/* Closes every client at once (the stop deadline passed). */
void client_close_all(struct worker *w);

#endif
