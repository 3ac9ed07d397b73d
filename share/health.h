/*
 * The shared backend table (the BACKENDS section of share/shm.h): one
 * entry per backend address, written by every worker at once without
 * locks. It owns a backend's health state machine (down after `fall`
 * failed checks in a row, up after `rise` passed ones), the probe lease
 * that lets one worker alone probe a backend per interval, passive health
 * (a failed connect skips the backend for a while) and the requests in
 * flight that least-in-flight balancing compares.
 *
 * Every field is one 64-bit word changed by a single atomic instruction
 * (compare-and-swap, add or store), so a worker killed at any instruction
 * holds nothing: a lease it won expires with the interval, and its
 * in-flight words are zeroed by the master when it reaps it
 * (health_forget_worker).
 *
 * Lookup: the key's hash picks an entry; a lookup looks at HEALTH_PROBE
 * consecutive entries. A new key takes an empty entry of that window, else
 * one no worker's snapshot has named for HEALTH_IDLE_MS and with nothing
 * in flight. Past that (more than SHM_BACKENDS_MAX addresses, or a full
 * window) the backend has no entry: it counts as up, is never probed and
 * has nothing in flight (the worker logs it once per snapshot).
 */
#ifndef HALOYD_HEALTH_H
#define HALOYD_HEALTH_H

#include <stdint.h>

#include "share/shm.h"

#define HEALTH_PROBE 16		/* entries a lookup looks at */
#define HEALTH_IDLE_MS 60000	/* an entry no snapshot named this long may be reused */

/* The state word: bit 0 down; successes in a row at bits 8..15, failures at 16..23. */
#define HEALTH_DOWN 1ull
#define HEALTH_OKS(st) ((uint32_t)((st) >> 8) & 0xff)
#define HEALTH_FAILS(st) ((uint32_t)((st) >> 16) & 0xff)

/* The key of backend store id with this address (family, port, 16 address bytes); never 0. */
uint64_t health_key(uint32_t id, uint16_t family, uint16_t port, const uint8_t addr[16]);

struct shm_backend *health_at(const struct shm *s, uint32_t i);
/* The entry of key, claimed when absent (see above); NULL when there is none. */
struct shm_backend *health_get(const struct shm *s, uint64_t key, uint32_t id, uint64_t now_ms);
/* The entry of key, or NULL: never claims one (the master's reads). */
struct shm_backend *health_find(const struct shm *s, uint64_t key);
/* A worker's snapshot names e: it stays (written once a second at most). */
void health_touch(struct shm_backend *e, uint64_t now_ms);

/* 1 when e takes requests: not down by its checks, not skipped after a failed connect. */
int health_usable(const struct shm_backend *e, uint64_t now_ms);
int health_is_down(const struct shm_backend *e);

/*
 * The probe lease: 1 when the caller won the probe due at or before now
 * (the next one is then due an interval after this one's due time, or
 * after now when that is past); 0 when not due or another worker won it.
 */
int health_lease(struct shm_backend *e, uint64_t now_ms, uint64_t interval_ms);

/*
 * One check's outcome (result: an HTTP status or -errno) through the state
 * machine: 1 when it brought e up, -1 down, 0 no change. Exactly one of
 * racing reports sees a change, so the change is logged once.
 */
int health_report(struct shm_backend *e, int ok, int64_t result, uint64_t now_ms,
    uint32_t rise, uint32_t fall);

/* Passive health: a connect failed; 1 when this marked e down (it was not). */
int health_mark_passive(struct shm_backend *e, uint64_t now_ms, uint64_t down_ms);

/* A request to e began or ended on worker index wi. */
void health_inflight_add(const struct shm *s, struct shm_backend *e, uint32_t wi);
void health_inflight_done(const struct shm *s, struct shm_backend *e, uint32_t wi);
/* The sum over every worker. */
uint32_t health_inflight(const struct shm *s, const struct shm_backend *e);
/* Master: worker index wi is dead, its requests with it. */
void health_forget_worker(const struct shm *s, uint32_t wi);

/*
 * Least-in-flight: of n candidates (their in-flight counts, UINT32_MAX for
 * one that may not be used), the index with the fewest, the first of the
 * fewest counting from start (ties go round-robin); -1 when none is usable.
 */
int health_least(const uint32_t *inflight, uint32_t n, uint32_t start);

#endif
