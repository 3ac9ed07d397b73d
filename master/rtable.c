/*
 * The master's in-memory route table (master/rtable.h): a sorted array of
 * owned store routes, loaded whole when stale and patched one route at a
 * time after the master's own writes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "master/rtable.h"
#include "share/log.h"
#include "share/snap.h"

#define RTABLE_ALL_SHARDS (~0ull >> (64 - SNAP_SHARDS))

uint64_t
rtable_route_shards(const struct store_route *r)
{
	uint64_t m = 1ull << snap_shard_of(r->name, strlen(r->name), SNAP_SHARDS);
	size_t i;

	for (i = 0; i < r->naliases; i++)
		m |= 1ull << snap_shard_of(r->aliases[i], strlen(r->aliases[i]), SNAP_SHARDS);
	return m;
}

void
rtable_init(struct rtable *t)
{
	memset(t, 0, sizeof(*t));
	t->stale = 1;
}

static void
route_drop(struct store_route *r)
{
	if (r != NULL) {
		store_route_free(r);
		free(r);
	}
}

static void
dirty_clear(struct rtable *t)
{
	size_t i;

	for (i = 0; i < t->ndirty; i++)
		free(t->dirty[i]);
	t->ndirty = 0;
}

static void
routes_clear(struct rtable *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		route_drop(t->routes[i]);
	t->n = 0;
}

void
rtable_free(struct rtable *t)
{
	routes_clear(t);
	dirty_clear(t);
	free(t->routes);
	free(t->shards);
	free(t->dirty);
	rtable_init(t);
}

void
rtable_invalidate(struct rtable *t)
{
	dirty_clear(t);
	t->stale = 1;
}

void
rtable_touch(struct rtable *t, const char *name)
{
	size_t i;

	if (t->stale)
		return;
	for (i = 0; i < t->ndirty; i++)
		if (strcmp(t->dirty[i], name) == 0)
			return;
	/* Past the bound one full read costs less than that many single ones. */
	if (t->ndirty == RTABLE_DIRTY_MAX) {
		rtable_invalidate(t);
		return;
	}
	if (t->dirty == NULL && (t->dirty = calloc(RTABLE_DIRTY_MAX, sizeof(*t->dirty))) == NULL) {
		rtable_invalidate(t);
		return;
	}
	if ((t->dirty[t->ndirty] = strdup(name)) == NULL) {
		rtable_invalidate(t);
		return;
	}
	t->ndirty++;
}

/* Where name is, or would be inserted; *found 1 when it is there. */
static size_t
find_pos(const struct rtable *t, const char *name, int *found)
{
	size_t lo = 0, hi = t->n, mid;
	int c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(t->routes[mid]->name, name)) == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct store_route *
rtable_find(const struct rtable *t, const char *name)
{
	int found;
	size_t i = find_pos(t, name, &found);

	return found ? t->routes[i] : NULL;
}

static int
grow(struct rtable *t)
{
	struct store_route **np;
	uint64_t *ns;
	size_t nc;

	if (t->n < t->cap)
		return 0;
	nc = t->cap ? t->cap * 2 : 256;
	if ((ns = reallocarray(t->shards, nc, sizeof(*ns))) == NULL) {
		log_warn("rtable: reallocarray");
		return -1;
	}
	t->shards = ns;
	if ((np = reallocarray(t->routes, nc, sizeof(*np))) == NULL) {
		log_warn("rtable: reallocarray");
		return -1;
	}
	t->routes = np;
	t->cap = nc;
	return 0;
}

/* Puts r (owned) in name order, replacing a route of the same name. */
static int
put(struct rtable *t, struct store_route *r)
{
	int found;
	size_t i = find_pos(t, r->name, &found);
	uint64_t shards = rtable_route_shards(r);

	/* Its old names' shards lose it, its new ones gain it. */
	t->changed |= shards;
	if (found) {
		t->changed |= t->shards[i];
		route_drop(t->routes[i]);
		t->routes[i] = r;
		t->shards[i] = shards;
		return 0;
	}
	if (grow(t) == -1)
		return -1;
	memmove(&t->routes[i + 1], &t->routes[i], (t->n - i) * sizeof(*t->routes));
	memmove(&t->shards[i + 1], &t->shards[i], (t->n - i) * sizeof(*t->shards));
	t->routes[i] = r;
	t->shards[i] = shards;
	t->n++;
	return 0;
}

static void
remove_name(struct rtable *t, const char *name)
{
	int found;
	size_t i = find_pos(t, name, &found);

	if (!found)
		return;
	t->changed |= t->shards[i];
	route_drop(t->routes[i]);
	memmove(&t->routes[i], &t->routes[i + 1], (t->n - i - 1) * sizeof(*t->routes));
	memmove(&t->shards[i], &t->shards[i + 1], (t->n - i - 1) * sizeof(*t->shards));
	t->n--;
}

/* One touched route read again: replaced, added, or gone. */
static int
sync_one(struct rtable *t, struct store *st, const char *name)
{
	struct store_route *r;
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("rtable: calloc");
		return -1;
	}
	rc = store_route_get(st, name, r);
	if (rc == STORE_OK)
		return put(t, r) == -1 ? (route_drop(r), -1) : 0;
	free(r);
	if (rc == STORE_ENOENT) {
		remove_name(t, name);
		return 0;
	}
	log_warnx("rtable: cannot read route %s from the store", name);
	return -1;
}

/* n strings and their ids, copied; 0 or -1 (what was copied is freed by the caller). */
static int
dup_list(char ***dst, int64_t **dids, char *const *src, const int64_t *sids, size_t n,
    size_t *dn)
{
	size_t i;

	*dn = 0;
	if (n == 0)
		return 0;
	if ((*dst = calloc(n, sizeof(**dst))) == NULL || (*dids = calloc(n, sizeof(**dids))) == NULL)
		return -1;
	memcpy(*dids, sids, n * sizeof(**dids));
	for (i = 0; i < n; i++) {
		if (((*dst)[i] = strdup(src[i])) == NULL)
			return -1;
		(*dn)++;
	}
	return 0;
}

static int
dup_str(char **dst, const char *src)
{
	*dst = NULL;
	return src != NULL && (*dst = strdup(src)) == NULL ? -1 : 0;
}

/* A deep copy of r (only valid during store_route_foreach's call), or NULL. */
static struct store_route *
route_dup(const struct store_route *r)
{
	struct store_route *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->id = r->id;
	c->name_id = r->name_id;
	c->created = r->created;
	c->set = r->set;
	c->set.backend_ca = c->set.backend_sni = c->set.health_path = NULL;
	if ((c->name = strdup(r->name)) == NULL ||
	    dup_str(&c->set.backend_ca, r->set.backend_ca) == -1 ||
	    dup_str(&c->set.backend_sni, r->set.backend_sni) == -1 ||
	    dup_str(&c->set.health_path, r->set.health_path) == -1 ||
	    dup_list(&c->aliases, &c->alias_ids, r->aliases, r->alias_ids, r->naliases,
	    &c->naliases) == -1 ||
	    dup_list(&c->backends, &c->backend_ids, r->backends, r->backend_ids, r->nbackends,
	    &c->nbackends) == -1) {
		route_drop(c);
		return NULL;
	}
	return c;
}

struct load {
	struct rtable *t;
	int sorted;
};

static int
load_route(void *arg, const struct store_route *r)
{
	struct load *l = arg;
	struct rtable *t = l->t;

	if (grow(t) == -1 || (t->routes[t->n] = route_dup(r)) == NULL)
		return -1;
	if (t->n > 0 && strcmp(t->routes[t->n - 1]->name, r->name) >= 0)
		l->sorted = 0;
	t->n++;
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp((*(struct store_route *const *)a)->name,
	    (*(struct store_route *const *)b)->name);
}

static int
sync_all(struct rtable *t, struct store *st)
{
	struct load l = { t, 1 };
	size_t i;

	routes_clear(t);
	t->changed = RTABLE_ALL_SHARDS;
	if (store_route_foreach(st, load_route, &l) != 0) {
		log_warnx("rtable: cannot read the routes from the store");
		routes_clear(t);
		return -1;
	}
	/* The store orders by name in bytes; lookups rely on it, so do not trust it blindly. */
	if (!l.sorted)
		qsort(t->routes, t->n, sizeof(*t->routes), by_name);
	for (i = 0; i < t->n; i++)
		t->shards[i] = rtable_route_shards(t->routes[i]);
	return 0;
}

int
rtable_sync(struct rtable *t, struct store *st)
{
	size_t i;

	if (t->stale) {
		dirty_clear(t);
		if (sync_all(t, st) == -1)
			return -1;
		t->stale = 0;
		return 0;
	}
	for (i = 0; i < t->ndirty; i++)
		if (sync_one(t, st, t->dirty[i]) == -1) {
			rtable_invalidate(t);
			return -1;
		}
	dirty_clear(t);
	return 0;
}

int
rtable_foreach(const struct rtable *t, int (*fn)(void *arg, const struct store_route *r),
    void *arg)
{
	size_t i;
	int rc;

	for (i = 0; i < t->n; i++)
		if ((rc = fn(arg, t->routes[i])) != 0)
			return rc;
	return 0;
}

int
rtable_foreach_shard(const struct rtable *t, uint32_t k,
    int (*fn)(void *arg, const struct store_route *r), void *arg)
{
	uint64_t bit = 1ull << k;
	size_t i;
	int rc;

	/* One pass over 8 bytes a route: cheaper than keeping a list per shard current. */
	for (i = 0; i < t->n; i++)
		if ((t->shards[i] & bit) && (rc = fn(arg, t->routes[i])) != 0)
			return rc;
	return 0;
}

uint64_t
rtable_take_changed(struct rtable *t)
{
	uint64_t c = t->changed;

	t->changed = 0;
	return c;
}
