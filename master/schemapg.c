/*
 * The store's schema on PostgreSQL at version 16 (SCHEMAPG_BASE_VERSION),
 * in one script: the tables of master/schema.c's versions 1 to 16 as they
 * stand after them, in PostgreSQL's words. BIGSERIAL for SQLite's
 * AUTOINCREMENT (a sequence never hands an id out twice), BIGINT for
 * INTEGER (SQLite's integers are 64-bit), and COLLATE "C" on names so they
 * sort by bytes as in SQLite whatever the database's locale. Migrations
 * after 16 are master/schema.c's, shared by both engines.
 */
#include "config.h"

#include "master/schema.h"

#define ORDER_COLUMNS_PG \
	"  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'valid', 'failed'))," \
	"  names TEXT NOT NULL DEFAULT ''," \
	"  attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0)," \
	"  next_attempt BIGINT NOT NULL DEFAULT 0," \
	"  last_error TEXT," \
	"  force INTEGER NOT NULL DEFAULT 0 CHECK (force IN (0, 1))," \
	"  updated BIGINT NOT NULL CHECK (updated >= 0)," \
	"  ari_id TEXT," \
	"  ari_start BIGINT NOT NULL DEFAULT 0," \
	"  ari_end BIGINT NOT NULL DEFAULT 0 CHECK (ari_end >= ari_start)," \
	"  ari_renew_at BIGINT NOT NULL DEFAULT 0," \
	"  ari_next_poll BIGINT NOT NULL DEFAULT 0," \
	"  challenge TEXT," \
	"  profile TEXT"

#define NAME_PG(col) col " TEXT COLLATE \"C\" NOT NULL UNIQUE CHECK (length(" col ") BETWEEN 1 AND 253)"

const char schemapg_base[] =
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value BIGINT NOT NULL"
	");"
	"INSERT INTO meta(key, value) VALUES ('generation', 0);"
	"CREATE TABLE routes ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  " NAME_PG("name") ","
	"  created BIGINT NOT NULL CHECK (created >= 0),"
	"  connect_ms BIGINT CHECK (connect_ms IS NULL OR connect_ms > 0),"
	"  response_ms BIGINT CHECK (response_ms IS NULL OR response_ms > 0),"
	"  idle_ms BIGINT CHECK (idle_ms IS NULL OR idle_ms > 0),"
	"  max_body BIGINT CHECK (max_body IS NULL OR max_body >= 0),"
	"  upgrade_ms BIGINT CHECK (upgrade_ms IS NULL OR upgrade_ms BETWEEN 1 AND 4294967295),"
	"  flags BIGINT NOT NULL DEFAULT 0 CHECK (flags BETWEEN 0 AND 3),"
	"  proto TEXT NOT NULL DEFAULT 'http1' CHECK (proto IN ('http1', 'h2c', 'https', 'h2')),"
	"  backend_ca TEXT CHECK (backend_ca IS NULL OR"
	"    (length(backend_ca) BETWEEN 1 AND 32768 AND proto IN ('https', 'h2'))),"
	"  backend_sni TEXT CHECK (backend_sni IS NULL OR"
	"    (length(backend_sni) BETWEEN 1 AND 253 AND proto IN ('https', 'h2'))),"
	"  backend_verify INTEGER NOT NULL DEFAULT 1"
	"    CHECK (backend_verify = 1 OR (backend_verify = 0 AND proto IN ('https', 'h2'))),"
	"  compress INTEGER NOT NULL DEFAULT 0 CHECK (compress IN (0, 1)),"
	"  balance TEXT NOT NULL DEFAULT 'least-in-flight'"
	"    CHECK (balance IN ('least-in-flight', 'round-robin')),"
	"  challenge INTEGER CHECK (challenge IS NULL OR challenge IN (1, 2)),"
	"  rate_rpm BIGINT CHECK (rate_rpm IS NULL OR rate_rpm BETWEEN 0 AND 60000000),"
	"  rate_burst BIGINT CHECK (rate_burst IS NULL OR rate_burst BETWEEN 0 AND 1000000),"
	"  rate_nodelay INTEGER NOT NULL DEFAULT 0 CHECK (rate_nodelay IN (0, 1)),"
	"  backend_proxy_protocol INTEGER NOT NULL DEFAULT 0"
	"    CHECK (backend_proxy_protocol IN (0, 1, 2)),"
	"  cache INTEGER NOT NULL DEFAULT 0 CHECK (cache IN (0, 1)),"
	"  cache_debug INTEGER NOT NULL DEFAULT 0 CHECK (cache_debug IN (0, 1)),"
	"  cache_max_object BIGINT"
	"    CHECK (cache_max_object IS NULL OR cache_max_object BETWEEN 1 AND 1073741824),"
	"  strip_prefix INTEGER NOT NULL DEFAULT 0 CHECK (strip_prefix IN (0, 1)),"
	"  challenge_dns01 INTEGER NOT NULL DEFAULT 0 CHECK (challenge_dns01 IN (0, 1)),"
	"  health_path TEXT CHECK (health_path IS NULL OR (length(health_path) BETWEEN 1 AND 255"
	"    AND substr(health_path, 1, 1) = '/')),"
	"  health_interval_ms BIGINT"
	"    CHECK (health_interval_ms IS NULL OR health_interval_ms BETWEEN 100 AND 3600000),"
	"  health_timeout_ms BIGINT"
	"    CHECK (health_timeout_ms IS NULL OR health_timeout_ms BETWEEN 100 AND 3600000),"
	"  health_rise BIGINT CHECK (health_rise IS NULL OR health_rise BETWEEN 1 AND 100),"
	"  health_fall BIGINT CHECK (health_fall IS NULL OR health_fall BETWEEN 1 AND 100),"
	"  balance_lif INTEGER NOT NULL DEFAULT 0 CHECK (balance_lif IN (0, 1))"
	");"
	"CREATE TABLE hosts ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  " NAME_PG("name") ","
	"  route_id BIGINT NOT NULL REFERENCES routes(id) ON DELETE CASCADE,"
	"  kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),"
	"  CHECK ((kind = 3) = (substr(name, 1, 2) = '*.'))"
	");"
	"CREATE INDEX hosts_route ON hosts(route_id, name);"
	"CREATE TABLE backends ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  route_id BIGINT NOT NULL REFERENCES routes(id) ON DELETE CASCADE,"
	"  addr TEXT NOT NULL CHECK (length(addr) BETWEEN 1 AND 119),"
	"  position BIGINT NOT NULL CHECK (position >= 0),"
	"  UNIQUE (route_id, addr)"
	");"
	"CREATE UNIQUE INDEX backends_route_position ON backends(route_id, position);"
	"CREATE TABLE certs ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  domain TEXT COLLATE \"C\" UNIQUE"
	"    CHECK (domain IS NULL OR length(domain) BETWEEN 1 AND 253),"
	"  source INTEGER NOT NULL CHECK (source IN (1, 2, 3)),"
	"  chain_pem TEXT NOT NULL CHECK (length(chain_pem) > 0),"
	"  key_pem TEXT NOT NULL CHECK (length(key_pem) > 0),"
	"  not_before BIGINT NOT NULL,"
	"  not_after BIGINT NOT NULL CHECK (not_after >= not_before),"
	"  fingerprint TEXT NOT NULL CHECK (length(fingerprint) = 64),"
	"  issuer TEXT NOT NULL,"
	"  created BIGINT NOT NULL CHECK (created >= 0),"
	"  CHECK ((domain IS NULL) = (source = 3))"
	");"
	"CREATE UNIQUE INDEX certs_one_default ON certs(source) WHERE source = 3;"
	"CREATE TABLE cert_names ("
	"  cert_id BIGINT NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
	"  name TEXT COLLATE \"C\" NOT NULL CHECK (length(name) BETWEEN 1 AND 253),"
	"  PRIMARY KEY (cert_id, name)"
	");"
	"CREATE INDEX cert_names_name ON cert_names(name);"
	"CREATE TABLE acme_orders ("
	"  route_id BIGINT PRIMARY KEY REFERENCES routes(id) ON DELETE CASCADE,"
	ORDER_COLUMNS_PG
	");"
	"CREATE TABLE ondemand_names ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  " NAME_PG("name") ","
	"  added BIGINT NOT NULL CHECK (added >= 0)"
	");"
	"CREATE TABLE ondemand_orders ("
	"  name_id BIGINT PRIMARY KEY REFERENCES ondemand_names(id) ON DELETE CASCADE,"
	ORDER_COLUMNS_PG
	");";
