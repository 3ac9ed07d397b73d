/*
 * The shared region: its layout, defined once for the master that creates
 * it (master/stats.c reads it) and the workers that map it read-write.
 *
 * One memfd, made by the master at start and handed to every worker after
 * HELLO, the same one to a respawned worker, so counters outlive workers.
 * Layout as the snapshot's (share/snap.h): a 128-byte header, a section
 * table of SHM_SECTIONS_MAX entries at header.section_table_off, then
 * sections at 64-byte aligned offsets. BACKENDS, a fixed table of
 * SHM_BACKENDS_MAX entries, is each backend address's health and in-flight
 * count (share/health.c owns its entries). The last section, CLIENTS, takes
 * every byte the others leave: the keyed per-client table of rate limits
 * and connection counts (share/clients.c owns its entries).
 *
 * No locks: each worker slot has one writer (its worker), which only adds
 * to its counters with relaxed atomics and sets its gauges; the master only
 * reads and sums. The client table is written by every worker with
 * compare-and-swap on single 64-bit words (share/clients.c). A worker killed
 * at any instruction holds nothing.
 */
#ifndef HALOYD_SHM_H
#define HALOYD_SHM_H

#include <stddef.h>
#include <stdint.h>

#define SHM_MAGIC "HLYDSHM1"	/* 8 bytes, no NUL in the region */
#define SHM_MAJOR 1
#define SHM_MINOR 3
#define SHM_SECTIONS_MAX 8
#define SHM_ALIGN 64		/* a cache line: no two writers share one */
#define SHM_SIZE_MIN (1u << 20)
#define SHM_SIZE_MAX (1ull << 30)
#define SHM_SIZE_DEFAULT (8u << 20)
#define SHM_WORKERS_MAX 256	/* conf.c's bound on `workers` */

/* Per worker, requests keyed by route store id; later routes go to "other". */
#define SHM_ROUTES_MAX 128	/* power of two */
#define SHM_STATUS_CLASSES 6	/* [0] anything outside 100..599, [1..5] 1xx..5xx */
enum shm_proto { SHM_HTTP10, SHM_HTTP11, SHM_HTTP2, SHM_PROTOS };
/* Upper bounds in µs of the duration histogram (the Prometheus clients' defaults). */
#define SHM_DURATION_BUCKETS 11
#define SHM_DURATION_BOUNDS_US { 5000, 10000, 25000, 50000, 100000, 250000, 500000, \
	1000000, 2500000, 5000000, 10000000 }
enum shm_tls { SHM_TLS_FULL, SHM_TLS_RESUMED, SHM_TLS_FAILED, SHM_TLS_KINDS };
enum shm_acme { SHM_ACME_ISSUED, SHM_ACME_FAILED, SHM_ACME_OUTCOMES };
/* The response cache's events per route (minor 3; worker/cachecount.c counts them). */
enum shm_cache_event {
	SHM_CACHE_HIT,		/* answered from a fresh entry (a 304 of ours too) */
	SHM_CACHE_MISS,		/* no usable entry: to the backend */
	SHM_CACHE_REVALIDATED,	/* a stale entry's validators: the backend said 304 */
	SHM_CACHE_REFETCHED,	/* a stale entry's validators: the backend sent a new response */
	SHM_CACHE_STALE,	/* a stale entry served (stale-while-revalidate, stale-if-error) */
	SHM_CACHE_STORE,	/* entries written */
	SHM_CACHE_EVICT,	/* entries evicted for room (least recently used) */
	SHM_CACHE_BYPASS,	/* the request's own directives (no-cache, no-store) skip the cache */
	SHM_CACHE_EVENTS
};
#define SHM_CACHE_EVENT_NAMES { "hits", "misses", "revalidated_304", "revalidated_200", \
	"stale", "stores", "evictions", "bypasses" }

struct shm_header {
	char magic[8];
	uint16_t major;
	uint16_t minor;
	uint32_t header_size;	/* 128 */
	uint64_t size;		/* equals the memfd's size */
	uint32_t nsections;
	uint32_t section_table_off;
	uint32_t nworkers;	/* worker slots in SHM_SEC_WORKERS */
	uint32_t reserved0;
	uint64_t free_off;	/* first byte no section uses */
	uint8_t reserved[80];
};

enum shm_section_kind {
	SHM_SEC_MASTER = 1,	/* struct shm_master, one */
	SHM_SEC_WORKERS,	/* struct shm_wslot[nworkers], by worker index */
	SHM_SEC_CLIENTS,	/* struct shm_clients, then count entries of entry_size bytes */
	SHM_SEC_BACKENDS,	/* struct shm_backend[SHM_BACKENDS_MAX], entry_size bytes each */
	SHM_SEC__MAX
};

struct shm_section {
	uint32_t kind;		/* enum shm_section_kind */
	uint32_t flags;		/* reserved, 0 */
	uint32_t entry_size;
	uint32_t count;
	uint64_t offset;	/* SHM_ALIGN-aligned */
	uint64_t size;		/* >= count * entry_size */
};

/* Counted by the master alone. */
struct shm_master {
	uint64_t worker_restarts;
	uint64_t acme_orders[SHM_ACME_OUTCOMES];
	uint8_t pad[SHM_ALIGN - 24];
};

/* A route's requests; route_id 0 is an empty entry. */
struct shm_route_ctr {
	uint32_t route_id;	/* store id; set once (release) by the slot's worker */
	uint32_t reserved;
	uint64_t requests[SHM_PROTOS][SHM_STATUS_CLASSES];
	uint64_t rate_limited;	/* refused (429 / RESOURCE_EXHAUSTED) by its rate limit */
	uint64_t rate_dry_run;	/* would have been refused, passed in dry-run mode */
};

/*
 * A route's response cache events (minor 3). A table of its own, smaller
 * than the route table: few routes cache, and 256 workers' slots must
 * still fit the default region. route_id 0 is an empty entry.
 */
#define SHM_CACHE_ROUTES 16	/* power of two; later caching routes go to "other" */
struct shm_cache_ctr {
	uint32_t route_id;	/* store id; set once (release) by the slot's worker */
	uint32_t reserved;
	uint64_t n[SHM_CACHE_EVENTS];
};

struct shm_wslot {
	uint64_t starts;	/* worker processes that served from this slot */
	uint64_t pid;		/* gauge: the last one */
	uint64_t connections;	/* gauge: open client connections */
	uint64_t generation;	/* gauge: the snapshot it serves */
	uint64_t requests[SHM_PROTOS][SHM_STATUS_CLASSES];
	uint64_t duration[SHM_DURATION_BUCKETS + 1];	/* not cumulative; last is +Inf */
	uint64_t duration_us;	/* sum */
	uint64_t bytes_in;	/* request bodies */
	uint64_t bytes_out;	/* response bodies */
	uint64_t connect_failures;
	uint64_t retries;
	uint64_t tls[SHM_TLS_KINDS];
	uint64_t conn_limited;	/* connections closed at accept by max_connections_per_ip */
	struct shm_route_ctr noroute;	/* answers given before a route was known */
	struct shm_route_ctr other;	/* routes past SHM_ROUTES_MAX */
	struct shm_route_ctr routes[SHM_ROUTES_MAX];	/* open addressing, linear probing */
	struct shm_cache_ctr cache_noroute;	/* minor 3: cache events of no known route */
	struct shm_cache_ctr cache_other;	/* caching routes past SHM_CACHE_ROUTES */
	struct shm_cache_ctr cache[SHM_CACHE_ROUTES];	/* as routes */
} __attribute__((aligned(SHM_ALIGN)));

/*
 * The client table's header line; count entries follow it, each
 * shm_client_size(nworkers) bytes. See share/clients.h for their use.
 */
struct shm_clients {
	uint8_t hash_key[16];	/* SipHash key of the entry keys, random per region */
	uint32_t probe;		/* entries looked at per lookup: SHM_CLIENT_PROBE */
	uint32_t reserved0;
	uint8_t pad[SHM_ALIGN - 24];
};

/*
 * One tracked client: a rate bucket (route != 0) or a connection count
 * (route 0), told apart only by the key. Every field is one atomic word.
 */
struct shm_client {
	uint64_t key;		/* SipHash of (family, address or /64, route id); 0 = empty */
	uint64_t state;		/* rate: key tag << 48 | when the bucket drains (µs, mod 2^48) */
	uint64_t stamp;		/* last use, ms (CLOCK_MONOTONIC): eviction takes the oldest */
	uint16_t conns[];	/* open connections per worker index (nworkers of them) */
};

#define SHM_CLIENT_PROBE 8	/* the probe window: a lookup's bounded work */

/* Bytes of one client entry with nworkers connection counts (a multiple of 8). */
#define SHM_CLIENT_SIZE(nworkers) \
	((sizeof(struct shm_client) + 2 * (size_t)(nworkers) + 7) / 8 * 8)

/*
 * One backend address: its health, its probe lease and its requests in
 * flight (share/health.h). Every field is one atomic word; inflight has
 * one word per worker index, each written by its worker alone and zeroed
 * by the master when it reaps that worker.
 */
#define SHM_BACKENDS_MAX 1024	/* addresses tracked at once; see health.h past it */
struct shm_backend {
	uint64_t key;		/* health_key(store id, address); 0 = empty */
	uint64_t state;		/* down bit, consecutive successes and failures (health.h) */
	uint64_t next_probe;	/* the lease: ms (CLOCK_MONOTONIC) the next probe is due */
	uint64_t checked_ms;	/* the last check's end, ms (CLOCK_MONOTONIC); 0: none */
	int64_t result;		/* the last check: an HTTP status, or -errno */
	uint64_t checks_ok;	/* counters: probes that passed, */
	uint64_t checks_failed;	/* and failed */
	uint64_t passive_until;	/* ms: skipped after a connect failure until then */
	uint64_t stamp;		/* ms: last seen in a worker's snapshot (eviction) */
	uint32_t id;		/* the store id, for the master's show and metrics */
	uint32_t reserved0;
	uint32_t inflight[];	/* requests in flight per worker index */
};

/* Bytes of one backend entry with nworkers in-flight words (whole cache lines). */
#define SHM_BACKEND_SIZE(nworkers) \
	((sizeof(struct shm_backend) + 4 * (size_t)(nworkers) + SHM_ALIGN - 1) / SHM_ALIGN * SHM_ALIGN)

_Static_assert(sizeof(struct shm_clients) == SHM_ALIGN, "client table header is one line");
_Static_assert(sizeof(struct shm_header) == 128, "shm header is 128 bytes");
_Static_assert(sizeof(struct shm_section) == 32, "shm section entry is 32 bytes");
_Static_assert(sizeof(struct shm_master) == SHM_ALIGN, "master block is one line");
_Static_assert(sizeof(struct shm_wslot) % SHM_ALIGN == 0, "slots are whole lines");

/* A mapped region. */
struct shm {
	uint8_t *base;
	size_t size;
	struct shm_master *master;
	struct shm_wslot *slots;
	uint32_t nslots;
	struct shm_clients *clients;	/* the client table's header */
	uint8_t *client_base;		/* its first entry */
	uint32_t nclients;		/* entries (0 when no room was left) */
	uint32_t client_size;		/* SHM_CLIENT_SIZE(nslots) */
	uint8_t *backend_base;		/* the first backend entry */
	uint32_t nbackends;		/* SHM_BACKENDS_MAX */
	uint32_t backend_size;		/* SHM_BACKEND_SIZE(nslots) */
};

/* Master: creates and maps a region of size bytes with nworkers slots; the fd, or -1. */
int shm_create(size_t size, uint32_t nworkers, struct shm *out, char *err, size_t errlen);
/* Anyone: maps fd read-write after checking every size and offset against the fd's size. */
int shm_map(int fd, struct shm *out, char *err, size_t errlen);
int shm_validate(const void *base, size_t size, char *err, size_t errlen);
void shm_unmap(struct shm *s);
/* Bytes a region needs for nworkers slots, the backend table and the client table's header. */
size_t shm_needed(uint32_t nworkers);
/* Client entries a region of size bytes holds with nworkers slots. */
uint32_t shm_client_capacity(size_t size, uint32_t nworkers);

/* Worker side: the increments, relaxed atomics on the worker's own slot. */
static inline void
shm_add(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline void
shm_set(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, v, __ATOMIC_RELAXED);
}

static inline uint64_t
shm_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* The status class index of an HTTP status. */
unsigned shm_status_class(unsigned status);
/* The slot's entry for route_id (never 0), inserted if new; "other" when full. */
struct shm_route_ctr *shm_route(struct shm_wslot *s, uint32_t route_id);
/* The slot's cache entry for route_id (0: cache_noroute), inserted if new; "other" when full. */
struct shm_cache_ctr *shm_cache_route(struct shm_wslot *s, uint32_t route_id);
/* Counts one finished request in slot s. */
void shm_count_request(struct shm_wslot *s, uint32_t route_id, enum shm_proto proto,
    unsigned status, uint64_t duration_us, uint64_t bytes_in, uint64_t bytes_out);

#endif
