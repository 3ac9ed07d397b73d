/*
 * The ACME child's connection to a shared PostgreSQL store (acme_store,
 * issue 20): read the account key from acme_account, or add the first
 * one. The child's own role alone may do that; the master's has no
 * privilege on the table. One short connection per need, closed after.
 * The only file of the child that includes libpq-fe.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "acme/acmechild.h"
#include "share/msg.h"

/* libpq's message, first line only: a log line is one line. */
static void
pg_errmsg(PGconn *conn, const char *what, char *err, size_t errlen)
{
	const char *msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";

	snprintf(err, errlen, "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
}

/*
 * The connection string's own settings, if any, override ours: a server
 * gone from the network is noticed in seconds (as the master's, master/
 * dbpg.c); no GSSAPI attempt, whose Kerberos plugins the filter forbids.
 */
static void *
pg_open(const char *conninfo, char *err, size_t errlen)
{
	const char *keys[] = { "connect_timeout", "tcp_user_timeout", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "gssencmode", "dbname", NULL };
	const char *vals[] = { "3", "5000", "5", "2", "3", "disable", conninfo, NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	PGresult *res;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		pg_errmsg(conn, "cannot connect", err, errlen);
		PQfinish(conn);
		return NULL;
	}
	res = PQexec(conn, "SET statement_timeout = 5000");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_errmsg(conn, "cannot set up the session", err, errlen);
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

static int
pg_get(void *h, char **pem, char *err, size_t errlen)
{
	PGresult *res = PQexec(h, "SELECT key_pem FROM acme_account WHERE id = 1");
	int len, rc = -1;

	*pem = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_errmsg(h, "cannot read acme_account", err, errlen);
		goto out;
	}
	if (PQntuples(res) == 0) {
		rc = 0;
		goto out;
	}
	/* The schema bounds it; a peer's length is checked again all the same. */
	len = PQgetlength(res, 0, 0);
	if (PQntuples(res) != 1 || len < 1 || len > MSG_A_ACCOUNT_KEY_MAX) {
		snprintf(err, errlen, "acme_account holds a key of %d bytes (1..%d)", len,
		    MSG_A_ACCOUNT_KEY_MAX);
		goto out;
	}
	if ((*pem = strndup(PQgetvalue(res, 0, 0), (size_t)len)) == NULL)
		snprintf(err, errlen, "out of memory");
	else
		rc = 1;
out:
	PQclear(res);
	return rc;
}

static int
pg_add(void *h, const char *pem, char *err, size_t errlen)
{
	const char *params[] = { pem };
	PGresult *res;
	int rc = 0;

	/* Two nodes making the first key at once: the first one stored wins. */
	res = PQexecParams(h, "INSERT INTO acme_account(id, key_pem) VALUES (1, $1) "
	    "ON CONFLICT (id) DO NOTHING", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_errmsg(h, "cannot add to acme_account", err, errlen);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

static void
pg_close(void *h)
{
	PQfinish(h);
}

const struct acct_store_ops acct_store_pg = {
	.open = pg_open,
	.get = pg_get,
	.add = pg_add,
	.close = pg_close,
};
