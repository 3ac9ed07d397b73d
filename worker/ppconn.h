/*
 * The PROXY protocol on a client connection (listen_http/listen_https ADDR
 * proxy): who may send a header (trusted_proxies only), and reading it off
 * the socket before TLS or HTTP, in pieces, never a byte past it.
 */
#ifndef HALOYD_WORKER_PPCONN_H
#define HALOYD_WORKER_PPCONN_H

#include <sys/socket.h>

#include "worker/proxyproto.h"

struct worker;
struct conn;

/*
 * A connection from peer on a proxy listener: 0 when it must send a
 * header (trusted), -1 when it must be closed (logged, at most once a
 * second with a count of those not logged).
 */
int ppconn_admit(struct worker *w, const struct sockaddr *peer);

/*
 * Reads what arrived of c's header: 1 when complete (*h), 0 to wait for
 * more (c keeps the piece), -1 when the connection must close (a malformed
 * or too long header, EOF, an error; logged as above).
 */
int ppconn_read(struct conn *c, struct proxyproto_hdr *h);

/* c's header did not come within header_timeout: logged as above (the caller closes). */
void ppconn_timed_out(struct conn *c);

/* Frees what c kept of a header that was not complete. */
void ppconn_free(struct conn *c);

#endif
