/*
 * The SQLite engine of the store (master/db.h): the default, one file in
 * state_dir created 0600, WAL mode, foreign keys on, the schema version in
 * PRAGMA user_version.
 */
#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sqlite3.h>

#include "master/db.h"
#include "share/log.h"

#define DBSQLITE_BUSY_MS 5000

struct dbsqlite {
	struct db base;
	sqlite3 *h;
};

struct dbsqlite_stmt {
	struct db_stmt base;
	sqlite3_stmt *s;
};

#define H(db) (((struct dbsqlite *)(void *)(db))->h)
#define S(st) (((struct dbsqlite_stmt *)(void *)(st))->s)

static int
lite_prepare(struct db *db, const char *sql, struct db_stmt **out)
{
	struct dbsqlite_stmt *ls;

	if ((ls = calloc(1, sizeof(*ls))) == NULL) {
		log_warn("store: calloc");
		return -1;
	}
	ls->base.db = db;
	if (sqlite3_prepare_v3(H(db), sql, -1, SQLITE_PREPARE_PERSISTENT, &ls->s, NULL) != SQLITE_OK) {
		log_warnx("store: prepare %s: %s", sql, sqlite3_errmsg(H(db)));
		sqlite3_finalize(ls->s);
		free(ls);
		return -1;
	}
	*out = &ls->base;
	return 0;
}

static void
lite_finalize(struct db_stmt *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(S(s));
	free(s);
}

static void
lite_reset(struct db_stmt *s)
{
	sqlite3_reset(S(s));
	sqlite3_clear_bindings(S(s));
}

static int
lite_bind_text(struct db_stmt *s, int i, const char *t)
{
	return (t == NULL ? sqlite3_bind_null(S(s), i) :
	    sqlite3_bind_text(S(s), i, t, -1, SQLITE_STATIC)) == SQLITE_OK ? 0 : -1;
}

static int
lite_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	return sqlite3_bind_int64(S(s), i, v) == SQLITE_OK ? 0 : -1;
}

static int
lite_step(struct db_stmt *s)
{
	switch (sqlite3_step(S(s))) {
	case SQLITE_ROW:
		return DB_ROW;
	case SQLITE_DONE:
		return DB_DONE;
	default:
		return DB_FAIL;
	}
}

static int
lite_column_null(struct db_stmt *s, int c)
{
	return sqlite3_column_type(S(s), c) == SQLITE_NULL;
}

static int64_t
lite_column_int64(struct db_stmt *s, int c)
{
	return sqlite3_column_int64(S(s), c);
}

static const char *
lite_column_text(struct db_stmt *s, int c)
{
	return (const char *)sqlite3_column_text(S(s), c);
}

static const char *
lite_sql(struct db_stmt *s)
{
	return sqlite3_sql(S(s));
}

static int64_t
lite_changes(struct db *db)
{
	return sqlite3_changes(H(db));
}

static int64_t
lite_last_id(struct db *db)
{
	return sqlite3_last_insert_rowid(H(db));
}

static int
lite_in_tx(struct db *db)
{
	return !sqlite3_get_autocommit(H(db));
}

static int
lite_exec(struct db *db, const char *script)
{
	return sqlite3_exec(H(db), script, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static enum db_err
lite_err(struct db *db)
{
	switch (sqlite3_extended_errcode(H(db))) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return DB_E_UNIQUE;
	case SQLITE_FULL:
		return DB_E_FULL;
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_CONSTRAINT_NOTNULL:
		return DB_E_INVALID;
	default:
		return DB_E_OTHER;
	}
}

static const char *
lite_errmsg(struct db *db)
{
	return sqlite3_errmsg(H(db));
}

/* Runs a PRAGMA that answers one row and checks the answer is want. */
static int
pragma_expect(sqlite3 *h, const char *sql, const char *want)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *got;
	int rc = -1;

	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
		log_warnx("store: %s: %s", sql, sqlite3_errmsg(h));
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

/* The version is read inside the write transaction: two processes cannot both migrate. */
static int
lite_migration_begin(struct db *db)
{
	return lite_exec(db, "BEGIN IMMEDIATE");
}

static int
lite_version_get(struct db *db, int *v)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(H(db), "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		log_warnx("store: cannot read the schema version: %s", sqlite3_errmsg(H(db)));
		goto out;
	}
	*v = sqlite3_column_int(s, 0);
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

static int
lite_version_set(struct db *db, int v)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	return lite_exec(db, sql);
}

/* WAL is a property of the file: set it only once the schema version says the file is ours. */
static int
lite_migrated(struct db *db)
{
	return pragma_expect(H(db), "PRAGMA journal_mode = WAL", "wal");
}

static void
lite_close(struct db *db)
{
	if (db == NULL)
		return;
	if (sqlite3_close(H(db)) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(H(db)));
	free(db);
}

/*
 * PRAGMA query_only: SQLite itself then refuses every write on this
 * connection (SQLITE_READONLY), whichever code path tries one.
 */
static int
lite_readonly(struct db *db, int on)
{
	if (lite_exec(db, on ? "PRAGMA query_only = ON" : "PRAGMA query_only = OFF") == -1) {
		log_warnx("store: query_only: %s", sqlite3_errmsg(H(db)));
		return -1;
	}
	return pragma_expect(H(db), "PRAGMA query_only", on ? "1" : "0");
}

static const struct db_ops dbsqlite_ops = {
	.name = "sqlite",
	.shared = 0,
	.prepare = lite_prepare,
	.finalize = lite_finalize,
	.reset = lite_reset,
	.bind_text = lite_bind_text,
	.bind_int64 = lite_bind_int64,
	.step = lite_step,
	.column_null = lite_column_null,
	.column_int64 = lite_column_int64,
	.column_text = lite_column_text,
	.sql = lite_sql,
	.changes = lite_changes,
	.last_id = lite_last_id,
	.in_tx = lite_in_tx,
	.exec = lite_exec,
	.err = lite_err,
	.errmsg = lite_errmsg,
	.migration_begin = lite_migration_begin,
	.version_get = lite_version_get,
	.version_set = lite_version_set,
	.migrated = lite_migrated,
	.readonly = lite_readonly,
	.close = lite_close,
};

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

static int
configure_db(sqlite3 *h)
{
	char *err = NULL;

	sqlite3_extended_result_codes(h, 1);
	sqlite3_busy_timeout(h, DBSQLITE_BUSY_MS);
	if (sqlite3_exec(h, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL",
	    NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("store: pragmas: %s", err != NULL ? err : sqlite3_errmsg(h));
		sqlite3_free(err);
		return -1;
	}
	/* Route removal relies on ON DELETE CASCADE: refuse a build without it. */
	return pragma_expect(h, "PRAGMA foreign_keys", "1");
}

struct db *
dbsqlite_open(const char *path)
{
	struct dbsqlite *d;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;

	if (create_file(path) == -1)
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		log_warn("store: calloc");
		return NULL;
	}
	d->base.ops = &dbsqlite_ops;
	if (sqlite3_open_v2(path, &d->h, flags, NULL) != SQLITE_OK) {
		log_warnx("store: cannot open %s: %s", path,
		    d->h != NULL ? sqlite3_errmsg(d->h) : "out of memory");
		goto fail;
	}
	if (configure_db(d->h) == -1)
		goto fail;
	return &d->base;
fail:
	lite_close(&d->base);
	return NULL;
}
