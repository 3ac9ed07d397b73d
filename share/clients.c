/* The shared client table: keys, the probe window, buckets and connection counts (see clients.h). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "share/clients.h"
#include "share/hash.h"

#define M48 ((1ull << 48) - 1)
#define TAG(key) ((key) & ~M48)
/*
 * A new bucket drains "long ago": 2^46 µs (two years) before now, so its
 * first request finds it empty; a bucket untouched for two more years
 * would wrap, and the oldest entries are evicted long before that.
 */
#define FRESH_PAST (1ull << 46)
#define TAKE_TRIES 64		/* CAS retries under contention, then the request passes */
#define GET_TRIES 4

int
clients_addr_set(int family, const uint8_t *b, struct clients_addr *a)
{
	/* Compared as bytes: b need not be aligned for a struct in6_addr. */
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->family = AF_INET;
		memcpy(a->bytes, b, 4);
		return 0;
	}
	if (family != AF_INET6)
		return -1;
	/* ::ffff:a.b.c.d is the IPv4 client a dual-stack listener reports. */
	if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0) {
		a->family = AF_INET;
		memcpy(a->bytes, b + 12, 4);
		return 0;
	}
	/* One /64 is one subscriber: an IPv6 client picks any address in it at will. */
	a->family = AF_INET6;
	memcpy(a->bytes, b, 8);
	return 0;
}

int
clients_addr_parse(const char *ip, size_t len, struct clients_addr *a)
{
	char buf[INET6_ADDRSTRLEN];
	uint8_t b[16];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, ip, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, b) == 1)
		return clients_addr_set(AF_INET, b, a);
	if (inet_pton(AF_INET6, buf, b) != 1)
		return -1;
	return clients_addr_set(AF_INET6, b, a);
}

uint64_t
clients_key(const struct shm *s, const struct clients_addr *a, uint32_t route)
{
	uint8_t buf[13];
	uint64_t k;

	buf[0] = a->family;
	memcpy(buf + 1, a->bytes, 8);
	memcpy(buf + 9, &route, 4);
	k = hash_siphash24(s->clients->hash_key, buf, sizeof(buf));
	return k != 0 ? k : 1;
}

struct shm_client *
clients_at(const struct shm *s, uint32_t i)
{
	return (struct shm_client *)(void *)(s->client_base + (size_t)i * s->client_size);
}

uint32_t
clients_index(const struct shm *s, const struct shm_client *e)
{
	return (uint32_t)(((const uint8_t *)e - s->client_base) / s->client_size);
}

uint32_t
clients_conn_count(const struct shm *s, const struct shm_client *e)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->nslots; i++)
		n += __atomic_load_n(&e->conns[i], __ATOMIC_RELAXED);
	return n;
}

/* Claims victim (holding vkey) for key: a fresh, empty bucket. */
static int
clients_claim(struct shm_client *victim, uint64_t vkey, uint64_t key, uint64_t now_ms)
{
	if (!__atomic_compare_exchange_n(&victim->key, &vkey, key, 0, __ATOMIC_ACQ_REL,
	    __ATOMIC_ACQUIRE))
		return -1;
	/* A bucket update of the old key now fails its CAS: the tag changed. */
	__atomic_store_n(&victim->state, TAG(key) | ((now_ms * 1000 - FRESH_PAST) & M48),
	    __ATOMIC_RELEASE);
	__atomic_store_n(&victim->stamp, now_ms, __ATOMIC_RELAXED);
	return 0;
}

struct shm_client *
clients_get(const struct shm *s, uint64_t key, uint64_t now_ms)
{
	uint32_t start, n, probe, tries;

	if (s->nclients == 0)
		return NULL;
	start = (uint32_t)(((unsigned __int128)key * s->nclients) >> 64);
	probe = s->nclients < SHM_CLIENT_PROBE ? s->nclients : SHM_CLIENT_PROBE;
	for (tries = 0; tries < GET_TRIES; tries++) {
		struct shm_client *victim = NULL;
		uint64_t vkey = 0, vstamp = UINT64_MAX;

		for (n = 0; n < probe; n++) {
			struct shm_client *e = clients_at(s, (start + n) % s->nclients);
			uint64_t k = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE), st;

			if (k == key) {
				/* Written only when it changes: a hot client's line stays shared. */
				if (__atomic_load_n(&e->stamp, __ATOMIC_RELAXED) != now_ms)
					__atomic_store_n(&e->stamp, now_ms, __ATOMIC_RELAXED);
				return e;
			}
			st = k == 0 ? 0 : __atomic_load_n(&e->stamp, __ATOMIC_RELAXED);
			if ((victim == NULL || st < vstamp) && (k == 0 || clients_conn_count(s, e) == 0)) {
				victim = e;
				vkey = k;
				vstamp = st;
			}
		}
		if (victim == NULL)
			return NULL;
		if (clients_claim(victim, vkey, key, now_ms) == 0)
			return victim;
	}
	return NULL;
}

static int64_t
sext48(uint64_t v)
{
	return (int64_t)(v << 16) >> 16;
}

int
clients_take(struct shm_client *e, uint64_t key, const struct clients_rate *r,
    uint64_t now_us, enum clients_verdict *v, uint64_t *wait_us)
{
	uint64_t limit = (uint64_t)r->burst * r->emission_us, s, ns;
	int64_t backlog;
	int n;

	for (n = 0; n < TAKE_TRIES; n++) {
		s = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&e->key, __ATOMIC_ACQUIRE) != key)
			return -1;
		if (TAG(s) != TAG(key)) {
			/*
			 * Claimed for key, its bucket not reset yet: the claimer is
			 * between its two stores, or was killed there. Reset it here
			 * (both resets write the same fresh bucket).
			 */
			ns = TAG(key) | ((now_us - FRESH_PAST) & M48);
			(void)__atomic_compare_exchange_n(&e->state, &s, ns, 0, __ATOMIC_ACQ_REL,
			    __ATOMIC_ACQUIRE);
			continue;
		}
		/* nginx: excess = max(0, excess - drained + 1), in time: the backlog after this one. */
		backlog = sext48((s - now_us) & M48) + (int64_t)r->emission_us;
		if (backlog < 0)
			backlog = 0;
		if ((uint64_t)backlog > limit) {
			*v = CLIENTS_REFUSE;
			*wait_us = (uint64_t)backlog - limit;
			return 0;
		}
		ns = TAG(key) | ((now_us + (uint64_t)backlog) & M48);
		if (__atomic_compare_exchange_n(&e->state, &s, ns, 0, __ATOMIC_ACQ_REL,
		    __ATOMIC_ACQUIRE)) {
			*v = CLIENTS_PASS;
			*wait_us = (uint64_t)backlog;
			return 0;
		}
	}
	/* Contention beyond reason: let this one through rather than spin. */
	*v = CLIENTS_PASS;
	*wait_us = 0;
	return 0;
}

int
clients_conn_open(const struct shm *s, struct shm_client *e, uint64_t key, uint32_t wi,
    uint32_t max)
{
	int rc = 0;

	__atomic_fetch_add(&e->conns[wi], 1, __ATOMIC_SEQ_CST);
	/* Evicted between the lookup and the add: the evictor saw no connection. */
	if (__atomic_load_n(&e->key, __ATOMIC_SEQ_CST) != key)
		rc = -2;
	else if (clients_conn_count(s, e) > max)
		rc = -1;
	if (rc != 0)
		__atomic_fetch_sub(&e->conns[wi], 1, __ATOMIC_RELEASE);
	return rc;
}

void
clients_conn_close(struct shm_client *e, uint32_t wi)
{
	/* Never below 0: the master may have zeroed a dead predecessor's counts. */
	uint16_t c = __atomic_load_n(&e->conns[wi], __ATOMIC_RELAXED);

	while (c > 0 && !__atomic_compare_exchange_n(&e->conns[wi], &c, (uint16_t)(c - 1), 0,
	    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

void
clients_forget_worker(const struct shm *s, uint32_t wi)
{
	uint32_t i;

	if (wi >= s->nslots)
		return;
	for (i = 0; i < s->nclients; i++)
		__atomic_store_n(&clients_at(s, i)->conns[wi], 0, __ATOMIC_RELEASE);
}
