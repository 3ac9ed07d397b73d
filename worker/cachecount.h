/*
 * The response cache's counters: hits, misses, revalidations, stale
 * answers, stores, evictions and bypasses per route, in this worker's slot
 * of the shared region (share/shm.h, struct shm_cache_ctr), which
 * the master sums for `haloyd-ctl cache stats` and /metrics.
 */
#ifndef HALOYD_WORKER_CACHECOUNT_H
#define HALOYD_WORKER_CACHECOUNT_H

#include <stdint.h>

#include "share/shm.h"

struct worker;

/* One event of route_id's cache (0: the slot's "no route" entry). */
void cachecount_add(struct worker *w, uint32_t route_id, enum shm_cache_event ev);

#endif
