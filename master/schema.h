/*
 * Private to the store (master/store.c): the ordered schema migrations of
 * master/schema.c, and PostgreSQL's starting script (master/schemapg.c).
 */
#ifndef HALOYD_SCHEMA_H
#define HALOYD_SCHEMA_H

/*
 * Migrations stay backward readable for one version (ARCHITECTURE.md,
 * Store): a store this many versions newer is used as it is, so a rollback
 * to the previous package opens the store its successor migrated.
 */
#define SCHEMA_AHEAD_OK 1

struct db;

/* PostgreSQL's script creates the schema at this version in one step. */
#define SCHEMAPG_BASE_VERSION 16
extern const char schemapg_base[];

/*
 * Brings db up to store_schema_version(), one transaction per migration.
 * Refuses (-1, logged) a store written by a newer haloyd. Needs foreign
 * keys already on. Returns 0 or -1.
 */
int schema_migrate(struct db *db);

#endif
