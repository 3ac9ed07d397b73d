/*
 * Per-client rate and connection limits in the worker (see ratelimit.h):
 * the client's key, the route's policy, the verdict and its counting.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "share/clients.h"
#include "share/log.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/context.h"
#include "worker/message.h"
#include "worker/proxyproto.h"
#include "worker/ratelimit.h"

/* 1 when the literal address p[0..n) parses and lies in trusted_proxies; -1 when it does not parse. */
static int
ratelimit_trusted(const struct worker *w, const char *p, size_t n)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	char buf[INET6_ADDRSTRLEN];
	uint32_t i;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return -1;
	for (i = 0; i < w->cfg.ntrusted; i++)
		if (addr_cidr_match(&w->trusted[i], (struct sockaddr *)&ss))
			return 1;
	return 0;
}

/*
 * The token of v that ends at end (after the comma before it), spaces
 * trimmed into [*tok, *tok_end); returns where it began, the comma's place + 1.
 */
static const char *
ratelimit_token(const char *v, const char *end, const char **tok, const char **tok_end)
{
	const char *start = end;

	while (start > v && start[-1] != ',')
		start--;
	*tok = start;
	*tok_end = end;
	while (*tok < *tok_end && (**tok == ' ' || **tok == '\t'))
		(*tok)++;
	while (*tok_end > *tok && ((*tok_end)[-1] == ' ' || (*tok_end)[-1] == '\t'))
		(*tok_end)--;
	return start;
}

int
ratelimit_client(const struct worker *w, const char *peer_ip,
    const struct proxyproto_addrs *addrs, int trusted, const struct msg_head *h,
    struct clients_addr *out)
{
	const char *best = NULL, *v, *end, *start, *tok, *tok_end;
	size_t best_len = 0;
	uint32_t i = msg_nheaders(h), seen = 0;
	int t;

	while (trusted && i-- > 0) {
		if (!msg_field_is(h, &h->f[i], "x-forwarded-for"))
			continue;
		v = msg_value(h, &h->f[i]);
		for (end = v + h->f[i].value.len; ; end = start - 1) {
			start = ratelimit_token(v, end, &tok, &tok_end);
			if (tok_end > tok) {	/* "a,,b": empty tokens are skipped */
				if (++seen > RATELIMIT_XFF_MAX ||
				    (t = ratelimit_trusted(w, tok, (size_t)(tok_end - tok))) == -1)
					goto peer;
				best = tok;
				best_len = (size_t)(tok_end - tok);
				if (t == 0)
					goto found;
			}
			if (start == v)
				break;
		}
	}
	if (best != NULL)	/* every address trusted: the leftmost is the client */
		goto found;
peer:
	/* The connection's address as it came: no inet_pton on every request. */
	if (addrs != NULL && clients_addr_set(addrs->family, addrs->src, out) == 0)
		return 0;
	return clients_addr_parse(peer_ip, strlen(peer_ip), out);
found:
	return clients_addr_parse(best, best_len, out);
}

int
ratelimit_policy(const struct worker *w, const struct snap_route *r, struct clients_rate *rate,
    int *nodelay)
{
	uint32_t rpm = r->rate_rpm, burst = r->rate_burst;

	*nodelay = (r->flags & SNAP_ROUTE_RATE_NODELAY) != 0;
	if (rpm == SNAP_RATE_OFF)
		return 0;
	if (rpm == 0) {	/* the route has none of its own: haloyd.conf's */
		rpm = w->cfg.rate_rpm;
		burst = w->cfg.rate_burst;
		*nodelay = w->cfg.rate_nodelay != 0;
	}
	if (rpm == 0)
		return 0;
	rate->emission_us = 60000000ull / rpm;
	if (rate->emission_us == 0)
		rate->emission_us = 1;
	rate->burst = burst;
	return 1;
}

/* The bucket's verdict, or -1 when the table has no entry to give (then nothing is limited). */
static int
ratelimit_take(struct worker *w, const struct clients_addr *a, uint32_t route,
    const struct clients_rate *rate, enum clients_verdict *v, uint64_t *wait_us)
{
	uint64_t key = clients_key(&w->shm, a, route), now = util_now_us();
	struct shm_client *e;
	int tries;

	for (tries = 0; tries < 3; tries++) {
		if ((e = clients_get(&w->shm, key, now / 1000)) == NULL)
			return -1;
		if (clients_take(e, key, rate, now, v, wait_us) == 0)
			return 0;
	}
	return -1;
}

void
ratelimit_request(struct worker *w, const char *ip, const struct proxyproto_addrs *addrs,
    int trusted, const struct msg_head *h, const struct snap_route *r,
    struct ratelimit_result *res)
{
	struct clients_rate rate;
	struct clients_addr a;
	enum clients_verdict v;
	uint64_t wait_us;
	int nodelay;

	memset(res, 0, sizeof(*res));
	if (w->shm.base == NULL || w->shm.nclients == 0 || !ratelimit_policy(w, r, &rate, &nodelay) ||
	    ratelimit_client(w, ip, addrs, trusted, h, &a) == -1 ||
	    ratelimit_take(w, &a, r->id, &rate, &v, &wait_us) == -1)
		return;
	if (v == CLIENTS_REFUSE && w->cfg.rate_dry_run) {
		log_info("client %s: route %u: rate limit would refuse this request (dry run)",
		    ip, r->id);
		shm_add(&shm_route(w->stats, r->id)->rate_dry_run, 1);
		return;
	}
	if (v == CLIENTS_REFUSE) {
		log_debug("client %s: route %u: rate limit: 429", ip, r->id);
		shm_add(&shm_route(w->stats, r->id)->rate_limited, 1);
		res->v = RATELIMIT_REFUSE;
		res->retry_after_s = (uint32_t)((wait_us + 999999) / 1000000);
		if (res->retry_after_s == 0)
			res->retry_after_s = 1;
		return;
	}
	/* Dry run delays nothing either: it must change nothing a client sees. */
	if (!nodelay && !w->cfg.rate_dry_run)
		res->delay_ms = (uint32_t)((wait_us + 999) / 1000);
}

int
ratelimit_conn_open(struct worker *w, const char *ip, uint32_t *entry)
{
	struct clients_addr a;
	struct shm_client *e;
	uint64_t key;
	int tries, rc;

	*entry = RATELIMIT_NO_ENTRY;
	if (w->cfg.max_conns_per_ip == 0 || w->shm.base == NULL || w->shm.nclients == 0 ||
	    (uint32_t)w->index >= w->shm.nslots || clients_addr_parse(ip, strlen(ip), &a) == -1)
		return 0;
	key = clients_key(&w->shm, &a, 0);
	for (tries = 0; tries < 3; tries++) {
		if ((e = clients_get(&w->shm, key, util_now_us() / 1000)) == NULL)
			return 0;	/* a window full of open connections: not counted */
		rc = clients_conn_open(&w->shm, e, key, (uint32_t)w->index, w->cfg.max_conns_per_ip);
		if (rc == 0) {
			*entry = clients_index(&w->shm, e);
			return 0;
		}
		if (rc == -1) {
			log_debug("client %s: at max_connections_per_ip %u: closed", ip,
			    w->cfg.max_conns_per_ip);
			shm_add(&w->stats->conn_limited, 1);
			return -1;
		}
	}
	return 0;
}

void
ratelimit_conn_close(struct worker *w, uint32_t entry)
{
	if (entry == RATELIMIT_NO_ENTRY || w->shm.base == NULL || entry >= w->shm.nclients)
		return;
	clients_conn_close(clients_at(&w->shm, entry), (uint32_t)w->index);
}
