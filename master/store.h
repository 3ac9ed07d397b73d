/*
 * The SQLite store (master only), the one place any SQL runs: routes, their
 * host names, backends and settings (master/store_routes.c), the
 * generation counter (master/store_meta.c), certificates
 * (master/store_certs.c) and the ACME order queue (master/store_acme.c);
 * the connection, statement cache and transactions are master/store.c's.
 * WAL mode, foreign keys on, migrations by PRAGMA user_version
 * (master/schema.c). Callers pass names already normalised
 * (share/hostname.h) and backends as canonical text ("ip:port",
 * "unix:/path", "tunnel:NAME": share/beaddr.h); the store enforces
 * uniqueness and existence.
 */
#ifndef HALOYD_STORE_H
#define HALOYD_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum store_rc {
	STORE_OK = 0,
	STORE_ERR = -1,		/* SQLite or I/O failure, logged */
	STORE_ENOENT = -2,	/* no such route / alias / backend */
	STORE_EEXIST = -3,	/* name already used by any route, or backend already on the route */
	STORE_EINVAL = -4,
	STORE_EFULL = -5,	/* the disk under the store is full (logged): nothing was written */	/* e.g. removing a route's canonical name as an alias */
	STORE_EDOWN = -6,	/* the shared store's server is unreachable (logged): nothing was written */
};

struct store;

#define STORE_DEFAULT (-1)	/* a setting left to haloyd.conf (NULL in the store) */

/* A route's own settings (haloyd-ctl route set). */
struct store_settings {
	int64_t connect_ms;	/* milliseconds, or STORE_DEFAULT */
	int64_t response_ms;
	int64_t idle_ms;
	int64_t upgrade_ms;
	int64_t max_body;	/* bytes, 0 = no limit, or STORE_DEFAULT */
	int64_t rate_rpm;	/* requests a minute per client, 0 = off, or STORE_DEFAULT */
	int64_t rate_burst;	/* with rate_rpm, or STORE_DEFAULT (0) */
	uint32_t flags;		/* enum snap_route_flags; 0 = the built-in behaviour
				 * (SNAP_ROUTE_BACKEND_NO_VERIFY is the backend_verify column) */
	uint16_t proto;		/* enum snap_proto; 0 = HTTP/1.1 */
	char *backend_ca;	/* PEM trust anchors, or NULL: the system roots */
	char *backend_sni;	/* server name toward backends, or NULL: none */
	uint16_t challenge;	/* enum store_challenge; 0 = chosen from the listeners */
	uint16_t backend_pp;	/* PROXY header to backends: 0 off, 1 v1, 2 v2 (schema 11) */
	int64_t cache_max_object;	/* bytes, or STORE_DEFAULT (10 MiB) */
	/* Active health checks (schema 16): path NULL = off; the rest STORE_DEFAULT (or 0). */
	char *health_path;
	int64_t health_interval_ms, health_timeout_ms, health_rise, health_fall;
};

/* A route's ACME challenge type (schema 9, route set --challenge). */
enum store_challenge {
	STORE_CHAL_AUTO = 0,
	STORE_CHAL_HTTP01 = 1,
	STORE_CHAL_TLSALPN01 = 2,
	STORE_CHAL_DNS01 = 3,	/* schema 11: column challenge_dns01 */
};

struct store_route {
	int64_t id;
	char *name;		/* canonical name */
	char **aliases;		/* other names (exact or "*.x"), sorted */
	int64_t *alias_ids;
	size_t naliases;
	char **backends;	/* canonical backend text in the order they were added */
	int64_t *backend_ids;
	size_t nbackends;
	int64_t name_id;	/* host row id of the canonical name */
	int64_t created;	/* unix seconds */
	struct store_settings set;
};

/*
 * Opens and migrates the store: where is a SQLite file (created mode 0600)
 * or a PostgreSQL connection string (store_is_postgresql).
 */
int store_open(const char *where, struct store **out);
/* 1 when where names a PostgreSQL server ("postgresql://" or "postgres://"). */
int store_is_postgresql(const char *where);
/* haloyd.conf's store: a PostgreSQL connection string we accept; -1 with one line in err. */
int store_conf_check(const char *where, char *err, size_t errlen);
/* The same checks for acme_store, whose passfile (if any) is uid's alone. */
int store_conf_check_for(const char *where, const char *what, uid_t uid, char *err,
    size_t errlen);
/*
 * haloyd -t: connects to the PostgreSQL store and checks its schema
 * version: 0, or -1 with one line in err; 1 with a warning in err when
 * this role may read acme_account (the ACME account key).
 */
int store_probe(const char *where, char *err, size_t errlen);
void store_close(struct store *st);
/* Read-only (1) or writable again (0), checked: the hand-over's guarantee. 0 or -1. */
int store_set_readonly(struct store *st, int on);
/* The schema version the code migrates to. */
int store_schema_version(void);

/* set: the new route's settings, or NULL for every default. */
int store_route_add(struct store *st, const char *name, const char *const *aliases,
    size_t naliases, const char *const *backends, size_t nbackends,
    const struct store_settings *set);
int store_route_rm(struct store *st, const char *name);
int store_alias_add(struct store *st, const char *route, const char *alias);
int store_alias_rm(struct store *st, const char *route, const char *alias);
int store_backend_add(struct store *st, const char *route, const char *addr);
int store_backend_rm(struct store *st, const char *route, const char *addr);
/*
 * Replaces every setting of route name with *set (read them first with
 * store_route_get to change a few). STORE_ENOENT for no such route,
 * STORE_EINVAL when a value breaks the schema's checks (e.g. a zero or
 * negative timeout, an unknown flag or protocol, backend TLS settings on a
 * plain protocol). The strings of set stay the caller's.
 */
int store_route_set(struct store *st, const char *name, const struct store_settings *set);

/* Fills *out (free with store_route_free); STORE_ENOENT when absent. */
int store_route_get(struct store *st, const char *name, struct store_route *out);
void store_route_free(struct store_route *r);
/*
 * Calls fn for every route ordered by name; stops and returns fn's value
 * when it is non-zero. r is only valid during the call. fn runs inside a
 * read transaction: it may read the store but must not change it.
 */
int store_route_foreach(struct store *st, int (*fn)(void *arg, const struct store_route *r),
    void *arg);
int64_t store_route_count(struct store *st);
/* How many prefix routes ("host/...") hang from route host, into *n. */
int store_route_prefixes(struct store *st, const char *host, int64_t *n);

/*
 * One transaction around many changes (haloyd-ctl apply): every change
 * between begin and end joins it instead of committing on its own; the
 * caller stops at the first change that fails, and end commits when rc is
 * STORE_OK, else rolls every change back. Returns the outcome.
 */
int store_batch_begin(struct store *st);
int store_batch_end(struct store *st, int rc);

/* Increments and returns the persisted generation counter (never goes back). */
int store_next_generation(struct store *st, uint64_t *gen);

/*
 * --- certificates (schema version 3). Private keys live only in this file
 * (0600, in the 0700 state folder) and in the keyring memfd built from it.
 */
struct store_cert {
	int64_t id;		/* AUTOINCREMENT: a replaced certificate gets a new id */
	char *domain;		/* the name it was imported or issued for; NULL for the default */
	int source;		/* enum keyring_source (share/keyring.h) */
	char **names;		/* normalised names it covers, sorted */
	size_t nnames;
	char *chain;		/* PEM, leaf first */
	char *key;		/* PEM private key; NULL unless asked for */
	char *issuer;		/* one line, RFC 2253 */
	char *fingerprint;	/* SHA-256 of the leaf's DER, 64 lower-case hex digits */
	int64_t not_before;	/* unix seconds */
	int64_t not_after;
	int64_t created;
};

/*
 * Stores c (c->id and c->created are ignored) in one transaction, replacing
 * the certificate of the same domain (or the default, for source
 * default) if there is one; *id gets the new id when not NULL.
 */
int store_cert_put(struct store *st, const struct store_cert *c, int64_t *id);
/* Removes the certificate imported or issued for domain; STORE_ENOENT when none. */
int store_cert_rm(struct store *st, const char *domain);
/*
 * Fills *out with the certificate of domain, or the default when domain is
 * NULL; the key only when with_key. STORE_ENOENT when absent. Free with
 * store_cert_free.
 */
int store_cert_get(struct store *st, const char *domain, int with_key, struct store_cert *out);
/*
 * Calls fn for every certificate by ascending id (the key only when
 * with_key); stops and returns fn's value when it is non-zero. c is only
 * valid during the call; fn must not change the store.
 */
int store_cert_foreach(struct store *st, int with_key,
    int (*fn)(void *arg, const struct store_cert *c), void *arg);
/* Frees c's strings, wiping the key first. */
void store_cert_free(struct store_cert *c);

/* --- the ACME order queue (schema version 4): one row per route */

#define STORE_ORDER_ERROR_MAX 600

struct store_order {
	char state[16];		/* queued, running, valid or failed */
	int64_t attempts;	/* failed attempts since the last success */
	int64_t next_attempt;	/* unix seconds; for a failed order, not before */
	int force;		/* haloyd-ctl cert renew */
	char last_error[STORE_ORDER_ERROR_MAX];
	/* Schema 8: ARI (RFC 9773) for the route's certificate; unix seconds, 0 = none. */
	char ari_id[200];	/* base64url(AKI keyIdentifier) "." base64url(serial), or "" */
	int64_t ari_start, ari_end;	/* the CA's suggested window */
	int64_t ari_renew_at;	/* drawn uniformly inside the window */
	int64_t ari_next_poll;	/* when to ask the CA again (its Retry-After) */
	char challenge[16];	/* what the current certificate was validated with, or "" */
	char profile[64];	/* the profile it was ordered with, or "" */
};

/*
 * The route's row: STORE_OK with *o filled, STORE_ENOENT (o zeroed) when it
 * has none. A negative route_id is -id of an on-demand name (ondemand_orders).
 */
int store_order_get(struct store *st, int64_t route_id, struct store_order *o);
/* Writes the whole row (names, space-separated, NULL to keep the stored ones). */
int store_order_put(struct store *st, int64_t route_id, const struct store_order *o,
    const char *names);
/*
 * Calls fn for the row of every route (only route's when not NULL) ordered
 * by route name; stops and returns fn's value when it is non-zero. fn must
 * not change the store.
 */
int store_order_foreach(struct store *st, const char *route,
    int (*fn)(void *arg, const char *route, const struct store_order *o), void *arg);

/* --- on-demand names (master/store_ondemand.c; haloyd.conf acme_on_demand) */

/* Adds name (normalised) if absent; *id gets its id either way. */
int store_ondemand_add(struct store *st, const char *name, int64_t *id);
/* STORE_OK with *id when name is an on-demand name, STORE_ENOENT when not. */
int store_ondemand_get(struct store *st, const char *name, int64_t *id);
/* Forgets an on-demand name and its order: STORE_OK, or STORE_ENOENT when it was not one. */
int store_ondemand_rm(struct store *st, const char *name);
/* STORE_OK when name is a route's name or alias (the hosts table), STORE_ENOENT when not. */
int store_host_exists(struct store *st, const char *name);
/* Calls fn for every on-demand name, by id; stops and returns fn's value when non-zero. */
int store_ondemand_foreach(struct store *st, int (*fn)(void *arg, int64_t id, const char *name),
    void *arg);

/*
 * --- the nodes sharing a PostgreSQL store (master/store_cluster.c; schema
 * 17). Changes are numbered by the "changes" counter: a node bumps it
 * after a committed change and notifies the others; each node records in
 * its heartbeat row the number its snapshot was built after.
 */
#define STORE_NODE_NAME_MAX 64
#define STORE_NODE_ADDR_MAX 64

/* This node's name: the connection string's application_name, else the host name. */
int store_node_name(const char *where, char *buf, size_t len);
/* 1 when other nodes share the store (PostgreSQL). */
int store_shared(struct store *st);
/* Increments and returns the change counter. */
int store_changes_bump(struct store *st, int64_t *changes);
int store_changes_get(struct store *st, int64_t *changes);
/* Writes this node's heartbeat row (seen: unix seconds). */
int store_node_beat(struct store *st, const char *name, const char *addr, int64_t served,
    int64_t seen);
/* Calls fn for every node row by name; stops and returns fn's value when non-zero. */
int store_node_foreach(struct store *st, int (*fn)(void *arg, const char *name,
    const char *addr, int64_t served, int64_t seen), void *arg);
/* The change channel: listen, notify, the socket to poll and the next payload. */
int store_notice_listen(struct store *st);
int store_notice_send(struct store *st, const char *payload);
/* 1 with a payload in buf, 0 for none, -1 when the connection is gone. */
int store_notice_next(struct store *st, char *buf, size_t len);
int store_notice_fd(struct store *st);
/*
 * Connects again after a failure, without blocking: start 1, then 0 each
 * time *fd is ready (for writing when *wr). 1 connected, 0 in progress,
 * -1 failed (logged by the caller).
 */
int store_reconnect(struct store *st, int start, int *fd, int *wr);

/*
 * Leases (master/store_lease.c, schema 18): work one node does at a time.
 * A lease is free, expired (expires <= now) or held; every take-over gives
 * a higher token, and writes made under a lease check it (fencing).
 */
#define STORE_LEASE_NAME_MAX 300
struct store_lease {
	char holder[STORE_NODE_NAME_MAX + 1];
	int64_t expires;	/* unix seconds; 0: released */
	int64_t token;
};
/*
 * Takes name for holder until expires when it is free, expired or already
 * holder's; *out is the row after (its holder says who has it). STORE_OK.
 */
int store_lease_take(struct store *st, const char *name, const char *holder, int64_t now,
    int64_t expires, struct store_lease *out);
/* Moves the expiry of holder's lease with token: STORE_ENOENT when it was taken over. */
int store_lease_renew(struct store *st, const char *name, const char *holder, int64_t token,
    int64_t expires);
/* Frees it at once (expires 0): STORE_ENOENT when it was taken over. */
int store_lease_release(struct store *st, const char *name, const char *holder, int64_t token);
/* STORE_OK when token is name's current one and holder's, STORE_ENOENT when not. */
int store_lease_current(struct store *st, const char *name, const char *holder, int64_t token);
/* store_cert_put in the same transaction as the check of the lease: STORE_ENOENT when stale. */
int store_lease_cert_put(struct store *st, const char *name, const char *holder, int64_t token,
    const struct store_cert *c);

/*
 * The session-ticket keys of a shared store (master/store_tickets.c, schema
 * 18): slot 0 current, 1 previous. Secrets: never logged.
 */
#define STORE_TICKET_SECRET_LEN 160	/* hex digits: name, HMAC key, AES key */
struct store_ticket_key {
	char secret[STORE_TICKET_SECRET_LEN + 1];
	int64_t not_after;
};
/* Up to 2 keys, slot order, into k; *n how many (0: none yet). */
int store_ticket_keys_get(struct store *st, struct store_ticket_key *k, int *n);
/* Replaces them, only while lease (holder, token) is current: STORE_ENOENT when stale. */
int store_ticket_keys_put(struct store *st, const char *lease, const char *holder, int64_t token,
    const struct store_ticket_key *k, int n);

/*
 * The running orders' challenge answers on a shared store
 * (master/store_chal.c, schema 19), so that every node serves them. A row
 * is written only under the order's lease and read back only when within
 * these bounds and not expired. keyauth is "TOKEN.THUMBPRINT"; cert and key
 * (TLS-ALPN-01's, PEM) are "" for HTTP-01.
 */
#define STORE_CHAL_TOKEN_MAX 128
#define STORE_CHAL_KEYAUTH_MAX 256
#define STORE_CHAL_PEM_MAX 4000
struct store_chal {
	const char *token, *host, *keyauth, *cert, *key, *holder;
};
/* Adds (or replaces) c until expires, while lease (holder, token) is current: STORE_ENOENT when stale. */
int store_chal_put(struct store *st, const char *lease, int64_t lease_token,
    const struct store_chal *c, int64_t expires);
/* Deletes holder's rows, and every row expired at now. */
int store_chal_clear(struct store *st, const char *holder, int64_t now);
/* Calls fn for each row not expired at now, by token; a row out of bounds is skipped (logged). */
int store_chal_foreach(struct store *st, int64_t now,
    int (*fn)(void *arg, const struct store_chal *c), void *arg);

#endif
