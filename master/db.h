/*
 * The store's database engine: the few calls the store's files make
 * (prepare, bind, step, columns, scripts, transactions state), as a table
 * of function pointers chosen when the store opens: master/dbsqlite.c (the
 * default, a file in state_dir) or master/dbpg.c (PostgreSQL through libpq,
 * a store shared by several nodes). The store's SQL is written once for both
 * (the dialect rules are in ARCHITECTURE.md, "The store").
 */
#ifndef HALOYD_DB_H
#define HALOYD_DB_H

#include <stddef.h>
#include <stdint.h>

enum db_step { DB_FAIL = -1, DB_DONE = 0, DB_ROW = 1 };

/* What a failure was, for the store's answer (enum store_rc). */
enum db_err {
	DB_E_OTHER,
	DB_E_UNIQUE,		/* a unique or primary key already present */
	DB_E_INVALID,		/* a CHECK or NOT NULL refused the values */
	DB_E_FULL,		/* the disk under the database is full */
	DB_E_DOWN,		/* the database server is unreachable */
};

struct db;
struct db_stmt;

struct db_ops {
	const char *name;	/* "sqlite" or "postgresql", for messages */
	int shared;		/* 1: other nodes use the same database */
	int (*prepare)(struct db *db, const char *sql, struct db_stmt **out);
	void (*finalize)(struct db_stmt *s);
	/* Back to before the first step, every parameter unbound. */
	void (*reset)(struct db_stmt *s);
	/* Parameters count from 1; t (NULL binds NULL) stays the caller's until reset. */
	int (*bind_text)(struct db_stmt *s, int i, const char *t);
	int (*bind_int64)(struct db_stmt *s, int i, int64_t v);
	int (*step)(struct db_stmt *s);		/* enum db_step */
	int (*column_null)(struct db_stmt *s, int col);
	int64_t (*column_int64)(struct db_stmt *s, int col);
	const char *(*column_text)(struct db_stmt *s, int col);	/* NULL for NULL */
	const char *(*sql)(struct db_stmt *s);
	int64_t (*changes)(struct db *db);	/* rows the last statement changed */
	int64_t (*last_id)(struct db *db);	/* id of the last row inserted */
	int (*in_tx)(struct db *db);
	int (*exec)(struct db *db, const char *script);	/* 0 or -1 (message in errmsg) */
	enum db_err (*err)(struct db *db);
	const char *(*errmsg)(struct db *db);
	/* Migrations (master/schema.c): a write transaction that also locks out other nodes. */
	int (*migration_begin)(struct db *db);
	int (*version_get)(struct db *db, int *v);
	int (*version_set)(struct db *db, int v);
	int (*migrated)(struct db *db);		/* after the last migration (SQLite: WAL) */
	/* on: the engine itself refuses every write on this connection (a hand-over). */
	int (*readonly)(struct db *db, int on);
	void (*close)(struct db *db);
	/* Shared engines only (NULL otherwise): master/cluster.c's channel. */
	int (*listen)(struct db *db, const char *channel);
	int (*notify)(struct db *db, const char *channel, const char *payload);
	/* 1 with the next payload in buf, 0 for none, -1 when the connection is gone. */
	int (*next_notice)(struct db *db, char *buf, size_t len);
	int (*fd)(struct db *db);		/* -1 when down */
	/*
	 * Connects again without blocking: call with start 1, then with 0 each
	 * time *fd is ready (for writing when *wr, else reading). 1 connected,
	 * 0 in progress, -1 failed.
	 */
	int (*reconnect)(struct db *db, int start, int *fd, int *wr);
};

struct db {
	const struct db_ops *ops;
};

struct db_stmt {
	struct db *db;
};

/* A SQLite file (created 0600); NULL with the failure logged. */
struct db *dbsqlite_open(const char *path);
/* A libpq connection string (see dbpg_conninfo_check); NULL with the failure logged. */
struct db *dbpg_open(const char *conninfo);

static inline int db_step(struct db_stmt *s) { return s->db->ops->step(s); }
static inline int db_column_null(struct db_stmt *s, int c) { return s->db->ops->column_null(s, c); }
static inline int64_t db_column_int64(struct db_stmt *s, int c) { return s->db->ops->column_int64(s, c); }
static inline const char *db_column_text(struct db_stmt *s, int c) { return s->db->ops->column_text(s, c); }
static inline void db_reset(struct db_stmt *s) { s->db->ops->reset(s); }
static inline const char *db_sql(struct db_stmt *s) { return s->db->ops->sql(s); }
static inline int64_t db_last_id(struct db *db) { return db->ops->last_id(db); }

#endif
