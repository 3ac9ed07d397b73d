/*
 * TLS toward backends (OpenSSL 3, client side) for routes whose protocol is
 * https or h2: one SSL_CTX per route configuration, cached in the worker
 * and rebuilt only when the route's TLS settings change, and client
 * connections that worker/tls.c's I/O helpers then drive like server ones.
 *
 * A context verifies the backend's certificate (unless the route turned
 * that off) against the route's CA PEM or the system roots, TLS 1.2 and
 * up, ALPN "http/1.1" for https and "h2" for h2. A connection sends the
 * route's server name when it has one and checks the certificate against
 * it, else against the backend's IP address. A backend's last session is
 * offered again on the next connection to it (resumption).
 */
#ifndef HALOYD_WORKER_TLSCLIENT_H
#define HALOYD_WORKER_TLSCLIENT_H

#include <stdint.h>

struct worker;
struct snap;
struct snap_route;
struct snap_backend;
struct tls_conn;
struct tlsclient;

int tlsclient_init(struct worker *w);
void tlsclient_free(struct worker *w);

/*
 * A new snapshot is served: contexts of routes it no longer has, or whose
 * TLS settings changed, are dropped (connections in flight keep theirs);
 * only the images the snapshot changed are walked.
 */
void tlsclient_snapshot(struct worker *w, const struct snap *s);

/*
 * What a pooled backend connection must match to be reused: 0 for a plain
 * protocol, else a hash of the route's protocol, server name, CA and
 * verification. A route switched from http1 to https never gets a plain
 * connection, nor one made with the old CA. Memoised per route and
 * snapshot generation.
 */
uint64_t tlsclient_config_key(struct worker *w, const struct snap *s,
    const struct snap_route *r);

/*
 * A client TLS connection in connect state on fd (connected or still
 * connecting; fd stays the caller's) to backend b of route r, which s (the
 * snapshot the request holds) holds. The handshake runs with
 * tls_conn_handshake(), or inside the first reads and writes. NULL (logged,
 * naming the backend) when the route's context cannot be made or out of
 * memory.
 */
struct tls_conn *tlsclient_conn_new(struct worker *w, const struct snap *s,
    const struct snap_route *r, const struct snap_backend *b, int fd);

/*
 * Keeps the session of connection c to backend backend_id of route
 * route_id, made with configuration key, so the next connection there
 * resumes it (one per backend, replaced by newer ones; dropped with the
 * route's context). Called once a response came, when a TLS 1.3 server's
 * tickets have arrived.
 */
void tlsclient_keep_session(struct worker *w, uint32_t route_id, uint64_t key,
    uint32_t backend_id, const struct tls_conn *c);

/* The number of cached contexts (for tests). */
uint32_t tlsclient_count(const struct worker *w);

#endif
