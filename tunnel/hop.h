/*
 * The hop's server side: requests the workers send over
 * RUNTIME_DIR/tunnel.sock (h2c, worker/h2server.c's sessions) carry
 * `haloyd-tunnel: NAME` (and `haloyd-tunnel-balance: round-robin` for a
 * round-robin route). This is the tunnel process's request step (w->step):
 * no host routing, the internal fields removed, then a pinned exchange
 * (worker/exchange.h) to the agents of NAME.
 */
#ifndef HALOYD_TUNNEL_HOP_H
#define HALOYD_TUNNEL_HOP_H

#include <stdint.h>

struct worker;
struct request_peer;
struct msg_head;
struct sink_ops;
struct request;

/* worker_step_fn (worker/context.h): 0 (r->ex started or r->ans to send), -1 out of memory. */
int hop_step(struct worker *w, const struct request_peer *peer, struct msg_head *h,
    uint64_t start_us, const struct sink_ops *sink, void *arg, struct request *r);

#endif
