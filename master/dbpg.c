/*
 * The PostgreSQL engine of the store (master/db.h), through libpq: a store
 * shared by several nodes. Statements keep the store's SQLite spelling and
 * are rewritten once at prepare ("?N" to "$N", transactions: a write one
 * takes an advisory lock so writers queue as SQLite's BEGIN IMMEDIATE
 * makes them, a read one is REPEATABLE READ so its queries see one
 * snapshot); each step of a fresh statement runs it with PQexecParams
 * (text format, parameters typed int8 or text) and walks its rows. A lost
 * connection marks the engine down: every call fails (DB_E_DOWN) until
 * master/cluster.c reconnects it (without blocking: PQresetStart/Poll).
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "master/db.h"
#include "master/dbpg.h"
#include "share/log.h"
#include "share/util.h"

#define DBPG_OID_INT8 20
#define DBPG_OID_TEXT 25
#define DBPG_LOCK_KEY 0x68616c6f	/* "halo": the advisory lock of writers and migrations */
#define DBPG_CONNECT_TIMEOUT "3"	/* seconds, unless the connection string says */
/* Nothing of ours holds the master longer than this on a sick server. */
#define DBPG_SESSION_SQL "SET statement_timeout = 10000; SET lock_timeout = 5000"

struct dbpg {
	struct db base;
	PGconn *conn;
	int down;
	int64_t changes;
	char sqlstate[6];
	char errmsg[256];
};

struct dbpg_stmt {
	struct db_stmt base;
	char *sql;		/* rewritten */
	int script;		/* no parameters, maybe several statements: PQexec */
	int nparams;
	int stepped;
	int row, nrows;
	PGresult *res;
	const char *vals[DBPG_PARAMS_MAX];
	Oid types[DBPG_PARAMS_MAX];
	char ints[DBPG_PARAMS_MAX][24];
};

#define D(db) ((struct dbpg *)(void *)(db))
#define PS(s) ((struct dbpg_stmt *)(void *)(s))

/* --- pure helpers (master/dbpg.h) */

int
dbpg_rewrite(const char *in, char *out, size_t outlen, int *nparams)
{
	size_t o = 0;
	char quote = 0;
	int next = 0, n, max = 0;

	for (; *in != '\0'; in++) {
		if (o + 4 >= outlen)
			return -1;
		if (quote != 0 || *in == '\'' || *in == '"') {
			/* A doubled quote inside reads as leaving and entering again. */
			quote = quote == 0 ? *in : *in == quote ? 0 : quote;
			out[o++] = *in;
			continue;
		}
		if (*in != '?') {
			out[o++] = *in;
			continue;
		}
		for (n = 0; in[1] >= '0' && in[1] <= '9' && n <= DBPG_PARAMS_MAX; in++)
			n = n * 10 + (in[1] - '0');
		if (n == 0)
			n = ++next;
		if (n > DBPG_PARAMS_MAX)
			return -1;
		o += (size_t)snprintf(out + o, outlen - o, "$%d", n);
		max = n > max ? n : max;
	}
	out[o] = '\0';
	*nparams = max;
	return 0;
}

static int
passfile_check(const char *path, const char *what, uid_t uid, char *err, size_t errlen)
{
	struct stat sb;

	if (stat(path, &sb) == -1) {
		snprintf(err, errlen, "%s: passfile %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_uid != uid || (sb.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: passfile %s must be a file of uid %u readable by it "
		    "only (it is mode %03o, uid %u): chmod 600 it", what, path, (unsigned)uid,
		    (unsigned)(sb.st_mode & 0777), (unsigned)sb.st_uid);
		return -1;
	}
	return 0;
}

int
dbpg_conninfo_check(const char *conninfo, char *err, size_t errlen)
{
	return dbpg_conninfo_check_for(conninfo, "store", geteuid(), err, errlen);
}

int
dbpg_conninfo_check_for(const char *conninfo, const char *what, uid_t uid, char *err,
    size_t errlen)
{
	PQconninfoOption *opts, *o;
	char *msg = NULL;
	int rc = 0;

	if ((opts = PQconninfoParse(conninfo, &msg)) == NULL) {
		snprintf(err, errlen, "%s: %s", what, msg != NULL ? strtok(msg, "\n") :
		    "out of memory");
		PQfreemem(msg);
		return -1;
	}
	for (o = opts; o->keyword != NULL && rc == 0; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "password") == 0) {
			snprintf(err, errlen, "%s: no password in haloyd.conf: put it in a "
			    "passfile only its user reads (passfile=PATH) or use peer "
			    "authentication", what);
			rc = -1;
		} else if (strcmp(o->keyword, "passfile") == 0)
			rc = passfile_check(o->val, what, uid, err, errlen);
	}
	PQconninfoFree(opts);
	return rc;
}

int
dbpg_conninfo_get(const char *conninfo, const char *key, char *buf, size_t len)
{
	PQconninfoOption *opts, *o;
	int rc = 0;

	if ((opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return -1;
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0 && o->val != NULL && o->val[0] != '\0') {
			util_strlcpy(buf, o->val, len);
			rc = 1;
		}
	PQconninfoFree(opts);
	return rc;
}

/* --- errors */

static void
pg_error(struct dbpg *d, const PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(d->conn);
	size_t n;

	util_strlcpy(d->sqlstate, state != NULL ? state : "", sizeof(d->sqlstate));
	util_strlcpy(d->errmsg, msg != NULL && msg[0] != '\0' ? msg : "unknown failure",
	    sizeof(d->errmsg));
	/* libpq's messages go on over several lines: the log gets the first. */
	n = strcspn(d->errmsg, "\n");
	d->errmsg[n] = '\0';
	if (d->conn == NULL || PQstatus(d->conn) != CONNECTION_OK) {
		if (!d->down)
			log_warnx("store: lost the PostgreSQL connection: %s", d->errmsg);
		d->down = 1;
	}
}

static enum db_err
pg_err(struct db *db)
{
	const char *s = D(db)->sqlstate;

	if (D(db)->down)
		return DB_E_DOWN;
	if (strcmp(s, "23505") == 0)
		return DB_E_UNIQUE;
	if (strcmp(s, "23514") == 0 || strcmp(s, "23502") == 0)
		return DB_E_INVALID;
	if (strcmp(s, "53100") == 0)
		return DB_E_FULL;
	return DB_E_OTHER;
}

static const char *
pg_errmsg(struct db *db)
{
	if (D(db)->down)
		return "the PostgreSQL store is unreachable";
	return D(db)->errmsg;
}

/* Runs a script without parameters: 0, or -1 with the error kept. */
static int
pg_exec(struct db *db, const char *script)
{
	struct dbpg *d = D(db);
	PGresult *res;
	int rc = -1;

	if (d->down) {
		pg_error(d, NULL);
		return -1;
	}
	res = PQexec(d->conn, script);
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
		d->changes = strtoll(PQcmdTuples(res), NULL, 10);
		rc = 0;
		break;
	default:
		pg_error(d, res);
	}
	PQclear(res);
	return rc;
}

/* --- statements */

static int
pg_prepare(struct db *db, const char *sql, struct db_stmt **out)
{
	struct dbpg_stmt *s;
	size_t len = strlen(sql) * 2 + 128;
	char buf[128];

	if ((s = calloc(1, sizeof(*s))) == NULL || (s->sql = malloc(len)) == NULL) {
		log_warn("store: calloc");
		free(s);
		return -1;
	}
	s->base.db = db;
	/* The store's two transaction openings (master/store.c): write, then read. */
	if (strcmp(sql, "BEGIN IMMEDIATE") == 0) {
		snprintf(buf, sizeof(buf), "BEGIN; SELECT pg_advisory_xact_lock(%d)", DBPG_LOCK_KEY);
		util_strlcpy(s->sql, buf, len);
		s->script = 1;
	} else if (strcmp(sql, "BEGIN") == 0) {
		util_strlcpy(s->sql, "BEGIN ISOLATION LEVEL REPEATABLE READ", len);
		s->script = 1;
	} else if (dbpg_rewrite(sql, s->sql, len, &s->nparams) == -1) {
		log_warnx("store: cannot rewrite %s for PostgreSQL", sql);
		free(s->sql);
		free(s);
		return -1;
	}
	*out = &s->base;
	return 0;
}

static void
pg_reset(struct db_stmt *st)
{
	struct dbpg_stmt *s = PS(st);

	PQclear(s->res);
	s->res = NULL;
	s->stepped = 0;
	s->row = s->nrows = 0;
	memset(s->vals, 0, sizeof(s->vals));
	memset(s->types, 0, sizeof(s->types));
}

static void
pg_finalize(struct db_stmt *st)
{
	if (st == NULL)
		return;
	pg_reset(st);
	free(PS(st)->sql);
	free(st);
}

static int
pg_bind_text(struct db_stmt *st, int i, const char *t)
{
	struct dbpg_stmt *s = PS(st);

	if (i < 1 || i > s->nparams)
		return -1;
	s->vals[i - 1] = t;
	s->types[i - 1] = DBPG_OID_TEXT;
	return 0;
}

static int
pg_bind_int64(struct db_stmt *st, int i, int64_t v)
{
	struct dbpg_stmt *s = PS(st);

	if (i < 1 || i > s->nparams)
		return -1;
	snprintf(s->ints[i - 1], sizeof(s->ints[i - 1]), "%" PRId64, v);
	s->vals[i - 1] = s->ints[i - 1];
	s->types[i - 1] = DBPG_OID_INT8;
	return 0;
}

/* The first step runs the statement; the next ones walk its rows. */
static int
pg_step(struct db_stmt *st)
{
	struct dbpg_stmt *s = PS(st);
	struct dbpg *d = D(st->db);
	ExecStatusType rs;

	if (s->stepped)
		return s->res != NULL && ++s->row < s->nrows ? DB_ROW : DB_DONE;
	s->stepped = 1;
	if (d->down) {
		pg_error(d, NULL);
		return DB_FAIL;
	}
	if (s->script)
		return pg_exec(st->db, s->sql) == 0 ? DB_DONE : DB_FAIL;
	s->res = PQexecParams(d->conn, s->sql, s->nparams, s->types, s->vals, NULL, NULL, 0);
	rs = PQresultStatus(s->res);
	if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
		d->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
		s->nrows = rs == PGRES_TUPLES_OK ? PQntuples(s->res) : 0;
		return s->nrows > 0 ? DB_ROW : DB_DONE;
	}
	pg_error(d, s->res);
	PQclear(s->res);
	s->res = NULL;
	return DB_FAIL;
}

static int
pg_column_null(struct db_stmt *st, int c)
{
	struct dbpg_stmt *s = PS(st);

	return s->res == NULL || s->row >= s->nrows || c >= PQnfields(s->res) ||
	    PQgetisnull(s->res, s->row, c);
}

static const char *
pg_column_text(struct db_stmt *st, int c)
{
	return pg_column_null(st, c) ? NULL : PQgetvalue(PS(st)->res, PS(st)->row, c);
}

static int64_t
pg_column_int64(struct db_stmt *st, int c)
{
	const char *t = pg_column_text(st, c);

	return t != NULL ? strtoll(t, NULL, 10) : 0;
}

static const char *
pg_sql(struct db_stmt *st)
{
	return PS(st)->sql;
}

static int64_t
pg_changes(struct db *db)
{
	return D(db)->changes;
}

/* Every id is a BIGSERIAL: the session's last sequence value is the row's. */
static int64_t
pg_last_id(struct db *db)
{
	PGresult *res;
	int64_t id = 0;

	if (D(db)->down)
		return 0;
	res = PQexec(D(db)->conn, "SELECT lastval()");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		pg_error(D(db), res);
	PQclear(res);
	return id;
}

static int
pg_in_tx(struct db *db)
{
	PGTransactionStatusType t;

	if (D(db)->down)
		return 0;
	t = PQtransactionStatus(D(db)->conn);
	return t != PQTRANS_IDLE && t != PQTRANS_UNKNOWN;
}

/* --- migrations (master/schema.c) */

static int
pg_migration_begin(struct db *db)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d); "
	    "CREATE TABLE IF NOT EXISTS haloyd_schema (version INTEGER NOT NULL)", DBPG_LOCK_KEY);
	return pg_exec(db, sql);
}

static int
pg_version_read(PGconn *conn, int *v)
{
	PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM haloyd_schema");
	int rc = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		*v = atoi(PQgetvalue(res, 0, 0));
		rc = 0;
	}
	PQclear(res);
	return rc;
}

static int
pg_version_get(struct db *db, int *v)
{
	if (pg_version_read(D(db)->conn, v) == -1) {
		pg_error(D(db), NULL);
		log_warnx("store: cannot read the schema version: %s", pg_errmsg(db));
		return -1;
	}
	return 0;
}

static int
pg_version_set(struct db *db, int v)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "DELETE FROM haloyd_schema; "
	    "INSERT INTO haloyd_schema(version) VALUES (%d)", v);
	return pg_exec(db, sql);
}

static int
pg_migrated(struct db *db)
{
	(void)db;
	return 0;
}

static void
pg_close(struct db *db)
{
	if (db == NULL)
		return;
	PQfinish(D(db)->conn);
	free(db);
}

/* --- the change channel (master/cluster.c) */

static int
pg_listen(struct db *db, const char *channel)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "LISTEN %s", channel);
	return pg_exec(db, sql);
}

static int
pg_notify(struct db *db, const char *channel, const char *payload)
{
	const char *vals[2] = { channel, payload };
	PGresult *res;
	int rc = 0;

	if (D(db)->down)
		return -1;
	res = PQexecParams(D(db)->conn, "SELECT pg_notify($1, $2)", 2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_error(D(db), res);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

static int
pg_next_notice(struct db *db, char *buf, size_t len)
{
	struct dbpg *d = D(db);
	PGnotify *n;

	if (d->down)
		return -1;
	if (PQconsumeInput(d->conn) == 0 || PQstatus(d->conn) != CONNECTION_OK) {
		pg_error(d, NULL);
		return -1;
	}
	if ((n = PQnotifies(d->conn)) == NULL)
		return 0;
	util_strlcpy(buf, n->extra != NULL ? n->extra : "", len);
	PQfreemem(n);
	return 1;
}

static int
pg_fd(struct db *db)
{
	return D(db)->down ? -1 : PQsocket(D(db)->conn);
}

/* The server's notices ("already exists, skipping") go to the debug log, not stderr. */
static void
pg_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("store: PostgreSQL says: %.*s", (int)strcspn(msg, "\n"), msg);
}

static int
pg_session(struct dbpg *d)
{
	if (PQstatus(d->conn) != CONNECTION_OK) {
		pg_error(d, NULL);
		return -1;
	}
	PQsetNoticeProcessor(d->conn, pg_notice, NULL);
	d->down = 0;
	return pg_exec(&d->base, DBPG_SESSION_SQL);
}

/* libpq's non-blocking reset; the caller bounds how long it may take. */
static int
pg_reconnect(struct db *db, int start, int *fd, int *wr)
{
	struct dbpg *d = D(db);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	if (start && PQresetStart(d->conn) == 0)
		st = PGRES_POLLING_FAILED;
	else if (!start)
		st = PQresetPoll(d->conn);
	switch (st) {
	case PGRES_POLLING_OK:
		return pg_session(d) == 0 ? 1 : -1;
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
		*fd = PQsocket(d->conn);
		*wr = st == PGRES_POLLING_WRITING;
		return *fd >= 0 ? 0 : -1;
	default:
		pg_error(d, NULL);
		return -1;
	}
}

/* Every later transaction of this session is read-only: PostgreSQL refuses its writes. */
static int
pg_readonly(struct db *db, int on)
{
	if (pg_exec(db, on ? "SET default_transaction_read_only = on" :
	    "SET default_transaction_read_only = off") == -1) {
		log_warnx("store: default_transaction_read_only: %s", pg_errmsg(db));
		return -1;
	}
	return 0;
}

static const struct db_ops dbpg_ops = {
	.name = "postgresql",
	.shared = 1,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.reset = pg_reset,
	.bind_text = pg_bind_text,
	.bind_int64 = pg_bind_int64,
	.step = pg_step,
	.column_null = pg_column_null,
	.column_int64 = pg_column_int64,
	.column_text = pg_column_text,
	.sql = pg_sql,
	.changes = pg_changes,
	.last_id = pg_last_id,
	.in_tx = pg_in_tx,
	.exec = pg_exec,
	.err = pg_err,
	.errmsg = pg_errmsg,
	.migration_begin = pg_migration_begin,
	.version_get = pg_version_get,
	.version_set = pg_version_set,
	.migrated = pg_migrated,
	.readonly = pg_readonly,
	.close = pg_close,
	.listen = pg_listen,
	.notify = pg_notify,
	.next_notice = pg_next_notice,
	.fd = pg_fd,
	.reconnect = pg_reconnect,
};

/*
 * The connection string's own settings, if any, override ours: a server
 * gone from the network (no RST) is noticed in seconds, not TCP's hours.
 */
static PGconn *
pg_connect(const char *conninfo)
{
	const char *keys[] = { "connect_timeout", "tcp_user_timeout", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "dbname", NULL };
	const char *vals[] = { DBPG_CONNECT_TIMEOUT, "5000", "5", "2", "3", conninfo, NULL };

	return PQconnectdbParams(keys, vals, 1);
}

struct db *
dbpg_open(const char *conninfo)
{
	struct dbpg *d;
	char err[512];

	if (dbpg_conninfo_check(conninfo, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		log_warn("store: calloc");
		return NULL;
	}
	d->base.ops = &dbpg_ops;
	if ((d->conn = pg_connect(conninfo)) == NULL || pg_session(d) == -1) {
		log_warnx("store: cannot connect to PostgreSQL: %s", d->errmsg);
		pg_close(&d->base);
		return NULL;
	}
	return &d->base;
}

/* The role's name when it may SELECT acme_account (owner, grant or superuser), else "". */
static void
pg_account_reader(PGconn *conn, char *reader, size_t len)
{
	PGresult *res;

	reader[0] = '\0';
	res = PQexec(conn, "SELECT current_user, coalesce(has_table_privilege("
	    "to_regclass('acme_account'), 'SELECT'), false)");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 1), "t") == 0)
		util_strlcpy(reader, PQgetvalue(res, 0, 0), len);
	PQclear(res);
}

int
dbpg_probe(const char *conninfo, int *version, char *reader, size_t readerlen, char *err,
    size_t errlen)
{
	PGconn *conn;
	char *nl;
	int rc = -1;

	if (dbpg_conninfo_check(conninfo, err, errlen) == -1)
		return -1;
	conn = pg_connect(conninfo);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		snprintf(err, errlen, "store: cannot connect to PostgreSQL: %s",
		    conn != NULL ? PQerrorMessage(conn) : "out of memory");
		if ((nl = strchr(err, '\n')) != NULL)
			*nl = '\0';
		goto out;
	}
	/* A database haloyd never used has no haloyd_schema yet: version 0. */
	*version = 0;
	(void)pg_version_read(conn, version);
	pg_account_reader(conn, reader, readerlen);
	rc = 0;
out:
	PQfinish(conn);
	return rc;
}
