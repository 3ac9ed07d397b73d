/*
 * Byte tunnels for upgraded connections (WebSocket, or any protocol a backend
 * accepts with 101): two sockets, one bounded buffer per direction, a
 * half-close passed through to the other side, and an idle timeout.
 */
#ifndef HALOYD_WORKER_TUNNEL_H
#define HALOYD_WORKER_TUNNEL_H

#include <stdint.h>

#include "worker/buf.h"

struct worker;
struct tls_conn;

/*
 * Takes over both sockets and the blocks of both buffers (left empty):
 * to_client holds bytes for the client (the 101 head and what the backend
 * sent after it), to_backend what the client sent after its request. The
 * tunnel counts as one of the worker's client connections. client_tls, the
 * client's TLS state on an HTTPS listener (else NULL), is taken over too.
 * 0, or -1 with everything closed.
 */
int tunnel_start(struct worker *w, int client_fd, struct tls_conn *client_tls, int backend_fd,
    struct buf *to_client, struct buf *to_backend, uint32_t idle_ms);
void tunnel_close_all(struct worker *w);

#endif
