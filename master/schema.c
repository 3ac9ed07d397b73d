/*
 * The store's schema: ordered migrations, each one SQL script applied in
 * one transaction that also sets the schema version to its number (SQLite:
 * PRAGMA user_version; PostgreSQL: the haloyd_schema table, under an
 * advisory lock, master/dbpg.c). Migrations are only ever appended; an
 * applied one is never edited. PostgreSQL starts at version 16 from one
 * script of its own (master/schemapg.c); later versions are shared.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>

#include "master/db.h"
#include "master/schema.h"
#include "master/store.h"
#include "share/log.h"
#include "share/util.h"

/*
 * migrations[i] brings the file from user_version i to i + 1.
 *
 * Version 1: routes, their host names, their backends, and the generation
 * counter. A route's canonical name is also a hosts row (so one UNIQUE index
 * makes every name belong to one route); hosts.kind is enum snap_host_kind
 * (1 canonical, 2 alias, 3 wildcard "*.x"). The routes settings columns are
 * NULL until a later version uses them ("use the configured default").
 * Ids are AUTOINCREMENT so one is never reused: workers key long-lived state
 * (upstream pools, health) by them, and a new backend must not inherit the
 * state of a removed one that happened to have the highest id.
 */
static const char *const migrations[] = {
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL"
	");"
	"INSERT INTO meta(key, value) VALUES ('generation', 0);"
	"CREATE TABLE routes ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 253),"
	"  created INTEGER NOT NULL CHECK (created >= 0),"
	"  connect_ms INTEGER CHECK (connect_ms IS NULL OR connect_ms > 0),"
	"  response_ms INTEGER CHECK (response_ms IS NULL OR response_ms > 0),"
	"  idle_ms INTEGER CHECK (idle_ms IS NULL OR idle_ms > 0),"
	"  max_body INTEGER CHECK (max_body IS NULL OR max_body >= 0)"
	");"
	"CREATE TABLE hosts ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 253),"
	"  route_id INTEGER NOT NULL REFERENCES routes(id) ON DELETE CASCADE,"
	"  kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),"
	"  CHECK ((kind = 3) = (substr(name, 1, 2) = '*.'))"
	");"
	/* The foreign key's index, and foreach's order (route, then name). */
	"CREATE INDEX hosts_route ON hosts(route_id, name);"
	"CREATE TABLE backends ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  route_id INTEGER NOT NULL REFERENCES routes(id) ON DELETE CASCADE,"
	"  addr TEXT NOT NULL CHECK (length(addr) BETWEEN 1 AND 63),"
	"  position INTEGER NOT NULL CHECK (position >= 0),"
	"  UNIQUE (route_id, addr)"
	");"
	"CREATE UNIQUE INDEX backends_route_position ON backends(route_id, position);",

	/*
	 * Version 2: the rest of the per-route settings (haloyd-ctl route set).
	 * tunnel_ms is NULL for "haloyd.conf's value"; its bound is the u32 of
	 * the snapshot. flags holds enum snap_route_flags bits (1: no redirect
	 * to HTTPS, 2: HSTS); both off is the built-in behaviour.
	 */
	"ALTER TABLE routes ADD COLUMN tunnel_ms INTEGER"
	"  CHECK (tunnel_ms IS NULL OR tunnel_ms BETWEEN 1 AND 4294967295);"
	"ALTER TABLE routes ADD COLUMN flags INTEGER NOT NULL DEFAULT 0"
	"  CHECK (flags BETWEEN 0 AND 3);",

	/*
	 * Version 3: TLS certificates and the names each covers. source is
	 * enum keyring_source (1 imported, 2 acme, 3 the self-signed default);
	 * domain is the name it was imported or issued for (the key of
	 * `cert show/rm`), NULL only for the default, of which there is one.
	 * Key PEMs live here and nowhere else on disk (the file is 0600).
	 */
	"CREATE TABLE certs ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  domain TEXT UNIQUE CHECK (domain IS NULL OR length(domain) BETWEEN 1 AND 253),"
	"  source INTEGER NOT NULL CHECK (source IN (1, 2, 3)),"
	"  chain_pem TEXT NOT NULL CHECK (length(chain_pem) > 0),"
	"  key_pem TEXT NOT NULL CHECK (length(key_pem) > 0),"
	"  not_before INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL CHECK (not_after >= not_before),"
	"  fingerprint TEXT NOT NULL CHECK (length(fingerprint) = 64),"
	"  issuer TEXT NOT NULL,"
	"  created INTEGER NOT NULL CHECK (created >= 0),"
	"  CHECK ((domain IS NULL) = (source = 3))"
	");"
	"CREATE UNIQUE INDEX certs_one_default ON certs(source) WHERE source = 3;"
	"CREATE TABLE cert_names ("
	"  cert_id INTEGER NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 253),"
	"  PRIMARY KEY (cert_id, name)"
	") WITHOUT ROWID;"
	"CREATE INDEX cert_names_name ON cert_names(name);",

	/*
	 * Version 4: the ACME order queue and schedule, one row per route
	 * (master/acmemaster.c). state is 'queued' (due, waiting for the child),
	 * 'running', 'valid' (its certificate is in certs) or 'failed' (retried
	 * at next_attempt, unix seconds, with back-off); names is the space-
	 * separated list last ordered; force is set by `haloyd-ctl cert renew`.
	 */
	"CREATE TABLE acme_orders ("
	"  route_id INTEGER PRIMARY KEY REFERENCES routes(id) ON DELETE CASCADE,"
	"  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'valid', 'failed')),"
	"  names TEXT NOT NULL DEFAULT '',"
	"  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
	"  next_attempt INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  force INTEGER NOT NULL DEFAULT 0 CHECK (force IN (0, 1)),"
	"  updated INTEGER NOT NULL CHECK (updated >= 0)"
	");",

	/*
	 * Version 5: a route's WebSocket/upgrade idle timeout is upgrade_ms:
	 * "tunnel" now names reverse-HTTP tunnels only. Its CHECK follows the
	 * column (SQLite 3.25+ renames it there too).
	 */
	"ALTER TABLE routes RENAME COLUMN tunnel_ms TO upgrade_ms;",

	/*
	 * Version 6: how a route's backends are spoken to (haloyd-ctl --proto;
	 * the words of snap_proto_name) and its TLS toward them: the CA PEM
	 * (NULL: the system roots; the master re-encodes it, bounded by
	 * MSG_PEM_CA_MAX), the server name sent and checked (NULL: none, the
	 * backend's address is checked) and whether the certificate is
	 * verified at all. TLS settings exist only on a TLS protocol.
	 */
	"ALTER TABLE routes ADD COLUMN proto TEXT NOT NULL DEFAULT 'http1'"
	"  CHECK (proto IN ('http1', 'h2c', 'https', 'h2'));"
	"ALTER TABLE routes ADD COLUMN backend_ca TEXT"
	"  CHECK (backend_ca IS NULL OR"
	"    (length(backend_ca) BETWEEN 1 AND 32768 AND proto IN ('https', 'h2')));"
	"ALTER TABLE routes ADD COLUMN backend_sni TEXT"
	"  CHECK (backend_sni IS NULL OR"
	"    (length(backend_sni) BETWEEN 1 AND 253 AND proto IN ('https', 'h2')));"
	"ALTER TABLE routes ADD COLUMN backend_verify INTEGER NOT NULL DEFAULT 1"
	"  CHECK (backend_verify = 1 OR (backend_verify = 0 AND proto IN ('https', 'h2')));",

	/*
	 * Version 7: on-the-fly response compression per route (route set
	 * --compress). A column of its own, as backend_verify, because the
	 * flags column's CHECK refuses bits it does not know.
	 */
	"ALTER TABLE routes ADD COLUMN compress INTEGER NOT NULL DEFAULT 0"
	"  CHECK (compress IN (0, 1));",

	/*
	 * Version 8: backends that are not IP:PORT (share/beaddr.h):
	 * "unix:/path" (a path of up to 107 bytes) and "tunnel:NAME", so addr
	 * takes up to 112 bytes. SQLite cannot change a CHECK in place: the
	 * table is rebuilt with the same rows and ids, and its AUTOINCREMENT
	 * counter is carried over first (DROP TABLE deletes the old table's
	 * sqlite_sequence row and ALTER TABLE RENAME renames the new one), so
	 * an id is still never reused. Routes get the balance setting among
	 * the agents of a tunnel (route set --balance): its own column, as
	 * compress, since the flags column refuses bits it does not know.
	 */
	"CREATE TABLE backends_v8 ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  route_id INTEGER NOT NULL REFERENCES routes(id) ON DELETE CASCADE,"
	"  addr TEXT NOT NULL CHECK (length(addr) BETWEEN 1 AND 119),"
	"  position INTEGER NOT NULL CHECK (position >= 0),"
	"  UNIQUE (route_id, addr)"
	");"
	"INSERT INTO backends_v8(id, route_id, addr, position)"
	"  SELECT id, route_id, addr, position FROM backends;"
	"DELETE FROM sqlite_sequence WHERE name = 'backends_v8';"
	"UPDATE sqlite_sequence SET name = 'backends_v8' WHERE name = 'backends';"
	"DROP TABLE backends;"
	"ALTER TABLE backends_v8 RENAME TO backends;"
	"CREATE UNIQUE INDEX backends_route_position ON backends(route_id, position);"
	"ALTER TABLE routes ADD COLUMN balance TEXT NOT NULL DEFAULT 'least-in-flight'"
	"  CHECK (balance IN ('least-in-flight', 'round-robin'));",

	/*
	 * Version 9: ACME beyond HTTP-01 (issue 19). routes.challenge is the
	 * route's challenge type (route set --challenge; enum store_challenge:
	 * 1 http-01, 2 tls-alpn-01; NULL: chosen from the listeners). On
	 * acme_orders: the ARI state of the route's certificate (RFC 9773:
	 * its ARI id, the CA's suggested window, the renewal time drawn inside
	 * it and the next poll, unix seconds, 0 = none) and what the last
	 * issued certificate was ordered with (challenge type, profile).
	 */
	"ALTER TABLE routes ADD COLUMN challenge INTEGER"
	"  CHECK (challenge IS NULL OR challenge IN (1, 2));"
	"ALTER TABLE acme_orders ADD COLUMN ari_id TEXT;"
	"ALTER TABLE acme_orders ADD COLUMN ari_start INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE acme_orders ADD COLUMN ari_end INTEGER NOT NULL DEFAULT 0"
	"  CHECK (ari_end >= ari_start);"
	"ALTER TABLE acme_orders ADD COLUMN ari_renew_at INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE acme_orders ADD COLUMN ari_next_poll INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE acme_orders ADD COLUMN challenge TEXT;"
	"ALTER TABLE acme_orders ADD COLUMN profile TEXT;",

	/*
	 * Version 10: rate limits per client (route set --rate --burst
	 * --nodelay). rate_rpm is requests a minute (10r/s is 600), 0 for
	 * "off", NULL for haloyd.conf's rate_limit; the bounds are the
	 * snapshot's (SNAP_RATE_RPM_MAX, SNAP_RATE_BURST_MAX).
	 */
	"ALTER TABLE routes ADD COLUMN rate_rpm INTEGER"
	"  CHECK (rate_rpm IS NULL OR rate_rpm BETWEEN 0 AND 60000000);"
	"ALTER TABLE routes ADD COLUMN rate_burst INTEGER"
	"  CHECK (rate_burst IS NULL OR rate_burst BETWEEN 0 AND 1000000);"
	"ALTER TABLE routes ADD COLUMN rate_nodelay INTEGER NOT NULL DEFAULT 0"
	"  CHECK (rate_nodelay IN (0, 1));",

	/*
	 * Version 11: the PROXY protocol toward a route's backends (route set
	 * --backend-proxy-protocol v1|v2|off): 0 off, 1 version 1, 2 version 2.
	 */
	"ALTER TABLE routes ADD COLUMN backend_proxy_protocol INTEGER NOT NULL DEFAULT 0"
	"  CHECK (backend_proxy_protocol IN (0, 1, 2));",
	/*
	 * Version 12: the shared response cache per route (route set --cache
	 * --cache-max-object --cache-debug): its switch, the largest response
	 * stored (bytes, NULL = 10 MiB), and the X-Cache header's.
	 */
	"ALTER TABLE routes ADD COLUMN cache INTEGER NOT NULL DEFAULT 0"
	"  CHECK (cache IN (0, 1));"
	"ALTER TABLE routes ADD COLUMN cache_debug INTEGER NOT NULL DEFAULT 0"
	"  CHECK (cache_debug IN (0, 1));"
	"ALTER TABLE routes ADD COLUMN cache_max_object INTEGER"
	"  CHECK (cache_max_object IS NULL OR cache_max_object BETWEEN 1 AND 1073741824);",
	/*
	 * Version 13: path-prefix routes (haloyd issue 18 point 5). A prefix
	 * route is a routes row named "host/prefix" with no hosts row (its
	 * names are its host route's); strip_prefix is route set
	 * --strip-prefix (SNAP_ROUTE_STRIP_PREFIX).
	 */
	"ALTER TABLE routes ADD COLUMN strip_prefix INTEGER NOT NULL DEFAULT 0"
	"  CHECK (strip_prefix IN (0, 1));",
	/*
	 * Version 14: DNS-01 (issue 19 point 3). challenge_dns01 is 1 when the
	 * route's challenge is dns-01 (challenge is NULL then): version 9's
	 * CHECK on challenge cannot be widened in place, and rebuilding routes,
	 * which hosts, backends and acme_orders reference, for one more value
	 * is a bigger migration than one more column.
	 */
	"ALTER TABLE routes ADD COLUMN challenge_dns01 INTEGER NOT NULL DEFAULT 0"
	"  CHECK (challenge_dns01 IN (0, 1));",
	/*
	 * Version 15: on-demand TLS (haloyd.conf acme_on_demand). A name the
	 * acme_ask URL allowed, and its order row: the columns of
	 * acme_orders, keyed by the name instead of a route, so the schedule
	 * renews it like any route's certificate. Removing the name removes
	 * its row.
	 */
	"CREATE TABLE ondemand_names ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 253),"
	"  added INTEGER NOT NULL CHECK (added >= 0)"
	");"
	"CREATE TABLE ondemand_orders ("
	"  name_id INTEGER PRIMARY KEY REFERENCES ondemand_names(id) ON DELETE CASCADE,"
	"  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'valid', 'failed')),"
	"  names TEXT NOT NULL DEFAULT '',"
	"  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
	"  next_attempt INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  force INTEGER NOT NULL DEFAULT 0 CHECK (force IN (0, 1)),"
	"  updated INTEGER NOT NULL CHECK (updated >= 0),"
	"  ari_id TEXT,"
	"  ari_start INTEGER NOT NULL DEFAULT 0,"
	"  ari_end INTEGER NOT NULL DEFAULT 0 CHECK (ari_end >= ari_start),"
	"  ari_renew_at INTEGER NOT NULL DEFAULT 0,"
	"  ari_next_poll INTEGER NOT NULL DEFAULT 0,"
	"  challenge TEXT,"
	"  profile TEXT"
	");",
	/*
	 * Version 16: active health checks (route set --health-check PATH
	 * --health-interval --health-timeout --health-rise --health-fall;
	 * NULL: off, or the built-in 5s, 2s, 2, 3) and least-in-flight over
	 * address and unix backends: balance_lif is 1 when --balance
	 * least-in-flight was given, since the balance column's default
	 * (least-in-flight, among a tunnel's agents) leaves address backends
	 * round-robin.
	 */
	"ALTER TABLE routes ADD COLUMN health_path TEXT"
	"  CHECK (health_path IS NULL OR (length(health_path) BETWEEN 1 AND 255"
	"    AND substr(health_path, 1, 1) = '/'));"
	"ALTER TABLE routes ADD COLUMN health_interval_ms INTEGER"
	"  CHECK (health_interval_ms IS NULL OR health_interval_ms BETWEEN 100 AND 3600000);"
	"ALTER TABLE routes ADD COLUMN health_timeout_ms INTEGER"
	"  CHECK (health_timeout_ms IS NULL OR health_timeout_ms BETWEEN 100 AND 3600000);"
	"ALTER TABLE routes ADD COLUMN health_rise INTEGER"
	"  CHECK (health_rise IS NULL OR health_rise BETWEEN 1 AND 100);"
	"ALTER TABLE routes ADD COLUMN health_fall INTEGER"
	"  CHECK (health_fall IS NULL OR health_fall BETWEEN 1 AND 100);"
	"ALTER TABLE routes ADD COLUMN balance_lif INTEGER NOT NULL DEFAULT 0"
	"  CHECK (balance_lif IN (0, 1));",
	/*
	 * Version 17: several nodes on one PostgreSQL store (issue 20). The
	 * "changes" counter numbers committed changes (a node bumps it after
	 * one and notifies the others); nodes holds each node's heartbeat:
	 * its address, the change number its snapshot was built after, and
	 * when it last wrote (unix seconds). Unused, and empty, with SQLite.
	 */
	"INSERT INTO meta(key, value) VALUES ('changes', 0);"
	"CREATE TABLE nodes ("
	"  name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),"
	"  addr TEXT NOT NULL DEFAULT '' CHECK (length(addr) <= 64),"
	"  served BIGINT NOT NULL DEFAULT 0,"
	"  seen BIGINT NOT NULL DEFAULT 0"
	");",
	/*
	 * Version 18: leases for one-at-a-time work across nodes (issue 20):
	 * an ACME order per name, the ticket keys' rotation. token grows on
	 * every take-over (the fencing token); a released lease keeps its row
	 * with expires 0, so the next taker's token is still higher.
	 * ticket_keys holds the session-ticket keys of a shared store (slot 0
	 * current, 1 previous; name, HMAC and AES keys as 160 hex digits):
	 * secrets, written only under the "ticketkeys" lease. acme_account holds
	 * the ACME account key (PEM) the nodes share; the first node to need
	 * one adds it. Both empty with SQLite.
	 */
	"CREATE TABLE leases ("
	"  name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 300),"
	"  holder TEXT NOT NULL CHECK (length(holder) BETWEEN 1 AND 64),"
	"  expires BIGINT NOT NULL,"
	"  token BIGINT NOT NULL CHECK (token >= 1)"
	");"
	"CREATE TABLE ticket_keys ("
	"  slot BIGINT PRIMARY KEY CHECK (slot IN (0, 1)),"
	"  secret TEXT NOT NULL CHECK (length(secret) = 160),"
	"  not_after BIGINT NOT NULL"
	");"
	"CREATE TABLE acme_account ("
	"  id BIGINT PRIMARY KEY CHECK (id = 1),"
	"  key_pem TEXT NOT NULL CHECK (length(key_pem) BETWEEN 1 AND 4096)"
	");",
	/*
	 * Version 19: the challenge answers of the running ACME orders on a
	 * shared store (issue 20), so that every node serves them, whichever
	 * the CA reaches. One row per challenge token: HTTP-01's key
	 * authorisation or TLS-ALPN-01's certificate and its throw-away key
	 * (never the account key), written by the order's lease holder,
	 * deleted at the order's end; a row past expires (a node that died
	 * mid-order) is ignored. Empty with SQLite.
	 */
	"CREATE TABLE acme_challenges ("
	"  token TEXT PRIMARY KEY CHECK (length(token) BETWEEN 1 AND 128),"
	"  host TEXT NOT NULL CHECK (length(host) BETWEEN 1 AND 253),"
	"  keyauth TEXT NOT NULL CHECK (length(keyauth) BETWEEN 1 AND 256),"
	"  alpn_cert TEXT NOT NULL DEFAULT '' CHECK (length(alpn_cert) <= 4000),"
	"  alpn_key TEXT NOT NULL DEFAULT '' CHECK (length(alpn_key) <= 4000),"
	"  holder TEXT NOT NULL CHECK (length(holder) BETWEEN 1 AND 64),"
	"  expires BIGINT NOT NULL"
	");",
};

int
store_schema_version(void)
{
	return (int)ARRAY_LEN(migrations);
}

static int
exec(struct db *db, const char *sql, const char *what)
{
	if (db->ops->exec(db, sql) == -1) {
		log_warnx("store: %s: %s", what, db->ops->errmsg(db));
		return -1;
	}
	return 0;
}

/*
 * One step inside an open write transaction: applies the migration after
 * the store's version. Returns 1 when one was applied, 0 when the store is
 * current, -1 on error or a store newer than this code.
 */
static int
migrate_one(struct db *db)
{
	const char *sql;
	int v, to;

	if (db->ops->version_get(db, &v) == -1)
		return -1;
	if (v > store_schema_version() + SCHEMA_AHEAD_OK) {
		log_warnx("store (%s) has schema version %d but this haloyd knows only up to %d; "
		    "refusing to use it (was it written by a newer haloyd?)",
		    db->ops->name, v, store_schema_version());
		return -1;
	}
	/* A rollback: the newer version's migration only added columns with defaults. */
	if (v > store_schema_version())
		log_warnx("store (%s) has schema version %d, one after this haloyd's %d: used as is",
		    db->ops->name, v, store_schema_version());
	if (v >= store_schema_version())
		return 0;
	if (v < 0) {
		log_warnx("store: negative schema version %d", v);
		return -1;
	}
	sql = migrations[v];
	to = v + 1;
	if (db->ops->shared && v < SCHEMAPG_BASE_VERSION) {
		sql = schemapg_base;
		to = SCHEMAPG_BASE_VERSION;
	}
	if (exec(db, sql, "migration") == -1 || db->ops->version_set(db, to) == -1) {
		log_warnx("store: cannot migrate to schema version %d: %s", to, db->ops->errmsg(db));
		return -1;
	}
	log_info("store migrated to schema version %d", to);
	return 1;
}

int
schema_migrate(struct db *db)
{
	int rc;

	/*
	 * The version is read inside each write transaction, so two processes
	 * (or nodes) opening the same new store cannot both apply a migration.
	 */
	do {
		if (db->ops->migration_begin(db) == -1) {
			log_warnx("store: begin migration: %s", db->ops->errmsg(db));
			exec(db, "ROLLBACK", "rollback migration");
			return -1;
		}
		if ((rc = migrate_one(db)) == -1) {
			exec(db, "ROLLBACK", "rollback migration");
			return -1;
		}
		if (exec(db, "COMMIT", "commit migration") == -1) {
			exec(db, "ROLLBACK", "rollback migration");
			return -1;
		}
	} while (rc == 1);
	return 0;
}
