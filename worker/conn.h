/*
 * Client connections: the socket, TLS, the connection's buffers and timer,
 * lingering close, and the worker's list of connections. A connection
 * carries one session (struct session_ops) chosen by ALPN or by its first
 * bytes (the HTTP/2 preface); the session drives it (HTTP/1.1 in
 * worker/h1server.c, HTTP/2 in worker/h2server.c).
 */
#ifndef HALOYD_WORKER_CONN_H
#define HALOYD_WORKER_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "share/addr.h"
#include "share/evloop.h"
#include "worker/buf.h"
#include "worker/proxyproto.h"

struct worker;
struct listener;
struct tls_conn;
struct conn;

struct session_ops {
	const char *name;
	/* Sets up c->sess; 0 or -1. */
	int (*start)(struct conn *c);
	/* Bytes may have arrived, room may have opened: do the work (events, kicks). */
	void (*run)(struct conn *c);
	/* The connection's timer fired. */
	void (*timeout)(struct conn *c);
	/* 1 when nothing is in progress (a graceful stop closes such connections). */
	int (*idle)(const struct conn *c);
	/* The connection closes or lingers: drop exchanges. No callbacks after this. */
	void (*stop)(struct conn *c);
	/* Frees c->sess (after the batch in which the connection closed). */
	void (*free)(struct conn *c);
};

extern const struct session_ops h1server_ops;
extern const struct session_ops h2server_ops;

/* Ordered by alignment: 304 bytes, every idle connection pays it (ARCHITECTURE.md "Memory"). */
struct conn {
	struct worker *w;
	struct conn *prev, *next;
	struct tls_conn *tls;		/* on an HTTPS listener, else NULL (worker/tls.h) */
	struct ev_io io;
	struct ev_timer timer;		/* the session's */
	const char *proto;		/* "http" / "https" */
	uint8_t *pp;			/* a PROXY header's first piece (worker/ppconn.c), or NULL */
	struct buf in, out;
	size_t drained;			/* bytes dropped while lingering */
	const struct session_ops *sops;
	void *sess;			/* NULL while an HTTP/1.1 connection idles (worker/h1server.c) */
	int fd;
	uint32_t client_entry;		/* its count in the shared client table (worker/ratelimit.h) */
	char ip[ADDR_STR_MAX];		/* the client's: the PROXY header's source when one came */
	struct proxyproto_addrs addrs;	/* client and local end, as a PROXY header to a backend says */
	uint16_t pp_len;
	uint8_t trusted;		/* that client is in trusted_proxies */
	uint8_t kick_pending;		/* a run is deferred (ev_defer_once) */
	unsigned peer_eof : 1;		/* the client sent its last byte */
	unsigned readable : 1;		/* epoll reported input (or TLS wants the socket): read */
	unsigned dead : 1;
	unsigned lingering : 1;		/* answered, closing: unread input is drained */
	unsigned wr_shut : 1;		/* our write side is shut (half-close) */
	unsigned pp_wait : 1;		/* a proxy listener's: the PROXY header is not read yet */
	unsigned od_waiting : 1;	/* its handshake is held (worker/odwait.h) */
	unsigned served : 1;		/* it has carried a request: a stop may close it idle */
};

/* Takes over an accepted, non-blocking socket; 0, or -1 with fd closed. */
int conn_new(struct worker *w, int fd, const struct listener *ls, const struct sockaddr *peer);
/* Runs the session after this batch of events (never inside the caller's call). */
void conn_kick(struct conn *c);
/* Closes at once (the free runs after this batch). */
void conn_close(struct conn *c);
/* Writes what out holds; 0 (EAGAIN included), or -1 when the connection broke. Sets *moved. */
int conn_flush(struct conn *c, int *moved);
/*
 * Writes out's bytes then p's in one call, without copying p: how many of
 * p's the socket took (0 on TLS, whose records copy anyway, and on any
 * error, which the next conn_flush reports).
 */
size_t conn_write_direct(struct conn *c, const char *p, size_t n);
/* Reads into in while it has room; 0 (EAGAIN, EOF: peer_eof) or -1. */
int conn_read(struct conn *c);
/*
 * Sets the epoll interest: input when want_in, output while out holds bytes,
 * and what TLS needs. Kicks the session when TLS holds bytes epoll will not
 * report. 0, or -1 with the connection closed.
 */
int conn_watch(struct conn *c, int want_in);
/* Half-close: close_notify and SHUT_WR once out is empty (the caller checks). */
void conn_shut_write(struct conn *c);
/* Starts the lingering close, or closes when nothing can be left unread (all_read). */
void conn_linger(struct conn *c, int all_read);

/*
 * Closes every connection with nothing in progress (a graceful stop has
 * begun) that has carried a request; fresh_too: the ones that have not
 * too (the stop's grace for their first request is over).
 */
void conn_close_idle(struct worker *w, int fresh_too);
/* Closes every connection at once (the stop deadline passed). */
void conn_close_all(struct worker *w);

#endif
