/*
 * The store's meta table: values of the whole store, today the persisted
 * generation counter, so a restarted master never reuses a generation.
 */
#include "config.h"

#include <stdint.h>

#include "master/store.h"
#include "master/storeint.h"
#include "share/log.h"

enum meta_stmt {
	S_GEN_BUMP,
	S_GEN_GET,
};

const char *const store_meta_sql[] = {
	[S_GEN_BUMP] = "UPDATE meta SET value = value + 1 WHERE key = 'generation'",
	[S_GEN_GET] = "SELECT value FROM meta WHERE key = 'generation'",
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_META, which, __VA_ARGS__)

int
store_next_generation(struct store *st, uint64_t *gen)
{
	int64_t v = 0;
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	if ((rc = store_run_changed(st, P(st, S_GEN_BUMP, ""))) == STORE_OK)
		rc = store_query_int(st, P(st, S_GEN_GET, ""), &v);
	if (rc == STORE_ENOENT) {
		log_warnx("store: the generation counter is missing");
		rc = STORE_ERR;
	}
	if ((rc = store_tx_end(st, rc)) == STORE_OK)
		*gen = (uint64_t)v;
	return rc;
}
