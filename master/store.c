/*
 * The SQLite store's core: opening the file (mode, pragmas, migrations,
 * WAL), the cache of prepared statements, transactions and the helpers
 * every table's file (master/store_*.c) runs its SQL with. SQLite failures
 * are logged here; expected outcomes (a name already taken, a missing row)
 * are only returned.
 */
#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sqlite3.h>

#include "master/schema.h"
#include "master/store.h"
#include "master/storeint.h"
#include "share/log.h"

#define STORE_BUSY_MS	5000

enum tx_stmt { TX_BEGIN, TX_BEGIN_READ, TX_COMMIT, TX_ROLLBACK };

static const char *const store_tx_sql[] = {
	[TX_BEGIN] = "BEGIN IMMEDIATE",
	[TX_BEGIN_READ] = "BEGIN",
	[TX_COMMIT] = "COMMIT",
	[TX_ROLLBACK] = "ROLLBACK",
	NULL
};

static const char *const *const file_sql[STORE_F_MAX] = {
	[STORE_F_TX] = store_tx_sql,
	[STORE_F_ROUTES] = store_routes_sql,
	[STORE_F_META] = store_meta_sql,
	[STORE_F_CERTS] = store_certs_sql,
	[STORE_F_ACME] = store_acme_sql,
	[STORE_F_ONDEMAND] = store_ondemand_sql,
};

/* --- helpers for the table files (see storeint.h) */

int
store_fail(struct store *st, sqlite3_stmt *s)
{
	int ext = sqlite3_extended_errcode(st->db);

	/* A name or backend already present is an answer, not an incident. */
	switch (ext) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return STORE_EEXIST;
	case SQLITE_FULL:
		log_warnx("store: %s: %s", sqlite3_sql(s), sqlite3_errmsg(st->db));
		return STORE_EFULL;
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_CONSTRAINT_NOTNULL:
		log_debug("store: %s: %s", sqlite3_sql(s), sqlite3_errmsg(st->db));
		return STORE_EINVAL;
	default:
		log_warnx("store: %s: %s", sqlite3_sql(s), sqlite3_errmsg(st->db));
		return STORE_ERR;
	}
}

sqlite3_stmt *
store_prep(struct store *st, enum store_file f, int which, const char *fmt, ...)
{
	sqlite3_stmt *s = st->stmt[f][which];
	const char *t;
	va_list ap;
	int i, rc = SQLITE_OK;

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	va_start(ap, fmt);
	for (i = 0; fmt[i] != '\0' && rc == SQLITE_OK; i++) {
		if (fmt[i] == 't')
			rc = (t = va_arg(ap, const char *)) == NULL ? sqlite3_bind_null(s, i + 1) :
			    sqlite3_bind_text(s, i + 1, t, -1, SQLITE_STATIC);
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

int
store_run(struct store *st, sqlite3_stmt *s)
{
	int rc;

	if (s == NULL)
		return STORE_ERR;
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = STORE_OK;
	else
		rc = store_fail(st, s);
	sqlite3_reset(s);
	return rc;
}

int
store_run_changed(struct store *st, sqlite3_stmt *s)
{
	int rc;

	if ((rc = store_run(st, s)) == STORE_OK && sqlite3_changes(st->db) == 0)
		rc = STORE_ENOENT;
	return rc;
}

int
store_query_int(struct store *st, sqlite3_stmt *s, int64_t *out)
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
		rc = store_fail(st, s);
	}
	sqlite3_reset(s);
	return rc;
}

int
store_tx_begin(struct store *st, int write)
{
	if (st->batch)
		return STORE_OK;
	return store_run(st, store_prep(st, STORE_F_TX, write ? TX_BEGIN : TX_BEGIN_READ, ""));
}

int
store_tx_end(struct store *st, int rc)
{
	/* In a batch the caller stops at the first failure; store_batch_end rolls back. */
	if (st->batch)
		return rc;
	if (rc == STORE_OK) {
		if ((rc = store_run(st, store_prep(st, STORE_F_TX, TX_COMMIT, ""))) == STORE_OK)
			return STORE_OK;
		if (rc != STORE_EFULL)
			rc = STORE_ERR;
	}
	/* A failed COMMIT may already have rolled back by itself. */
	if (!sqlite3_get_autocommit(st->db))
		store_run(st, store_prep(st, STORE_F_TX, TX_ROLLBACK, ""));
	return rc;
}

int
store_batch_begin(struct store *st)
{
	int rc;

	if (st->batch)
		return STORE_EINVAL;
	if ((rc = store_tx_begin(st, 1)) == STORE_OK)
		st->batch = 1;
	return rc;
}

int
store_batch_end(struct store *st, int rc)
{
	st->batch = 0;
	return store_tx_end(st, rc);
}

char *
store_column_dup(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	char *p;

	if (t == NULL || (p = strdup((const char *)t)) == NULL) {
		log_warnx("store: out of memory reading %s", sqlite3_sql(s));
		return NULL;
	}
	return p;
}

int
store_column_dup_null(sqlite3_stmt *s, int col, char **out)
{
	*out = NULL;
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return 0;
	return (*out = store_column_dup(s, col)) == NULL ? -1 : 0;
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

/* Every file's statements, once: they live as long as the connection. */
static int
prepare_all(struct store *st)
{
	const char *sql;
	int f, i;

	for (f = 0; f < STORE_F_MAX; f++)
		for (i = 0; (sql = file_sql[f][i]) != NULL; i++) {
			if (i == STORE_FILE_STMTS)
				fatalx("store: more than %d statements in one file", STORE_FILE_STMTS);
			if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
			    &st->stmt[f][i], NULL) != SQLITE_OK) {
				log_warnx("store: prepare %s: %s", sql, sqlite3_errmsg(st->db));
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

void
store_close(struct store *st)
{
	int f, i;

	if (st == NULL)
		return;
	for (f = 0; f < STORE_F_MAX; f++)
		for (i = 0; i < STORE_FILE_STMTS; i++)
			sqlite3_finalize(st->stmt[f][i]);
	if (sqlite3_close(st->db) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(st->db));
	free(st);
}

/*
 * PRAGMA query_only: SQLite itself then refuses every write on this
 * connection (SQLITE_READONLY), whichever code path tries one, so a
 * master that handed over cannot write behind the new one's back.
 */
int
store_set_readonly(struct store *st, int on)
{
	char *err = NULL;

	if (sqlite3_exec(st->db, on ? "PRAGMA query_only = ON" : "PRAGMA query_only = OFF", NULL,
	    NULL, &err) != SQLITE_OK) {
		log_warnx("store: query_only: %s", err != NULL ? err : sqlite3_errmsg(st->db));
		sqlite3_free(err);
		return -1;
	}
	return pragma_expect(st, "PRAGMA query_only", on ? "1" : "0");
}
