/*
 * The IPC message catalogue: every type and payload, defined once.
 * Fixed payloads are packed structs of fixed-width fields (same host, same
 * binary: the master fexecve's itself). Variable payloads are written with
 * wb_* and read with cur_* (share/cursor.h); their layout is described here.
 */
#ifndef HALOYD_MSG_H
#define HALOYD_MSG_H

#include <stdint.h>

#define HALOYD_PROTO_VERSION 2	/* 2: route add carries backend settings */

enum msg_role {
	ROLE_MASTER = 1,
	ROLE_WORKER,
	ROLE_ACME,
	ROLE_TUNNEL,
	ROLE_CTL,
};

enum msg_type {
	/* Both ways, first message on every channel. Payload: struct msg_hello. */
	MSG_HELLO = 1,

	/* master -> worker */
	MSG_W_LISTENER = 16,	/* fd: listening socket; struct msg_listener */
	MSG_W_SNAP,		/* fd: one image (share/snap.h) generation h.gen changed, or
				 * none; struct msg_snap. A generation is one or more of
				 * them, the last flagged: then the worker acks or nacks */
	MSG_W_STATUS_REQ,	/* h.seq; no payload */
	MSG_W_STOP,		/* graceful stop; struct msg_stop */
	MSG_W_CONFIG,		/* runtime knobs from haloyd.conf: struct msg_wconfig,
				 * ntrusted x struct addr_cidr (share/addr.h), str error_pages */
	MSG_W_KEYRING,		/* fd: sealed keyring memfd (share/keyring.h); h.gen; no payload */
	MSG_W_SHM,		/* fd: the shared region (share/shm.h), read-write; first after
				 * HELLO, the same region for every run of a worker index */
	MSG_W_ONDEMAND_NO,	/* str name: no certificate is coming for it (refused, failed,
				 * rate-limited): handshakes waiting for it go on now */

	/* worker -> master */
	MSG_W_ACK = 32,		/* h.gen now serves; no payload */
	MSG_W_NACK,		/* h.gen refused; payload: str reason */
	MSG_W_STATUS,		/* h.seq; struct msg_wstatus */
	MSG_W_ONDEMAND,		/* str name: a handshake's SNI no certificate covers
				 * (acme_on_demand); the handshake waits (worker/ondemand.c) */

	/* haloyd-ctl -> master. Payloads (cursor-encoded): */
	MSG_C_ROUTE_ADD = 64,	/* str name; u16 n; n x str alias; u16 m; m x str backend;
				 * u16 k; k x (str key; str value): route set's backend
				 * settings (proto, backend_*) */
	MSG_C_ROUTE_RM,		/* str name */
	MSG_C_ROUTE_LIST,	/* empty */
	MSG_C_ROUTE_SHOW,	/* str name */
	MSG_C_ALIAS_ADD,	/* str route; str alias */
	MSG_C_ALIAS_RM,		/* str route; str alias */
	MSG_C_BACKEND_ADD,	/* str route; str backend "ip:port" / "[ip6]:port" /
				 * "unix:/path" / "tunnel:NAME" (share/beaddr.h) */
	MSG_C_BACKEND_RM,	/* str route; str backend */
	MSG_C_STATUS,		/* empty */
	MSG_C_RELOAD,		/* empty */
	MSG_C_ROUTE_SET,	/* str name; u16 n; n x (str key; str value) — see haloyd-ctl(8) */
	MSG_C_CERT_IMPORT,	/* str domain; str chain PEM; str key PEM; u8 force (see TLS) */
	MSG_C_CERT_LIST,	/* empty */
	MSG_C_CERT_SHOW,	/* str domain */
	MSG_C_CERT_RM,		/* str domain */

	/* master -> haloyd-ctl */
	MSG_C_ROW = 96,		/* u16 nfields; nfields x field (below) */
	MSG_C_END,		/* after the last ROW; empty */
	MSG_C_OK,		/* h.gen = generation that every worker serves; str message */
	MSG_C_FAIL,		/* u32 code (enum ctl_code); str reason */

	/* master -> acme child (acme/acmechild.h). Payloads (cursor-encoded): */
	MSG_A_CONFIG = 128,	/* fd: STATE_DIR/acme (O_DIRECTORY); str directory URL;
				 * str email; str CA file */
	MSG_A_ORDER,		/* u64 order id; u16 n; n x str name (first: canonical);
				 * u8 challenge (enum msg_a_chal); str ARI id the new
				 * certificate replaces ("" none); str profile ("" none) */
	MSG_A_CHAL_READY,	/* u64 order id; str token: every live worker serves it */
	MSG_A_ARI_REQ,		/* u64 route id; str leaf PEM: fetch its ARI window */
	MSG_A_DNS,		/* str update server ADDR[:PORT]; str zone ("" = by SOA);
				 * str TSIG key name; str its secret (base64); u16 the
				 * NS set's port (0: the update server only); u32 ms the
				 * servers may lag (dns_propagation_timeout): DNS-01 */
	MSG_A_ASK,		/* u64 ask id; str acme_ask URL; str name: may name have a
				 * certificate? (on-demand TLS, acme/ask.c) */
	MSG_A_ACCOUNT_STORE,	/* str acme_store, the child's own connection string
				 * (<= MSG_A_STORE_MAX, no secret in it): the child reads
				 * the shared account key there (acme/account.c) */

	/* acme child -> master */
	MSG_A_CHAL_ADD = 144,	/* u64 order id; str host; str token; str key authorisation */
	MSG_A_CERT,		/* u64 order id; str chain PEM; str key PEM (PKCS#8);
				 * str the profile the order carried ("" none) */
	MSG_A_FAIL,		/* u64 order id; str error type; str detail; u32 retry-after s */
	MSG_A_ACCOUNT,		/* str the account key's JWK thumbprint (RFC 7638, 43 base64url):
				 * once, before the first CHAL_ADD; every key authorisation
				 * must end with it */
	MSG_A_CHAL_ALPN,	/* u64 order id; str host; str token; str key authorisation;
				 * str challenge certificate PEM; str its key PEM (RFC 8737) */
	MSG_A_ARI,		/* u64 route id; u8 enum msg_a_ari; str ARI id; i64 window
				 * start; i64 window end (unix s); u32 retry-after s */
	MSG_A_ASK_RESULT,	/* u64 ask id; u8 1 = allowed (HTTP 200), 0 = refused */

	/* haloyd-ctl -> master, ACME */
	MSG_C_CERT_STATUS = 160,	/* str domain, "" for every route */
	MSG_C_CERT_RENEW,		/* str domain */

	/* haloyd-ctl -> master, figures */
	MSG_C_STATS = 176,		/* empty; rows: metric, labels, value (master/stats.c) */
	MSG_C_TUNNEL_LIST,		/* empty; rows: one per attached tunnel (the tunnel process's) */
	MSG_C_CACHE_PURGE,		/* str URL or ""; str route name or "" (one of them):
					 * OK "N entries purged" */
	MSG_C_CACHE_STATS,		/* empty; one row: path, entries, bytes, max_bytes */
	MSG_C_CLUSTER_STATUS,		/* empty; rows: node, address, served, last_seen, state */

	/*
	 * master -> tunnel process (tunnel/): besides HELLO, W_CONFIG, W_KEYRING,
	 * W_LISTENER (LISTENER_TUNNEL, LISTENER_HOP), W_STATUS_REQ and W_STOP, as a
	 * worker:
	 */
	MSG_T_CONFIG = 192,	/* fd: sealed memfd: CA PEM, certificate chain PEM, key PEM
				 * back to back; struct msg_tconfig gives their lengths */
	MSG_T_LIST_REQ,		/* h.seq; no payload */
	MSG_T_START,		/* no payload; sent once, last after HELLO (after the
				 * listeners): everything is there, the process installs
				 * its seccomp filter (share/sandbox.h) and only serves */

	/* tunnel process -> master */
	MSG_T_LIST = 208,	/* h.seq; u16 n (<= MSG_T_LIST_MAX); n x (str name; str peer;
				 * str subject; u64 not_after (unix s); u64 since (unix s);
				 * u32 in-flight; u64 served; u32 last PING round trip (us),
				 * u32 state (0 attaching... see tunnel/tunlist.h)) */

	/* haloyd-ctl -> master, declarative configuration (master/apply.c) */
	MSG_C_EXPORT = 224,		/* empty; rows: "line" (a list of pieces of one line) */
	MSG_C_APPLY,			/* u8 enum msg_apply_flags; str the file's name (for
					 * messages); fd: a sealed memfd of the file's text.
					 * Rows of changes, then OK (or FAIL) */

	/* Upgrades and hand-over (master/handover.c, master/takeover.c) */
	MSG_C_UPGRADE = 240,		/* haloyd-ctl -> master, empty: start the new binary;
					 * OK once it serves, FAIL with one line otherwise */
	MSG_C_TAKEOVER,			/* new master -> old, empty: go read-only, send
					 * MSG_C_LISTENER each, then OK (FAIL: refused) */
	MSG_C_TAKEOVER_READY,		/* new master -> old, u32 pid: it serves; the old one
					 * answers OK, drains and exits */
	MSG_C_LISTENER,			/* old master -> new, fd: a listening socket;
					 * u32 enum msg_listener_kind; u32 worker index;
					 * str its address as configured (HANDOVER_ADDR_MAX) */
};

#define MSG_HANDOVER_ADDR_MAX 128	/* a listen address in MSG_C_LISTENER */

/*
 * MSG_C_APPLY's file: it travels as a sealed memfd, not in the 64 KiB
 * payload, so this bound is the file's own (1 000 routes take ~100 KiB).
 */
#define MSG_APPLY_FILE_MAX (16u << 20)

/* MSG_C_APPLY's flags. */
enum msg_apply_flags {
	MSG_APPLY_DRY_RUN = 1,	/* print the difference, change nothing */
	MSG_APPLY_PRUNE = 2,	/* remove the routes the file does not name */
};

/* MSG_A_ORDER's challenge type. */
enum msg_a_chal {
	MSG_A_CHAL_HTTP01 = 1,
	MSG_A_CHAL_TLSALPN01 = 2,
	MSG_A_CHAL_DNS01 = 3,
};

/* MSG_A_ARI's outcome. */
enum msg_a_ari {
	MSG_A_ARI_NONE = 0,	/* the directory has no renewalInfo: the lifetime rule stays */
	MSG_A_ARI_WINDOW = 1,	/* start, end and retry-after are the CA's */
	MSG_A_ARI_FAILED = 2,	/* asking failed; ask again after retry-after */
};

#define MSG_A_DNS_STR_MAX 256	/* each string of MSG_A_DNS */
#define MSG_A_TOKEN_MAX 128	/* longest HTTP-01 token the master accepts */
#define MSG_A_ARI_ID_MAX 190	/* base64url(AKI) "." base64url(serial), bounded */
#define MSG_A_PROFILE_MAX 63	/* a profile's name */
#define MSG_A_ALPN_CERT_MAX 4000	/* the challenge certificate's PEM */
#define MSG_A_THUMBPRINT_LEN 43	/* base64url of a SHA-256 */
#define MSG_A_CHAIN_MAX 56000	/* chain PEM in MSG_A_CERT */
#define MSG_A_KEY_MAX 8000	/* key PEM in MSG_A_CERT */
#define MSG_A_ACCOUNT_KEY_MAX 4096	/* the shared account key's PEM (acme_account's CHECK) */
#define MSG_A_STORE_MAX 1024	/* MSG_A_ACCOUNT_STORE's connection string */
#define MSG_A_ASK_URL_MAX 512	/* acme_ask's URL (master/conf.c checks it) */

/*
 * A ROW field: str key; u8 kind; then for FIELD_STR a str, for FIELD_INT a
 * u64 (signed, two's complement), for FIELD_LIST u16 n and n x str.
 * haloyd-ctl prints rows as a table or, with --json, as objects.
 */
enum msg_field_kind {
	FIELD_STR = 1,
	FIELD_INT = 2,
	FIELD_LIST = 3,
};

/*
 * Outcome codes: carried by MSG_C_FAIL and used as haloyd-ctl's exit codes
 * (documented in haloyd-ctl(8)).
 */
enum ctl_code {
	CTL_OK = 0,
	CTL_EFAIL = 1,		/* the daemon failed to do it (internal error) */
	CTL_EUSAGE = 2,		/* bad command line */
	CTL_ECONNECT = 3,	/* daemon not reachable */
	CTL_EPERM = 4,		/* permission denied: join the haloyd-admin group */
	CTL_ENOENT = 5,		/* no such route / alias / backend */
	CTL_EEXIST = 6,		/* the name or backend already exists */
	CTL_EINVAL = 7,		/* invalid host name, address or value */
	CTL_ETIMEDOUT = 8,	/* not every worker confirmed in time */
};

#define MSG_STR_MAX 1024	/* longest string in a control payload */
#define MSG_NAME_MAX 253	/* longest host name */
/*
 * MSG_C_CERT_IMPORT's PEM strings are the exception to MSG_STR_MAX: a
 * chain up to MSG_PEM_CHAIN_MAX bytes, a key up to MSG_PEM_KEY_MAX, so the
 * whole request fits haloyd-ctl's 32 KiB payload (and IPC_MAX_PAYLOAD).
 */
#define MSG_PEM_CHAIN_MAX 24576
#define MSG_PEM_KEY_MAX 7680
/*
 * A route's backend CA PEM (route add/set backend_ca): 32 KiB is a bundle of
 * about twenty CA certificates and, with the rest of a route add, still fits
 * one IPC message (IPC_MAX_PAYLOAD is 64 KiB for the whole request).
 */
#define MSG_PEM_CA_MAX 32768

struct msg_hello {
	uint32_t proto;		/* HALOYD_PROTO_VERSION */
	uint32_t role;		/* enum msg_role of the sender */
	uint32_t index;		/* worker instance, 0 otherwise */
	uint32_t pid;
};

enum msg_listener_kind {
	LISTENER_HTTP = 1,
	LISTENER_HTTPS = 2,
	LISTENER_TUNNEL = 3,	/* the tunnel process: agents dial in over mutual TLS */
	LISTENER_HOP = 4,	/* the tunnel process: RUNTIME_DIR/tunnel.sock, h2c from workers */
	LISTENER_METRICS = 5,	/* the master's listen_metrics: only in a hand-over */
};

/* MSG_T_CONFIG: what the tunnel process needs besides the workers' knobs. */
struct msg_tconfig {
	uint32_t ping_interval_ms;	/* PING an agent silent this long */
	uint32_t ping_timeout_ms;	/* then drop it without the ACK this long */
	uint32_t ca_len;		/* tunnel_ca_file's PEM, first in the memfd */
	uint32_t cert_len;		/* tunnel_cert's chain PEM, 0: none (the keyring's) */
	uint32_t key_len;		/* tunnel_key's PEM */
};

#define MSG_TCONFIG_FILE_MAX (256 * 1024)	/* each file the master reads for it */
#define MSG_T_LIST_MAX 64	/* rows in one MSG_T_LIST: each under 1 KiB, all in 64 KiB */
#define MSG_T_SUBJECT_MAX 256	/* a certificate subject in MSG_T_LIST */

struct msg_listener {
	uint32_t kind;		/* enum msg_listener_kind */
	uint32_t id;		/* stable across respawns */
	uint32_t proxy;		/* `listen_http ADDR proxy`: connections begin with a PROXY header */
};

enum msg_snap_flags {
	MSG_SNAP_LAST = 1 << 0,	/* the generation's last image: its set is complete */
};

/* One image a message: a respawned worker's whole set never meets SCM_RIGHTS' fd limit. */
struct msg_snap {
	uint32_t flags;		/* enum msg_snap_flags */
	uint32_t reserved;	/* 0 */
};

struct msg_stop {
	uint32_t deadline_ms;	/* let in-flight requests finish this long */
	uint32_t handover;	/* 1: an upgrade's drain: no idle HTTP/1.1 connection is closed
				 * at once; its next request is answered with a close */
};

struct msg_wconfig {
	uint32_t max_conns;	/* client connections per worker */
	uint32_t header_timeout_ms;
	uint32_t keepalive_timeout_ms;
	uint32_t connect_timeout_ms;
	uint32_t response_timeout_ms;
	uint32_t idle_timeout_ms;
	uint32_t access_log;	/* 0 off, 1 on */
	uint32_t upgrade_timeout_ms;
	uint32_t body_timeout_ms;	/* between two reads of a request body */
	uint32_t backend_down_ms;	/* passive health */
	uint64_t max_body;		/* bytes, 0 = no limit; routes may set their own */
	uint32_t access_log_sample;	/* log one request in N */
	uint32_t http2;			/* 0 off, 1: ALPN h2 on HTTPS, prior knowledge on plain */
	uint32_t h2_max_streams;	/* SETTINGS_MAX_CONCURRENT_STREAMS */
	uint32_t rate_rpm;		/* default rate limit per client and route, requests
					 * a minute; 0 = none (worker/ratelimit.c) */
	uint32_t rate_burst;		/* its burst */
	uint32_t rate_nodelay;		/* 1: requests within the burst pass at once */
	uint32_t rate_dry_run;		/* 1: log what would be refused, refuse nothing */
	uint32_t max_conns_per_ip;	/* concurrent connections per client address, 0 = no cap */
	uint32_t ondemand_wait_ms;	/* acme_on_demand_wait; 0 = on-demand TLS off */
	char tunnel_hop[108];		/* RUNTIME_DIR/tunnel.sock when listen_tunnel is set,
					 * else "": where tunnel backends are reached */
	uint64_t cache_max_size;	/* bytes of cached entries (worker/cachestore.c) */
	char cache_path[256];		/* the cache's LMDB folder, "" = no cache */
	uint32_t ntrusted;		/* trusted proxy blocks after this struct */
};

#define MSG_WCONFIG_TRUSTED_MAX 16
#define MSG_WCONFIG_MAX_LEN (sizeof(struct msg_wconfig) + MSG_WCONFIG_TRUSTED_MAX * 20 + 2 + MSG_STR_MAX)

struct msg_wstatus {
	uint64_t requests;	/* served since start */
	uint32_t connections;	/* open client connections */
	uint32_t gen;		/* generation in use */
};

#endif
