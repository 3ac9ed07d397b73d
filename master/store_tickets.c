/*
 * The store's session-ticket keys (schema 18, ticket_keys): shared by the
 * nodes of a PostgreSQL store so a ticket resumes on any of them; written
 * only by the holder of the "ticketkeys" lease (master/ticketshare.c).
 * The rows are secrets: the store's access control guards them and no
 * statement here logs its parameters.
 */
#include "config.h"

#include <stdint.h>

#include "master/store.h"
#include "master/storeint.h"
#include "share/util.h"

enum tickets_stmt {
	S_GET,
	S_CLEAR,
	S_PUT,
};

const char *const store_tickets_sql[] = {
	[S_GET] = "SELECT secret, not_after FROM ticket_keys ORDER BY slot",
	[S_CLEAR] = "DELETE FROM ticket_keys",
	[S_PUT] = "INSERT INTO ticket_keys(slot, secret, not_after) VALUES (?1, ?2, ?3)",
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_TICKETS, which, __VA_ARGS__)

int
store_ticket_keys_get(struct store *st, struct store_ticket_key *k, int *n)
{
	struct db_stmt *s;
	const char *t;
	int rc = STORE_OK, step;

	*n = 0;
	if ((s = P(st, S_GET, "")) == NULL)
		return STORE_ERR;
	while ((step = db_step(s)) == DB_ROW && *n < 2) {
		t = db_column_text(s, 0);
		/* The schema's CHECK keeps it 160 long; a NULL would be a broken store. */
		util_strlcpy(k[*n].secret, t != NULL ? t : "", sizeof(k[*n].secret));
		k[*n].not_after = db_column_int64(s, 1);
		(*n)++;
	}
	if (step == DB_FAIL)
		rc = store_fail(st, s);
	/* The engine's copy of the secrets is the engine's; ours is the caller's. */
	db_reset(s);
	return rc;
}

int
store_ticket_keys_put(struct store *st, const char *lease, const char *holder, int64_t token,
    const struct store_ticket_key *k, int n)
{
	int i, rc;

	if ((rc = store_batch_begin(st)) != STORE_OK)
		return rc;
	if ((rc = store_lease_current(st, lease, holder, token)) == STORE_OK)
		rc = store_run(st, P(st, S_CLEAR, ""));
	for (i = 0; i < n && rc == STORE_OK; i++)
		rc = store_run(st, P(st, S_PUT, "iti", (int64_t)i, k[i].secret, k[i].not_after));
	return store_batch_end(st, rc);
}
