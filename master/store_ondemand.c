/*
 * The store's on-demand names (ondemand_names, schema version 11): names a
 * TLS handshake asked for that the acme_ask URL allowed. Their order rows
 * are in master/store_acme.c (ondemand_orders); which names to ask about
 * is decided by master/ondemand.c.
 */
#include "config.h"

#include <time.h>

#include "master/store.h"
#include "master/storeint.h"

enum ondemand_stmt {
	S_OD_ADD,
	S_OD_GET,
	S_OD_ALL,
	S_OD_DEL,
	S_HOST_GET,
};

const char *const store_ondemand_sql[] = {
	[S_OD_ADD] = "INSERT INTO ondemand_names(name, added) VALUES (?1, ?2) "
	    "ON CONFLICT(name) DO NOTHING",
	[S_OD_GET] = "SELECT id FROM ondemand_names WHERE name = ?1",
	[S_OD_ALL] = "SELECT id, name FROM ondemand_names ORDER BY id",
	/* Its order row goes with it (ON DELETE CASCADE). */
	[S_OD_DEL] = "DELETE FROM ondemand_names WHERE name = ?1",
	[S_HOST_GET] = "SELECT 1 FROM hosts WHERE name = ?1",
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_ONDEMAND, which, __VA_ARGS__)

int
store_ondemand_get(struct store *st, const char *name, int64_t *id)
{
	return store_query_int(st, P(st, S_OD_GET, "t", name), id);
}

int
store_ondemand_add(struct store *st, const char *name, int64_t *id)
{
	int rc;

	if ((rc = store_run(st, P(st, S_OD_ADD, "ti", name, (int64_t)time(NULL)))) != STORE_OK)
		return rc;
	return store_ondemand_get(st, name, id);
}

int
store_ondemand_rm(struct store *st, const char *name)
{
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	rc = store_run_changed(st, P(st, S_OD_DEL, "t", name));
	return store_tx_end(st, rc);
}

int
store_host_exists(struct store *st, const char *name)
{
	int64_t one;

	return store_query_int(st, P(st, S_HOST_GET, "t", name), &one);
}

int
store_ondemand_foreach(struct store *st, int (*fn)(void *arg, int64_t id, const char *name),
    void *arg)
{
	struct db_stmt *s;
	int rc = 0, step;

	if ((rc = store_tx_begin(st, 0)) != STORE_OK)
		return rc;
	if ((s = P(st, S_OD_ALL, "")) == NULL)
		return store_tx_end(st, STORE_ERR);
	while ((step = db_step(s)) == DB_ROW)
		if ((rc = fn(arg, db_column_int64(s, 0),
		    db_column_text(s, 1))) != 0)
			break;
	if (step != DB_ROW && step != DB_DONE)
		rc = store_fail(st, s);
	db_reset(s);
	return store_tx_end(st, rc);
}
