/*
 * Backend choice for a route: round-robin per route (a counter per route id,
 * per worker), or least-in-flight (SNAP_ROUTE_BALANCE_LIF) over every
 * worker's requests in flight, skipping backends that are down. Health,
 * active and passive, and the in-flight counts live in the shared backend
 * table (share/health.h), so every worker sees the same; until the master
 * sent the region (and in unit tests without one) passive health is kept
 * here per worker by backend store id.
 */
#ifndef HALOYD_WORKER_BALANCE_H
#define HALOYD_WORKER_BALANCE_H

#include <stdint.h>

struct worker;
struct snap;
struct snap_route;
struct snap_backend;
struct shm_backend;

#define BALANCE_BUCKETS 256

struct balance_health {
	uint32_t backend_id;
	uint64_t down_until;		/* loop time (ms) until which it is skipped */
	struct balance_health *next;	/* in the bucket */
};

struct balance {
	uint32_t rr[1024];		/* round-robin counters, indexed by route id */
	struct balance_health *bucket[BALANCE_BUCKETS];
	/* The shared entries of the newest snapshot's backends, by backend index. */
	const struct snap *cache_snap;
	uint64_t cache_gen;
	struct shm_backend **cache;
	uint64_t *cache_key;
	uint32_t ncache;
	int cache_full_logged;		/* "no entry" was logged for this snapshot */
};

void balance_free(struct balance *b);

/* Where the round for route r starts (advances the route's counter). */
uint32_t balance_start(struct worker *w, const struct snap_route *r);
/*
 * The next backend of the round that is not down, counting *tries up past
 * skipped ones; NULL when the round is over. A least-in-flight route's
 * first pick moves *start to the backend with the fewest in flight (ties:
 * the first of them in the round); retries go on round-robin from there.
 */
const struct snap_backend *balance_pick(struct worker *w, const struct snap *s,
    const struct snap_route *r, uint32_t *start, uint32_t *tries);

/* The shared entry of backend be of snapshot s (claimed if new); NULL without one. */
struct shm_backend *balance_entry(struct worker *w, const struct snap *s,
    const struct snap_backend *be);

/* Passive health: b failed to connect; skipped for backend_down_time (haloyd.conf). */
void balance_mark_down(struct worker *w, const struct snap *s, const struct snap_backend *be);
int balance_is_down(struct worker *w, const struct snap *s, const struct snap_backend *be);
/*
 * 1 when no backend of r takes requests and at least one was taken out by
 * its health checks (the route answers 503: they come back); a route whose
 * backends only failed connects answers 502 as before.
 */
int balance_checked_out(struct worker *w, const struct snap *s, const struct snap_route *r);
/* Logs a health change of backend be (up: 1, down: -1) once, with HALOYD_BACKEND. */
void balance_log_change(struct worker *w, const struct snap *s, const struct snap_backend *be,
    int change, const char *why);
/* 1 when a connect error is the backend's doing, not a shortage of our own (EMFILE...). */
int balance_backend_fault(int err);

#endif
