/* The master's reads of the shared backend table: route show's lines, the metrics' walk. */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

#include "master/bhealth.h"
#include "share/health.h"
#include "share/snap.h"

static const struct shm_backend *
bhealth_by_id(const struct shm *s, uint32_t id)
{
	uint32_t i;

	/* A scan: route show is rare and the table small (SHM_BACKENDS_MAX). */
	for (i = 0; i < s->nbackends; i++) {
		const struct shm_backend *e = health_at(s, i);

		if (__atomic_load_n(&e->key, __ATOMIC_ACQUIRE) != 0 &&
		    __atomic_load_n(&e->id, __ATOMIC_RELAXED) == id)
			return e;
	}
	return NULL;
}

void
bhealth_line(const struct shm *s, uint32_t id, const char *name, uint64_t now_ms,
    char *buf, size_t len)
{
	const struct shm_backend *e = s->base != NULL ? bhealth_by_id(s, id) : NULL;
	uint64_t checked, passive;
	int64_t result;
	char last[96] = "no check yet";

	if (e == NULL) {
		snprintf(buf, len, "%s: no state yet", name);
		return;
	}
	checked = __atomic_load_n(&e->checked_ms, __ATOMIC_ACQUIRE);
	result = __atomic_load_n(&e->result, __ATOMIC_RELAXED);
	passive = __atomic_load_n(&e->passive_until, __ATOMIC_RELAXED);
	if (checked != 0 && result >= 0)
		snprintf(last, sizeof(last), "last check %llu ms ago: %lld",
		    (unsigned long long)(now_ms > checked ? now_ms - checked : 0), (long long)result);
	else if (checked != 0)
		snprintf(last, sizeof(last), "last check %llu ms ago: error %lld",
		    (unsigned long long)(now_ms > checked ? now_ms - checked : 0),
		    (long long)-result);
	snprintf(buf, len, "%s: %s%s, %s, %llu passed, %llu failed, %u in flight", name,
	    health_is_down(e) ? "down" : "up",
	    passive > now_ms ? " (skipped after a failed connect)" : "", last,
	    (unsigned long long)__atomic_load_n(&e->checks_ok, __ATOMIC_RELAXED),
	    (unsigned long long)__atomic_load_n(&e->checks_failed, __ATOMIC_RELAXED),
	    health_inflight(s, e));
}

/* The label of b: as haloyd-ctl prints backends. */
static void
bhealth_name(const struct snap *s, const struct snap_backend *b, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (b->family == AF_UNIX) {
		snprintf(buf, len, "unix:%s", snap_string(s, b->name));
		return;
	}
	(void)inet_ntop(b->family, b->addr, ip, sizeof(ip));
	snprintf(buf, len, b->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, b->port);
}

void
bhealth_foreach(const struct shm *shm, const struct snap *s, uint64_t now_ms,
    bhealth_fn *fn, void *arg)
{
	uint32_t i, j, nr = s != NULL && shm->base != NULL ? snap_route_count(s) : 0;
	char name[160];

	for (i = 0; i < nr; i++) {
		const struct snap_route *r = snap_route_at(s, i);

		for (j = 0; j < r->be_count; j++) {
			const struct snap_backend *b = snap_route_backend(s, r, j);
			const struct shm_backend *e;

			if (b->flags & SNAP_BACKEND_TUNNEL)
				continue;
			e = health_find(shm, health_key(b->id, b->family, b->port, b->addr));
			if (e == NULL)
				continue;
			bhealth_name(s, b, name, sizeof(name));
			fn(arg, snap_string(s, r->name), name, e, health_usable(e, now_ms));
		}
	}
}
