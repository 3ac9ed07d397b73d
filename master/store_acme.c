/*
 * The store's ACME order queue and schedule (acme_orders, schema version
 * 4; its ARI and profile columns since 8): one row per route, so orders, back-off and forced renewals survive a
 * restart. What to order and when is decided by master/acmequeue.c.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "master/store.h"
#include "master/storeint.h"
#include "share/util.h"

#define ORDER_COLUMNS "state, attempts, next_attempt, force, last_error, ari_id, ari_start, " \
	"ari_end, ari_renew_at, ari_next_poll, challenge, profile"
#define ORDER_COLUMNS_O "o.state, o.attempts, o.next_attempt, o.force, o.last_error, " \
	"o.ari_id, o.ari_start, o.ari_end, o.ari_renew_at, o.ari_next_poll, o.challenge, o.profile"
#define ORDER_NCOLUMNS 12

enum acme_stmt {
	S_ORDER_GET,
	S_ORDER_PUT,
	S_ORDER_ALL,
	S_OD_ORDER_GET,
	S_OD_ORDER_PUT,
};

/*
 * One statement, so one implicit transaction. A route's row lives in
 * acme_orders; an on-demand name's (negative key: -ondemand_names.id) in
 * ondemand_orders, with the same columns (schema version 11). An order that
 * ends after its route or name was removed writes nothing (not a foreign-key
 * failure): the row would have gone with it.
 */
#define ORDER_PUT_SQL(table, key, parent) "INSERT INTO " table "(" key ", state, names, " \
	"attempts, next_attempt, last_error, force, updated, ari_id, ari_start, ari_end, " \
	"ari_renew_at, ari_next_poll, challenge, profile) SELECT ?1, ?2, coalesce(?3, ''), ?4, " \
	"?5, nullif(?6, ''), ?7, ?8, nullif(?9, ''), ?10, ?11, ?12, ?13, nullif(?14, ''), " \
	"nullif(?15, '') WHERE EXISTS (SELECT 1 FROM " parent " WHERE id = ?1) " \
	"ON CONFLICT(" key ") DO UPDATE SET state = ?2, " \
	"names = coalesce(?3, " table ".names), attempts = ?4, next_attempt = ?5, " \
	"last_error = nullif(?6, ''), force = ?7, updated = ?8, ari_id = nullif(?9, ''), " \
	"ari_start = ?10, ari_end = ?11, ari_renew_at = ?12, ari_next_poll = ?13, " \
	"challenge = nullif(?14, ''), profile = nullif(?15, '')"

const char *const store_acme_sql[] = {
	[S_ORDER_GET] = "SELECT " ORDER_COLUMNS " FROM acme_orders WHERE route_id = ?1",
	[S_ORDER_PUT] = ORDER_PUT_SQL("acme_orders", "route_id", "routes"),
	[S_ORDER_ALL] = "SELECT " ORDER_COLUMNS_O ", r.name AS n "
	    "FROM acme_orders o JOIN routes r ON r.id = o.route_id "
	    "WHERE ?1 IS NULL OR r.name = ?1 "
	    "UNION ALL SELECT " ORDER_COLUMNS_O ", d.name AS n "
	    "FROM ondemand_orders o JOIN ondemand_names d ON d.id = o.name_id "
	    "WHERE ?1 IS NULL OR d.name = ?1 ORDER BY n",
	[S_OD_ORDER_GET] = "SELECT " ORDER_COLUMNS " FROM ondemand_orders WHERE name_id = ?1",
	[S_OD_ORDER_PUT] = ORDER_PUT_SQL("ondemand_orders", "name_id", "ondemand_names"),
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_ACME, which, __VA_ARGS__)

/* The order columns (the first ORDER_NCOLUMNS of both SELECTs) of the current row. */
static void
order_columns(struct db_stmt *s, struct store_order *o)
{
	const char *t;

	memset(o, 0, sizeof(*o));
	if ((t = db_column_text(s, 0)) != NULL)
		util_strlcpy(o->state, t, sizeof(o->state));
	o->attempts = db_column_int64(s, 1);
	o->next_attempt = db_column_int64(s, 2);
	o->force = (int)db_column_int64(s, 3);
	if ((t = db_column_text(s, 4)) != NULL)
		util_strlcpy(o->last_error, t, sizeof(o->last_error));
	if ((t = db_column_text(s, 5)) != NULL)
		util_strlcpy(o->ari_id, t, sizeof(o->ari_id));
	o->ari_start = db_column_int64(s, 6);
	o->ari_end = db_column_int64(s, 7);
	o->ari_renew_at = db_column_int64(s, 8);
	o->ari_next_poll = db_column_int64(s, 9);
	if ((t = db_column_text(s, 10)) != NULL)
		util_strlcpy(o->challenge, t, sizeof(o->challenge));
	if ((t = db_column_text(s, 11)) != NULL)
		util_strlcpy(o->profile, t, sizeof(o->profile));
}

static int
order_read(struct db_stmt *s, void *arg)
{
	order_columns(s, arg);
	return 0;
}

int
store_order_get(struct store *st, int64_t route_id, struct store_order *o)
{
	struct db_stmt *s = route_id < 0 ? P(st, S_OD_ORDER_GET, "i", -route_id) :
	    P(st, S_ORDER_GET, "i", route_id);

	memset(o, 0, sizeof(*o));
	return store_one_row(st, s, order_read, o);
}

int
store_order_put(struct store *st, int64_t route_id, const struct store_order *o,
    const char *names)
{
	return store_run(st, P(st, route_id < 0 ? S_OD_ORDER_PUT : S_ORDER_PUT, "ittiitiitiiiitt",
	    route_id < 0 ? -route_id : route_id, o->state, names,
	    o->attempts, o->next_attempt, o->last_error, (int64_t)o->force, (int64_t)time(NULL),
	    o->ari_id, o->ari_start, o->ari_end, o->ari_renew_at, o->ari_next_poll, o->challenge,
	    o->profile));
}

int
store_order_foreach(struct store *st, const char *route,
    int (*fn)(void *arg, const char *route, const struct store_order *o), void *arg)
{
	struct store_order o;
	struct db_stmt *s;
	int rc, step;

	if ((rc = store_tx_begin(st, 0)) != STORE_OK)
		return rc;
	if ((s = P(st, S_ORDER_ALL, "t", route)) == NULL)
		return store_tx_end(st, STORE_ERR);
	while ((step = db_step(s)) == DB_ROW) {
		order_columns(s, &o);
		if ((rc = fn(arg, db_column_text(s, ORDER_NCOLUMNS), &o)) != 0)
			break;
	}
	if (step != DB_ROW && step != DB_DONE)
		rc = store_fail(st, s);
	db_reset(s);
	return store_tx_end(st, rc);
}
