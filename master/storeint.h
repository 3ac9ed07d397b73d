/*
 * Private to the store's files (master/store.c and master/store_*.c): the
 * connection, the statement cache, and the helpers each table's file runs
 * its own SQL with, through the engine of master/db.h (SQLite or
 * PostgreSQL). Nothing outside these files sees an engine.
 */
#ifndef HALOYD_STOREINT_H
#define HALOYD_STOREINT_H

#include <stdint.h>

#include "master/db.h"
#include "master/store.h"

/* Whose statements: each file keeps its SQL in one array indexed by its own enum. */
enum store_file {
	STORE_F_TX,		/* master/store.c: BEGIN, COMMIT, ROLLBACK */
	STORE_F_ROUTES,		/* master/store_routes.c */
	STORE_F_META,		/* master/store_meta.c */
	STORE_F_CERTS,		/* master/store_certs.c */
	STORE_F_ACME,		/* master/store_acme.c */
	STORE_F_ONDEMAND,	/* master/store_ondemand.c */
	STORE_F_CLUSTER,	/* master/store_cluster.c */
	STORE_F_LEASE,		/* master/store_lease.c */
	STORE_F_TICKETS,	/* master/store_tickets.c */
	STORE_F_CHAL,		/* master/store_chal.c */
	STORE_F_MAX
};

#define STORE_FILE_STMTS 24	/* statements one file may keep */

/* NULL-terminated, prepared once at open so a typo fails the start, not a command. */
extern const char *const store_routes_sql[];
extern const char *const store_meta_sql[];
extern const char *const store_certs_sql[];
extern const char *const store_acme_sql[];
extern const char *const store_ondemand_sql[];
extern const char *const store_cluster_sql[];
extern const char *const store_lease_sql[];
extern const char *const store_chal_sql[];
extern const char *const store_tickets_sql[];

struct store {
	struct db *db;
	struct db_stmt *stmt[STORE_F_MAX][STORE_FILE_STMTS];
	int batch;		/* inside store_batch_begin: the changes join its transaction */
};

/*
 * Resets statement which of file f and binds its parameters: fmt has one
 * letter per parameter, 't' for a const char * (NULL binds NULL) and 'i'
 * for an int64_t (callers cast). Returns the statement, or NULL (logged).
 */
struct db_stmt *store_prep(struct store *st, enum store_file f, int which, const char *fmt, ...);
/* Runs s (from store_prep, may be NULL) to completion: STORE_OK or the failure's store_rc. */
int store_run(struct store *st, struct db_stmt *s);
/* Like store_run, and STORE_ENOENT when the statement changed no row. */
int store_run_changed(struct store *st, struct db_stmt *s);
/* The first column of the first row of s; STORE_ENOENT without rows. */
int store_query_int(struct store *st, struct db_stmt *s, int64_t *out);
/*
 * Steps s (from store_prep, may be NULL) once: a row is given to read(s,
 * arg) (0, or -1 for STORE_ERR), none is STORE_ENOENT, a failure its
 * store_rc; then resets s. Every "one row or none" read goes through it.
 */
int store_one_row(struct store *st, struct db_stmt *s, int (*read)(struct db_stmt *s, void *arg),
    void *arg);
/* Maps the failure of s to a store_rc; an unexpected one is logged. */
int store_fail(struct store *st, struct db_stmt *s);
/* BEGIN IMMEDIATE (write) or BEGIN (read: one snapshot for several queries). */
int store_tx_begin(struct store *st, int write);
/* Commits when rc is STORE_OK, rolls back otherwise; returns the outcome. */
int store_tx_end(struct store *st, int rc);
/* A copy of column col of s; NULL (logged) when out of memory or NULL. */
char *store_column_dup(struct db_stmt *s, int col);
/* Like store_column_dup, but a NULL column gives *out = NULL and 0; -1 when out of memory. */
int store_column_dup_null(struct db_stmt *s, int col, char **out);

#endif
