/*
 * The forwarding rules, one transform on a neutral head before any encoding
 * (RFC 9110 7.6): hop-by-hop fields and every field the Connection header
 * names are removed; X-Forwarded-For/-Proto/-Host and X-Request-Id are set
 * (the incoming X-Forwarded-For kept only from a trusted proxy); TE is kept
 * as "trailers" when the client asked for it (gRPC needs it); Host is kept;
 * Via gets our hop; HSTS is added to responses of routes that ask for it,
 * and Date to responses without one.
 */
#ifndef HALOYD_WORKER_FORWARD_H
#define HALOYD_WORKER_FORWARD_H

#include "worker/message.h"

#define FORWARD_HSTS_VALUE "max-age=31536000"
/* Our name in Via (RFC 9110 7.6.3 allows a pseudonym for the host). */
#define FORWARD_PSEUDONYM "haloyd"

/* Who asked, for the X-Forwarded-* fields. */
struct fwd_info {
	const char *client_ip;	/* the peer's address */
	const char *proto;	/* "http" or "https" */
	const char *request_id;
	int trusted;		/* the peer is a trusted proxy: its X-Forwarded-For is kept */
};

/* 1 when field f must not be forwarded (hop-by-hop or named in Connection). */
int forward_is_hop(const struct msg_head *h, const struct msg_field *f);

/* The request as a backend gets it (Via added, Max-Forwards counted). 0, or -1: too large. */
int forward_request(struct msg_head *h, const struct fwd_info *fi);
/*
 * The response as the client gets it; hsts adds Strict-Transport-Security,
 * date (worker/httpdate.h) is its Date unless it has one. 0 or -1.
 */
int forward_response(struct msg_head *h, int hsts, const char *date);
/* An OPTIONS or TRACE request's Max-Forwards, or -1 (another method, none, not a number). */
int64_t forward_max_forwards(const struct msg_head *h);

#endif
