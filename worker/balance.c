/* Backend choice, shared health and in-flight lookups, passive health (see balance.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include "share/beaddr.h"
#include "share/health.h"
#include "share/log.h"
#include "share/snap.h"
#include "worker/accesslog.h"
#include "worker/balance.h"
#include "worker/context.h"

static void
balance_cache_free(struct balance *b)
{
	free(b->cache);
	free(b->cache_key);
	b->cache = NULL;
	b->cache_key = NULL;
	b->ncache = 0;
	b->cache_snap = NULL;
}

void
balance_free(struct balance *b)
{
	struct balance_health *h, *next;
	size_t i;

	for (i = 0; i < BALANCE_BUCKETS; i++)
		for (h = b->bucket[i]; h != NULL; h = next) {
			next = h->next;
			free(h);
		}
	balance_cache_free(b);
	*b = (struct balance){ 0 };
}

static struct balance_health *
balance_find(struct balance *b, uint32_t id, int create)
{
	struct balance_health **head = &b->bucket[id % BALANCE_BUCKETS], *h;

	for (h = *head; h != NULL; h = h->next)
		if (h->backend_id == id)
			return h;
	if (!create || (h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->backend_id = id;
	h->next = *head;
	*head = h;
	return h;
}

/* The cache of the newest snapshot: emptied when another one is the newest. */
static int
balance_cache_for(struct balance *b, const struct snap *s)
{
	uint32_t n = snap_backend_count(s);

	if (b->cache_snap == s && b->cache_gen == snap_generation(s))
		return 0;
	balance_cache_free(b);
	if (n == 0)
		return -1;
	b->cache = calloc(n, sizeof(*b->cache));
	b->cache_key = calloc(n, sizeof(*b->cache_key));
	if (b->cache == NULL || b->cache_key == NULL) {
		balance_cache_free(b);
		return -1;
	}
	b->ncache = n;
	b->cache_snap = s;
	b->cache_gen = snap_generation(s);
	b->cache_full_logged = 0;
	return 0;
}

struct shm_backend *
balance_entry(struct worker *w, const struct snap *s, const struct snap_backend *be)
{
	uint64_t key = health_key(be->id, be->family, be->port, be->addr);
	struct balance *b = &w->balance;
	struct shm_backend *e;
	uint32_t i;

	if (w->shm.base == NULL || (be->flags & SNAP_BACKEND_TUNNEL))
		return NULL;
	/* Only the newest snapshot is cached; a request on an older one looks it up. */
	if (s != w->snap || balance_cache_for(b, s) == -1)
		return health_get(&w->shm, key, be->id, ev_now(w->loop));
	i = snap_backend_index(s, be);
	if (i < b->ncache && b->cache[i] != NULL && b->cache_key[i] == key &&
	    __atomic_load_n(&b->cache[i]->key, __ATOMIC_RELAXED) == key)
		return b->cache[i];
	e = health_get(&w->shm, key, be->id, ev_now(w->loop));
	if (e == NULL && !b->cache_full_logged) {
		b->cache_full_logged = 1;
		log_warnx("backend %u: no room in the shared backend table (%u entries): it counts "
		    "as up, unchecked, with nothing in flight", be->id, w->shm.nbackends);
	}
	if (i < b->ncache) {
		b->cache[i] = e;
		b->cache_key[i] = key;
	}
	return e;
}

uint32_t
balance_start(struct worker *w, const struct snap_route *r)
{
	return w->balance.rr[r->id % (sizeof(w->balance.rr) / sizeof(w->balance.rr[0]))]++;
}

/* Least-in-flight: *start moves to the usable backend with the fewest in flight. */
static void
balance_least(struct worker *w, const struct snap *s, const struct snap_route *r,
    uint32_t *start)
{
	uint32_t counts[64], i, n = r->be_count < 64 ? r->be_count : 64;
	int at;

	/* Past 64 backends the rest only take their round-robin turns. */
	for (i = 0; i < n; i++) {
		const struct snap_backend *be = snap_route_backend(s, r, (*start + i) %
		    r->be_count);
		struct shm_backend *e = balance_entry(w, s, be);

		if (balance_is_down(w, s, be))
			counts[i] = UINT32_MAX;
		else
			counts[i] = e != NULL ? health_inflight(&w->shm, e) : 0;
	}
	if ((at = health_least(counts, n, 0)) > 0)
		*start += (uint32_t)at;
}

const struct snap_backend *
balance_pick(struct worker *w, const struct snap *s, const struct snap_route *r, uint32_t *start,
    uint32_t *tries)
{
	if (*tries == 0 && (r->flags & SNAP_ROUTE_BALANCE_LIF) && r->be_count > 1 &&
	    w->shm.base != NULL)
		balance_least(w, s, r, start);
	while (*tries < r->be_count) {
		const struct snap_backend *be =
		    snap_route_backend(s, r, (*start + *tries) % r->be_count);

		if (!balance_is_down(w, s, be))
			return be;
		(*tries)++;
	}
	return NULL;
}

void
balance_log_change(struct worker *w, const struct snap *s, const struct snap_backend *be,
    int change, const char *why)
{
	char name[BEADDR_STR_MAX], field[BEADDR_STR_MAX + 32];
	const char *fields[] = { field, NULL };

	(void)w;
	accesslog_backend(s, be, name, sizeof(name));
	snprintf(field, sizeof(field), "HALOYD_BACKEND=%s", name);
	log_fields(change < 0 ? LOG_WARNING : LOG_NOTICE, fields, "backend %u (%s): %s: %s",
	    be->id, name, change < 0 ? "down" : "up", why);
}

void
balance_mark_down(struct worker *w, const struct snap *s, const struct snap_backend *be)
{
	struct balance_health *h;
	struct shm_backend *e;
	char why[64];

	if (w->cfg.backend_down_ms == 0)
		return;
	if ((e = balance_entry(w, s, be)) != NULL) {
		/* Logged by the worker whose mark took it down, once for all workers. */
		snprintf(why, sizeof(why), "connect failed; down for %u ms", w->cfg.backend_down_ms);
		if (health_mark_passive(e, ev_now(w->loop), w->cfg.backend_down_ms))
			balance_log_change(w, s, be, -1, why);
		return;
	}
	if ((h = balance_find(&w->balance, be->id, 1)) == NULL)
		return;
	if (h->down_until <= ev_now(w->loop))
		log_notice("backend %u: down for %u ms", be->id, w->cfg.backend_down_ms);
	h->down_until = ev_now(w->loop) + w->cfg.backend_down_ms;
}

int
balance_is_down(struct worker *w, const struct snap *s, const struct snap_backend *be)
{
	struct shm_backend *e = balance_entry(w, s, be);
	struct balance_health *h;

	if (e != NULL)
		return !health_usable(e, ev_now(w->loop));
	h = balance_find(&w->balance, be->id, 0);
	return h != NULL && h->down_until > ev_now(w->loop);
}

int
balance_checked_out(struct worker *w, const struct snap *s, const struct snap_route *r)
{
	uint32_t i;
	int checked = 0;

	for (i = 0; i < r->be_count; i++) {
		const struct snap_backend *be = snap_route_backend(s, r, i);
		struct shm_backend *e = balance_entry(w, s, be);

		if (!balance_is_down(w, s, be))
			return 0;
		checked |= e != NULL && health_is_down(e);
	}
	return checked;
}

int
balance_backend_fault(int err)
{
	switch (err) {
	case ECONNREFUSED: case ETIMEDOUT: case EHOSTUNREACH: case ENETUNREACH:
	case ECONNRESET: case EHOSTDOWN: case ENETDOWN:
	case ENOENT:	/* a unix backend's socket file is missing: nothing listens */
		return 1;
	default:
		return 0;
	}
}
