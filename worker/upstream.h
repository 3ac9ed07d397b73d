/*
 * The upstream interface: how an exchange talks to a backend, whatever
 * carries the request there (the HTTP/1.1 keep-alive pool in
 * worker/h1client.c, the multiplexed HTTP/2 sessions in worker/h2client.c;
 * a reverse tunnel next). It mirrors the sink (worker/exchange.h): the exchange opens a
 * stream for a request head, pushes body bytes as room allows, ends it with
 * trailers, and hears back through struct upstream_events.
 *
 * Rules both sides keep:
 * - An implementation never calls an event from inside an ops call: work is
 *   deferred to the event loop, so the exchange may free itself in any event.
 * - The stream lives until the exchange calls close(), whatever happened;
 *   close() decides alone whether its connection can serve another request.
 * - After a 101 to an upgrade request the stream is a byte pipe: send()
 *   carries raw bytes, end() half-closes toward the backend, and the events
 *   carry raw bytes back (end() = the backend half-closed).
 */
#ifndef HALOYD_WORKER_UPSTREAM_H
#define HALOYD_WORKER_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "share/snap.h"

struct worker;
struct msg_head;
struct snap;
struct snap_backend;
struct snap_route;
struct ustream;
struct proxyproto_addrs;

/* Why a stream failed: the exchange's retry rules follow from it. */
enum upstream_err {
	UPSTREAM_CONNECT = 1,	/* no connection: nothing was sent (code: errno) */
	UPSTREAM_STALE,		/* a reused connection died before any response byte */
	UPSTREAM_RESET,		/* a new connection died before any response byte */
	UPSTREAM_BROKEN,	/* a bad response, or the connection died within one */
};

struct upstream_events {
	/* A response head: an interim 1xx (more follow), a 101 (the pipe begins) or the final one. */
	int (*head)(void *arg, struct msg_head *resp);
	/* Response body bytes (never more than room() said). 0 or -1. */
	int (*body)(void *arg, const char *p, size_t n);
	/* No more response bytes; trailers are in resp (NULL in a pipe). */
	void (*end)(void *arg, struct msg_head *resp);
	/* The stream failed; code is errno for UPSTREAM_CONNECT, else 0. */
	void (*fail)(void *arg, enum upstream_err err, int code);
	/* Response bytes the exchange takes now. */
	size_t (*room)(void *arg);
	/* The stream takes request bytes (again): connected, or bytes went out. */
	void (*more)(void *arg);
	/* Everything the exchange gave, end() included, reached the backend. */
	void (*sent)(void *arg);
	/*
	 * Optional (NULL: none): body bytes passed on to the client at once,
	 * without a copy; how many went (0: use room() and body()).
	 */
	size_t (*body_direct)(void *arg, const char *p, size_t n);
};

/* What a stream needs to know besides the request. */
struct upstream_opts {
	uint32_t connect_ms;	/* a connect still pending after this fails (UPSTREAM_CONNECT);
				 * a TLS handshake is part of the connect */
	int fresh;		/* a new connection, not a pooled one (a retry) */
	/*
	 * The route and the snapshot that holds it (both live until close):
	 * its protocol and backend TLS settings. NULL route: plain HTTP/1.1.
	 */
	const struct snap *snap;
	const struct snap_route *route;
	/*
	 * PROXY protocol version (worker/proxyproto.h) a new connection begins
	 * with, naming client's ends (NULL: unknown); 0: none. A connection that
	 * carried one client's header never serves another stream.
	 */
	int pp;
	const struct proxyproto_addrs *client;
};

struct upstream_ops {
	const char *name;
	/*
	 * A stream to b for the request head req (already transformed for the
	 * backend; it must stay valid until close). NULL with errno when the
	 * connect failed at once.
	 */
	struct ustream *(*open)(struct worker *w, const struct snap_backend *b,
	    const struct upstream_opts *o, const struct msg_head *req,
	    const struct upstream_events *ev, void *arg);
	/* Request body bytes, at most room(). 0 or -1. */
	int (*send)(struct ustream *s, const char *p, size_t n);
	/* Request body bytes send() takes now. */
	size_t (*room)(struct ustream *s);
	/* The request is complete; trailers (may be NULL) are sent with it. 0 or -1. */
	int (*end)(struct ustream *s, const struct msg_head *trailers);
	/* The exchange has room again: deliver more response bytes. */
	void (*resume)(struct ustream *s);
	/* No more events; the connection goes back to its pool when it can. */
	void (*close)(struct ustream *s);
	/* 1 while the connection is being made (the exchange's timer waits). */
	int (*connecting)(const struct ustream *s);
};

/* The HTTP/1.1 keep-alive pool (worker/h1client.c), plain or over TLS (proto https). */
extern const struct upstream_ops h1client_ops;

int h1client_pools_init(struct worker *w);
void h1client_pools_free(struct worker *w);

/*
 * The HTTP/2 upstream (worker/h2client.c): streams multiplexed over
 * sessions pooled per backend store id. A pool's sessions free themselves
 * on the loop's next turn after h2client_pools_free.
 */
extern const struct upstream_ops h2client_ops;

int h2client_pools_init(struct worker *w);
void h2client_pools_free(struct worker *w);

/*
 * A reverse tunnel as a target (tunnel/): h2client_tunnel_ops's open()
 * takes &be of one of these. The stream goes to a session the tunnel's
 * agents attached (h2client_attach), never a dial: the least in flight,
 * or round-robin; nothing attached: open() fails with ENOENT.
 */
struct upstream_tunnel {
	struct snap_backend be;		/* first: what open() receives (id 0) */
	char name[64];			/* the tunnel name */
	int round_robin;
};
extern const struct upstream_ops h2client_tunnel_ops;
/* PING after ping_ms of silence, close after idle_ms without streams (30 s, 60 s; tests shorten them). */
void h2client_set_times(struct worker *w, uint32_t ping_ms, uint32_t idle_ms);

/*
 * An HTTP/2 session over a connected socket, whoever opened it, in the pool
 * of pool_key (streams opened for a backend whose store id is pool_key use
 * it); tc is its TLS or NULL for plain TCP. The session owns fd and tc from
 * here, also when this fails (-1).
 */
struct tls_conn;
int h2client_session_new(struct worker *w, int fd, struct tls_conn *tc, uint32_t pool_key);

/*
 * A reverse tunnel's session (the rhttp dialect): the agent dialled us,
 * sent the HTTP/2 client magic (the caller read and checked it) and is the
 * HTTP/2 server; we open its streams. The session drops the magic nghttp2
 * emits first, is ready only once the agent's SETTINGS arrived and ours
 * were acknowledged, and sits in the pool of name, which never dials.
 */
struct h2conn;
struct h2client_attach {
	const char *name;		/* the tunnel name: its pool */
	const void *early;		/* bytes read after the magic (the agent's SETTINGS...) */
	size_t early_len;
	uint32_t ready_ms;		/* not ready within this: closed */
	void *owner;			/* passed to the hooks */
	void (*on_ready)(void *owner);
	void (*on_close)(void *owner, const char *why);	/* the session is gone */
};
/* The session owns fd and tc from here, also when this fails (NULL). */
struct h2conn *h2client_attach(struct worker *w, int fd, struct tls_conn *tc,
    const struct h2client_attach *a);
/* PING an attached session silent ping_ms, drop it ping_timeout_ms later (20 s, 10 s). */
void h2client_set_tunnel_times(struct worker *w, uint32_t ping_ms, uint32_t ping_timeout_ms);
/* What `tunnel list` shows of a session. */
struct h2client_info {
	uint32_t in_flight;		/* streams open on it */
	uint64_t served;		/* streams ever opened on it */
	uint32_t ping_rtt_us;		/* the last PING's round trip, 0 before one */
	int going_away;			/* GOAWAY sent or received: no new streams */
};
void h2client_session_info(const struct h2conn *c, struct h2client_info *out);
/* Graceful: GOAWAY, no new streams, closed once its streams are done. */
void h2client_session_goaway(struct h2conn *c);

#endif
