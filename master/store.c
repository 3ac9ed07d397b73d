/*
 * The store's core: opening its engine (master/db.h: a SQLite file, or
 * PostgreSQL for a store shared by nodes) and migrating it, the cache of
 * prepared statements, transactions and the helpers every table's file
 * (master/store_*.c) runs its SQL with. Engine failures are logged here;
 * expected outcomes (a name already taken, a missing row) are only
 * returned.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/dbpg.h"
#include "master/schema.h"
#include "master/store.h"
#include "master/storeint.h"
#include "share/log.h"

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
	[STORE_F_CLUSTER] = store_cluster_sql,
	[STORE_F_LEASE] = store_lease_sql,
	[STORE_F_TICKETS] = store_tickets_sql,
	[STORE_F_CHAL] = store_chal_sql,
};

/* --- helpers for the table files (see storeint.h) */

int
store_fail(struct store *st, struct db_stmt *s)
{
	const char *sql = s != NULL ? db_sql(s) : "?";

	/* A name or backend already present is an answer, not an incident. */
	switch (st->db->ops->err(st->db)) {
	case DB_E_UNIQUE:
		return STORE_EEXIST;
	case DB_E_FULL:
		log_warnx("store: %s: %s", sql, st->db->ops->errmsg(st->db));
		return STORE_EFULL;
	case DB_E_INVALID:
		log_debug("store: %s: %s", sql, st->db->ops->errmsg(st->db));
		return STORE_EINVAL;
	case DB_E_DOWN:
		log_warnx("store: %s", st->db->ops->errmsg(st->db));
		return STORE_EDOWN;
	default:
		log_warnx("store: %s: %s", sql, st->db->ops->errmsg(st->db));
		return STORE_ERR;
	}
}

struct db_stmt *
store_prep(struct store *st, enum store_file f, int which, const char *fmt, ...)
{
	struct db_stmt *s = st->stmt[f][which];
	const struct db_ops *ops = st->db->ops;
	va_list ap;
	int i, rc = 0;

	ops->reset(s);
	va_start(ap, fmt);
	for (i = 0; fmt[i] != '\0' && rc == 0; i++) {
		if (fmt[i] == 't')
			rc = ops->bind_text(s, i + 1, va_arg(ap, const char *));
		else
			rc = ops->bind_int64(s, i + 1, va_arg(ap, int64_t));
	}
	va_end(ap);
	if (rc != 0) {
		log_warnx("store: cannot bind parameter %d of %s: %s", i, ops->sql(s),
		    ops->errmsg(st->db));
		return NULL;
	}
	return s;
}

int
store_run(struct store *st, struct db_stmt *s)
{
	int rc;

	if (s == NULL)
		return STORE_ERR;
	if (db_step(s) == DB_DONE)
		rc = STORE_OK;
	else
		rc = store_fail(st, s);
	db_reset(s);
	return rc;
}

int
store_run_changed(struct store *st, struct db_stmt *s)
{
	int rc;

	if ((rc = store_run(st, s)) == STORE_OK && st->db->ops->changes(st->db) == 0)
		rc = STORE_ENOENT;
	return rc;
}

int
store_one_row(struct store *st, struct db_stmt *s, int (*read)(struct db_stmt *s, void *arg),
    void *arg)
{
	int rc;

	if (s == NULL)
		return STORE_ERR;
	switch (db_step(s)) {
	case DB_ROW:
		rc = read(s, arg) == 0 ? STORE_OK : STORE_ERR;
		break;
	case DB_DONE:
		rc = STORE_ENOENT;
		break;
	default:
		rc = store_fail(st, s);
	}
	db_reset(s);
	return rc;
}

static int
store_read_int(struct db_stmt *s, void *arg)
{
	*(int64_t *)arg = db_column_int64(s, 0);
	return 0;
}

int
store_query_int(struct store *st, struct db_stmt *s, int64_t *out)
{
	return store_one_row(st, s, store_read_int, out);
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
		if (rc != STORE_EFULL && rc != STORE_EDOWN)
			rc = STORE_ERR;
	}
	/* A failed COMMIT may already have rolled back by itself. */
	if (st->db->ops->in_tx(st->db))
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
store_column_dup(struct db_stmt *s, int col)
{
	const char *t = db_column_text(s, col);
	char *p;

	if (t == NULL || (p = strdup(t)) == NULL) {
		log_warnx("store: out of memory reading %s", db_sql(s));
		return NULL;
	}
	return p;
}

int
store_column_dup_null(struct db_stmt *s, int col, char **out)
{
	*out = NULL;
	if (db_column_null(s, col))
		return 0;
	return (*out = store_column_dup(s, col)) == NULL ? -1 : 0;
}

/* --- open and close */

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
			if (st->db->ops->prepare(st->db, sql, &st->stmt[f][i]) == -1)
				return -1;
		}
	return 0;
}

int
store_is_postgresql(const char *where)
{
	return strncmp(where, "postgresql://", 13) == 0 || strncmp(where, "postgres://", 11) == 0;
}

int
store_conf_check(const char *where, char *err, size_t errlen)
{
	if (!store_is_postgresql(where)) {
		snprintf(err, errlen, "store: expected sqlite (the file in state_dir) or "
		    "postgresql://... (a libpq connection string)");
		return -1;
	}
	return dbpg_conninfo_check(where, err, errlen);
}

int
store_conf_check_for(const char *where, const char *what, uid_t uid, char *err, size_t errlen)
{
	if (!store_is_postgresql(where)) {
		snprintf(err, errlen, "%s: expected postgresql://... (a libpq connection string)",
		    what);
		return -1;
	}
	return dbpg_conninfo_check_for(where, what, uid, err, errlen);
}

int
store_probe(const char *where, char *err, size_t errlen)
{
	char role[64];
	int v;

	if (dbpg_probe(where, &v, role, sizeof(role), err, errlen) == -1)
		return -1;
	/* The rule migrate_one applies at start: one version ahead is a rollback, used as is. */
	if (v > store_schema_version() + SCHEMA_AHEAD_OK) {
		snprintf(err, errlen, "store: schema version %d is newer than this haloyd's %d", v,
		    store_schema_version());
		return -1;
	}
	if (role[0] != '\0') {
		snprintf(err, errlen, "warning: store: role %s can read acme_account, the ACME "
		    "account key: give the table to another role and grant SELECT, INSERT on it to "
		    "acme_store's role alone (haloyd.conf(5), acme_store)", role);
		return 1;
	}
	snprintf(err, errlen, "store: PostgreSQL reachable, schema version %d%s", v,
	    v < store_schema_version() ? " (migrated at start)" : "");
	return 0;
}

int
store_open(const char *where, struct store **out)
{
	struct store *st;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		log_warn("store: calloc");
		return STORE_ERR;
	}
	st->db = store_is_postgresql(where) ? dbpg_open(where) : dbsqlite_open(where);
	if (st->db == NULL || schema_migrate(st->db) == -1 || st->db->ops->migrated(st->db) == -1 ||
	    prepare_all(st) == -1)
		goto fail;
	log_debug("store (%s) open, schema version %d", st->db->ops->name, store_schema_version());
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
	if (st->db != NULL) {
		for (f = 0; f < STORE_F_MAX; f++)
			for (i = 0; i < STORE_FILE_STMTS; i++)
				if (st->stmt[f][i] != NULL)
					st->db->ops->finalize(st->stmt[f][i]);
		st->db->ops->close(st->db);
	}
	free(st);
}

/* The engine refuses writes, so a master that handed over cannot write behind the new one's back. */
int
store_set_readonly(struct store *st, int on)
{
	return st->db->ops->readonly(st->db, on);
}
