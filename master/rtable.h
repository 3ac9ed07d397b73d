/*
 * The master's in-memory route table: every route of the store, loaded
 * once and then kept current by re-reading only the routes the master
 * itself changed, so a change among 100 000 routes does not read every
 * route back from the store (haloyd issue 16). A change made elsewhere (a
 * PostgreSQL node, a reconnection, apply, reload) marks it stale: the next
 * sync reads everything again.
 */
#ifndef HALOYD_RTABLE_H
#define HALOYD_RTABLE_H

#include <stddef.h>

#include "master/store.h"

/* Touched names kept before the table falls back to a full reload. */
#define RTABLE_DIRTY_MAX 1024

struct rtable {
	struct store_route **routes;	/* sorted by name (strcmp), as the store orders them */
	uint64_t *shards;		/* shards[i]: the snapshot shards routes[i]'s names
					 * fall in (bit k: shard k, share/snap.h) */
	size_t n, cap;
	uint64_t changed;		/* shards whose routes changed since taken */
	char **dirty;			/* names to read again at the next sync */
	size_t ndirty;
	int stale;			/* 1: read everything at the next sync */
};

/* An empty, stale table: the first sync loads every route. */
void rtable_init(struct rtable *t);
void rtable_free(struct rtable *t);
/* Route name was (maybe) changed by us: the next sync reads it again. */
void rtable_touch(struct rtable *t, const char *name);
/* The store changed in ways we do not know: the next sync reads everything. */
void rtable_invalidate(struct rtable *t);
/*
 * Brings the table up to date with the store: everything when stale, else
 * the touched routes only. 0, or -1 (logged) with the table stale again.
 */
int rtable_sync(struct rtable *t, struct store *st);
/* Calls fn for every route by name; stops and returns fn's value when non-zero. */
int rtable_foreach(const struct rtable *t, int (*fn)(void *arg, const struct store_route *r),
    void *arg);
/* Calls fn for every route with a name in snapshot shard k, by name; as rtable_foreach. */
int rtable_foreach_shard(const struct rtable *t, uint32_t k,
    int (*fn)(void *arg, const struct store_route *r), void *arg);
/* The shards whose routes changed since the last call (all after a full read); clears them. */
uint64_t rtable_take_changed(struct rtable *t);
/* The snapshot shards r's names (its own, its aliases) fall in. */
uint64_t rtable_route_shards(const struct store_route *r);
/* The route named name, or NULL. */
const struct store_route *rtable_find(const struct rtable *t, const char *name);

#endif
