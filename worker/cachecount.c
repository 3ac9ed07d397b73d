/*
 * The response cache's counters (see cachecount.h): one relaxed add on the
 * worker's own slot, as every other per-route counter of the region.
 */
#include "config.h"

#include "share/shm.h"
#include "worker/cache.h"
#include "worker/cachecount.h"
#include "worker/context.h"

void
cachecount_add(struct worker *w, uint32_t route_id, enum shm_cache_event ev)
{
	shm_add(&shm_cache_route(w->stats, route_id)->n[ev], 1);
}

void
cachecount_evicted(void *arg, const void *head, size_t len)
{
	uint32_t route_id = 0;

	/* A Vary record is no response: it is not counted as one. */
	if (head != NULL && cache_entry_route(head, len, &route_id) == 0)
		return;
	cachecount_add(arg, route_id, SHM_CACHE_EVICT);
}
