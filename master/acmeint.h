/*
 * Inside the master's ACME module (master/acmemaster.c: the child, challenges,
 * outcomes; master/acmequeue.c: the order table, the schedule, `cert
 * status|renew`): the shared context and what each file offers the other.
 */
#ifndef HALOYD_MASTER_ACMEINT_H
#define HALOYD_MASTER_ACMEINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "master/acmemaster.h"
#include "master/acmelease.h"
#include "master/proc.h"
#include "master/snapbuild.h"
#include "master/store.h"
#include "share/addr.h"
#include "share/evloop.h"
#include "share/hostname.h"
#include "share/msg.h"
#include "share/snap.h"

struct master;

#define ACME_NAMES_MAX 100		/* names in one order (Let's Encrypt's limit) */
#define ACME_ORDER_DEADLINE_MS (10 * 60000)	/* an order still running then: the child is stuck */

struct acme_chal {
	char token[MSG_A_TOKEN_MAX + 1];
	char keyauth[SNAP_CHAL_KEYAUTH_MAX + 1];
};

/*
 * Shared store: the other nodes' running orders' answers (acmeshare.c),
 * read at each build on every node, whatever its own `acme` setting: the
 * CA may reach any node. m->acmeshare; NULL with SQLite.
 */
struct acmeshare {
	char node[STORE_NODE_NAME_MAX + 1];	/* this node's own rows are not read */
	struct acme_chal chals[SNAP_CHAL_MAX];
	uint32_t nchals;
	struct acme_alpn_cert alpn[ACME_NAMES_MAX];
	uint32_t nalpn;
	/* The views handed to the builds when this node runs no ACME module. */
	struct snapb_chal snapchals[SNAP_CHAL_MAX];
	struct acme_alpn_cert alpnview[ACME_NAMES_MAX];
};

/* The order the child works on: at most one. */
struct acme_run {
	uint64_t id;		/* 0: none */
	int64_t route_id;
	int chal;		/* enum msg_a_chal */
	char profile[MSG_A_PROFILE_MAX + 1];	/* asked for, or "" */
	size_t nnames;
	char names[ACME_NAMES_MAX][HOSTNAME_MAX + 1];	/* canonical first */
	uint64_t started_ms;
	int waiting;		/* a CHAL_ADD waits for chal_gen to be served */
	uint32_t chal_gen;
	char chal_token[MSG_A_TOKEN_MAX + 1];
	int64_t chal_change;	/* shared store: every live node must serve this change first */
	int chal_late;		/* ... or ACMESHARE_WAIT_MS passed (logged) */
};

/* DNS-01's settings as the master read them at start (master/acmedns.c). */
struct acme_dns {
	int on;
	char server[ADDR_STR_MAX];	/* "ip:port" */
	char zone[MSG_A_DNS_STR_MAX + 1];
	char keyname[MSG_A_DNS_STR_MAX + 1];
	char secret[MSG_A_DNS_STR_MAX + 1];	/* base64, as in the key file */
	uint16_t ns_port;			/* dns_ns_port */
	uint32_t wait_ms;			/* dns_propagation_timeout */
};

struct acme_peer {
	struct master *m;
	struct proc proc;		/* the child: master/proc.h */
	struct ev_timer tick;		/* looks for a due order */
	struct ev_timer deadline;	/* the running order's */
	struct ev_timer lease_timer;	/* renews the running order's lease */
	struct acmelease lease;		/* held while an order runs (master/acmelease.h) */
	uint64_t next_id;
	struct acme_run run;
	char thumbprint[MSG_A_THUMBPRINT_LEN + 1];	/* the child's account, "" until it says */
	struct acme_chal chals[SNAP_CHAL_MAX];
	struct snapb_chal snapchals[SNAP_CHAL_MAX];
	uint32_t nchals;
	struct acme_alpn_cert alpn[ACME_NAMES_MAX];	/* TLS-ALPN-01 certificates in the keyring */
	uint32_t nalpn;
	struct acme_alpn_cert alpnview[2 * ACME_NAMES_MAX];	/* ours then theirs, for the keyring */
	struct ev_timer chal_wait;	/* bounds the wait for the other nodes */
	const struct acmeshare_nodes *nodes;
	uint32_t chal_wait_ms;
	int64_t ari_route;	/* a MSG_A_ARI_REQ waits for this route's answer; 0: none */
	int64_t ari_off_until;	/* the CA said it has no ARI: no request before this (unix s) */
	struct acme_dns dns;
};

/* --- acmequeue.c */

/*
 * Why name gets no certificate with the route's challenge chal (enum
 * store_challenge; -1: an alias of an order whose type is not DNS-01), or
 * NULL: acme_name_refusal, except that a wildcard may have one by DNS-01.
 */
const char *acmeq_refusal(const struct acme_peer *a, const char *name, int chal);

/* 1 when the n names of a (any order) are the k sorted names of b. */
int acmeq_names_equal(char *const *a, size_t n, char *const *b, size_t k);
/* Seconds to wait after the attempts-th failed attempt: doubling, jittered, capped, >= retry_after. */
int64_t acmeq_backoff_s(const struct master *m, int64_t attempts, uint64_t retry_after);
/* Looks for a due order after ms. */
void acmeq_tick_soon(struct acme_peer *a, uint64_t ms);
void acmeq_tick_fire(struct ev_loop *l, struct ev_timer *t);

struct store_cert;
struct store_order;
/* When the certificate is due: inside the ARI window when the CA gave one, else by its lifetime. */
int64_t acmeq_renew_at(const struct master *m, const struct store_cert *sc,
    const struct store_order *row);
/* The stored ARI answer: draws the renewal time inside a new window (acmequeue.c). */
void acmeq_ari_result(struct acme_peer *a, int64_t route_id, int status, const char *id,
    int64_t start, int64_t end, uint32_t retry_after);
/* The renewal time drawn uniformly in [start, end] (now when the window is past). */
int64_t acmeq_ari_pick(int64_t start, int64_t end, int64_t now);

/* --- acmealpn.c */

/*
 * Checks a TLS-ALPN-01 challenge certificate: one self-signed certificate
 * whose only subjectAltName is host, with the critical acmeIdentifier
 * extension of keyauth, key matching, and not the account key (its RFC
 * 7638 thumbprint). 0, or -1 with the reason in err.
 */
int acmealpn_check(const char *host, const char *keyauth, const char *cert, const char *key,
    const char *account_thumbprint, char *err, size_t errlen);

/* --- acmedns.c */

struct conf;
/* Reads dns_update_server and the dns_tsig_key file (refused when others may read it). */
int acmedns_load(const struct conf *cf, struct acme_dns *d);
/* `key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`; 0, or -1 with why in err. */
int acmedns_parse_key(const char *text, struct acme_dns *d, char *err, size_t errlen);
/* MSG_A_DNS to the child, when DNS-01 is configured. */
int acmedns_send(struct acme_peer *a);

/* --- acmeshare.c */

#define ACMESHARE_WAIT_MS 10000	/* as long as haloyd-ctl waits for the other nodes */

/* What the wait knows of the other nodes: master/cluster.c's; a fake in the unit tests. */
struct acmeshare_nodes {
	int64_t (*want)(const struct master *m);	/* our last change's number; 0: none */
	int (*served)(const struct master *m, int64_t n);	/* every live node serves n */
	void (*lagging)(const struct master *m, int64_t n, char *buf, size_t len);
};
extern const struct acmeshare_nodes acmeshare_cluster;


/* wait_ms: the bound of the wait for the other nodes (ACMESHARE_WAIT_MS). */
void acmeshare_init(struct acme_peer *a, const struct acmeshare_nodes *nodes, uint32_t wait_ms);
/* Writes an answer of the running order to a shared store; -1 (logged) when not saved. */
int acmeshare_put(struct acme_peer *a, const char *host, const char *token, const char *keyauth,
    const char *cert, const char *key);
/* Deletes this node's answers (and expired rows) from a shared store. */
void acmeshare_clear(struct acme_peer *a);
/* After an answer's publish: the change every live node must serve before CHAL_READY. */
void acmeshare_wait(struct acme_peer *a);
/* 1 when every live node serves it, or the wait's bound passed (logged once). */
int acmeshare_served(struct acme_peer *a);

/* --- acmeaccount.c */

/* MSG_A_ACCOUNT_STORE (acme_store) to the child on a shared store; nothing with SQLite. */
int acmeaccount_send(struct acme_peer *a);

/* --- acmemaster.c */

/* The order's lease was lost to another node: it ends without a word to the store. */
void acme_run_lost(struct acme_peer *a);

/* "acme DOMAIN: what detail" at prio, with HALOYD_DOMAIN as a journal field. */
void acme_run_log(const struct acme_run *r, int prio, const char *what, const char *detail);

#endif
