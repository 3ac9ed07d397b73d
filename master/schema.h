/*
 * Private to the store (master/store.c): the ordered schema migrations of
 * master/schema.c.
 */
#ifndef HALOYD_SCHEMA_H
#define HALOYD_SCHEMA_H

/*
 * Migrations stay backward readable for one version (ARCHITECTURE.md,
 * Store): a store this many versions newer is used as it is, so a rollback
 * to the previous package opens the store its successor migrated.
 */
#define SCHEMA_AHEAD_OK 1

#include <sqlite3.h>

/*
 * Brings db up to store_schema_version(), one transaction per migration.
 * Refuses (-1, logged) a file written by a newer haloyd. Needs foreign keys
 * and the journal mode already set on db. Returns 0 or -1.
 */
int schema_migrate(sqlite3 *db);

#endif
