/*
 * One tunnel to the proxy: TCP connect, TLS with the client certificate and
 * ALPN h2, the 24-byte magic written by us, then an nghttp2 SERVER session
 * (no_recv_client_magic): the proxy opens odd streams toward us (the rhttp
 * dialect, reference/reverse-http.md section 2). PING when idle, GOAWAY
 * both ways. Streams are astream.c's.
 */
#ifndef HALOYD_AGENT_TUNNEL_H
#define HALOYD_AGENT_TUNNEL_H

#include <stdint.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "agent/bytequeue.h"
#include "share/evloop.h"

#define TUNNEL_MAX_STREAMS 100
#define TUNNEL_MAX_HEADER_LIST (64 * 1024)
#define TUNNEL_CONN_WINDOW (1024 * 1024)	/* all streams together: 16 full stream windows */
#define TUNNEL_OUT_MAX (64 * 1024)		/* nghttp2 output gathered per TLS write */

struct agent;
struct tslot;
struct astream;

enum tunnel_state { TUNNEL_CONNECT, TUNNEL_TLS, TUNNEL_SETTINGS, TUNNEL_READY };

#define TUNNEL_ALT_MAX 4

struct tunnel {
	struct agent *ag;
	unsigned idx;			/* its slot, for logs */
	struct tslot *slot;		/* NULL once detached (GOAWAY received, stopping) */
	struct tunnel *next;
	enum tunnel_state state;
	int fd;
	SSL *ssl;
	nghttp2_session *h2;
	struct ev_io io;
	struct ev_timer timer;		/* connect deadline, then PING, then drain */
	struct bytequeue out;		/* bytes for SSL_write */
	struct astream *streams;
	unsigned nstreams;
	uint64_t ready_at;
	uint64_t last_read;
	int ping_out;			/* our PING waits for its ACK */
	uint64_t ping_sent;
	int goaway_recv;
	int stop_stage;			/* 1: shutdown notice sent, 2: final GOAWAY sent */
	int dead;			/* closing: nothing more is done with it */
	int in_session;			/* inside nghttp2's recv or send: no flush from callbacks */
	uint8_t close_pending;
	char peer[128];
	/* The proxy's other addresses, tried in turn when a connect fails (::1 before 127.0.0.1). */
	struct sockaddr_storage alt[TUNNEL_ALT_MAX];
	socklen_t altlen[TUNNEL_ALT_MAX];
	unsigned nalt, nextalt;
};

/* Starts dialing for slot; NULL when it failed at once (logged). */
struct tunnel *tunnel_open(struct agent *ag, struct tslot *slot);
/* Graceful stop: shutdown notice, then GOAWAY with the last stream, then close when idle. */
void tunnel_stop(struct tunnel *t);
/* Sends what nghttp2 has queued; a broken tunnel is closed from the loop. */
void tunnel_flush(struct tunnel *t);
/* Closes from the loop (never inside nghttp2's calls). */
void tunnel_kill(struct tunnel *t, const char *why);

#endif
