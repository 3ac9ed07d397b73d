/*
 * The store's routes: the routes table with its settings, the host names
 * of each (hosts) and its backends; changes in one transaction each, and
 * the cursor that reads whole routes back.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "master/store.h"
#include "master/storeint.h"
#include "share/log.h"
#include "share/snap.h"

enum routes_stmt {
	S_ROUTE_ID,
	S_ROUTE_INS,
	S_ROUTE_DEL,
	S_ROUTE_COUNT,
	S_ROUTE_SET,
	S_HOST_INS,
	S_HOST_DEL,
	S_BE_INS,
	S_BE_DEL,
	S_ALL_HOSTS,
	S_ALL_BACKENDS,
	S_ONE_HOSTS,
	S_ONE_BACKENDS,
	S_PREFIX_COUNT,
};

/*
 * The read queries come in pairs, both ordered by route name: one row per
 * host name (LEFT JOIN, so a route without hosts still shows) and one per
 * backend. The cursor below merges them, so listing every route costs two
 * queries whatever the number of routes.
 */
#define HOSTS_SELECT \
	"SELECT r.id, r.name, r.created, h.id, h.name, r.connect_ms, r.response_ms, " \
	"r.idle_ms, r.upgrade_ms, r.max_body, r.flags, r.proto, r.backend_ca, r.backend_sni, " \
	"r.backend_verify, r.compress, r.balance, r.challenge, r.rate_rpm, r.rate_burst, " \
	"r.rate_nodelay, r.backend_proxy_protocol, r.cache, r.cache_max_object, r.cache_debug, " \
	"r.strip_prefix, r.challenge_dns01, r.health_path, r.health_interval_ms, " \
	"r.health_timeout_ms, r.health_rise, r.health_fall, r.balance_lif " \
	"FROM routes r LEFT JOIN hosts h ON h.route_id = r.id "
#define BACKENDS_SELECT \
	"SELECT b.route_id, b.id, b.addr " \
	"FROM routes r JOIN backends b ON b.route_id = r.id "

const char *const store_routes_sql[] = {
	[S_ROUTE_ID] = "SELECT id FROM routes WHERE name = ?1",
	[S_ROUTE_INS] = "INSERT INTO routes(name, created) VALUES (?1, ?2)",
	[S_ROUTE_DEL] = "DELETE FROM routes WHERE name = ?1",
	[S_ROUTE_COUNT] = "SELECT count(*) FROM routes",
	/* -1 is STORE_DEFAULT: the setting goes back to NULL. */
	/*
	 * The no-verify and compress flags are columns of their own
	 * (backend_verify, compress), so the flags column still refuses a bit
	 * it does not know.
	 */
	[S_ROUTE_SET] = "UPDATE routes SET proto = ?8, connect_ms = nullif(?2, -1), "
	    "response_ms = nullif(?3, -1), idle_ms = nullif(?4, -1), upgrade_ms = nullif(?5, -1), "
	    "max_body = nullif(?6, -1), flags = ?7, backend_ca = ?9, backend_sni = ?10, "
	    "backend_verify = ?11, compress = ?12, balance = ?13, "
	    "challenge = nullif(nullif(?14, 0), 3), "
	    "challenge_dns01 = CASE WHEN ?14 = 3 THEN 1 ELSE 0 END, "
	    "rate_rpm = nullif(?15, -1), rate_burst = nullif(?16, -1), rate_nodelay = ?17, "
	    "backend_proxy_protocol = ?18, cache = ?19, cache_max_object = nullif(?20, -1), "
	    "cache_debug = ?21, strip_prefix = ?22, health_path = ?23, "
	    "health_interval_ms = nullif(?24, -1), health_timeout_ms = nullif(?25, -1), "
	    "health_rise = nullif(?26, -1), health_fall = nullif(?27, -1), balance_lif = ?28 "
	    "WHERE name = ?1",
	[S_HOST_INS] = "INSERT INTO hosts(name, route_id, kind) VALUES (?1, ?2, ?3)",
	[S_HOST_DEL] = "DELETE FROM hosts WHERE name = ?1 AND route_id = ?2",
	/* Appends: positions only grow, so removals keep the others' order. */
	[S_BE_INS] = "INSERT INTO backends(route_id, addr, position) VALUES (?1, ?2, "
	    "(SELECT coalesce(max(position) + 1, 0) FROM backends WHERE route_id = ?1))",
	[S_BE_DEL] = "DELETE FROM backends WHERE route_id = ?1 AND addr = ?2",
	[S_ALL_HOSTS] = HOSTS_SELECT "ORDER BY r.name, h.name",
	[S_ALL_BACKENDS] = BACKENDS_SELECT "ORDER BY r.name, b.position",
	[S_ONE_HOSTS] = HOSTS_SELECT "WHERE r.name = ?1 ORDER BY h.name",
	[S_ONE_BACKENDS] = BACKENDS_SELECT "WHERE r.name = ?1 ORDER BY b.position",
	/* ?1 is "host/": the prefix routes under host. */
	[S_PREFIX_COUNT] = "SELECT count(*) FROM routes WHERE substr(name, 1, length(?1)) = ?1",
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_ROUTES, which, __VA_ARGS__)

/* Walks the rows of a HOSTS_SELECT and a BACKENDS_SELECT query together. */
struct cursor {
	struct store *st;
	struct db_stmt *hs, *bs;
	int hrc, brc;		/* last db_step() result of each */
	size_t acap, bcap;	/* allocated aliases / backends slots */
};

static int
route_id(struct store *st, const char *name, int64_t *id)
{
	return store_query_int(st, P(st, S_ROUTE_ID, "t", name), id);
}

static int
host_add(struct store *st, const char *name, int64_t route, int canonical)
{
	int64_t kind;

	if (strncmp(name, "*.", 2) == 0)
		kind = SNAP_HOST_WILDCARD;
	else
		kind = canonical ? SNAP_HOST_EXACT : SNAP_HOST_ALIAS;
	return store_run(st, P(st, S_HOST_INS, "tii", name, route, kind));
}

static int
backend_add(struct store *st, int64_t route, const char *addr)
{
	return store_run(st, P(st, S_BE_INS, "it", route, addr));
}

/* --- changes: one transaction each */

/* A health setting's 0 (a struct filled without it) is the default too. */
#define HEALTH_SETTING(v) ((v) > 0 ? (v) : STORE_DEFAULT)

/* Binds the settings of route name to S_ROUTE_SET and runs it. */
static int
route_set_run(struct store *st, const char *name, const struct store_settings *set)
{
	const char *proto = snap_proto_name(set->proto);

	_Static_assert(STORE_DEFAULT == -1, "S_ROUTE_SET spells STORE_DEFAULT as -1");
	/* An unknown protocol binds NULL, which the NOT NULL column refuses. */
	return store_run_changed(st, P(st, S_ROUTE_SET, "tiiiiiitttiitiiiiiiiiitiiiii", name, set->connect_ms,
	    set->response_ms, set->idle_ms, set->upgrade_ms, set->max_body,
	    (int64_t)(set->flags & ~(uint32_t)(SNAP_ROUTE_BACKEND_NO_VERIFY | SNAP_ROUTE_COMPRESS |
	    SNAP_ROUTE_BALANCE_RR | SNAP_ROUTE_RATE_NODELAY | SNAP_ROUTE_CACHE |
	    SNAP_ROUTE_CACHE_DEBUG | SNAP_ROUTE_STRIP_PREFIX |
	    SNAP_ROUTE_BALANCE_LIF)),
	    proto, set->backend_ca, set->backend_sni,
	    (int64_t)((set->flags & SNAP_ROUTE_BACKEND_NO_VERIFY) == 0),
	    (int64_t)((set->flags & SNAP_ROUTE_COMPRESS) != 0),
	    (set->flags & SNAP_ROUTE_BALANCE_RR) ? "round-robin" : "least-in-flight",
	    (int64_t)set->challenge, set->rate_rpm, set->rate_burst,
	    (int64_t)((set->flags & SNAP_ROUTE_RATE_NODELAY) != 0), (int64_t)set->backend_pp,
	    (int64_t)((set->flags & SNAP_ROUTE_CACHE) != 0), set->cache_max_object,
	    (int64_t)((set->flags & SNAP_ROUTE_CACHE_DEBUG) != 0),
	    (int64_t)((set->flags & SNAP_ROUTE_STRIP_PREFIX) != 0), set->health_path,
	    HEALTH_SETTING(set->health_interval_ms), HEALTH_SETTING(set->health_timeout_ms),
	    HEALTH_SETTING(set->health_rise), HEALTH_SETTING(set->health_fall),
	    (int64_t)((set->flags & SNAP_ROUTE_BALANCE_LIF) != 0)));
}

static int
route_add_tx(struct store *st, const char *name, const char *const *aliases, size_t naliases,
    const char *const *backends, size_t nbackends, const struct store_settings *set)
{
	int64_t id;
	size_t i;
	int rc;

	if ((rc = store_run(st, P(st, S_ROUTE_INS, "ti", name, (int64_t)time(NULL)))) != STORE_OK)
		return rc;
	id = db_last_id(st->db);
	/*
	 * hosts.name is UNIQUE: a name used by any route, or twice here, fails.
	 * A prefix route ("host/api") has no name of its own: its host's serve it.
	 */
	if (strchr(name, '/') == NULL && (rc = host_add(st, name, id, 1)) != STORE_OK)
		return rc;
	for (i = 0; i < naliases; i++)
		if ((rc = host_add(st, aliases[i], id, 0)) != STORE_OK)
			return rc;
	for (i = 0; i < nbackends; i++)
		if ((rc = backend_add(st, id, backends[i])) != STORE_OK)
			return rc;
	return set != NULL ? route_set_run(st, name, set) : STORE_OK;
}

int
store_route_add(struct store *st, const char *name, const char *const *aliases,
    size_t naliases, const char *const *backends, size_t nbackends,
    const struct store_settings *set)
{
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	rc = route_add_tx(st, name, aliases, naliases, backends, nbackends, set);
	return store_tx_end(st, rc);
}

int
store_route_rm(struct store *st, const char *name)
{
	int rc;

	/* Its hosts and backends go with it (ON DELETE CASCADE). */
	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	rc = store_run_changed(st, P(st, S_ROUTE_DEL, "t", name));
	return store_tx_end(st, rc);
}

int
store_alias_add(struct store *st, const char *route, const char *alias)
{
	int64_t id;
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	if ((rc = route_id(st, route, &id)) == STORE_OK)
		rc = host_add(st, alias, id, 0);
	return store_tx_end(st, rc);
}

int
store_alias_rm(struct store *st, const char *route, const char *alias)
{
	int64_t id;
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	if ((rc = route_id(st, route, &id)) == STORE_OK) {
		/* The canonical name is the route itself: route rm removes it. */
		if (strcmp(route, alias) == 0)
			rc = STORE_EINVAL;
		else
			rc = store_run_changed(st, P(st, S_HOST_DEL, "ti", alias, id));
	}
	return store_tx_end(st, rc);
}

int
store_backend_add(struct store *st, const char *route, const char *addr)
{
	int64_t id;
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	if ((rc = route_id(st, route, &id)) == STORE_OK)
		rc = backend_add(st, id, addr);
	return store_tx_end(st, rc);
}

int
store_backend_rm(struct store *st, const char *route, const char *addr)
{
	int64_t id;
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	if ((rc = route_id(st, route, &id)) == STORE_OK)
		rc = store_run_changed(st, P(st, S_BE_DEL, "it", id, addr));
	return store_tx_end(st, rc);
}

int
store_route_set(struct store *st, const char *name, const struct store_settings *set)
{
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	rc = route_set_run(st, name, set);
	return store_tx_end(st, rc);
}

int
store_route_prefixes(struct store *st, const char *host, int64_t *n)
{
	char pat[300];

	if ((size_t)snprintf(pat, sizeof(pat), "%s/", host) >= sizeof(pat))
		return STORE_EINVAL;
	return store_query_int(st, P(st, S_PREFIX_COUNT, "t", pat), n);
}

int64_t
store_route_count(struct store *st)
{
	int64_t n;

	if (store_query_int(st, P(st, S_ROUTE_COUNT, ""), &n) != STORE_OK)
		return -1;
	return n;
}

/* --- reading routes */

/* Frees the strings of r and empties it, keeping the arrays for reuse. */
static void
route_clear(struct store_route *r)
{
	size_t i;

	for (i = 0; i < r->naliases; i++)
		free(r->aliases[i]);
	for (i = 0; i < r->nbackends; i++)
		free(r->backends[i]);
	free(r->name);
	free(r->set.backend_ca);
	free(r->set.backend_sni);
	free(r->set.health_path);
	r->name = NULL;
	r->naliases = r->nbackends = 0;
	r->id = r->name_id = r->created = 0;
	memset(&r->set, 0, sizeof(r->set));
}

void
store_route_free(struct store_route *r)
{
	route_clear(r);
	free(r->aliases);
	free(r->alias_ids);
	free(r->backends);
	free(r->backend_ids);
	memset(r, 0, sizeof(*r));
}

/* Appends (id, column col of s) to the string and id arrays of n slots. */
static int
push(char ***strs, int64_t **ids, size_t *n, size_t *cap, struct db_stmt *s, int col, int64_t id)
{
	char **ns;
	int64_t *ni;
	size_t ncap;

	if (*n == *cap) {
		ncap = *cap == 0 ? 8 : *cap * 2;
		if ((ns = reallocarray(*strs, ncap, sizeof(*ns))) == NULL)
			goto nomem;
		*strs = ns;
		if ((ni = reallocarray(*ids, ncap, sizeof(*ni))) == NULL)
			goto nomem;
		*ids = ni;
		*cap = ncap;
	}
	if (((*strs)[*n] = store_column_dup(s, col)) == NULL)
		return -1;
	(*ids)[(*n)++] = id;
	return 0;
nomem:
	log_warn("store: reallocarray");
	return -1;
}

static int
cursor_open(struct cursor *c, struct store *st, struct db_stmt *hs, struct db_stmt *bs)
{
	memset(c, 0, sizeof(*c));
	c->st = st;
	c->hs = hs;
	c->bs = bs;
	if (hs == NULL || bs == NULL)
		return -1;
	c->hrc = db_step(hs);
	c->brc = db_step(bs);
	return 0;
}

static void
cursor_close(struct cursor *c)
{
	if (c->hs != NULL)
		db_reset(c->hs);
	if (c->bs != NULL)
		db_reset(c->bs);
}

/* Takes the current host rows of route r->id into r, and the following. */
static int
cursor_hosts(struct cursor *c, struct store_route *r)
{
	struct db_stmt *s = c->hs;
	const char *name;
	int64_t id;

	for (; c->hrc == DB_ROW && db_column_int64(s, 0) == r->id;
	    c->hrc = db_step(s)) {
		if (db_column_null(s, 3))
			continue;
		id = db_column_int64(s, 3);
		if ((name = db_column_text(s, 4)) != NULL && strcmp((const char *)name, r->name) == 0)
			r->name_id = id;
		else if (push(&r->aliases, &r->alias_ids, &r->naliases, &c->acap, s, 4, id) == -1)
			return -1;
	}
	return 0;
}

/*
 * Backend rows come in the same route order, so those of r->id, if any,
 * are next; rows of later routes stay for later calls.
 */
static int
cursor_backends(struct cursor *c, struct store_route *r)
{
	struct db_stmt *s = c->bs;

	for (; c->brc == DB_ROW && db_column_int64(s, 0) == r->id;
	    c->brc = db_step(s))
		if (push(&r->backends, &r->backend_ids, &r->nbackends, &c->bcap, s, 2,
		    db_column_int64(s, 1)) == -1)
			return -1;
	return 0;
}

/* A settings column of a HOSTS_SELECT row: NULL reads as STORE_DEFAULT. */
static int64_t
column_setting(struct db_stmt *s, int col)
{
	if (db_column_null(s, col))
		return STORE_DEFAULT;
	return db_column_int64(s, col);
}

static int
cursor_settings(struct db_stmt *s, struct store_settings *set)
{
	const char *proto = db_column_text(s, 11);
	int p;

	set->connect_ms = column_setting(s, 5);
	set->response_ms = column_setting(s, 6);
	set->idle_ms = column_setting(s, 7);
	set->upgrade_ms = column_setting(s, 8);
	set->max_body = column_setting(s, 9);
	set->flags = (uint32_t)db_column_int64(s, 10);
	if (db_column_int64(s, 14) == 0)
		set->flags |= SNAP_ROUTE_BACKEND_NO_VERIFY;
	if (db_column_int64(s, 15) != 0)
		set->flags |= SNAP_ROUTE_COMPRESS;
	if (db_column_text(s, 16) != NULL &&
	    strcmp(db_column_text(s, 16), "round-robin") == 0)
		set->flags |= SNAP_ROUTE_BALANCE_RR;
	set->challenge = (uint16_t)db_column_int64(s, 17);	/* NULL reads 0: auto */
	if (db_column_int64(s, 26) != 0)
		set->challenge = STORE_CHAL_DNS01;
	set->rate_rpm = column_setting(s, 18);
	set->rate_burst = column_setting(s, 19);
	if (db_column_int64(s, 20) != 0)
		set->flags |= SNAP_ROUTE_RATE_NODELAY;
	set->backend_pp = (uint16_t)db_column_int64(s, 21);	/* CHECK: 0, 1 or 2 */
	if (db_column_int64(s, 22) != 0)
		set->flags |= SNAP_ROUTE_CACHE;
	set->cache_max_object = column_setting(s, 23);
	if (db_column_int64(s, 24) != 0)
		set->flags |= SNAP_ROUTE_CACHE_DEBUG;
	if (db_column_int64(s, 25) != 0)
		set->flags |= SNAP_ROUTE_STRIP_PREFIX;
	set->health_interval_ms = column_setting(s, 28);
	set->health_timeout_ms = column_setting(s, 29);
	set->health_rise = column_setting(s, 30);
	set->health_fall = column_setting(s, 31);
	if (db_column_int64(s, 32) != 0)
		set->flags |= SNAP_ROUTE_BALANCE_LIF;
	/* The column's CHECK allows only the known words. */
	if (proto == NULL || (p = snap_proto_parse((const char *)proto)) == -1) {
		log_warnx("store: route %s: unknown backend protocol", db_column_text(s, 1));
		return -1;
	}
	set->proto = (uint16_t)p;
	if (store_column_dup_null(s, 12, &set->backend_ca) == -1 ||
	    store_column_dup_null(s, 13, &set->backend_sni) == -1 ||
	    store_column_dup_null(s, 27, &set->health_path) == -1)
		return -1;
	return 0;
}

/* Fills r with the next route: 1, 0 at the end, STORE_ERR (logged). */
static int
cursor_next(struct cursor *c, struct store_route *r)
{
	route_clear(r);
	if (c->hrc == DB_DONE)
		return 0;
	if (c->hrc != DB_ROW)
		return store_fail(c->st, c->hs);
	r->id = db_column_int64(c->hs, 0);
	r->created = db_column_int64(c->hs, 2);
	if ((r->name = store_column_dup(c->hs, 1)) == NULL)
		return STORE_ERR;
	if (cursor_settings(c->hs, &r->set) == -1)
		return STORE_ERR;
	if (cursor_hosts(c, r) == -1 || cursor_backends(c, r) == -1)
		return STORE_ERR;
	if (c->hrc != DB_ROW && c->hrc != DB_DONE)
		return store_fail(c->st, c->hs);
	if (c->brc != DB_ROW && c->brc != DB_DONE)
		return store_fail(c->st, c->bs);
	return 1;
}

int
store_route_get(struct store *st, const char *name, struct store_route *out)
{
	struct cursor c;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_tx_begin(st, 0)) != STORE_OK)
		return rc;
	if (cursor_open(&c, st, P(st, S_ONE_HOSTS, "t", name),
	    P(st, S_ONE_BACKENDS, "t", name)) == -1)
		rc = STORE_ERR;
	else if ((rc = cursor_next(&c, out)) == 1)
		rc = STORE_OK;
	else if (rc == 0)
		rc = STORE_ENOENT;
	cursor_close(&c);
	if ((rc = store_tx_end(st, rc)) != STORE_OK)
		store_route_free(out);
	return rc;
}

int
store_route_foreach(struct store *st, int (*fn)(void *arg, const struct store_route *r),
    void *arg)
{
	struct store_route r;
	struct cursor c;
	int rc;

	memset(&r, 0, sizeof(r));
	/* One read transaction: both queries see the same snapshot. */
	if ((rc = store_tx_begin(st, 0)) != STORE_OK)
		return rc;
	if (cursor_open(&c, st, P(st, S_ALL_HOSTS, ""), P(st, S_ALL_BACKENDS, "")) == -1)
		rc = STORE_ERR;
	else {
		while ((rc = cursor_next(&c, &r)) == 1)
			if ((rc = fn(arg, &r)) != 0)
				break;
	}
	cursor_close(&c);
	store_route_free(&r);
	return store_tx_end(st, rc);
}
