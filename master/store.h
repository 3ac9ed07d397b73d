/*
 * The SQLite store (master only): routes, their host names and backends,
 * and the generation counter. WAL mode, foreign keys on, migrations by
 * PRAGMA user_version (master/schema.c). Callers pass names already
 * normalised (share/hostname.h) and backends as canonical "ip:port" text
 * (share/addr.h); the store enforces uniqueness and existence.
 */
#ifndef HALOYD_STORE_H
#define HALOYD_STORE_H

#include <stddef.h>
#include <stdint.h>

enum store_rc {
	STORE_OK = 0,
	STORE_ERR = -1,		/* SQLite or I/O failure, logged */
	STORE_ENOENT = -2,	/* no such route / alias / backend */
	STORE_EEXIST = -3,	/* name already used by any route, or backend already on the route */
	STORE_EINVAL = -4,	/* e.g. removing a route's canonical name as an alias */
};

struct store;

struct store_route {
	int64_t id;
	char *name;		/* canonical name */
	char **aliases;		/* other names (exact or "*.x"), sorted */
	int64_t *alias_ids;
	size_t naliases;
	char **backends;	/* "ip:port" in the order they were added */
	int64_t *backend_ids;
	size_t nbackends;
	int64_t name_id;	/* host row id of the canonical name */
	int64_t created;	/* unix seconds */
};

/* Opens (creating if needed, mode 0600) and migrates the store. */
int store_open(const char *path, struct store **out);
void store_close(struct store *st);
/* The schema version the code migrates to. */
int store_schema_version(void);

int store_route_add(struct store *st, const char *name, const char *const *aliases,
    size_t naliases, const char *const *backends, size_t nbackends);
int store_route_rm(struct store *st, const char *name);
int store_alias_add(struct store *st, const char *route, const char *alias);
int store_alias_rm(struct store *st, const char *route, const char *alias);
int store_backend_add(struct store *st, const char *route, const char *addr);
int store_backend_rm(struct store *st, const char *route, const char *addr);

/* Fills *out (free with store_route_free); STORE_ENOENT when absent. */
int store_route_get(struct store *st, const char *name, struct store_route *out);
void store_route_free(struct store_route *r);
/*
 * Calls fn for every route ordered by name; stops and returns fn's value
 * when it is non-zero. r is only valid during the call. fn runs inside a
 * read transaction: it may read the store but must not change it.
 */
int store_route_foreach(struct store *st, int (*fn)(void *arg, const struct store_route *r),
    void *arg);
int64_t store_route_count(struct store *st);

/* Increments and returns the persisted generation counter (never goes back). */
int store_next_generation(struct store *st, uint64_t *gen);

#endif
