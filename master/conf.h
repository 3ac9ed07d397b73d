/*
 * haloyd.conf and its command-line overrides. Every setting has one name:
 * `listen_http` in the file is `--listen-http` on the command line, and the
 * command line wins (for a list, the command line's entries replace the
 * file's).
 */
#ifndef HALOYD_CONF_H
#define HALOYD_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_LIST_MAX 16

/* A repeatable setting: the command line's entries replace the file's. */
struct conf_list {
	char *v[CONFIG_LIST_MAX];
	size_t n;
	uint32_t proxy;		/* listen lists: bit i set by `ADDR proxy` (PROXY protocol) */
};

struct conf {
	char *config_file;
	int config_explicit;		/* -c given: a missing file is an error */
	struct conf_list listen_http;
	int no_listen_http;		/* `listen_http none`: no plain HTTP listener at all */
	struct conf_list listen_https;	/* TLS listeners; none by default */
	uint64_t ticket_key_lifetime_ms;	/* TLS session-ticket key rotation */
	uint64_t workers;
	char *state_dir;
	char *runtime_dir;
	char *user;
	char *admin_group;
	char *log_target;
	int access_log;
	uint64_t stop_timeout_ms;
	uint64_t upgrade_drain_ms;	/* old workers' time to finish after a hand-over */
	uint64_t header_timeout_ms;
	uint64_t keepalive_timeout_ms;
	uint64_t connect_timeout_ms;
	uint64_t response_timeout_ms;
	uint64_t idle_timeout_ms;
	uint64_t upgrade_timeout_ms;	/* upgraded connections (WebSocket): idle */
	uint64_t max_connections;
	uint64_t body_timeout_ms;	/* between two reads of a request body */
	uint64_t backend_down_ms;	/* passive health: a failed backend is skipped this long */
	uint64_t max_body;		/* bytes; 0 = no limit */
	uint64_t access_log_sample;	/* log one request in N */
	int http2;			/* HTTP/2: ALPN h2 on HTTPS, prior knowledge on plain */
	uint64_t h2_max_streams;	/* concurrent streams per HTTP/2 connection */
	struct conf_list trusted_proxies;	/* CIDRs whose X-Forwarded-For we extend */
	char *error_pages;		/* folder of NNN.html overriding the built-in pages */
	int acme;			/* certificates from an ACME CA for every route */
	char *acme_directory;		/* URL, or "production" / "staging" (Let's Encrypt) */
	char *acme_email;		/* account contact; "" for none */
	char *acme_ca_file;		/* extra CA bundle to reach the ACME server; "" for none */
	char *acme_user;		/* the ACME child's user when started as root */
	char *acme_profile;		/* certificate profile asked for in new orders; "" none */
	uint64_t acme_renew_before;	/* renew when this percentage of the lifetime remains */
	uint64_t acme_backoff_max_ms;	/* longest wait after failed orders */
	char *dns_update_server;	/* DNS-01: the zone's primary, ADDR[:PORT]; "" = no DNS-01 */
	char *dns_tsig_key;		/* DNS-01: BIND key file (root-only), read at start */
	char *dns_zone;			/* DNS-01: the zone; "" = found by SOA queries */
	uint64_t dns_ns_port;		/* DNS-01: the NS set's port; 0 = the update server only */
	uint64_t dns_propagation_timeout_ms;	/* DNS-01: how long the servers may lag */
	int acme_on_demand;		/* on-demand TLS: certificates for names first seen in SNI */
	char *acme_ask;			/* URL asked ?domain=NAME before such an order (200 = yes) */
	uint64_t acme_on_demand_rate;	/* asks (and so orders) a minute, all names together */
	uint64_t acme_on_demand_backoff_ms;	/* a refused or failed name is not asked again */
	uint64_t acme_on_demand_wait_ms;	/* the first handshake waits this long at most */
	uint64_t shared_memory_size;	/* bytes of the region shared with workers (share/shm.h) */
	char *cache_path;		/* the response cache's LMDB folder (default STATE_DIR/cache) */
	char *store;			/* PostgreSQL connection string; NULL: STATE_DIR/store.db */
	char *acme_store;		/* the ACME child's own connection to it (its role reads
					 * acme_account, the master's cannot); NULL with SQLite */
	uint64_t cache_max_size;	/* bytes of cached entries (worker/cachestore.c) */
	struct conf_list listen_metrics;	/* GET /metrics, served by the master (master/metrics.c) */
	char *listen_tunnel;		/* reverse tunnels' TLS listener (NULL: none, no tunnel process) */
	char *tunnel_ca_file;		/* CA bundle the agents' client certificates chain to */
	char *tunnel_cert;		/* the tunnel listener's certificate chain (NULL: the keyring's) */
	char *tunnel_key;
	uint64_t tunnel_ping_interval_ms;	/* PING a tunnel silent this long */
	uint64_t tunnel_ping_timeout_ms;	/* no ACK this long after: the tunnel is dropped */
	uint64_t rate_rpm;		/* default rate limit per client and route; 0 = none */
	uint64_t rate_burst;
	int rate_nodelay;
	int rate_dry_run;		/* log what the limits would refuse, refuse nothing */
	uint64_t max_conns_per_ip;	/* concurrent connections per client address; 0 = no cap */
	char *resolver;			/* DNS servers for backends by name; NULL: /etc/resolv.conf */
	uint64_t resolve_min_ttl_ms;	/* a name's answer is asked again after its TTL, */
	uint64_t resolve_max_ttl_ms;	/* bounded by these (master/dnsname.c) */
	int sandbox;			/* seccomp filters in the children (share/sandbox.c); off to debug */
	int verbose;
	int test_only;
	int takeover;			/* --takeover: ask the running master for its listeners */
	char renamed[160];		/* "old is now new" for the log, when an old name was used */			/* -t: check the configuration and exit */
};

/*
 * Fills cfg from defaults, the config file and argv (argv wins). On error
 * writes one line to err and returns -1; returns 1 when --help/--version
 * was printed and the program should exit 0. Called again with the same
 * argv on SIGHUP, into a fresh struct, so a bad file keeps the old one.
 */
int conf_load(struct conf *cfg, int argc, char **argv, char *err, size_t errlen);
void conf_free(struct conf *cfg);

/*
 * The range of the numeric setting name (file spelling, e.g.
 * "connect_timeout"), in its unit (ms, bytes), so per-route overrides
 * accept exactly what haloyd.conf does. 0, or -1 for no such setting.
 */
int conf_range(const char *name, uint64_t *min, uint64_t *max);

#endif
