/*
 * The request step: one function every client protocol calls with a parsed
 * head. It finds the host (lower-cased, port and trailing dot stripped,
 * validated), looks the route up once on the snapshot the request will hold,
 * and either answers locally (an ACME challenge, a redirect to https://, an
 * error page, the welcome page) or starts an exchange. The route's rate
 * limit (worker/ratelimit.c) refuses (429) or delays the exchange's start
 * first. The cache will hook in here.
 */
#ifndef HALOYD_WORKER_REQUEST_H
#define HALOYD_WORKER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "share/hostname.h"
#include "worker/errpage.h"
#include "worker/message.h"

struct worker;
struct exchange;
struct sink_ops;
struct proxyproto_addrs;

/* Who sent the request: the connection's facts. */
struct request_peer {
	const char *client_ip;
	int trusted;		/* in trusted_proxies */
	int tls;		/* came over TLS */
	const struct proxyproto_addrs *addrs;	/* the connection's ends (NULL: unknown), for a
						 * route's PROXY header toward its backends */
};

/* A local answer: a response head and its body, for the session to encode. */
struct answer {
	struct msg_head head;	/* transformed for the client already (HSTS...) */
	const char *body;	/* NULL or body_len bytes (none for HEAD) */
	size_t body_len;
	int close;		/* the connection must close after it (400...) */
	char page[1024];	/* storage for a built-in page */
};

/* What the step did with a request. */
struct request {
	char host[HOSTNAME_MAX + 1];	/* normalised, "" if none */
	int hsts;			/* answers carry Strict-Transport-Security */
	uint32_t route_id;		/* store id of the route found, 0 before or without one */
	const char *client;		/* the peer's client_ip, for our own answers' access entries */
	struct exchange *ex;		/* started, or NULL: ans holds the answer */
	struct answer ans;
};

/*
 * Runs the step for head h (which must stay valid while an exchange runs).
 * 0: r->ex is started, or r->ans holds a local answer (already logged).
 * -1: out of memory (nothing to send).
 */
int request_step(struct worker *w, const struct request_peer *peer, struct msg_head *h,
    uint64_t start_us, const struct sink_ops *sink, void *arg, struct request *r);

/*
 * An error answer of the session's own (a bad request, a timeout: 400, 408,
 * 413, 414, 431...) or for an exchange that failed before the head; h may be
 * NULL when nothing parsed. A gRPC call over HTTP/2 gets its trailers-only
 * gRPC status instead of the page (worker/grpc.c decides). 0 or -1.
 */
int request_error(struct worker *w, unsigned status, enum errpage_kind kind,
    const struct msg_head *h, int hsts, struct answer *ans);
/* Releases what an answer holds. */
void request_answer_free(struct answer *ans);

#endif
