/*
 * The running ACME orders' challenge answers on a shared store (schema
 * 19): written by the order's lease holder under its fencing token, read
 * by every node into what its workers answer, deleted at the order's end.
 * The SQL is portable; only a shared store uses it (master/acmeshare.c).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "master/store.h"
#include "master/storeint.h"
#include "share/hostname.h"
#include "share/log.h"

enum chal_stmt {
	S_PUT,
	S_CLEAR,
	S_ALL,
};

const char *const store_chal_sql[] = {
	[S_PUT] = "INSERT INTO acme_challenges(token, host, keyauth, alpn_cert, alpn_key, holder, "
	    "expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(token) DO UPDATE SET "
	    "host = ?2, keyauth = ?3, alpn_cert = ?4, alpn_key = ?5, holder = ?6, expires = ?7",
	[S_CLEAR] = "DELETE FROM acme_challenges WHERE holder = ?1 OR expires <= ?2",
	[S_ALL] = "SELECT token, host, keyauth, alpn_cert, alpn_key, holder FROM acme_challenges "
	    "WHERE expires > ?1 ORDER BY token",
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_CHAL, which, __VA_ARGS__)

int
store_chal_put(struct store *st, const char *lease, int64_t lease_token,
    const struct store_chal *c, int64_t expires)
{
	int rc;

	/* One write transaction with the lease's check: a take-over queues behind it or stops it. */
	if ((rc = store_batch_begin(st)) != STORE_OK)
		return rc;
	if ((rc = store_lease_current(st, lease, c->holder, lease_token)) == STORE_OK)
		rc = store_run(st, P(st, S_PUT, "tttttti", c->token, c->host, c->keyauth,
		    c->cert, c->key, c->holder, expires));
	return store_batch_end(st, rc);
}

int
store_chal_clear(struct store *st, const char *holder, int64_t now)
{
	return store_run(st, P(st, S_CLEAR, "ti", holder, now));
}

static const char *
col(struct db_stmt *s, int i)
{
	const char *t = db_column_text(s, i);

	return t != NULL ? t : "";
}

/* The schema's CHECKs bound the rows; a reader does not trust a store it shares. */
static int
chal_bounded(const struct store_chal *c)
{
	return strlen(c->token) >= 1 && strlen(c->token) <= STORE_CHAL_TOKEN_MAX &&
	    strlen(c->host) >= 1 && strlen(c->host) <= HOSTNAME_MAX &&
	    strlen(c->keyauth) >= 1 && strlen(c->keyauth) <= STORE_CHAL_KEYAUTH_MAX &&
	    strlen(c->cert) <= STORE_CHAL_PEM_MAX && strlen(c->key) <= STORE_CHAL_PEM_MAX &&
	    strlen(c->holder) <= STORE_NODE_NAME_MAX;
}

int
store_chal_foreach(struct store *st, int64_t now,
    int (*fn)(void *arg, const struct store_chal *c), void *arg)
{
	struct store_chal c;
	struct db_stmt *s;
	int rc = 0, step;

	if ((s = P(st, S_ALL, "i", now)) == NULL)
		return STORE_ERR;
	while ((step = db_step(s)) == DB_ROW) {
		c = (struct store_chal){ col(s, 0), col(s, 1), col(s, 2), col(s, 3), col(s, 4),
		    col(s, 5) };
		if (!chal_bounded(&c)) {
			log_warnx("store: challenge row of node %.64s out of bounds; ignored", c.holder);
			continue;
		}
		if ((rc = fn(arg, &c)) != 0)
			break;
	}
	if (step == DB_FAIL)
		rc = store_fail(st, s);
	db_reset(s);
	return rc;
}
