/*
 * The response cache's counters (see cachecount.h): one relaxed add on the
 * worker's own slot, as every other per-route counter of the region.
 */
#include "config.h"

#include "share/shm.h"
#include "worker/cachecount.h"
#include "worker/context.h"

void
cachecount_add(struct worker *w, uint32_t route_id, enum shm_cache_event ev)
{
	shm_add(&shm_cache_route(w->stats, route_id)->n[ev], 1);
}
