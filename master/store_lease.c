/*
 * The store's leases (schema 18): one row per piece of work that only one
 * node may do at a time (an ACME order for a name, the ticket keys'
 * rotation), with its holder, expiry and fencing token. The SQL is
 * portable; with SQLite (one node) every take succeeds. The policy (names,
 * lengths, renewals) is master/acmelease.c's.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "master/store.h"
#include "master/storeint.h"
#include "share/util.h"

enum lease_stmt {
	S_TAKE,
	S_GET,
	S_RENEW,
	S_RELEASE,
};

const char *const store_lease_sql[] = {
	/* Taken when free, expired or already ours; every take-over bumps the token. */
	[S_TAKE] = "INSERT INTO leases(name, holder, expires, token) VALUES (?1, ?2, ?3, 1) "
	    "ON CONFLICT(name) DO UPDATE SET holder = ?2, expires = ?3, token = leases.token + 1 "
	    "WHERE leases.expires <= ?4 OR leases.holder = ?2",
	[S_GET] = "SELECT holder, expires, token FROM leases WHERE name = ?1",
	/* Only the holder of the current token: a take-over makes every older token stale. */
	[S_RENEW] = "UPDATE leases SET expires = ?4 WHERE name = ?1 AND holder = ?2 AND token = ?3",
	[S_RELEASE] = "UPDATE leases SET expires = 0 WHERE name = ?1 AND holder = ?2 AND token = ?3",
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_LEASE, which, __VA_ARGS__)

static int
lease_read(struct db_stmt *s, void *arg)
{
	struct store_lease *out = arg;

	util_strlcpy(out->holder, db_column_text(s, 0) != NULL ? db_column_text(s, 0) : "",
	    sizeof(out->holder));
	out->expires = db_column_int64(s, 1);
	out->token = db_column_int64(s, 2);
	return 0;
}

static int
lease_get(struct store *st, const char *name, struct store_lease *out)
{
	return store_one_row(st, P(st, S_GET, "t", name), lease_read, out);
}

int
store_lease_take(struct store *st, const char *name, const char *holder, int64_t now,
    int64_t expires, struct store_lease *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	rc = store_run(st, P(st, S_TAKE, "ttii", name, holder, expires, now));
	if (rc == STORE_OK)
		rc = lease_get(st, name, out);
	if ((rc = store_tx_end(st, rc)) != STORE_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
store_lease_renew(struct store *st, const char *name, const char *holder, int64_t token,
    int64_t expires)
{
	return store_run_changed(st, P(st, S_RENEW, "ttii", name, holder, token, expires));
}

int
store_lease_release(struct store *st, const char *name, const char *holder, int64_t token)
{
	return store_run_changed(st, P(st, S_RELEASE, "tti", name, holder, token));
}

int
store_lease_current(struct store *st, const char *name, const char *holder, int64_t token)
{
	struct store_lease l;
	int rc;

	if ((rc = lease_get(st, name, &l)) != STORE_OK)
		return rc;
	return strcmp(l.holder, holder) == 0 && l.token == token ? STORE_OK : STORE_ENOENT;
}

int
store_lease_cert_put(struct store *st, const char *name, const char *holder, int64_t token,
    const struct store_cert *c)
{
	int rc;

	/* One write transaction: a take-over queues behind it, or it sees the take-over. */
	if ((rc = store_batch_begin(st)) != STORE_OK)
		return rc;
	if ((rc = store_lease_current(st, name, holder, token)) == STORE_OK)
		rc = store_cert_put(st, c, NULL);
	return store_batch_end(st, rc);
}
