/*
 * The tunnel process (`haloyd -R tunnel`, haloyd issue 13): a worker loop
 * and context (struct worker) with a role of its own (worker.h's struct
 * worker_role). It terminates every reverse tunnel: agents dial its TLS
 * listener with a client certificate whose CN names the tunnel
 * (tunattach.c), and the workers reach them through the local hop,
 * RUNTIME_DIR/tunnel.sock, as h2c requests carrying `haloyd-tunnel: NAME`
 * (hop.c). Its state is struct tunnel_ctx, w->role_ctx.
 */
#ifndef HALOYD_TUNNEL_TUNPROC_H
#define HALOYD_TUNNEL_TUNPROC_H

#include <stddef.h>
#include <stdint.h>

#include "share/addr.h"
#include "share/msg.h"
#include "tunnel/tunname.h"

struct worker;
struct worker_args;
struct h2conn;
struct tun_pending;
struct ssl_ctx_st;

#define TUN_ATTACH_MS 10000	/* TLS, magic and SETTINGS exchange: an agent's whole attach */
#define TUN_PENDING_MAX 256	/* handshakes in progress; more wait in the accept queue */
#define TUN_MAX 1024		/* attached tunnels (agents) in all */
/*
 * A tunnel process this young has agents on their way (an upgrade's new
 * process, a respawn): a request for a tunnel with no agent waits for one,
 * up to connect_timeout, instead of 503 at once.
 */
#define TUN_START_HOLD_MS 30000

/* One agent: attaching (its session not ready yet) or attached. */
struct tunnel_rec {
	struct tunnel_ctx *t;
	struct tunnel_rec *prev, *next;
	struct h2conn *c;			/* its session (worker/h2csession.c) */
	char name[TUNNAME_MAX + 1];
	char peer[ADDR_STR_MAX];
	char subject[MSG_T_SUBJECT_MAX + 1];
	int64_t not_after;			/* its certificate's, unix seconds */
	uint64_t since_s;			/* attached (ready) since, unix seconds */
	int ready;
};

struct tunnel_ctx {
	struct worker *w;
	struct ssl_ctx_st *ctx;		/* from MSG_T_CONFIG; NULL until then (agents refused) */
	struct tunnel_rec *recs;
	uint32_t nrecs;
	struct tun_pending *pending;	/* TLS handshakes and magics in progress */
	uint32_t npending;
};

/* tunproc.c: the process. */
int tunnel_main(const struct worker_args *a);

/* tunattach.c: agents dialling in. */
void tunattach_accept(struct worker *w, int fd, const struct sockaddr *peer);
/* Stop: GOAWAY to every agent (streams in flight finish), handshakes dropped. */
void tunattach_stop(struct tunnel_ctx *t);
/* 1 while a session still carries streams. */
int tunattach_busy(const struct tunnel_ctx *t);
/* Drops the handshakes in progress (the sessions went with the HTTP/2 pools). */
void tunattach_free(struct tunnel_ctx *t);

#endif
