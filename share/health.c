/* The shared backend table: lookup, lease, state machine, in-flight counts (see health.h). */
#include "config.h"

#include <string.h>

#include "share/hash.h"
#include "share/health.h"

#define OKS_SHIFT 8
#define FAILS_SHIFT 16
#define COUNT_MAX 255u

uint64_t
health_key(uint32_t id, uint16_t family, uint16_t port, const uint8_t addr[16])
{
	uint8_t buf[20];
	uint32_t h;

	memcpy(buf, &family, 2);
	memcpy(buf + 2, &port, 2);
	memcpy(buf + 4, addr, 16);
	h = hash_crc32c(0, buf, sizeof(buf));
	/* The id in the high half: never 0 for a stored backend (ids start at 1). */
	return (uint64_t)id << 32 | h | (id == 0);
}

struct shm_backend *
health_at(const struct shm *s, uint32_t i)
{
	return (struct shm_backend *)(void *)(s->backend_base + (size_t)i * s->backend_size);
}

uint32_t
health_inflight(const struct shm *s, const struct shm_backend *e)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->nslots; i++)
		n += __atomic_load_n(&e->inflight[i], __ATOMIC_RELAXED);
	return n;
}

static uint32_t
health_slot(const struct shm *s, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(((unsigned __int128)h * s->nbackends) >> 64);
}

struct shm_backend *
health_find(const struct shm *s, uint64_t key)
{
	uint32_t start, n;

	if (s->nbackends == 0 || key == 0)
		return NULL;
	start = health_slot(s, key);
	for (n = 0; n < HEALTH_PROBE && n < s->nbackends; n++) {
		struct shm_backend *e = health_at(s, (start + n) % s->nbackends);

		if (__atomic_load_n(&e->key, __ATOMIC_ACQUIRE) == key)
			return e;
	}
	return NULL;
}

/* Claims e (holding old) for key: a fresh, up entry. */
static int
health_claim(struct shm_backend *e, uint64_t old, uint64_t key, uint32_t id, uint64_t now_ms)
{
	if (!__atomic_compare_exchange_n(&e->key, &old, key, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return -1;
	/*
	 * A claimer killed between these stores leaves the old address's
	 * state on the new one until its next checks: no lock, one wrong state.
	 */
	__atomic_store_n(&e->state, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->next_probe, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->checked_ms, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->result, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->checks_ok, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->checks_failed, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->passive_until, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->id, id, __ATOMIC_RELAXED);
	__atomic_store_n(&e->stamp, now_ms, __ATOMIC_RELEASE);
	return 0;
}

struct shm_backend *
health_get(const struct shm *s, uint64_t key, uint32_t id, uint64_t now_ms)
{
	uint32_t start, n, tries;
	struct shm_backend *e;

	if ((e = health_find(s, key)) != NULL || s->nbackends == 0)
		return e;
	start = health_slot(s, key);
	for (tries = 0; tries < 4; tries++) {
		struct shm_backend *victim = NULL;
		uint64_t vkey = 0;

		for (n = 0; n < HEALTH_PROBE && n < s->nbackends && victim == NULL; n++) {
			uint64_t k;

			e = health_at(s, (start + n) % s->nbackends);
			k = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);

			if (k == key)
				return e;
			if (k == 0 || (__atomic_load_n(&e->stamp, __ATOMIC_RELAXED) + HEALTH_IDLE_MS <
			    now_ms && health_inflight(s, e) == 0)) {
				victim = e;
				vkey = k;
			}
		}
		if (victim == NULL)
			return NULL;
		if (health_claim(victim, vkey, key, id, now_ms) == 0)
			return victim;
	}
	return NULL;
}

void
health_touch(struct shm_backend *e, uint64_t now_ms)
{
	/* Written only once a second: the line stays shared between the workers. */
	if (__atomic_load_n(&e->stamp, __ATOMIC_RELAXED) + 1000 <= now_ms)
		__atomic_store_n(&e->stamp, now_ms, __ATOMIC_RELAXED);
}

int
health_is_down(const struct shm_backend *e)
{
	return (__atomic_load_n(&e->state, __ATOMIC_RELAXED) & HEALTH_DOWN) != 0;
}

int
health_usable(const struct shm_backend *e, uint64_t now_ms)
{
	return !health_is_down(e) && __atomic_load_n(&e->passive_until, __ATOMIC_RELAXED) <= now_ms;
}

int
health_lease(struct shm_backend *e, uint64_t now_ms, uint64_t interval_ms)
{
	uint64_t due = __atomic_load_n(&e->next_probe, __ATOMIC_ACQUIRE), next;

	if (due > now_ms)
		return 0;
	/* On the interval's grid while it keeps up, so a backend sees one probe per interval. */
	next = due != 0 && due + interval_ms > now_ms ? due + interval_ms : now_ms + interval_ms;
	return __atomic_compare_exchange_n(&e->next_probe, &due, next, 0, __ATOMIC_ACQ_REL,
	    __ATOMIC_ACQUIRE);
}

/* The state after one check; *change as health_report's result. */
static uint64_t
health_step(uint64_t st, int ok, uint32_t rise, uint32_t fall, int *change)
{
	uint32_t oks = HEALTH_OKS(st), fails = HEALTH_FAILS(st);
	uint64_t down = st & HEALTH_DOWN;

	*change = 0;
	if (ok) {
		oks = oks < COUNT_MAX ? oks + 1 : oks;
		fails = 0;
		if (down && oks >= rise) {
			down = 0;
			*change = 1;
		}
	} else {
		fails = fails < COUNT_MAX ? fails + 1 : fails;
		oks = 0;
		if (!down && fails >= fall) {
			down = HEALTH_DOWN;
			*change = -1;
		}
	}
	return down | (uint64_t)oks << OKS_SHIFT | (uint64_t)fails << FAILS_SHIFT;
}

int
health_report(struct shm_backend *e, int ok, int64_t result, uint64_t now_ms,
    uint32_t rise, uint32_t fall)
{
	uint64_t st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE), ns;
	int change;

	do
		ns = health_step(st, ok, rise, fall, &change);
	while (!__atomic_compare_exchange_n(&e->state, &st, ns, 0, __ATOMIC_ACQ_REL,
	    __ATOMIC_ACQUIRE));
	__atomic_store_n(&e->result, result, __ATOMIC_RELAXED);
	__atomic_store_n(&e->checked_ms, now_ms, __ATOMIC_RELEASE);
	__atomic_fetch_add(ok ? &e->checks_ok : &e->checks_failed, 1, __ATOMIC_RELAXED);
	return change;
}

int
health_mark_passive(struct shm_backend *e, uint64_t now_ms, uint64_t down_ms)
{
	uint64_t old = __atomic_load_n(&e->passive_until, __ATOMIC_ACQUIRE);

	while (old < now_ms + down_ms)
		if (__atomic_compare_exchange_n(&e->passive_until, &old, now_ms + down_ms, 0,
		    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return old <= now_ms;
	return 0;
}

void
health_inflight_add(const struct shm *s, struct shm_backend *e, uint32_t wi)
{
	if (wi < s->nslots)
		__atomic_fetch_add(&e->inflight[wi], 1, __ATOMIC_RELAXED);
}

void
health_inflight_done(const struct shm *s, struct shm_backend *e, uint32_t wi)
{
	uint32_t c;

	if (wi >= s->nslots)
		return;
	/* Never below 0: the master may have zeroed a dead predecessor's counts. */
	c = __atomic_load_n(&e->inflight[wi], __ATOMIC_RELAXED);
	while (c > 0 && !__atomic_compare_exchange_n(&e->inflight[wi], &c, c - 1, 0,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

void
health_forget_worker(const struct shm *s, uint32_t wi)
{
	uint32_t i;

	if (wi >= s->nslots)
		return;
	for (i = 0; i < s->nbackends; i++)
		__atomic_store_n(&health_at(s, i)->inflight[wi], 0, __ATOMIC_RELEASE);
}

int
health_least(const uint32_t *inflight, uint32_t n, uint32_t start)
{
	uint32_t k, best = UINT32_MAX;
	int at = -1;

	for (k = 0; k < n; k++) {
		uint32_t i = (start + k) % n;

		if (inflight[i] != UINT32_MAX && inflight[i] < best) {
			best = inflight[i];
			at = (int)i;
		}
	}
	return at;
}
