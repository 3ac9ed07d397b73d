/*
 * haloyd-tunnel's one context (the agent's equivalent of struct worker):
 * the loop, the settings, the TLS client context, the tunnel slots, the
 * app's address and its idle keep-alive connections, the stop state.
 * Nothing else in the agent is global.
 */
#ifndef HALOYD_AGENT_AGENT_H
#define HALOYD_AGENT_AGENT_H

#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "agent/agentconf.h"
#include "share/evloop.h"

struct tunnel;
struct appconn;

/* One of the --conns tunnels the agent keeps: the live one and its back-off. */
struct tslot {
	struct agent *ag;
	unsigned idx;
	struct tunnel *t;	/* NULL while waiting to redial */
	unsigned fails;		/* attempts failed since the last healthy tunnel */
	char last_error[160];	/* logged once: the same failure again is a debug line */
	struct ev_timer retry;
};

struct agent {
	struct ev_loop *loop;
	struct agentconf conf;
	SSL_CTX *tls;
	struct sockaddr_storage app;
	socklen_t applen;
	struct tslot slot[AGENTCONF_CONNS_MAX];
	struct tunnel *tunnels;		/* every open tunnel, live or draining */
	struct appconn *idle;		/* idle app connections, newest first */
	unsigned nidle;
	int stopping;
	int sigfd;
	struct ev_io sigio;
	struct ev_timer stop_timer;
};

/* tunnel.c tells the slot owner (main.c) what became of a tunnel. */
void agent_tunnel_ready(struct agent *ag, struct tunnel *t);
/* The tunnel is gone (or, goaway: it takes no new streams): the slot redials. */
void agent_tunnel_lost(struct agent *ag, struct tunnel *t, int goaway);
/* The tunnel was freed: during a stop, the agent may be done. */
void agent_tunnel_freed(struct agent *ag);

#endif
