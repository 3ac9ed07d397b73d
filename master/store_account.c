/*
 * The store's ACME account key (schema 18, acme_account): one row, shared
 * by the nodes of a PostgreSQL store so they order as one account. A
 * secret: the store's access control guards it, nothing here logs it.
 */
#include "config.h"

#include <stdint.h>

#include "master/store.h"
#include "master/storeint.h"

enum account_stmt {
	S_GET,
	S_ADD,
};

const char *const store_account_sql[] = {
	[S_GET] = "SELECT key_pem FROM acme_account WHERE id = 1",
	/* Two nodes making the first key at once: the first one stored wins. */
	[S_ADD] = "INSERT INTO acme_account(id, key_pem) VALUES (1, ?1) ON CONFLICT(id) DO NOTHING",
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_ACCOUNT, which, __VA_ARGS__)

static int
account_read(struct db_stmt *s, void *arg)
{
	char **pem = arg;

	return (*pem = store_column_dup(s, 0)) != NULL ? 0 : -1;
}

int
store_account_key_get(struct store *st, char **pem)
{
	*pem = NULL;
	return store_one_row(st, P(st, S_GET, ""), account_read, pem);
}

int
store_account_key_add(struct store *st, const char *pem)
{
	return store_run(st, P(st, S_ADD, "t", pem));
}
