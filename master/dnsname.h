/*
 * Backends by DNS name ("HOST:PORT", share/beaddr.h): the master's table of
 * the names it follows, one entry per backend row. It asks a resolver (the
 * interface below: c-ares in master/dnsares.c, a fake in the unit tests)
 * for every address of each name, keeps the last good answer, re-asks on
 * the answer's TTL bounded to [min, max], gives each address a snapshot key
 * that stays while the address stays, and calls `changed` once per answer
 * that differs, so the master publishes one generation per change.
 */
#ifndef HALOYD_DNSNAME_H
#define HALOYD_DNSNAME_H

#include <stddef.h>
#include <stdint.h>

#include "share/hostname.h"

#define DNSNAME_ADDRS_MAX 16	/* addresses kept per name; more are dropped (logged) */
#define DNSNAME_NAMES_MAX 1024	/* names followed; more stay unresolved (logged) */
#define DNSNAME_INFLIGHT_MAX 64	/* lookups at once; the rest wait their turn */
#define DNSNAME_RETRY_MS 5000	/* after a failed lookup, within the TTL bounds */
#define DNSNAME_SERVERS_MAX 4	/* `resolver` addresses */
#define DNSNAME_ID_BASE 0x80000000u	/* address keys: apart from store ids (< 2^31) */
#define DNSNAME_DESCRIBE_MAX 1024	/* route show's text for one name */

struct ev_loop;

struct dnsname_addr {
	uint16_t family;	/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* 4 bytes used for AF_INET */
};

/* What one lookup gave: ok with addresses and the smallest TTL, or a reason. */
struct dnsname_answer {
	int ok;
	const struct dnsname_addr *addrs;
	size_t naddrs;
	uint32_t ttl_s;
	const char *err;	/* !ok: why ("no such name", "timeout", ...) */
};

/*
 * The resolver. lookup starts one lookup of name (A and AAAA, and the hosts
 * file); its answer comes back through dnsname_answer with the same token,
 * once, maybe before lookup returns. 0, or -1 when it could not start.
 */
struct dnsname_resolver_ops {
	int (*lookup)(void *impl, const char *name, uint64_t token);
};

enum dnsname_state {
	DNSNAME_UNRESOLVED = 0,	/* no good answer yet */
	DNSNAME_RESOLVED,	/* addrs holds the last good answer */
};

struct dnsname_entry {
	uint32_t backend_id;	/* store id of the backend row */
	uint16_t port;
	char name[HOSTNAME_MAX + 1];
	enum dnsname_state state;
	int failing;		/* the last lookup failed (logged once per change) */
	char reason[96];	/* of the last failure */
	uint64_t token;		/* of the lookup in flight, 0 = none */
	uint64_t due_ms;	/* loop time of the next lookup */
	uint64_t shards;	/* the snapshot shards whose last build named it (bit k) */
	size_t naddrs;
	struct dnsname_addr addrs[DNSNAME_ADDRS_MAX];	/* sorted */
	uint32_t ids[DNSNAME_ADDRS_MAX];		/* snapshot keys of addrs[i] */
};

typedef void dnsname_changed_fn(void *arg);

struct dnsname;

/* NULL when out of memory. changed(arg) runs after an answer that differs. */
struct dnsname *dnsname_new(struct ev_loop *loop, const struct dnsname_resolver_ops *ops,
    void *impl, dnsname_changed_fn *changed, void *arg);
void dnsname_free(struct dnsname *t);
/* TTL bounds in ms (haloyd.conf resolve_min_ttl / resolve_max_ttl). */
void dnsname_set_ttl_bounds(struct dnsname *t, uint64_t min_ms, uint64_t max_ms);
/* ttl_s clamped to the bounds, in ms. */
uint64_t dnsname_clamp_ttl(const struct dnsname *t, uint32_t ttl_s);

/*
 * A build of snapshot shard k begins: the names its last build named are
 * forgotten for it, and dnsname_want marks the ones this build names.
 */
void dnsname_shard_begin(struct dnsname *t, unsigned k);
/*
 * The entry of backend row backend_id ("name:port"), added if new (its
 * lookup started at once: an answer given inside it is in the entry, without
 * a change callback), and marked as named by the shard being built. NULL
 * when full.
 */
const struct dnsname_entry *dnsname_want(struct dnsname *t, uint32_t backend_id,
    const char *name, uint16_t port);
/* Drops the entries no shard's last build named (their rows are gone). */
void dnsname_sweep(struct dnsname *t);
/* The entry of a backend row, or NULL. */
const struct dnsname_entry *dnsname_find(const struct dnsname *t, uint32_t backend_id);
/* Starts the lookups due at now_ms; the ms until the next one is due (UINT64_MAX: none). */
uint64_t dnsname_run(struct dnsname *t, uint64_t now_ms);
/* Every name due at once (reload); lookups in flight are forgotten. */
void dnsname_refresh(struct dnsname *t);
/* The resolver's answer for token (ignored when its entry is gone or asked again). */
void dnsname_answer(struct dnsname *t, uint64_t token, const struct dnsname_answer *a);
/* Runs the due lookups now and arms the loop's timer for the next ones. */
void dnsname_kick(struct dnsname *t);
/* route show: "127.0.0.1:3000 [::1]:3000", or "unresolved" and why. */
void dnsname_describe(const struct dnsname_entry *e, char *buf, size_t len);

/*
 * `resolver ADDR[:PORT] ...` (spaces or commas between) as the CSV c-ares
 * takes ("1.2.3.4:53,[::1]:5353"); 0, or -1 with a reason.
 */
int dnsname_servers_csv(const char *in, char *out, size_t outlen, char *err, size_t errlen);

#endif
