/*
 * The HTTP/2 upstream's own declarations, shared by its two files and
 * included by no other: worker/h2client.c (pools, placing streams,
 * requests, delivery to the exchange: the upstream's ops) and
 * worker/h2csession.c (one connection: transport, nghttp2's callbacks,
 * PING and the idle close). upstream.h is the interface the rest sees.
 */
#ifndef HALOYD_WORKER_H2CLIENTINT_H
#define HALOYD_WORKER_H2CLIENTINT_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "share/evloop.h"
#include "share/snap.h"
#include "worker/buf.h"
#include "worker/dial.h"
#include "worker/message.h"
#include "worker/upstream.h"

struct tls_conn;
struct worker;

#define H2C_BUCKETS 64
#define H2C_CONNS_MAX 16	/* sessions per backend that take new streams */
#define H2C_STREAMS_MAX 128	/* streams per session, whatever the peer allows */
#define H2C_STREAM_WINDOW 65535	/* the protocol default: bounds what a stream buffers */
#define H2C_CONN_WINDOW (1024 * 1024)
#define H2C_IN_MAX (2 * H2C_STREAM_WINDOW)	/* past the window: the peer broke flow control */
#define H2C_PING_MS 30000	/* nothing heard for this long: PING */
#define H2C_IDLE_MS 60000	/* no stream for this long: the session closes */
#define H2C_TUN_PING_MS 20000	/* issue 13: an attached tunnel silent this long gets a PING */
#define H2C_TUN_PING_TIMEOUT_MS 10000	/* and is dropped without the ACK this long after */
#define H2C_INTERIM_MAX 8	/* 1xx heads before the final one */
#define H2C_DECODED_MAX (4 * MSG_HEAD_MAX)	/* HPACK bombs, as on the server side */
#define H2C_MAX_CONTINUATIONS 8
#define H2C_MAX_OUTBOUND_ACK 1000
#define H2C_NV_MAX (MSG_FIELDS_MAX + 8)
#define H2C_HEAD_SLACK 256	/* status line, framing and HSTS an encoder adds to a head */

struct h2conn;

#define H2C_TUNNEL_NAME_MAX 63	/* the contract's tunnel names: 1..63 of [a-z0-9.-] */

struct h2cpool {
	uint32_t key;
	char name[H2C_TUNNEL_NAME_MAX + 1];	/* a reverse tunnel's (never dials), else "" */
	uint32_t rr;			/* tunnel pools: where the next pick's rotation starts */
	struct h2conn *refused;		/* tunnel pools: the session that last refused a stream */
	uint64_t cfg;			/* tlsclient_config_key: 0 plain (h2c), else one TLS configuration */
	uint32_t nconns;		/* sessions that take new streams */
	int can_dial;			/* be and tgt hold the backend's */
	struct snap_backend be;
	struct dial_target tgt;		/* its address, unix path or the tunnel hop */
	struct h2conn *conns;		/* every session of the key */
	struct ustream *qhead, *qtail;	/* streams waiting for a slot */
	struct h2cpool *next;		/* in the bucket */
};

struct h2c_reqbuf;

struct h2client_pools {
	struct h2cpool *bucket[H2C_BUCKETS];
	struct h2c_reqbuf *rb;		/* a header list being built: one at a time, never nested */
	uint32_t ping_ms, idle_ms;	/* H2C_PING_MS, H2C_IDLE_MS unless a test shortens them */
	uint32_t tun_ping_ms, tun_ping_timeout_ms;	/* attached (reverse) sessions' */
};

/* One HTTP/2 connection to a backend. */
struct h2conn {
	struct worker *w;
	struct h2cpool *pool;
	struct h2conn *next;		/* in pool->conns */
	int fd;
	struct tls_conn *tc;
	nghttp2_session *ng;
	struct ev_io io;
	struct ev_timer timer;		/* connect, PING, idle */
	struct buf in, out;
	const uint8_t *pend;		/* mem_send output not yet in out */
	size_t pend_len;
	struct ustream *streams;	/* submitted streams, closed ones until nghttp2 says so */
	uint32_t nactive;		/* submitted and not closed by nghttp2 */
	uint32_t nsubmitted;		/* ever: a session that carried one is reused */
	uint32_t connect_ms;
	uint64_t born, last_rx, idle_since, ping_at, rx_frames;
	unsigned connecting : 1;	/* connect() in progress */
	unsigned ready : 1;		/* the peer's SETTINGS arrived */
	unsigned goaway : 1;		/* GOAWAY received or sent: no new streams */
	unsigned counted : 1;		/* in pool->nconns */
	unsigned broken : 1;		/* flush what is queued, then close */
	unsigned lost : 1;		/* the transport failed */
	unsigned ping_out : 1;
	unsigned alpn_checked : 1;	/* TLS: the backend agreed on h2 */
	unsigned dead : 1;
	unsigned reverse : 1;		/* an agent's tunnel (h2client_attach) */
	unsigned settings_in : 1;	/* reverse: the agent's SETTINGS arrived */
	unsigned settings_acked : 1;	/* reverse: ours were acknowledged */
	unsigned goaway_due : 1;	/* reverse: GOAWAY once no stream is left (a drain) */
	uint8_t kick_pending;
	size_t magic_left;		/* reverse: bytes of the client magic still to drop */
	uint64_t ping_sent_us;		/* when the PING in flight went out */
	uint32_t ping_rtt_us;		/* the last one's round trip */
	const char *why;		/* reverse: why it closes, for the detach line */
	void *owner;			/* reverse: h2client_attach's hooks */
	void (*on_ready)(void *owner);
	void (*on_close)(void *owner, const char *why);
	char who[H2C_TUNNEL_NAME_MAX + 16];	/* "backend N" or "tunnel NAME", for its log lines */
};

struct ustream {
	struct worker *w;
	struct h2cpool *pool;		/* while queued */
	struct h2conn *c;		/* once submitted, until its session goes */
	struct ustream *prev, *next;	/* in the pool's queue or c->streams */
	int32_t id;			/* 0 until submitted */
	const struct upstream_events *ev;
	void *arg;
	const struct msg_head *req;
	const struct snap *snap;	/* the route's (TLS settings), both valid until close */
	const struct snap_route *route;
	const char *tunnel;		/* a tunnel backend's name (in snap): haloyd-tunnel, or NULL */
	struct msg_head resp;
	struct msg_head trailers;	/* the request's, copied at end() */
	struct msg_head rtrailers;	/* the response's, joined to resp at its end */
	struct buf out;			/* request body for the DATA provider */
	char *in;			/* response DATA the exchange has not taken */
	size_t in_off, in_len, in_cap;
	struct ev_timer timer;		/* waiting for a slot */
	uint64_t rx_at_submit;		/* c->rx_frames then: silence since means a dead session */
	size_t decoded;			/* header bytes of the current block */
	unsigned interim;
	enum upstream_err err;
	int code;
	unsigned fresh : 1, queued : 1, has_body : 1, reused : 1;
	unsigned tunnel_rr : 1;		/* haloyd-tunnel-balance: round-robin */
	unsigned rr : 1;		/* tunnel pools: round-robin, not least-in-flight */
	unsigned req_done : 1;		/* end() called */
	unsigned req_out : 1;		/* END_STREAM went out */
	unsigned sent : 1, more_due : 1;
	unsigned got_byte : 1;		/* the backend said something on the stream */
	unsigned head_ready : 1, head_sent : 1, resp_done : 1, ended : 1;
	unsigned ng_closed : 1;		/* nghttp2 closed the stream (or the session went) */
	unsigned err_due : 1, failed : 1, dead : 1;
	uint8_t kick_pending;
};

/* h2client.c: what the sessions call back. */
/* The pool of key (a backend's store id) and TLS configuration cfg, made when missing. */
struct h2cpool *h2client_pool(struct worker *w, uint32_t key, uint64_t cfg);
/* A reverse tunnel's pool (made when missing): sessions agents attached, never a dial. */
struct h2cpool *h2client_pool_named(struct worker *w, const char *name);
/* Waiting streams onto sessions with room, a new connection when needed; -1 with errno. */
int h2client_dispatch(struct h2cpool *p, uint32_t connect_ms);
/* Every waiting stream fails with UPSTREAM_CONNECT and code. */
void h2client_fail_queue(struct h2cpool *p, int code);
/* Deliveries to the exchange as far as it has room (loop context only). */
void h2client_pump(struct ustream *s);
/* The stream fails with err once its kick runs (never inside an ops call). */
void h2client_stream_error(struct ustream *s, enum upstream_err err, int code);
void h2client_stream_kick(struct ustream *s);
/* Leaves its session's list. */
void h2client_stream_unlink(struct ustream *s);

/* h2csession.c */
/* A session on fd (connected, or connecting); it owns fd and tc, also when this fails (NULL). */
struct h2conn *h2csession_new(struct worker *w, struct h2cpool *p, int fd, struct tls_conn *tc,
    int connecting, uint32_t connect_ms);
/* Closes it; its streams are told or reaped; the struct goes after this batch. */
void h2csession_close(struct h2conn *c);
void h2csession_kick(struct h2conn *c);
/* About what a head encodes to in HTTP/1.1, for room checks. */
size_t h2csession_head_size(const struct msg_head *h);

#endif
