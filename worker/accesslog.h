/* Access entries: one per request, with the journal fields of share/log.h. */
#ifndef HALOYD_WORKER_ACCESSLOG_H
#define HALOYD_WORKER_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct msg_head;
struct snap;
struct snap_backend;

struct accesslog_entry {
	const struct msg_head *req;	/* NULL when the request never parsed */
	const char *host;
	const char *backend;		/* "" when none was reached */
	const char *request_id;
	unsigned status;
	uint32_t route_id;		/* store id; 0 when no route was chosen */
	int local;			/* the answer is ours, not a backend's: a gRPC call got a status */
	uint64_t bytes_in, bytes_out;
	uint64_t start_us;
	const char *client;		/* the client's address, or NULL */
	const char *cache;		/* HIT, MISS, ... on a caching route; NULL otherwise */
};

void accesslog_write(struct worker *w, const struct accesslog_entry *e);
/* The entry for an answer of our own (no backend reached): error pages, redirects, ACME. */
void accesslog_local(struct worker *w, const struct msg_head *req, const char *host,
    uint32_t route_id, unsigned status, uint64_t start_us, const char *client);
/*
 * A snapshot backend as haloyd-ctl writes it: "ip:port", "[ip6]:port",
 * "unix:/path" or "tunnel:NAME" (BEADDR_STR_MAX bytes hold any), and a DNS
 * name's with the address dialled: "name:port(ip)", "name:port(unresolved)".
 */
void accesslog_backend(const struct snap *s, const struct snap_backend *b, char *buf,
    size_t len);

#endif
