/*
 * The store's side of several nodes sharing one PostgreSQL store: the
 * change counter, the heartbeat rows (nodes, schema 17) and the engine's
 * change channel. The SQL is portable; with SQLite (one node) only
 * master/cluster.c's callers would use it, and they do not.
 */
#include "config.h"

#include <stdint.h>
#include <unistd.h>

#include "master/dbpg.h"
#include "master/store.h"
#include "master/storeint.h"
#include "share/log.h"

enum cluster_stmt {
	S_CHG_BUMP,
	S_CHG_GET,
	S_NODE_PUT,
	S_NODE_ALL,
};

const char *const store_cluster_sql[] = {
	[S_CHG_BUMP] = "UPDATE meta SET value = value + 1 WHERE key = 'changes'",
	[S_CHG_GET] = "SELECT value FROM meta WHERE key = 'changes'",
	[S_NODE_PUT] = "INSERT INTO nodes(name, addr, served, seen) VALUES (?1, ?2, ?3, ?4) "
	    "ON CONFLICT(name) DO UPDATE SET addr = ?2, served = ?3, seen = ?4",
	[S_NODE_ALL] = "SELECT name, addr, served, seen FROM nodes ORDER BY name",
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_CLUSTER, which, __VA_ARGS__)

int
store_node_name(const char *where, char *buf, size_t len)
{
	if (dbpg_conninfo_get(where, "application_name", buf, len) == 1)
		return 0;
	if (gethostname(buf, len) == -1) {
		log_warn("gethostname");
		return -1;
	}
	buf[len - 1] = '\0';
	return 0;
}

int
store_shared(struct store *st)
{
	return st->db->ops->shared;
}

int
store_changes_bump(struct store *st, int64_t *changes)
{
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	if ((rc = store_run_changed(st, P(st, S_CHG_BUMP, ""))) == STORE_OK)
		rc = store_query_int(st, P(st, S_CHG_GET, ""), changes);
	return store_tx_end(st, rc);
}

int
store_changes_get(struct store *st, int64_t *changes)
{
	return store_query_int(st, P(st, S_CHG_GET, ""), changes);
}

int
store_node_beat(struct store *st, const char *name, const char *addr, int64_t served,
    int64_t seen)
{
	return store_run(st, P(st, S_NODE_PUT, "ttii", name, addr, served, seen));
}

int
store_node_foreach(struct store *st, int (*fn)(void *arg, const char *name,
    const char *addr, int64_t served, int64_t seen), void *arg)
{
	struct db_stmt *s;
	int rc = 0, step;

	if ((s = P(st, S_NODE_ALL, "")) == NULL)
		return STORE_ERR;
	while ((step = db_step(s)) == DB_ROW)
		if ((rc = fn(arg, db_column_text(s, 0), db_column_text(s, 1),
		    db_column_int64(s, 2), db_column_int64(s, 3))) != 0)
			break;
	if (step == DB_FAIL)
		rc = store_fail(st, s);
	db_reset(s);
	return rc;
}

int
store_notice_listen(struct store *st)
{
	if (st->db->ops->listen == NULL || st->db->ops->listen(st->db, "haloyd") == -1)
		return STORE_ERR;
	return STORE_OK;
}

int
store_notice_send(struct store *st, const char *payload)
{
	if (st->db->ops->notify == NULL || st->db->ops->notify(st->db, "haloyd", payload) == -1)
		return STORE_ERR;
	return STORE_OK;
}

int
store_notice_next(struct store *st, char *buf, size_t len)
{
	if (st->db->ops->next_notice == NULL)
		return 0;
	return st->db->ops->next_notice(st->db, buf, len);
}

int
store_notice_fd(struct store *st)
{
	return st->db->ops->fd != NULL ? st->db->ops->fd(st->db) : -1;
}

int
store_reconnect(struct store *st, int start, int *fd, int *wr)
{
	if (st->db->ops->reconnect == NULL)
		return -1;
	return st->db->ops->reconnect(st->db, start, fd, wr);
}
