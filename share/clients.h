/*
 * The shared client table (the CLIENTS section of share/shm.h): a fixed
 * array of entries keyed by a client address and a route, written by every
 * worker at once without locks, and the leaky-bucket arithmetic of a rate
 * entry.
 *
 * Lookup: the key's hash picks an entry; a lookup looks at SHM_CLIENT_PROBE
 * consecutive entries (wrapping) and nothing more. A new key takes an empty
 * entry of that window, else the one used longest ago that holds no open
 * connection (a bounded probe that evicts the oldest in its window, rather
 * than CLOCK: CLOCK's hand is one word every worker would write on every
 * insert, and a window bounds a lookup's work to a few cache lines).
 *
 * Every field of an entry is one 64-bit (or 16-bit) word changed by a single
 * atomic instruction (compare-and-swap or add), so a worker killed at any
 * instruction leaves no lock held and at most its own last change undone.
 */
#ifndef HALOYD_CLIENTS_H
#define HALOYD_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "share/shm.h"

/* A client as the table keys it: IPv4, or the /64 of an IPv6 address. */
struct clients_addr {
	uint8_t family;		/* AF_INET / AF_INET6 */
	uint8_t bytes[8];	/* IPv4: 4 bytes; IPv6: the first 8 (the /64) */
};

/* The address of a literal IP (IPv4-mapped IPv6 is IPv4); 0 or -1. */
int clients_addr_parse(const char *ip, size_t len, struct clients_addr *a);

/* The same from an address in network order (b: 4 or 16 bytes by family); 0 or -1. */
int clients_addr_set(int family, const uint8_t *b, struct clients_addr *a);

/* The entry key of (a, route); never 0. */
uint64_t clients_key(const struct shm *s, const struct clients_addr *a, uint32_t route);

/*
 * The entry of key, inserted when absent (evicting the oldest idle entry
 * of its window); NULL when the table has no entries or the whole window
 * holds open connections. now_ms: CLOCK_MONOTONIC in ms.
 */
struct shm_client *clients_get(const struct shm *s, uint64_t key, uint64_t now_ms);
/* The entry at index i (0 .. nclients-1). */
struct shm_client *clients_at(const struct shm *s, uint32_t i);
uint32_t clients_index(const struct shm *s, const struct shm_client *e);

/* A rate limit: every emission_us one request drains; burst requests may wait. */
struct clients_rate {
	uint64_t emission_us;	/* 60 s / requests per minute */
	uint32_t burst;
};

enum clients_verdict { CLIENTS_PASS, CLIENTS_REFUSE };

/*
 * One request against the bucket of entry e (key: its key): nginx's
 * limit_req. The excess after it (requests beyond the one being served,
 * draining at the rate) above burst refuses it and changes nothing;
 * otherwise it counts and *wait_us is how long it would wait for its turn
 * (excess × emission). On a refusal *wait_us is how long until one would
 * pass. -1 when the entry was taken by another key meanwhile (look again).
 */
int clients_take(struct shm_client *e, uint64_t key, const struct clients_rate *r,
    uint64_t now_us, enum clients_verdict *v, uint64_t *wait_us);

/*
 * One connection more for worker index wi on entry e (key: its key), if the
 * sum of every worker's stays within max: 0; -1 over the limit, -2 the
 * entry went to another key meanwhile (look again); nothing counted then.
 * The count goes up first and down again when over, so two workers racing
 * may both refuse but never both pass the limit.
 */
int clients_conn_open(const struct shm *s, struct shm_client *e, uint64_t key, uint32_t wi,
    uint32_t max);
void clients_conn_close(struct shm_client *e, uint32_t wi);
/* The sum over every worker. */
uint32_t clients_conn_count(const struct shm *s, const struct shm_client *e);
/* Master: worker index wi is dead, its connections with it. */
void clients_forget_worker(const struct shm *s, uint32_t wi);

#endif
