/*
 * Backend choice for a route: round-robin per route (a counter per route id,
 * per worker), skipping backends that passive health marked down. Health is
 * kept per worker by backend store id, so it survives snapshot swaps.
 */
#ifndef HALOYD_WORKER_BALANCE_H
#define HALOYD_WORKER_BALANCE_H

#include <stdint.h>

struct worker;
struct snap;
struct snap_route;
struct snap_backend;

#define BALANCE_BUCKETS 256

struct balance_health {
	uint32_t backend_id;
	uint64_t down_until;		/* loop time (ms) until which it is skipped */
	struct balance_health *next;	/* in the bucket */
};

struct balance {
	uint32_t rr[1024];		/* round-robin counters, indexed by route id */
	struct balance_health *bucket[BALANCE_BUCKETS];
};

void balance_free(struct balance *b);

/* Where the round for route r starts (advances the route's counter). */
uint32_t balance_start(struct worker *w, const struct snap_route *r);
/*
 * The next backend of the round that is not down, counting *tries up past
 * skipped ones; NULL when the round is over.
 */
const struct snap_backend *balance_pick(struct worker *w, const struct snap *s,
    const struct snap_route *r, uint32_t start, uint32_t *tries);

/* Passive health: b failed to connect; skipped for backend_down_time (haloyd.conf). */
void balance_mark_down(struct worker *w, uint32_t backend_id);
int balance_is_down(struct worker *w, uint32_t backend_id);
/* 1 when a connect error is the backend's doing, not a shortage of our own (EMFILE...). */
int balance_backend_fault(int err);

#endif
