/*
 * The SQLite store: one connection, statements prepared once at open, one
 * transaction per mutating call. SQLite failures are logged here; expected
 * outcomes (a name already taken, a missing row) are only returned.
 */
#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "master/schema.h"
#include "master/store.h"
#include "share/log.h"
#include "share/snap.h"

#define STORE_BUSY_MS	5000

enum stmt {
	S_BEGIN,
	S_BEGIN_READ,
	S_COMMIT,
	S_ROLLBACK,
	S_ROUTE_ID,
	S_ROUTE_INS,
	S_ROUTE_DEL,
	S_ROUTE_COUNT,
	S_ROUTE_SET,
	S_HOST_INS,
	S_HOST_DEL,
	S_BE_INS,
	S_BE_DEL,
	S_GEN_BUMP,
	S_GEN_GET,
	S_ALL_HOSTS,
	S_ALL_BACKENDS,
	S_ONE_HOSTS,
	S_ONE_BACKENDS,
	S_MAX
};

/*
 * The read queries come in pairs, both ordered by route name: one row per
 * host name (LEFT JOIN, so a route without hosts still shows) and one per
 * backend. The cursor below merges them, so listing every route costs two
 * queries whatever the number of routes.
 */
#define HOSTS_SELECT \
	"SELECT r.id, r.name, r.created, h.id, h.name, r.connect_ms, r.response_ms, " \
	"r.idle_ms, r.tunnel_ms, r.max_body, r.flags " \
	"FROM routes r LEFT JOIN hosts h ON h.route_id = r.id "
#define BACKENDS_SELECT \
	"SELECT b.route_id, b.id, b.addr " \
	"FROM routes r JOIN backends b ON b.route_id = r.id "

static const char *const stmt_sql[S_MAX] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_BEGIN_READ] = "BEGIN",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_ROUTE_ID] = "SELECT id FROM routes WHERE name = ?1",
	[S_ROUTE_INS] = "INSERT INTO routes(name, created) VALUES (?1, ?2)",
	[S_ROUTE_DEL] = "DELETE FROM routes WHERE name = ?1",
	[S_ROUTE_COUNT] = "SELECT count(*) FROM routes",
	/* -1 is STORE_DEFAULT: the setting goes back to NULL. */
	[S_ROUTE_SET] = "UPDATE routes SET connect_ms = nullif(?2, -1), response_ms = nullif(?3, -1), "
	    "idle_ms = nullif(?4, -1), tunnel_ms = nullif(?5, -1), max_body = nullif(?6, -1), "
	    "flags = ?7 WHERE name = ?1",
	[S_HOST_INS] = "INSERT INTO hosts(name, route_id, kind) VALUES (?1, ?2, ?3)",
	[S_HOST_DEL] = "DELETE FROM hosts WHERE name = ?1 AND route_id = ?2",
	/* Appends: positions only grow, so removals keep the others' order. */
	[S_BE_INS] = "INSERT INTO backends(route_id, addr, position) VALUES (?1, ?2, "
	    "(SELECT coalesce(max(position) + 1, 0) FROM backends WHERE route_id = ?1))",
	[S_BE_DEL] = "DELETE FROM backends WHERE route_id = ?1 AND addr = ?2",
	[S_GEN_BUMP] = "UPDATE meta SET value = value + 1 WHERE key = 'generation'",
	[S_GEN_GET] = "SELECT value FROM meta WHERE key = 'generation'",
	[S_ALL_HOSTS] = HOSTS_SELECT "ORDER BY r.name, h.name",
	[S_ALL_BACKENDS] = BACKENDS_SELECT "ORDER BY r.name, b.position",
	[S_ONE_HOSTS] = HOSTS_SELECT "WHERE r.name = ?1 ORDER BY h.name",
	[S_ONE_BACKENDS] = BACKENDS_SELECT "WHERE r.name = ?1 ORDER BY b.position",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_MAX];
};

/* Walks the rows of a HOSTS_SELECT and a BACKENDS_SELECT query together. */
struct cursor {
	struct store *st;
	sqlite3_stmt *hs, *bs;
	int hrc, brc;		/* last sqlite3_step() result of each */
	size_t acap, bcap;	/* allocated aliases / backends slots */
};

/*
 * Maps the failure of statement s to a store_rc. A name or backend already
 * present is an answer, not an incident; anything else is logged.
 */
static int
sql_fail(struct store *st, sqlite3_stmt *s)
{
	int ext = sqlite3_extended_errcode(st->db);

	switch (ext) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return STORE_EEXIST;
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_CONSTRAINT_NOTNULL:
		log_debug("store: %s: %s", sqlite3_sql(s), sqlite3_errmsg(st->db));
		return STORE_EINVAL;
	default:
		log_warnx("store: %s: %s", sqlite3_sql(s), sqlite3_errmsg(st->db));
		return STORE_ERR;
	}
}

/*
 * Resets statement `which` and binds its parameters: fmt has one letter
 * per parameter, 't' for a const char * and 'i' for an int64_t (callers
 * cast). Returns the statement, or NULL (logged).
 */
static sqlite3_stmt *
prep(struct store *st, enum stmt which, const char *fmt, ...)
{
	sqlite3_stmt *s = st->stmt[which];
	va_list ap;
	int i, rc = SQLITE_OK;

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	va_start(ap, fmt);
	for (i = 0; fmt[i] != '\0' && rc == SQLITE_OK; i++) {
		if (fmt[i] == 't')
			rc = sqlite3_bind_text(s, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
		else
			rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
	}
	va_end(ap);
	if (rc != SQLITE_OK) {
		log_warnx("store: cannot bind parameter %d of %s: %s", i, sqlite3_sql(s),
		    sqlite3_errmsg(st->db));
		return NULL;
	}
	return s;
}

/* Runs s (from prep(), may be NULL) to completion. */
static int
run(struct store *st, sqlite3_stmt *s)
{
	int rc = STORE_ERR;

	if (s == NULL)
		return STORE_ERR;
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = STORE_OK;
	else
		rc = sql_fail(st, s);
	sqlite3_reset(s);
	return rc;
}

/* Like run(), and STORE_ENOENT when the statement changed no row. */
static int
run_changed(struct store *st, sqlite3_stmt *s)
{
	int rc;

	if ((rc = run(st, s)) == STORE_OK && sqlite3_changes(st->db) == 0)
		rc = STORE_ENOENT;
	return rc;
}

/* Reads the first column of the first row of s; STORE_ENOENT without rows. */
static int
query_int(struct store *st, sqlite3_stmt *s, int64_t *out)
{
	int rc;

	if (s == NULL)
		return STORE_ERR;
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		*out = sqlite3_column_int64(s, 0);
		rc = STORE_OK;
		break;
	case SQLITE_DONE:
		rc = STORE_ENOENT;
		break;
	default:
		rc = sql_fail(st, s);
	}
	sqlite3_reset(s);
	return rc;
}

static int
tx_begin(struct store *st, enum stmt which)
{
	return run(st, prep(st, which, ""));
}

/* Commits when rc is STORE_OK, rolls back otherwise; returns the outcome. */
static int
tx_end(struct store *st, int rc)
{
	if (rc == STORE_OK) {
		if (run(st, prep(st, S_COMMIT, "")) == STORE_OK)
			return STORE_OK;
		rc = STORE_ERR;
	}
	/* A failed COMMIT may already have rolled back by itself. */
	if (!sqlite3_get_autocommit(st->db))
		run(st, prep(st, S_ROLLBACK, ""));
	return rc;
}

static int
route_id(struct store *st, const char *name, int64_t *id)
{
	return query_int(st, prep(st, S_ROUTE_ID, "t", name), id);
}

static int
host_add(struct store *st, const char *name, int64_t route, int canonical)
{
	int64_t kind;

	if (strncmp(name, "*.", 2) == 0)
		kind = SNAP_HOST_WILDCARD;
	else
		kind = canonical ? SNAP_HOST_EXACT : SNAP_HOST_ALIAS;
	return run(st, prep(st, S_HOST_INS, "tii", name, route, kind));
}

static int
backend_add(struct store *st, int64_t route, const char *addr)
{
	return run(st, prep(st, S_BE_INS, "it", route, addr));
}

/* --- open and close */

/*
 * Creates the file ourselves so it is 0600 whatever the umask (SQLite gives
 * the -wal and -shm files the mode of the database), and tightens an
 * existing file that is readable by others.
 */
static int
create_file(const char *path)
{
	struct stat sb;
	int fd, rc = -1;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		log_warn("store: %s", path);
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		log_warn("store: fstat %s", path);
		goto out;
	}
	if ((sb.st_mode & 077) != 0) {
		log_warnx("store %s was mode %03o; making it 0600", path, sb.st_mode & 0777);
		if (fchmod(fd, 0600) == -1) {
			log_warn("store: chmod %s", path);
			goto out;
		}
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* Runs a PRAGMA that answers one row and checks the answer is want. */
static int
pragma_expect(struct store *st, const char *sql, const char *want)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *got;
	int rc = -1;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		log_warnx("store: %s: %s", sql, sqlite3_errmsg(st->db));
		goto out;
	}
	if ((got = sqlite3_column_text(s, 0)) == NULL || strcasecmp((const char *)got, want) != 0) {
		log_warnx("store: %s answered %s, not %s", sql, got != NULL ? (const char *)got : "nothing",
		    want);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

static int
configure_db(struct store *st)
{
	char *err = NULL;

	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
	if (sqlite3_exec(st->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL",
	    NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("store: pragmas: %s", err != NULL ? err : sqlite3_errmsg(st->db));
		sqlite3_free(err);
		return -1;
	}
	/* Route removal relies on ON DELETE CASCADE: refuse a build without it. */
	return pragma_expect(st, "PRAGMA foreign_keys", "1");
}

static int
prepare_all(struct store *st)
{
	int i;

	for (i = 0; i < S_MAX; i++) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &st->stmt[i], NULL) != SQLITE_OK) {
			log_warnx("store: prepare %s: %s", stmt_sql[i], sqlite3_errmsg(st->db));
			return -1;
		}
	}
	return 0;
}

int
store_open(const char *path, struct store **out)
{
	struct store *st;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;

	*out = NULL;
	if (create_file(path) == -1)
		return STORE_ERR;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		log_warn("store: calloc");
		return STORE_ERR;
	}
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		log_warnx("store: cannot open %s: %s", path,
		    st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	/*
	 * WAL is a property of the file: set it only once the schema version
	 * says the file is ours to change.
	 */
	if (configure_db(st) == -1 || schema_migrate(st->db) == -1 ||
	    pragma_expect(st, "PRAGMA journal_mode = WAL", "wal") == -1 || prepare_all(st) == -1)
		goto fail;
	log_debug("store %s open, schema version %d", path, store_schema_version());
	*out = st;
	return STORE_OK;
fail:
	store_close(st);
	return STORE_ERR;
}

struct sqlite3 *
store_db(struct store *st)
{
	return st->db;
}

void
store_close(struct store *st)
{
	int i;

	if (st == NULL)
		return;
	for (i = 0; i < S_MAX; i++)
		sqlite3_finalize(st->stmt[i]);
	if (sqlite3_close(st->db) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(st->db));
	free(st);
}

/* --- changes: one transaction each */

static int
route_add_tx(struct store *st, const char *name, const char *const *aliases, size_t naliases,
    const char *const *backends, size_t nbackends)
{
	int64_t id;
	size_t i;
	int rc;

	if ((rc = run(st, prep(st, S_ROUTE_INS, "ti", name, (int64_t)time(NULL)))) != STORE_OK)
		return rc;
	id = sqlite3_last_insert_rowid(st->db);
	/* hosts.name is UNIQUE: a name used by any route, or twice here, fails. */
	if ((rc = host_add(st, name, id, 1)) != STORE_OK)
		return rc;
	for (i = 0; i < naliases; i++)
		if ((rc = host_add(st, aliases[i], id, 0)) != STORE_OK)
			return rc;
	for (i = 0; i < nbackends; i++)
		if ((rc = backend_add(st, id, backends[i])) != STORE_OK)
			return rc;
	return STORE_OK;
}

int
store_route_add(struct store *st, const char *name, const char *const *aliases,
    size_t naliases, const char *const *backends, size_t nbackends)
{
	int rc;

	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	rc = route_add_tx(st, name, aliases, naliases, backends, nbackends);
	return tx_end(st, rc);
}

int
store_route_rm(struct store *st, const char *name)
{
	int rc;

	/* Its hosts and backends go with it (ON DELETE CASCADE). */
	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	rc = run_changed(st, prep(st, S_ROUTE_DEL, "t", name));
	return tx_end(st, rc);
}

int
store_alias_add(struct store *st, const char *route, const char *alias)
{
	int64_t id;
	int rc;

	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	if ((rc = route_id(st, route, &id)) == STORE_OK)
		rc = host_add(st, alias, id, 0);
	return tx_end(st, rc);
}

int
store_alias_rm(struct store *st, const char *route, const char *alias)
{
	int64_t id;
	int rc;

	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	if ((rc = route_id(st, route, &id)) == STORE_OK) {
		/* The canonical name is the route itself: route rm removes it. */
		if (strcmp(route, alias) == 0)
			rc = STORE_EINVAL;
		else
			rc = run_changed(st, prep(st, S_HOST_DEL, "ti", alias, id));
	}
	return tx_end(st, rc);
}

int
store_backend_add(struct store *st, const char *route, const char *addr)
{
	int64_t id;
	int rc;

	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	if ((rc = route_id(st, route, &id)) == STORE_OK)
		rc = backend_add(st, id, addr);
	return tx_end(st, rc);
}

int
store_backend_rm(struct store *st, const char *route, const char *addr)
{
	int64_t id;
	int rc;

	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	if ((rc = route_id(st, route, &id)) == STORE_OK)
		rc = run_changed(st, prep(st, S_BE_DEL, "it", id, addr));
	return tx_end(st, rc);
}

int
store_route_set(struct store *st, const char *name, const struct store_settings *set)
{
	int rc;

	_Static_assert(STORE_DEFAULT == -1, "S_ROUTE_SET spells STORE_DEFAULT as -1");
	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	rc = run_changed(st, prep(st, S_ROUTE_SET, "tiiiiii", name, set->connect_ms,
	    set->response_ms, set->idle_ms, set->tunnel_ms, set->max_body, (int64_t)set->flags));
	return tx_end(st, rc);
}

int
store_next_generation(struct store *st, uint64_t *gen)
{
	int64_t v = 0;
	int rc;

	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	if ((rc = run_changed(st, prep(st, S_GEN_BUMP, ""))) == STORE_OK)
		rc = query_int(st, prep(st, S_GEN_GET, ""), &v);
	if (rc == STORE_ENOENT) {
		log_warnx("store: the generation counter is missing");
		rc = STORE_ERR;
	}
	if ((rc = tx_end(st, rc)) == STORE_OK)
		*gen = (uint64_t)v;
	return rc;
}

int64_t
store_route_count(struct store *st)
{
	int64_t n;

	if (query_int(st, prep(st, S_ROUTE_COUNT, ""), &n) != STORE_OK)
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

/* Copies column col of s; NULL (logged) when out of memory. */
static char *
column_dup(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	char *p;

	if (t == NULL || (p = strdup((const char *)t)) == NULL) {
		log_warnx("store: out of memory reading %s", sqlite3_sql(s));
		return NULL;
	}
	return p;
}

/* Appends (id, column col of s) to the string and id arrays of n slots. */
static int
push(char ***strs, int64_t **ids, size_t *n, size_t *cap, sqlite3_stmt *s, int col, int64_t id)
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
	if (((*strs)[*n] = column_dup(s, col)) == NULL)
		return -1;
	(*ids)[(*n)++] = id;
	return 0;
nomem:
	log_warn("store: reallocarray");
	return -1;
}

static int
cursor_open(struct cursor *c, struct store *st, sqlite3_stmt *hs, sqlite3_stmt *bs)
{
	memset(c, 0, sizeof(*c));
	c->st = st;
	c->hs = hs;
	c->bs = bs;
	if (hs == NULL || bs == NULL)
		return -1;
	c->hrc = sqlite3_step(hs);
	c->brc = sqlite3_step(bs);
	return 0;
}

static void
cursor_close(struct cursor *c)
{
	if (c->hs != NULL)
		sqlite3_reset(c->hs);
	if (c->bs != NULL)
		sqlite3_reset(c->bs);
}

/* Takes the current host rows of route r->id into r, and the following. */
static int
cursor_hosts(struct cursor *c, struct store_route *r)
{
	sqlite3_stmt *s = c->hs;
	const unsigned char *name;
	int64_t id;

	for (; c->hrc == SQLITE_ROW && sqlite3_column_int64(s, 0) == r->id;
	    c->hrc = sqlite3_step(s)) {
		if (sqlite3_column_type(s, 3) == SQLITE_NULL)
			continue;
		id = sqlite3_column_int64(s, 3);
		if ((name = sqlite3_column_text(s, 4)) != NULL && strcmp((const char *)name, r->name) == 0)
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
	sqlite3_stmt *s = c->bs;

	for (; c->brc == SQLITE_ROW && sqlite3_column_int64(s, 0) == r->id;
	    c->brc = sqlite3_step(s))
		if (push(&r->backends, &r->backend_ids, &r->nbackends, &c->bcap, s, 2,
		    sqlite3_column_int64(s, 1)) == -1)
			return -1;
	return 0;
}

/* A settings column of a HOSTS_SELECT row: NULL reads as STORE_DEFAULT. */
static int64_t
column_setting(sqlite3_stmt *s, int col)
{
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return STORE_DEFAULT;
	return sqlite3_column_int64(s, col);
}

static void
cursor_settings(sqlite3_stmt *s, struct store_settings *set)
{
	set->connect_ms = column_setting(s, 5);
	set->response_ms = column_setting(s, 6);
	set->idle_ms = column_setting(s, 7);
	set->tunnel_ms = column_setting(s, 8);
	set->max_body = column_setting(s, 9);
	set->flags = (uint32_t)sqlite3_column_int64(s, 10);
}

/* Fills r with the next route: 1, 0 at the end, STORE_ERR (logged). */
static int
cursor_next(struct cursor *c, struct store_route *r)
{
	route_clear(r);
	if (c->hrc == SQLITE_DONE)
		return 0;
	if (c->hrc != SQLITE_ROW)
		return sql_fail(c->st, c->hs);
	r->id = sqlite3_column_int64(c->hs, 0);
	r->created = sqlite3_column_int64(c->hs, 2);
	if ((r->name = column_dup(c->hs, 1)) == NULL)
		return STORE_ERR;
	cursor_settings(c->hs, &r->set);
	if (cursor_hosts(c, r) == -1 || cursor_backends(c, r) == -1)
		return STORE_ERR;
	if (c->hrc != SQLITE_ROW && c->hrc != SQLITE_DONE)
		return sql_fail(c->st, c->hs);
	if (c->brc != SQLITE_ROW && c->brc != SQLITE_DONE)
		return sql_fail(c->st, c->bs);
	return 1;
}

int
store_route_get(struct store *st, const char *name, struct store_route *out)
{
	struct cursor c;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = tx_begin(st, S_BEGIN_READ)) != STORE_OK)
		return rc;
	if (cursor_open(&c, st, prep(st, S_ONE_HOSTS, "t", name),
	    prep(st, S_ONE_BACKENDS, "t", name)) == -1)
		rc = STORE_ERR;
	else if ((rc = cursor_next(&c, out)) == 1)
		rc = STORE_OK;
	else if (rc == 0)
		rc = STORE_ENOENT;
	cursor_close(&c);
	if ((rc = tx_end(st, rc)) != STORE_OK)
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
	if ((rc = tx_begin(st, S_BEGIN_READ)) != STORE_OK)
		return rc;
	if (cursor_open(&c, st, prep(st, S_ALL_HOSTS, ""), prep(st, S_ALL_BACKENDS, "")) == -1)
		rc = STORE_ERR;
	else {
		while ((rc = cursor_next(&c, &r)) == 1)
			if ((rc = fn(arg, &r)) != 0)
				break;
	}
	cursor_close(&c);
	store_route_free(&r);
	return tx_end(st, rc);
}

/*
 * --- certificates. Rare calls (an import, a build), so their statements
 * are prepared per call rather than kept in stmt[].
 */

/* One row per (certificate, name), merged by id; ?1 is with_key. */
#define CERTS_SELECT \
	"SELECT c.id, c.domain, c.source, c.chain_pem, " \
	"CASE WHEN ?1 THEN c.key_pem END, c.issuer, c.fingerprint, c.not_before, " \
	"c.not_after, c.created, n.name " \
	"FROM certs c LEFT JOIN cert_names n ON n.cert_id = c.id "

/* Prepares sql and binds "t"/"i" parameters like prep(); NULL (logged) on failure. */
static sqlite3_stmt *
prep_once(struct store *st, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *s = NULL;
	va_list ap;
	int i, rc;

	if ((rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL)) != SQLITE_OK) {
		log_warnx("store: prepare %s: %s", sql, sqlite3_errmsg(st->db));
		return NULL;
	}
	va_start(ap, fmt);
	for (i = 0; fmt[i] != '\0' && rc == SQLITE_OK; i++) {
		if (fmt[i] == 't')
			rc = sqlite3_bind_text(s, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
		else
			rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
	}
	va_end(ap);
	if (rc != SQLITE_OK) {
		log_warnx("store: bind %s: %s", sql, sqlite3_errmsg(st->db));
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

/* Runs a prep_once statement to completion and finalizes it. */
static int
run_once(struct store *st, sqlite3_stmt *s)
{
	int rc = run(st, s);

	sqlite3_finalize(s);
	return rc;
}

static int
cert_insert(struct store *st, const struct store_cert *c, int64_t *id)
{
	sqlite3_stmt *s;
	size_t i;
	int rc;

	s = prep_once(st, "INSERT INTO certs(domain, source, chain_pem, key_pem, not_before, "
	    "not_after, fingerprint, issuer, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	    "tittiitti", c->domain, (int64_t)c->source, c->chain, c->key,
	    c->not_before, c->not_after, c->fingerprint, c->issuer, (int64_t)time(NULL));
	if ((rc = run_once(st, s)) != STORE_OK)
		return rc;
	*id = sqlite3_last_insert_rowid(st->db);
	for (i = 0; i < c->nnames; i++) {
		s = prep_once(st, "INSERT INTO cert_names(cert_id, name) VALUES (?1, ?2)", "it",
		    *id, c->names[i]);
		if ((rc = run_once(st, s)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

int
store_cert_put(struct store *st, const struct store_cert *c, int64_t *id)
{
	sqlite3_stmt *s;
	int64_t nid = 0;
	int rc;

	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	/* The one it replaces goes first, its names with it (ON DELETE CASCADE). */
	if (c->domain != NULL)
		s = prep_once(st, "DELETE FROM certs WHERE domain = ?1", "t", c->domain);
	else
		s = prep_once(st, "DELETE FROM certs WHERE domain IS NULL AND source = ?1", "i",
		    (int64_t)c->source);
	if ((rc = run_once(st, s)) == STORE_OK)
		rc = cert_insert(st, c, &nid);
	if ((rc = tx_end(st, rc)) == STORE_OK && id != NULL)
		*id = nid;
	return rc;
}

int
store_cert_rm(struct store *st, const char *domain)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = tx_begin(st, S_BEGIN)) != STORE_OK)
		return rc;
	if ((s = prep_once(st, "DELETE FROM certs WHERE domain = ?1", "t", domain)) == NULL)
		rc = STORE_ERR;
	else {
		rc = run_changed(st, s);
		sqlite3_finalize(s);
	}
	return tx_end(st, rc);
}

/* Frees a string that may hold key material, wiping it first. */
static void
free_secret(char *p)
{
	if (p != NULL) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

void
store_cert_free(struct store_cert *c)
{
	size_t i;

	for (i = 0; i < c->nnames; i++)
		free(c->names[i]);
	free(c->names);
	free(c->domain);
	free(c->chain);
	free_secret(c->key);
	free(c->issuer);
	free(c->fingerprint);
	memset(c, 0, sizeof(*c));
}

/* Copies column col of s, or NULL when the column is NULL; -1 when out of memory. */
static int
column_dup_null(sqlite3_stmt *s, int col, char **out)
{
	*out = NULL;
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return 0;
	return (*out = column_dup(s, col)) == NULL ? -1 : 0;
}

/* The certificate columns of the current CERTS_SELECT row into c. */
static int
cert_columns(sqlite3_stmt *s, struct store_cert *c)
{
	c->id = sqlite3_column_int64(s, 0);
	c->source = sqlite3_column_int(s, 2);
	c->not_before = sqlite3_column_int64(s, 7);
	c->not_after = sqlite3_column_int64(s, 8);
	c->created = sqlite3_column_int64(s, 9);
	if (column_dup_null(s, 1, &c->domain) == -1 || column_dup_null(s, 4, &c->key) == -1 ||
	    (c->chain = column_dup(s, 3)) == NULL || (c->issuer = column_dup(s, 5)) == NULL ||
	    (c->fingerprint = column_dup(s, 6)) == NULL)
		return -1;
	return 0;
}

/* Appends the name column of the current row, if any, to c->names. */
static int
cert_push_name(sqlite3_stmt *s, struct store_cert *c)
{
	char **nn;

	if (sqlite3_column_type(s, 10) == SQLITE_NULL)
		return 0;
	if ((nn = reallocarray(c->names, c->nnames + 1, sizeof(*nn))) == NULL) {
		log_warn("store: reallocarray");
		return -1;
	}
	c->names = nn;
	if ((c->names[c->nnames] = column_dup(s, 10)) == NULL)
		return -1;
	c->nnames++;
	return 0;
}

/*
 * Reads the certificate at the current row of s (*rc the last step's
 * result) into c, stepping past its name rows. 1, 0 at the end, or
 * STORE_ERR.
 */
static int
cert_next(struct store *st, sqlite3_stmt *s, int *rc, struct store_cert *c)
{
	int64_t id;

	store_cert_free(c);
	if (*rc == SQLITE_DONE)
		return 0;
	if (*rc != SQLITE_ROW)
		return sql_fail(st, s);
	if (cert_columns(s, c) == -1)
		return STORE_ERR;
	for (id = c->id; *rc == SQLITE_ROW && sqlite3_column_int64(s, 0) == id;
	    *rc = sqlite3_step(s))
		if (cert_push_name(s, c) == -1)
			return STORE_ERR;
	if (*rc != SQLITE_ROW && *rc != SQLITE_DONE)
		return sql_fail(st, s);
	return 1;
}

int
store_cert_get(struct store *st, const char *domain, int with_key, struct store_cert *out)
{
	sqlite3_stmt *s;
	int rc, step;

	memset(out, 0, sizeof(*out));
	if (domain != NULL)
		s = prep_once(st, CERTS_SELECT "WHERE c.domain = ?2 ORDER BY n.name", "it",
		    (int64_t)with_key, domain);
	else
		s = prep_once(st, CERTS_SELECT "WHERE c.domain IS NULL ORDER BY c.id, n.name",
		    "i", (int64_t)with_key);
	if (s == NULL)
		return STORE_ERR;
	step = sqlite3_step(s);
	if ((rc = cert_next(st, s, &step, out)) == 1)
		rc = STORE_OK;
	else if (rc == 0)
		rc = STORE_ENOENT;
	sqlite3_finalize(s);
	if (rc != STORE_OK)
		store_cert_free(out);
	return rc;
}

int
store_cert_foreach(struct store *st, int with_key,
    int (*fn)(void *arg, const struct store_cert *c), void *arg)
{
	struct store_cert c;
	sqlite3_stmt *s;
	int rc, step;

	memset(&c, 0, sizeof(c));
	if ((rc = tx_begin(st, S_BEGIN_READ)) != STORE_OK)
		return rc;
	s = prep_once(st, CERTS_SELECT "ORDER BY c.id, n.name", "i", (int64_t)with_key);
	if (s == NULL)
		rc = STORE_ERR;
	else {
		step = sqlite3_step(s);
		while ((rc = cert_next(st, s, &step, &c)) == 1)
			if ((rc = fn(arg, &c)) != 0)
				break;
	}
	sqlite3_finalize(s);
	store_cert_free(&c);
	return tx_end(st, rc);
}
