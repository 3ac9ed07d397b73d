/*
 * The worker's per-process context: everything a worker owns, in one struct
 * that every worker/ file receives. No worker state lives anywhere else.
 */
#ifndef HALOYD_WORKER_CONTEXT_H
#define HALOYD_WORKER_CONTEXT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "share/evloop.h"
#include "share/ipc.h"
#include "share/addr.h"
#include "share/msg.h"
#include "share/shm.h"
#include "worker/balance.h"
#include "worker/buf.h"
#include "worker/errpage.h"
#include "worker/httpdate.h"

#define WORKER_MAX_LISTENERS 32

struct snap;
struct conn;
struct h1client_pools;
struct h2client_pools;
struct tls;
struct tlsclient;
struct cachestore;
struct probes;

struct listener {
	struct worker *w;
	int fd;
	uint32_t id;
	uint32_t kind;		/* enum msg_listener_kind */
	uint32_t proxy;		/* clients come through a balancer that sends a PROXY header */
	struct ev_io io;
	/* Bound to one address (not a wildcard): every client's local end, with no getsockname. */
	int local_fixed;
	struct sockaddr_storage local;
};

struct request;
struct request_peer;
struct msg_head;
struct sink_ops;
struct worker_role;

/* A request step (worker/request.h's request_step, or a role's own). */
typedef int (*worker_step_fn)(struct worker *w, const struct request_peer *peer,
    struct msg_head *h, uint64_t start_us, const struct sink_ops *sink, void *arg,
    struct request *r);

struct worker {
	struct ev_loop *loop;
	const struct worker_role *role;	/* NULL in a worker; the tunnel process's (worker.h) */
	void *role_ctx;			/* the role's own state */
	worker_step_fn step;		/* NULL: request_step; the role's for its connections */
	uint64_t tunnel_hold_until;	/* util_now_ms: a tunnel with no agent yet waits for one */
	int index;
	int parent;		/* the master, fd 3 */
	struct ev_io parent_io;
	struct ipc_msg *rx;
	int sigfd;
	struct ev_io sig_io;

	struct msg_wconfig cfg;
	struct addr_cidr trusted[MSG_WCONFIG_TRUSTED_MAX];	/* cfg.ntrusted of them */
	struct errpages errpages;
	struct snap *snap;	/* the newest generation; requests hold their own reference */
	uint32_t gen;
	/* The generation being received, an image a message (share/msg.h, MSG_W_SNAP). */
	struct snap *snap_next;
	uint32_t snap_next_gen;
	uint32_t snap_next_images;
	char snap_next_err[200];	/* set: refused at its last message */
	int snap_ready;		/* a generation was installed (NULL before any build) */
	struct tls *tls;	/* contexts from the last keyring (worker/tls.h) */
	struct odwait *odwait;	/* handshakes held by on-demand TLS (worker/odwait.h) */
	int sandbox;		/* install the filter at the first snapshot (share/sandbox.h) */
	int sandboxed;		/* it is installed */
	int keyring_failed;	/* the last keyring did not install: snapshots are refused */

	struct listener lst[WORKER_MAX_LISTENERS];
	size_t nlst;
	int accepting;		/* listeners are watched */

	struct conn *conns;	/* every open client connection (worker/conn.h) */
	uint32_t nconns;
	uint64_t requests;
	uint64_t access_seq;	/* access_log_sample's counter */
	uint64_t reqid_base;	/* random, per process: request ids are base + counter */
	struct httpdate date;	/* every response's Date field */

	int stopping;
	int stop_keep_fresh;	/* a hand-over's drain: idle connections are not closed at once */
	struct ev_timer stop_timer;
	struct ev_timer stop_grace;	/* a plain stop's grace for fresh connections */

	struct buf_pool bufs;	/* BUF_SIZE blocks */
	struct ev_timer tidy_timer;	/* every WORKER_TIDY_MS: the pool gives back what it did not need */
	struct ev_timer tls_tidy_timer;	/* every WORKER_TLS_TIDY_MS: idle TLS connections' cipher contexts */
	struct ev_timer accept_timer;	/* accepting resumes after EMFILE */
	int accept_paused;
	uint64_t pp_log_ms;		/* the last PROXY protocol refusal logged (worker/ppconn.c) */
	uint32_t pp_log_dropped;	/* refusals since, not logged */
	struct h1client_pools *pools;	/* backend keep-alive pools (worker/h1client.c) */
	struct h2client_pools *h2pools;	/* backend HTTP/2 sessions (worker/h2client.c) */
	struct tlsclient *tlsclient;	/* TLS contexts toward backends (worker/tlsclient.c) */
	struct balance balance;		/* round-robin counters, passive health */
	struct probes *probes;		/* active health checks (worker/probe.c); NULL: none */
	struct shm shm;			/* the shared region, once the master sent it */
	struct shm_wslot *stats;	/* this worker's slot in it; a private one until then */
	struct shm_wslot *own_stats;	/* that private one (counts nothing anyone reads) */
	struct cachestore *cache;	/* the shared cache (worker/cache.c), NULL without one */
};

/* listen.c: accepting new clients, paused at max_conns and while stopping. */
void listen_update(struct worker *w);
/* Notes the listener's own address once (listener.local_fixed). */
void listen_note_local(struct listener *ls);
void listen_close_all(struct worker *w);

/* worker.c: a client went away; the worker may be done stopping. */
void worker_check_stopped(struct worker *w);

#endif
