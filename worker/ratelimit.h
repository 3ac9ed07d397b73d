/*
 * Per-client limits in the worker, over the shared client table
 * (share/clients.h): which client a request counts for (the peer, or the
 * first untrusted X-Forwarded-For address when the peer is a trusted
 * proxy), the route's rate (its own or haloyd.conf's default) and the
 * verdict the request step acts on; and max_connections_per_ip at accept.
 * Without the shared region (not sent yet) nothing is limited.
 */
#ifndef HALOYD_WORKER_RATELIMIT_H
#define HALOYD_WORKER_RATELIMIT_H

#include <stdint.h>

#include "share/clients.h"

struct worker;
struct msg_head;
struct snap_route;
struct proxyproto_addrs;

#define RATELIMIT_NO_ENTRY UINT32_MAX	/* a connection that is not counted */
#define RATELIMIT_XFF_MAX 64		/* X-Forwarded-For addresses looked at, from the right */

enum ratelimit_verdict {
	RATELIMIT_PASS,		/* now (delay_ms 0) or after delay_ms */
	RATELIMIT_REFUSE,	/* 429, Retry-After: retry_after_s */
};

struct ratelimit_result {
	enum ratelimit_verdict v;
	uint32_t delay_ms;
	uint32_t retry_after_s;
};

/*
 * The client a request counts for. Only when the peer is trusted is
 * X-Forwarded-For read, right to left (every field, in order), skipping
 * trusted_proxies: the first address outside them is the client; all of
 * them trusted: the leftmost. A token that is not an IP address, or more
 * than RATELIMIT_XFF_MAX of them, and the peer itself is the client: read
 * from addrs (the connection's ends, in network order) when known, else
 * parsed from peer_ip. 0 or -1 (the peer's address does not parse).
 */
int ratelimit_client(const struct worker *w, const char *peer_ip,
    const struct proxyproto_addrs *addrs, int trusted, const struct msg_head *h,
    struct clients_addr *out);

/* The rate route r has (its own, else haloyd.conf's): 1 and *rate, *nodelay; 0 for none. */
int ratelimit_policy(const struct worker *w, const struct snap_route *r, struct clients_rate *rate,
    int *nodelay);

/*
 * One request from client ip (addrs: the connection's ends or NULL; trusted:
 * a trusted proxy) with head h on route r: its verdict, counted in the
 * worker's slot (refused or dry-run).
 */
void ratelimit_request(struct worker *w, const char *ip, const struct proxyproto_addrs *addrs,
    int trusted, const struct msg_head *h, const struct snap_route *r,
    struct ratelimit_result *res);

/*
 * A new connection from ip: 0 (*entry: what ratelimit_conn_close takes,
 * RATELIMIT_NO_ENTRY when uncounted) or -1: the client is at
 * max_connections_per_ip across the workers, close it.
 */
int ratelimit_conn_open(struct worker *w, const char *ip, uint32_t *entry);
void ratelimit_conn_close(struct worker *w, uint32_t entry);

#endif
