/*
 * Unit tests for master/store.c and master/schema.c: migrations, file mode,
 * route / alias / backend changes and their errors, reading routes back,
 * the generation counter. Each test works on a fresh file in a temp dir.
 */
#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "master/store.h"
#include "share/snap.h"
#include "tests/unit/suites.h"

static char dir[64];
static char path[128];
static struct store *st;

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/check_store.XXXXXX", tmp != NULL ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
	st = NULL;
}

static void
unlink_suffix(const char *suffix)
{
	char p[160];

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	unlink(p);
}

static void
teardown(void)
{
	store_close(st);
	unlink_suffix("");
	unlink_suffix("-wal");
	unlink_suffix("-shm");
	rmdir(dir);
}

static void
open_store(void)
{
	ck_assert_int_eq(store_open(path, &st), STORE_OK);
	ck_assert_ptr_nonnull(st);
}

static void
reopen_store(void)
{
	store_close(st);
	st = NULL;
	open_store();
}

/* First column of the first row of sql, run on a second connection. */
static int64_t
raw_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* Whether the first column of the first row of sql is the text want. */
static int
raw_is(const char *sql, const char *want)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	const unsigned char *t;
	int same;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	t = sqlite3_column_text(s, 0);
	same = t != NULL && strcmp((const char *)t, want) == 0;
	sqlite3_finalize(s);
	sqlite3_close(db);
	return same;
}

static void
raw_exec(const char *sql)
{
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static mode_t
file_mode(const char *suffix)
{
	struct stat sb;
	char p[160];

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	ck_assert_int_eq(stat(p, &sb), 0);
	return sb.st_mode & 07777;
}

static int
add(const char *name, const char *a1, const char *a2, const char *b1, const char *b2)
{
	const char *aliases[2] = { a1, a2 }, *backends[2] = { b1, b2 };

	return store_route_add(st, name, aliases, (a1 != NULL) + (a2 != NULL), backends,
	    (b1 != NULL) + (b2 != NULL), NULL);
}

static void
get(const char *name, struct store_route *r)
{
	ck_assert_int_eq(store_route_get(st, name, r), STORE_OK);
	ck_assert_str_eq(r->name, name);
}

START_TEST(open_empty)
{
	mode_t old = umask(0);

	open_store();
	umask(old);
	ck_assert_int_ge(store_schema_version(), 1);
	ck_assert_int_eq(raw_int("PRAGMA user_version"), store_schema_version());
	ck_assert_int_eq(raw_is("PRAGMA journal_mode", "wal"), 1);
	ck_assert_int_eq(file_mode(""), 0600);
	ck_assert_int_eq(store_route_count(st), 0);
	/* The write-ahead log made by the first change has the file's mode. */
	ck_assert_int_eq(add("a.example.com", NULL, NULL, NULL, NULL), STORE_OK);
	ck_assert_int_eq(file_mode("-wal"), 0600);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM hosts"), 1);
}
END_TEST

START_TEST(reopen_is_noop)
{
	int64_t objects;

	open_store();
	ck_assert_int_eq(add("a.example.com", "www.a.example.com", NULL, "127.0.0.1:80", NULL),
	    STORE_OK);
	objects = raw_int("SELECT count(*) FROM sqlite_schema");
	reopen_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), store_schema_version());
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema"), objects);
	ck_assert_int_eq(store_route_count(st), 1);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM hosts"), 2);
}
END_TEST

START_TEST(future_version_refused)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_version() + 2);
	raw_exec(sql);
	ck_assert_int_eq(store_open(path, &st), STORE_ERR);
	ck_assert_ptr_null(st);
	ck_assert_int_eq(raw_int("PRAGMA user_version"), store_schema_version() + 2);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema"), 0);
	ck_assert_int_eq(raw_is("PRAGMA journal_mode", "delete"), 1);
}
END_TEST

/* A rollback: the store one version ahead (a column added with a default) is used as is. */
START_TEST(one_version_ahead_used)
{
	char sql[64];

	open_store();
	ck_assert_int_eq(add("a.example.com", NULL, NULL, "127.0.0.1:80", NULL), STORE_OK);
	store_close(st);
	st = NULL;
	raw_exec("ALTER TABLE routes ADD COLUMN next_version_setting INTEGER DEFAULT 7");
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_version() + 1);
	raw_exec(sql);
	ck_assert_int_eq(store_open(path, &st), STORE_OK);
	ck_assert_int_eq(store_route_count(st), 1);
	ck_assert_int_eq(add("b.example.com", NULL, NULL, "127.0.0.1:81", NULL), STORE_OK);
	ck_assert_int_eq(raw_int("PRAGMA user_version"), store_schema_version() + 1);
	ck_assert_int_eq(raw_int("SELECT next_version_setting FROM routes WHERE name = "
	    "'b.example.com'"), 7);
}
END_TEST

/* The hand-over's guarantee: a read-only store refuses every write, reads go on. */
START_TEST(readonly_refuses_writes)
{
	struct store_route r;

	open_store();
	ck_assert_int_eq(add("a.example.com", NULL, NULL, "127.0.0.1:80", NULL), STORE_OK);
	ck_assert_int_eq(store_set_readonly(st, 1), 0);
	ck_assert_int_ne(add("b.example.com", NULL, NULL, "127.0.0.1:81", NULL), STORE_OK);
	get("a.example.com", &r);
	store_route_free(&r);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes"), 1);
	ck_assert_int_eq(store_set_readonly(st, 0), 0);
	ck_assert_int_eq(add("b.example.com", NULL, NULL, "127.0.0.1:81", NULL), STORE_OK);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes"), 2);
}
END_TEST

START_TEST(loose_mode_tightened)
{
	raw_exec("PRAGMA user_version = 0");
	ck_assert_int_eq(chmod(path, 0644), 0);
	open_store();
	ck_assert_int_eq(file_mode(""), 0600);
}
END_TEST

START_TEST(route_add_get_rm)
{
	struct store_route r;

	open_store();
	ck_assert_int_eq(add("app.example.com", "www.app.example.com", "*.app.example.com",
	    "127.0.0.1:3000", "[::1]:3001"), STORE_OK);
	get("app.example.com", &r);
	ck_assert_int_gt(r.id, 0);
	ck_assert_int_gt(r.name_id, 0);
	ck_assert_int_gt(r.created, 1600000000);
	ck_assert_uint_eq(r.naliases, 2);
	/* Sorted by name: '*' sorts before 'w'. */
	ck_assert_str_eq(r.aliases[0], "*.app.example.com");
	ck_assert_str_eq(r.aliases[1], "www.app.example.com");
	ck_assert_int_ne(r.alias_ids[0], r.alias_ids[1]);
	ck_assert_int_ne(r.alias_ids[0], r.name_id);
	ck_assert_uint_eq(r.nbackends, 2);
	ck_assert_str_eq(r.backends[0], "127.0.0.1:3000");
	ck_assert_str_eq(r.backends[1], "[::1]:3001");
	ck_assert_int_ne(r.backend_ids[0], r.backend_ids[1]);
	store_route_free(&r);
	ck_assert_ptr_null(r.name);

	ck_assert_int_eq(raw_int("SELECT kind FROM hosts WHERE name = 'app.example.com'"),
	    SNAP_HOST_EXACT);
	ck_assert_int_eq(raw_int("SELECT kind FROM hosts WHERE name = 'www.app.example.com'"),
	    SNAP_HOST_ALIAS);
	ck_assert_int_eq(raw_int("SELECT kind FROM hosts WHERE name = '*.app.example.com'"),
	    SNAP_HOST_WILDCARD);

	/* Only the canonical name finds a route. */
	ck_assert_int_eq(store_route_get(st, "www.app.example.com", &r), STORE_ENOENT);
	ck_assert_int_eq(store_route_get(st, "nope.example.com", &r), STORE_ENOENT);
	ck_assert_int_eq(store_route_count(st), 1);
	ck_assert_int_eq(store_route_rm(st, "app.example.com"), STORE_OK);
	ck_assert_int_eq(store_route_count(st), 0);
	ck_assert_int_eq(store_route_get(st, "app.example.com", &r), STORE_ENOENT);
}
END_TEST

START_TEST(route_without_backends_and_wildcard_name)
{
	struct store_route r;

	open_store();
	ck_assert_int_eq(add("*.example.com", NULL, NULL, NULL, NULL), STORE_OK);
	get("*.example.com", &r);
	ck_assert_uint_eq(r.naliases, 0);
	ck_assert_uint_eq(r.nbackends, 0);
	ck_assert_int_gt(r.name_id, 0);
	store_route_free(&r);
	ck_assert_int_eq(raw_int("SELECT kind FROM hosts WHERE name = '*.example.com'"),
	    SNAP_HOST_WILDCARD);
}
END_TEST

START_TEST(alias_add_rm)
{
	struct store_route r;

	open_store();
	ck_assert_int_eq(add("a.example.com", NULL, NULL, NULL, NULL), STORE_OK);
	ck_assert_int_eq(add("b.example.com", "www.b.example.com", NULL, NULL, NULL), STORE_OK);
	ck_assert_int_eq(store_alias_add(st, "a.example.com", "z.example.com"), STORE_OK);
	ck_assert_int_eq(store_alias_add(st, "a.example.com", "*.a.example.com"), STORE_OK);
	get("a.example.com", &r);
	ck_assert_uint_eq(r.naliases, 2);
	ck_assert_str_eq(r.aliases[0], "*.a.example.com");
	ck_assert_str_eq(r.aliases[1], "z.example.com");
	store_route_free(&r);

	ck_assert_int_eq(store_alias_rm(st, "a.example.com", "z.example.com"), STORE_OK);
	get("a.example.com", &r);
	ck_assert_uint_eq(r.naliases, 1);
	ck_assert_str_eq(r.aliases[0], "*.a.example.com");
	store_route_free(&r);
	/* The name is free again, for any route. */
	ck_assert_int_eq(store_alias_add(st, "b.example.com", "z.example.com"), STORE_OK);
	get("b.example.com", &r);
	ck_assert_uint_eq(r.naliases, 2);
	ck_assert_str_eq(r.aliases[0], "www.b.example.com");
	ck_assert_str_eq(r.aliases[1], "z.example.com");
	store_route_free(&r);
}
END_TEST

START_TEST(alias_errors)
{
	open_store();
	ck_assert_int_eq(add("a.example.com", "www.a.example.com", NULL, NULL, NULL), STORE_OK);
	ck_assert_int_eq(add("b.example.com", "www.b.example.com", NULL, NULL, NULL), STORE_OK);
	/* Names taken by any route, as canonical name or alias. */
	ck_assert_int_eq(store_alias_add(st, "a.example.com", "b.example.com"), STORE_EEXIST);
	ck_assert_int_eq(store_alias_add(st, "a.example.com", "www.b.example.com"), STORE_EEXIST);
	ck_assert_int_eq(store_alias_add(st, "a.example.com", "www.a.example.com"), STORE_EEXIST);
	ck_assert_int_eq(store_alias_add(st, "a.example.com", "a.example.com"), STORE_EEXIST);
	ck_assert_int_eq(store_alias_add(st, "c.example.com", "x.example.com"), STORE_ENOENT);
	/* Removing: the canonical name, another route's alias, a missing one. */
	ck_assert_int_eq(store_alias_rm(st, "a.example.com", "a.example.com"), STORE_EINVAL);
	ck_assert_int_eq(store_alias_rm(st, "a.example.com", "www.b.example.com"), STORE_ENOENT);
	ck_assert_int_eq(store_alias_rm(st, "a.example.com", "b.example.com"), STORE_ENOENT);
	ck_assert_int_eq(store_alias_rm(st, "a.example.com", "x.example.com"), STORE_ENOENT);
	ck_assert_int_eq(store_alias_rm(st, "c.example.com", "www.a.example.com"), STORE_ENOENT);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM hosts"), 4);
}
END_TEST

START_TEST(route_add_errors)
{
	struct store_route r;
	const char *dup_aliases[] = { "x.example.com", "y.example.com", "x.example.com" };

	open_store();
	ck_assert_int_eq(add("a.example.com", "www.a.example.com", NULL, "127.0.0.1:1", NULL),
	    STORE_OK);
	/* Same canonical name; a name that is another route's alias, or its name. */
	ck_assert_int_eq(add("a.example.com", NULL, NULL, NULL, NULL), STORE_EEXIST);
	ck_assert_int_eq(add("www.a.example.com", NULL, NULL, NULL, NULL), STORE_EEXIST);
	ck_assert_int_eq(add("b.example.com", "a.example.com", NULL, NULL, NULL), STORE_EEXIST);
	ck_assert_int_eq(add("b.example.com", "www.a.example.com", NULL, NULL, NULL), STORE_EEXIST);
	/* Repeated within the call. */
	ck_assert_int_eq(store_route_add(st, "b.example.com", dup_aliases, 3, NULL, 0, NULL),
	    STORE_EEXIST);
	ck_assert_int_eq(add("b.example.com", "b.example.com", NULL, NULL, NULL), STORE_EEXIST);
	ck_assert_int_eq(add("b.example.com", "x.example.com", NULL, "127.0.0.1:2", "127.0.0.1:2"),
	    STORE_EEXIST);
	/* A backend of another route is fine. */
	ck_assert_int_eq(add("c.example.com", NULL, NULL, "127.0.0.1:1", NULL), STORE_OK);
	/* Values the schema refuses. */
	ck_assert_int_eq(add("", NULL, NULL, NULL, NULL), STORE_EINVAL);

	/* Nothing of the failed calls was kept: all or nothing. */
	ck_assert_int_eq(store_route_count(st), 2);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM hosts"), 3);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM backends"), 2);
	ck_assert_int_eq(store_route_get(st, "b.example.com", &r), STORE_ENOENT);
	ck_assert_int_eq(add("b.example.com", "x.example.com", "y.example.com", NULL, NULL),
	    STORE_OK);
}
END_TEST

START_TEST(backend_add_rm_order)
{
	struct store_route r;

	open_store();
	ck_assert_int_eq(add("a.example.com", NULL, NULL, "10.0.0.3:80", "10.0.0.1:80"), STORE_OK);
	ck_assert_int_eq(store_backend_add(st, "a.example.com", "10.0.0.2:80"), STORE_OK);
	get("a.example.com", &r);
	ck_assert_uint_eq(r.nbackends, 3);
	ck_assert_str_eq(r.backends[0], "10.0.0.3:80");
	ck_assert_str_eq(r.backends[1], "10.0.0.1:80");
	ck_assert_str_eq(r.backends[2], "10.0.0.2:80");
	store_route_free(&r);

	ck_assert_int_eq(store_backend_rm(st, "a.example.com", "10.0.0.1:80"), STORE_OK);
	ck_assert_int_eq(store_backend_add(st, "a.example.com", "10.0.0.1:80"), STORE_OK);
	get("a.example.com", &r);
	ck_assert_uint_eq(r.nbackends, 3);
	ck_assert_str_eq(r.backends[0], "10.0.0.3:80");
	ck_assert_str_eq(r.backends[1], "10.0.0.2:80");
	ck_assert_str_eq(r.backends[2], "10.0.0.1:80");
	store_route_free(&r);

	ck_assert_int_eq(store_backend_rm(st, "a.example.com", "10.0.0.3:80"), STORE_OK);
	ck_assert_int_eq(store_backend_rm(st, "a.example.com", "10.0.0.2:80"), STORE_OK);
	ck_assert_int_eq(store_backend_rm(st, "a.example.com", "10.0.0.1:80"), STORE_OK);
	get("a.example.com", &r);
	ck_assert_uint_eq(r.nbackends, 0);
	store_route_free(&r);
}
END_TEST

/* Workers key state by store ids: removing the newest row must not free its id. */
START_TEST(ids_not_reused)
{
	struct store_route r;
	int64_t route, alias, backend;

	open_store();
	ck_assert_int_eq(add("a.example.com", "www.a.example.com", NULL, "10.0.0.1:80", NULL),
	    STORE_OK);
	get("a.example.com", &r);
	route = r.id;
	alias = r.alias_ids[0];
	backend = r.backend_ids[0];
	store_route_free(&r);
	ck_assert_int_eq(store_backend_rm(st, "a.example.com", "10.0.0.1:80"), STORE_OK);
	ck_assert_int_eq(store_backend_add(st, "a.example.com", "10.0.0.2:80"), STORE_OK);
	ck_assert_int_eq(store_alias_rm(st, "a.example.com", "www.a.example.com"), STORE_OK);
	ck_assert_int_eq(store_alias_add(st, "a.example.com", "x.a.example.com"), STORE_OK);
	get("a.example.com", &r);
	ck_assert_int_gt(r.backend_ids[0], backend);
	ck_assert_int_gt(r.alias_ids[0], alias);
	store_route_free(&r);
	ck_assert_int_eq(store_route_rm(st, "a.example.com"), STORE_OK);
	reopen_store();
	ck_assert_int_eq(add("a.example.com", NULL, NULL, NULL, NULL), STORE_OK);
	get("a.example.com", &r);
	ck_assert_int_gt(r.id, route);
	store_route_free(&r);
}
END_TEST

START_TEST(backend_errors)
{
	open_store();
	ck_assert_int_eq(add("a.example.com", NULL, NULL, "10.0.0.1:80", NULL), STORE_OK);
	ck_assert_int_eq(add("b.example.com", NULL, NULL, "10.0.0.2:80", NULL), STORE_OK);
	ck_assert_int_eq(store_backend_add(st, "a.example.com", "10.0.0.1:80"), STORE_EEXIST);
	ck_assert_int_eq(store_backend_add(st, "c.example.com", "10.0.0.1:80"), STORE_ENOENT);
	ck_assert_int_eq(store_backend_rm(st, "a.example.com", "10.0.0.2:80"), STORE_ENOENT);
	ck_assert_int_eq(store_backend_rm(st, "a.example.com", "10.0.0.9:80"), STORE_ENOENT);
	ck_assert_int_eq(store_backend_rm(st, "c.example.com", "10.0.0.1:80"), STORE_ENOENT);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM backends"), 2);
}
END_TEST

START_TEST(route_rm_cascades)
{
	open_store();
	ck_assert_int_eq(add("a.example.com", "www.a.example.com", "*.a.example.com",
	    "10.0.0.1:80", "10.0.0.2:80"), STORE_OK);
	ck_assert_int_eq(add("b.example.com", "www.b.example.com", NULL, "10.0.0.1:80", NULL),
	    STORE_OK);
	ck_assert_int_eq(store_route_rm(st, "www.a.example.com"), STORE_ENOENT);
	ck_assert_int_eq(store_route_rm(st, "a.example.com"), STORE_OK);
	ck_assert_int_eq(store_route_rm(st, "a.example.com"), STORE_ENOENT);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM hosts"), 2);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM backends"), 1);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM hosts h JOIN routes r ON r.id = h.route_id "
	    "WHERE r.name = 'b.example.com'"), 2);
	/* Its names are free again. */
	ck_assert_int_eq(add("c.example.com", "www.a.example.com", "a.example.com", NULL, NULL),
	    STORE_OK);
}
END_TEST

START_TEST(generation_counter)
{
	uint64_t g1, g2, g3;

	open_store();
	ck_assert_int_eq(store_next_generation(st, &g1), STORE_OK);
	ck_assert_int_eq(store_next_generation(st, &g2), STORE_OK);
	ck_assert_uint_eq(g1, 1);
	ck_assert_uint_eq(g2, g1 + 1);
	reopen_store();
	ck_assert_int_eq(store_next_generation(st, &g3), STORE_OK);
	ck_assert_uint_eq(g3, g2 + 1);
}
END_TEST

#define MANY 3000

struct walk {
	int first;	/* number of the first route expected */
	int seen;
	int stop_at;
	int bad;
};

/* Route i is "r<i>.example.com" with i % 3 aliases and i % 4 backends. */
static void
many_name(char *buf, size_t len, int i)
{
	snprintf(buf, len, "r%05d.example.com", i);
}

static int
walk_route(void *arg, const struct store_route *r)
{
	struct walk *w = arg;
	int i = w->first + w->seen;
	char want[64];
	size_t k;

	many_name(want, sizeof(want), i);
	if (strcmp(r->name, want) != 0 || r->naliases != (size_t)(i % 3) ||
	    r->nbackends != (size_t)(i % 4) || r->name_id <= 0)
		w->bad++;
	for (k = 0; k < r->naliases && k < 2; k++) {
		snprintf(want, sizeof(want), "%c.r%05d.example.com", (int)('a' + k), i);
		if (strcmp(r->aliases[k], want) != 0)
			w->bad++;
	}
	for (k = 0; k < r->nbackends && k < 3; k++) {
		/* Added in the order 3, 2, 1: position order, not address order. */
		snprintf(want, sizeof(want), "10.0.%d.%d:80", i % 256, 3 - (int)k);
		if (strcmp(r->backends[k], want) != 0)
			w->bad++;
	}
	w->seen++;
	return w->seen == w->stop_at ? 42 : 0;
}

static void
add_many(void)
{
	char name[64], al[2][64], be[3][64];
	const char *ap[2] = { al[0], al[1] }, *bp[3] = { be[0], be[1], be[2] };
	int i, k;

	/* Added in reverse, so name order is not insertion order. */
	for (i = MANY - 1; i >= 0; i--) {
		many_name(name, sizeof(name), i);
		for (k = 0; k < 2; k++)
			snprintf(al[k], sizeof(al[k]), "%c.r%05d.example.com", 'a' + k, i);
		for (k = 0; k < 3; k++)
			snprintf(be[k], sizeof(be[k]), "10.0.%d.%d:80", i % 256, 3 - k);
		ck_assert_int_eq(store_route_add(st, name, ap, (size_t)(i % 3), bp, (size_t)(i % 4), NULL),
		    STORE_OK);
	}
}

START_TEST(foreach_many)
{
	struct walk w = { 0, 0, -1, 0 };

	open_store();
	add_many();
	ck_assert_int_eq(store_route_count(st), MANY);
	ck_assert_int_eq(store_route_foreach(st, walk_route, &w), 0);
	ck_assert_int_eq(w.seen, MANY);
	ck_assert_int_eq(w.bad, 0);

	/* A non-zero return stops the walk and is passed through. */
	memset(&w, 0, sizeof(w));
	w.stop_at = 10;
	ck_assert_int_eq(store_route_foreach(st, walk_route, &w), 42);
	ck_assert_int_eq(w.seen, 10);
	ck_assert_int_eq(w.bad, 0);

	/* The store is usable afterwards: the read transaction ended. */
	ck_assert_int_eq(store_route_rm(st, "r00000.example.com"), STORE_OK);
	memset(&w, 0, sizeof(w));
	w.first = 1;
	w.stop_at = -1;
	ck_assert_int_eq(store_route_foreach(st, walk_route, &w), 0);
	ck_assert_int_eq(w.seen, MANY - 1);
	ck_assert_int_eq(w.bad, 0);
}
END_TEST

static int
count_route(void *arg, const struct store_route *r)
{
	(*(int *)arg)++;
	return 0;
}

START_TEST(foreach_empty)
{
	int n = 0;

	open_store();
	ck_assert_int_eq(store_route_foreach(st, count_route, &n), 0);
	ck_assert_int_eq(n, 0);
}
END_TEST

/* --- per-route settings (haloyd-ctl route set) */

static void
assert_default_settings(const struct store_settings *set)
{
	ck_assert_int_eq(set->connect_ms, STORE_DEFAULT);
	ck_assert_int_eq(set->response_ms, STORE_DEFAULT);
	ck_assert_int_eq(set->idle_ms, STORE_DEFAULT);
	ck_assert_int_eq(set->upgrade_ms, STORE_DEFAULT);
	ck_assert_int_eq(set->max_body, STORE_DEFAULT);
	ck_assert_int_eq(set->rate_rpm, STORE_DEFAULT);
	ck_assert_int_eq(set->rate_burst, STORE_DEFAULT);
	ck_assert_uint_eq(set->flags, 0);
	ck_assert_uint_eq(set->challenge, STORE_CHAL_AUTO);
}

static void
assert_settings(const struct store_settings *got, const struct store_settings *want)
{
	ck_assert_int_eq(got->connect_ms, want->connect_ms);
	ck_assert_int_eq(got->response_ms, want->response_ms);
	ck_assert_int_eq(got->idle_ms, want->idle_ms);
	ck_assert_int_eq(got->upgrade_ms, want->upgrade_ms);
	ck_assert_int_eq(got->max_body, want->max_body);
	ck_assert_int_eq(got->rate_rpm, want->rate_rpm);
	ck_assert_int_eq(got->rate_burst, want->rate_burst);
	ck_assert_uint_eq(got->flags, want->flags);
	ck_assert_uint_eq(got->challenge, want->challenge);
	ck_assert_int_eq(got->health_interval_ms, want->health_interval_ms);
	ck_assert_int_eq(got->health_timeout_ms, want->health_timeout_ms);
	ck_assert_int_eq(got->health_rise, want->health_rise);
	ck_assert_int_eq(got->health_fall, want->health_fall);
	if (want->health_path == NULL)
		ck_assert_ptr_null(got->health_path);
	else
		ck_assert_str_eq(got->health_path, want->health_path);
}

static const struct store_settings all_default = { STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT,
    STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, 0, 0, NULL, NULL, STORE_CHAL_AUTO, 0,
    STORE_DEFAULT, NULL, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT };

static char health_path[] = "/healthz?deep=1";

START_TEST(route_set_get)
{
	const struct store_settings set = { 2000, 300000, 90000, 7200000, 10 << 20, 600, 20,
	    SNAP_ROUTE_NO_HTTPS_REDIRECT | SNAP_ROUTE_HSTS | SNAP_ROUTE_RATE_NODELAY |
	    SNAP_ROUTE_BALANCE_LIF, 0, NULL, NULL, STORE_CHAL_TLSALPN01, 0, STORE_DEFAULT,
	    health_path, 1500, 700, 4, 5 };
	struct store_settings half = set;
	struct store_route r;

	open_store();
	ck_assert_int_eq(add("app.example.com", "www.app.example.com", NULL, "127.0.0.1:1", NULL),
	    STORE_OK);
	get("app.example.com", &r);
	assert_default_settings(&r.set);
	store_route_free(&r);

	ck_assert_int_eq(store_route_set(st, "app.example.com", &set), STORE_OK);
	get("app.example.com", &r);
	assert_settings(&r.set, &set);
	ck_assert_uint_eq(r.naliases, 1);
	ck_assert_uint_eq(r.nbackends, 1);
	store_route_free(&r);
	ck_assert_int_eq(raw_int("SELECT upgrade_ms FROM routes"), 7200000);
	ck_assert_int_eq(raw_int("SELECT flags FROM routes"), 3);
	/* nodelay is a column of its own, as compress; rate 0 ("off") is a value. */
	ck_assert_int_eq(raw_int("SELECT rate_nodelay FROM routes WHERE rate_rpm = 600 AND "
	    "rate_burst = 20"), 1);
	/* Schema 11: the health check and balance_lif, columns of their own. */
	ck_assert_int_eq(raw_int("SELECT balance_lif FROM routes WHERE health_path = "
	    "'/healthz?deep=1' AND health_interval_ms = 1500 AND health_fall = 5"), 1);

	/* STORE_DEFAULT goes back to NULL; max_body 0 (no limit) is a value. */
	half.response_ms = STORE_DEFAULT;
	half.upgrade_ms = STORE_DEFAULT;
	half.max_body = 0;
	half.rate_rpm = 0;
	half.rate_burst = STORE_DEFAULT;
	half.flags = SNAP_ROUTE_HSTS;
	half.health_path = NULL;
	half.health_interval_ms = STORE_DEFAULT;
	half.health_rise = 0;	/* as a struct filled without it: the default too */
	ck_assert_int_eq(store_route_set(st, "app.example.com", &half), STORE_OK);
	half.health_rise = STORE_DEFAULT;
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes WHERE response_ms IS NULL AND "
	    "upgrade_ms IS NULL AND max_body = 0 AND connect_ms = 2000"), 1);
	reopen_store();
	get("app.example.com", &r);
	assert_settings(&r.set, &half);
	store_route_free(&r);

	ck_assert_int_eq(store_route_set(st, "app.example.com", &all_default), STORE_OK);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes WHERE connect_ms IS NULL AND "
	    "response_ms IS NULL AND idle_ms IS NULL AND upgrade_ms IS NULL AND max_body IS NULL "
	    "AND flags = 0"), 1);
}
END_TEST

/* dns-01 is a column of its own (schema 14): it reads back, and another type clears it. */
START_TEST(route_set_dns01)
{
	struct store_settings set = { STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT,
	    STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, 0, 0, NULL, NULL, STORE_CHAL_DNS01, 0,
	    STORE_DEFAULT, NULL, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT };
	struct store_route r;

	open_store();
	ck_assert_int_eq(add("*.example.com", NULL, NULL, NULL, NULL), STORE_OK);
	ck_assert_int_eq(store_route_set(st, "*.example.com", &set), STORE_OK);
	get("*.example.com", &r);
	ck_assert_uint_eq(r.set.challenge, STORE_CHAL_DNS01);
	store_route_free(&r);
	set.challenge = STORE_CHAL_TLSALPN01;
	ck_assert_int_eq(store_route_set(st, "*.example.com", &set), STORE_OK);
	get("*.example.com", &r);
	ck_assert_uint_eq(r.set.challenge, STORE_CHAL_TLSALPN01);
	store_route_free(&r);
	set.challenge = STORE_CHAL_AUTO;
	ck_assert_int_eq(store_route_set(st, "*.example.com", &set), STORE_OK);
	get("*.example.com", &r);
	ck_assert_uint_eq(r.set.challenge, STORE_CHAL_AUTO);
	ck_assert_int_eq(raw_int("SELECT challenge_dns01 FROM routes"), 0);
	store_route_free(&r);
}
END_TEST

START_TEST(route_set_refused)
{
	const struct store_settings good = { 1000, 2000, 3000, 4000, 5000, STORE_DEFAULT,
	    STORE_DEFAULT, SNAP_ROUTE_HSTS, 0, NULL, NULL, STORE_CHAL_HTTP01, 0, STORE_DEFAULT,
	    NULL, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT };
	struct store_settings bad;
	struct store_route r;
	int i;

	open_store();
	ck_assert_int_eq(add("app.example.com", NULL, NULL, NULL, NULL), STORE_OK);
	ck_assert_int_eq(store_route_set(st, "app.example.com", &good), STORE_OK);
	ck_assert_int_eq(store_route_set(st, "nope.example.com", &good), STORE_ENOENT);
	ck_assert_int_eq(store_route_set(st, "*.app.example.com", &good), STORE_ENOENT);

	/* Each check of the schema, one value at a time; nothing changes. */
	for (i = 0; i < 13; i++) {
		bad = good;
		switch (i) {
		case 0: bad.connect_ms = 0; break;
		case 1: bad.response_ms = -5; break;
		case 2: bad.idle_ms = 0; break;
		case 3: bad.upgrade_ms = 0; break;
		case 4: bad.upgrade_ms = (int64_t)UINT32_MAX + 1; break;
		case 5: bad.max_body = -2; break;
		case 6: bad.flags = SNAP_ROUTE_FLAGS_ALL + 1; break;
		case 7: bad.flags = UINT32_MAX; break;
		case 8: bad.connect_ms = INT64_MIN; break;
		case 9: bad.rate_rpm = SNAP_RATE_RPM_MAX + 1; break;
		case 10: bad.rate_burst = SNAP_RATE_BURST_MAX + 1; break;
		case 11: bad.rate_rpm = -5; break;
		case 12: bad.challenge = 4; break;
		}
		ck_assert_msg(store_route_set(st, "app.example.com", &bad) == STORE_EINVAL,
		    "bad value %d accepted", i);
	}
	get("app.example.com", &r);
	assert_settings(&r.set, &good);
	store_route_free(&r);
}
END_TEST

/* The compress switch is a column of its own: it round-trips, and the flags column keeps its CHECK. */
START_TEST(route_set_compress)
{
	const struct store_settings on = { STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT,
	    STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT,
	    SNAP_ROUTE_HSTS | SNAP_ROUTE_COMPRESS, 0, NULL, NULL, STORE_CHAL_AUTO, 0, STORE_DEFAULT,
	    NULL, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT };
	struct store_settings off = on;
	struct store_route r;

	open_store();
	ck_assert_int_eq(add("app.example.com", NULL, NULL, NULL, NULL), STORE_OK);
	ck_assert_int_eq(store_route_set(st, "app.example.com", &on), STORE_OK);
	ck_assert_int_eq(raw_int("SELECT compress FROM routes"), 1);
	ck_assert_int_eq(raw_int("SELECT flags FROM routes"), SNAP_ROUTE_HSTS);
	get("app.example.com", &r);
	assert_settings(&r.set, &on);
	store_route_free(&r);
	off.flags = SNAP_ROUTE_HSTS;
	ck_assert_int_eq(store_route_set(st, "app.example.com", &off), STORE_OK);
	ck_assert_int_eq(raw_int("SELECT compress FROM routes"), 0);
	get("app.example.com", &r);
	assert_settings(&r.set, &off);
	store_route_free(&r);
}
END_TEST

struct walk_settings {
	int seen;
	int bad;
};

static int
walk_settings_route(void *arg, const struct store_route *r)
{
	struct walk_settings *w = arg;
	int64_t want = r->name[0] == 'b' ? 1234 : STORE_DEFAULT;

	w->seen++;
	if (r->set.connect_ms != want || r->set.flags != (r->name[0] == 'b' ? 2u : 0u))
		w->bad++;
	return 0;
}

/* foreach gives every route its own settings, whatever its host rows. */
START_TEST(route_set_foreach)
{
	const struct store_settings set = { 1234, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT,
	    STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, SNAP_ROUTE_HSTS, 0, NULL, NULL,
	    STORE_CHAL_AUTO, 0, STORE_DEFAULT,
	    NULL, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT };
	struct walk_settings w = { 0, 0 };

	open_store();
	ck_assert_int_eq(add("a.example.com", "a1.example.com", "a2.example.com", NULL, NULL),
	    STORE_OK);
	ck_assert_int_eq(add("b.example.com", "b1.example.com", "b2.example.com", "127.0.0.1:1",
	    NULL), STORE_OK);
	ck_assert_int_eq(add("c.example.com", NULL, NULL, NULL, NULL), STORE_OK);
	ck_assert_int_eq(store_route_set(st, "b.example.com", &set), STORE_OK);
	ck_assert_int_eq(store_route_foreach(st, walk_settings_route, &w), 0);
	ck_assert_int_eq(w.seen, 3);
	ck_assert_int_eq(w.bad, 0);
}
END_TEST

/*
 * A store as schema version 1 left it (migration 1 verbatim), with one
 * route that already had a connect_ms: version 2 keeps it and its settings.
 */
static const char schema_v1[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO meta(key, value) VALUES ('generation', 7);"
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
	"CREATE INDEX hosts_route ON hosts(route_id, name);"
	"CREATE TABLE backends ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  route_id INTEGER NOT NULL REFERENCES routes(id) ON DELETE CASCADE,"
	"  addr TEXT NOT NULL CHECK (length(addr) BETWEEN 1 AND 63),"
	"  position INTEGER NOT NULL CHECK (position >= 0),"
	"  UNIQUE (route_id, addr)"
	");"
	"CREATE UNIQUE INDEX backends_route_position ON backends(route_id, position);"
	"INSERT INTO routes(id, name, created, connect_ms, max_body) "
	"  VALUES (5, 'old.example.com', 1700000000, 1500, 0);"
	"INSERT INTO hosts(id, name, route_id, kind) VALUES (8, 'old.example.com', 5, 1);"
	"INSERT INTO hosts(id, name, route_id, kind) VALUES (9, 'www.old.example.com', 5, 2);"
	"INSERT INTO backends(id, route_id, addr, position) VALUES (3, 5, '127.0.0.1:8080', 0);"
	"PRAGMA user_version = 1;";

START_TEST(migrate_from_v1_keeps_routes)
{
	const struct store_settings set = { 1500, STORE_DEFAULT, STORE_DEFAULT, 60000, 0,
	    STORE_DEFAULT, STORE_DEFAULT, SNAP_ROUTE_NO_HTTPS_REDIRECT, 0, NULL, NULL, STORE_CHAL_AUTO, 0, STORE_DEFAULT,
	    NULL, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT };
	struct store_route r;
	uint64_t gen;

	raw_exec(schema_v1);
	open_store();
	ck_assert_int_ge(store_schema_version(), 2);
	ck_assert_int_eq(raw_int("PRAGMA user_version"), store_schema_version());
	get("old.example.com", &r);
	ck_assert_int_eq(r.id, 5);
	ck_assert_int_eq(r.name_id, 8);
	ck_assert_int_eq(r.created, 1700000000);
	ck_assert_uint_eq(r.naliases, 1);
	ck_assert_str_eq(r.aliases[0], "www.old.example.com");
	ck_assert_uint_eq(r.nbackends, 1);
	ck_assert_str_eq(r.backends[0], "127.0.0.1:8080");
	ck_assert_int_eq(r.set.connect_ms, 1500);
	ck_assert_int_eq(r.set.max_body, 0);
	ck_assert_int_eq(r.set.upgrade_ms, STORE_DEFAULT);
	ck_assert_uint_eq(r.set.flags, 0);
	ck_assert_uint_eq(r.set.proto, SNAP_PROTO_HTTP1);
	ck_assert_ptr_null(r.set.backend_ca);
	store_route_free(&r);
	ck_assert_int_eq(store_next_generation(st, &gen), STORE_OK);
	ck_assert_uint_eq(gen, 8);

	ck_assert_int_eq(store_route_set(st, "old.example.com", &set), STORE_OK);
	reopen_store();
	get("old.example.com", &r);
	assert_settings(&r.set, &set);
	store_route_free(&r);
	/* New routes after the migration start with every setting at its default. */
	ck_assert_int_eq(add("new.example.com", NULL, NULL, NULL, NULL), STORE_OK);
	get("new.example.com", &r);
	assert_default_settings(&r.set);
	ck_assert_int_gt(r.id, 5);
	store_route_free(&r);
}
END_TEST

/* --- backend kinds and balance (schema version 8) */

START_TEST(backend_kinds_and_balance)
{
	const struct store_settings rr = { STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT,
	    STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT,
	    SNAP_ROUTE_BALANCE_RR | SNAP_ROUTE_HSTS, 0, NULL, NULL, STORE_CHAL_AUTO, 0, STORE_DEFAULT,
	    NULL, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT };
	char longest[120];
	struct store_route r;

	/* "unix:" and a 107-byte path: the longest backend text there is. */
	memset(longest, 'p', sizeof(longest));
	memcpy(longest, "unix:/", 6);
	longest[5 + 107] = '\0';
	open_store();
	ck_assert_int_eq(add("app.example.com", NULL, NULL, "unix:/run/app.sock", "tunnel:office"),
	    STORE_OK);
	ck_assert_int_eq(store_backend_add(st, "app.example.com", longest), STORE_OK);
	ck_assert_int_eq(store_backend_add(st, "app.example.com", "tunnel:office"), STORE_EEXIST);
	ck_assert_int_eq(store_route_set(st, "app.example.com", &rr), STORE_OK);
	ck_assert_int_eq(raw_is("SELECT balance FROM routes", "round-robin"), 1);
	ck_assert_int_eq(raw_int("SELECT flags FROM routes"), SNAP_ROUTE_HSTS);
	reopen_store();
	get("app.example.com", &r);
	ck_assert_uint_eq(r.nbackends, 3);
	ck_assert_str_eq(r.backends[0], "unix:/run/app.sock");
	ck_assert_str_eq(r.backends[1], "tunnel:office");
	ck_assert_str_eq(r.backends[2], longest);
	assert_settings(&r.set, &rr);
	store_route_free(&r);
	ck_assert_int_eq(store_backend_rm(st, "app.example.com", "tunnel:office"), STORE_OK);
}
END_TEST

/* Migration 8 rebuilds backends: rows, ids and the AUTOINCREMENT counter survive it. */
START_TEST(migrate_backends_keeps_ids)
{
	struct store_route r;

	raw_exec(schema_v1);
	raw_exec("UPDATE sqlite_sequence SET seq = 41 WHERE name = 'backends';");
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), store_schema_version());
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'backends%'"),
	    1);
	get("old.example.com", &r);
	ck_assert_uint_eq(r.nbackends, 1);
	ck_assert_int_eq(r.backend_ids[0], 3);
	ck_assert_uint_eq(r.set.flags & SNAP_ROUTE_BALANCE_RR, 0);
	store_route_free(&r);
	ck_assert_int_eq(store_backend_add(st, "old.example.com", "unix:/run/new.sock"), STORE_OK);
	ck_assert_int_eq(raw_int("SELECT id FROM backends WHERE addr = 'unix:/run/new.sock'"), 42);
	ck_assert_int_eq(raw_is("SELECT balance FROM routes", "least-in-flight"), 1);
}
END_TEST

/* --- backend protocol and TLS (schema version 6) */

static char test_ca[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

START_TEST(route_backend_proto)
{
	struct store_settings set = all_default;
	char sni[] = "internal.example.net";
	struct store_route r;

	open_store();
	ck_assert_int_eq(add("app.example.com", NULL, NULL, "127.0.0.1:1", NULL), STORE_OK);
	get("app.example.com", &r);
	ck_assert_uint_eq(r.set.proto, SNAP_PROTO_HTTP1);
	ck_assert_ptr_null(r.set.backend_ca);
	ck_assert_ptr_null(r.set.backend_sni);
	store_route_free(&r);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes WHERE proto = 'http1' AND "
	    "backend_verify = 1"), 1);

	set.proto = SNAP_PROTO_HTTPS;
	set.backend_ca = test_ca;
	set.backend_sni = sni;
	set.flags = SNAP_ROUTE_HSTS | SNAP_ROUTE_BACKEND_NO_VERIFY;
	ck_assert_int_eq(store_route_set(st, "app.example.com", &set), STORE_OK);
	/* The no-verify flag is its own column; flags keeps the others. */
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes WHERE proto = 'https' AND "
	    "backend_verify = 0 AND flags = 2 AND backend_sni = 'internal.example.net'"), 1);
	reopen_store();
	get("app.example.com", &r);
	ck_assert_uint_eq(r.set.proto, SNAP_PROTO_HTTPS);
	ck_assert_str_eq(r.set.backend_ca, test_ca);
	ck_assert_str_eq(r.set.backend_sni, "internal.example.net");
	ck_assert_uint_eq(r.set.flags, SNAP_ROUTE_HSTS | SNAP_ROUTE_BACKEND_NO_VERIFY);
	store_route_free(&r);

	set.proto = SNAP_PROTO_H2;
	set.flags = 0;
	ck_assert_int_eq(store_route_set(st, "app.example.com", &set), STORE_OK);
	get("app.example.com", &r);
	ck_assert_uint_eq(r.set.proto, SNAP_PROTO_H2);
	ck_assert_uint_eq(r.set.flags, 0);
	store_route_free(&r);

	/* TLS settings on a plain protocol, an unknown protocol: refused, nothing changes. */
	set.proto = SNAP_PROTO_H2C;
	ck_assert_int_eq(store_route_set(st, "app.example.com", &set), STORE_EINVAL);
	set.backend_ca = NULL;
	ck_assert_int_eq(store_route_set(st, "app.example.com", &set), STORE_EINVAL);
	set.backend_sni = NULL;
	set.flags = SNAP_ROUTE_BACKEND_NO_VERIFY;
	ck_assert_int_eq(store_route_set(st, "app.example.com", &set), STORE_EINVAL);
	set.flags = 0;
	set.proto = SNAP_PROTO__MAX;
	ck_assert_int_eq(store_route_set(st, "app.example.com", &set), STORE_EINVAL);
	get("app.example.com", &r);
	ck_assert_uint_eq(r.set.proto, SNAP_PROTO_H2);
	ck_assert_str_eq(r.set.backend_ca, test_ca);
	store_route_free(&r);

	/* Plain again once the TLS settings are gone. */
	set.proto = SNAP_PROTO_H2C;
	ck_assert_int_eq(store_route_set(st, "app.example.com", &set), STORE_OK);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes WHERE proto = 'h2c' AND "
	    "backend_ca IS NULL AND backend_sni IS NULL AND backend_verify = 1"), 1);
}
END_TEST

/* route add takes the settings in the same transaction: a bad one adds nothing. */
START_TEST(route_add_with_settings)
{
	const char *be[1] = { "127.0.0.1:1" };
	struct store_settings set = all_default;
	char sni[] = "backend.example.net";
	struct store_route r;

	open_store();
	set.proto = SNAP_PROTO_H2;
	set.backend_sni = sni;
	ck_assert_int_eq(store_route_add(st, "a.example.com", NULL, 0, be, 1, &set), STORE_OK);
	get("a.example.com", &r);
	ck_assert_uint_eq(r.set.proto, SNAP_PROTO_H2);
	ck_assert_str_eq(r.set.backend_sni, "backend.example.net");
	ck_assert_uint_eq(r.nbackends, 1);
	store_route_free(&r);

	set.proto = SNAP_PROTO_HTTP1;
	ck_assert_int_eq(store_route_add(st, "b.example.com", NULL, 0, be, 1, &set), STORE_EINVAL);
	ck_assert_int_eq(store_route_get(st, "b.example.com", &r), STORE_ENOENT);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM hosts"), 1);
}
END_TEST

/* store_batch_begin/end (haloyd-ctl apply): many changes, one transaction, all or nothing. */
START_TEST(batch_all_or_nothing)
{
	open_store();
	ck_assert_int_eq(add("keep.example.com", NULL, NULL, "127.0.0.1:1", NULL), STORE_OK);
	/* A failure half-way rolls back the changes before it too. */
	ck_assert_int_eq(store_batch_begin(st), STORE_OK);
	ck_assert_int_eq(store_batch_begin(st), STORE_EINVAL);	/* not nested */
	ck_assert_int_eq(store_route_rm(st, "keep.example.com"), STORE_OK);
	ck_assert_int_eq(add("a.example.com", "www.a.example.com", NULL, "127.0.0.1:2", NULL),
	    STORE_OK);
	ck_assert_int_eq(add("b.example.com", "www.a.example.com", NULL, NULL, NULL), STORE_EEXIST);
	ck_assert_int_eq(store_batch_end(st, STORE_EEXIST), STORE_EEXIST);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes"), 1);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes WHERE name = 'keep.example.com'"), 1);
	/* Nothing is visible to another connection before the end. */
	ck_assert_int_eq(store_batch_begin(st), STORE_OK);
	ck_assert_int_eq(add("a.example.com", NULL, NULL, "127.0.0.1:2", NULL), STORE_OK);
	ck_assert_int_eq(store_alias_add(st, "a.example.com", "www.a.example.com"), STORE_OK);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes"), 1);
	ck_assert_int_eq(store_batch_end(st, STORE_OK), STORE_OK);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes"), 2);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM hosts"), 3);
	/* After the batch, each change commits on its own again. */
	ck_assert_int_eq(store_route_rm(st, "a.example.com"), STORE_OK);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM routes"), 1);
}
END_TEST

Suite *
suite_store(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, open_empty);
	tcase_add_test(tc, reopen_is_noop);
	tcase_add_test(tc, future_version_refused);
	tcase_add_test(tc, one_version_ahead_used);
	tcase_add_test(tc, readonly_refuses_writes);
	tcase_add_test(tc, loose_mode_tightened);
	tcase_add_test(tc, route_add_get_rm);
	tcase_add_test(tc, route_without_backends_and_wildcard_name);
	tcase_add_test(tc, alias_add_rm);
	tcase_add_test(tc, alias_errors);
	tcase_add_test(tc, route_add_errors);
	tcase_add_test(tc, backend_add_rm_order);
	tcase_add_test(tc, backend_errors);
	tcase_add_test(tc, ids_not_reused);
	tcase_add_test(tc, batch_all_or_nothing);
	tcase_add_test(tc, route_rm_cascades);
	tcase_add_test(tc, generation_counter);
	tcase_add_test(tc, foreach_empty);
	tcase_add_test(tc, foreach_many);
	tcase_add_test(tc, route_set_get);
	tcase_add_test(tc, route_set_refused);
	tcase_add_test(tc, route_set_dns01);
	tcase_add_test(tc, route_set_compress);
	tcase_add_test(tc, backend_kinds_and_balance);
	tcase_add_test(tc, migrate_backends_keeps_ids);
	tcase_add_test(tc, route_set_foreach);
	tcase_add_test(tc, migrate_from_v1_keeps_routes);
	tcase_add_test(tc, route_backend_proto);
	tcase_add_test(tc, route_add_with_settings);
	suite_add_tcase(s, tc);
	return s;
}
