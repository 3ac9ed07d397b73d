/*
 * The cache's storage: one LMDB environment in cache_path that every
 * worker opens (LMDB is memory-mapped and safe across processes: readers
 * never block, one writer at a time under its robust mutex). Keys are the
 * cache keys, values opaque entries (worker/cache.c says what is in them);
 * this file owns the environment, the byte budget and the eviction of the
 * least recently used entries.
 */
#ifndef HALOYD_WORKER_CACHESTORE_H
#define HALOYD_WORKER_CACHESTORE_H

#include <stddef.h>
#include <stdint.h>

struct cachestore;

/* A hit's atime is written again only after this many seconds (approximate LRU). */
#define CACHESTORE_TOUCH_S 30
/* Bounds of cache_max_size (haloyd.conf). */
#define CACHESTORE_MIN_SIZE (1024 * 1024ull)
#define CACHESTORE_MAX_SIZE (64ull << 30)

/*
 * Opens (creating the folder's files) the environment at dir for a budget
 * of max_bytes of entries. NULL, logged, when it cannot.
 */
struct cachestore *cachestore_open(const char *dir, uint64_t max_bytes);
void cachestore_close(struct cachestore *cs);

/*
 * A copy of key's value in *val (malloc'd; the caller frees), its last
 * access time in *atime. 1 found, 0 not, -1 error (logged).
 */
int cachestore_get(struct cachestore *cs, const void *key, size_t klen, char **val,
    size_t *vlen, int64_t *atime);
/*
 * key's value in place, in the map (no copy): *val stays valid until
 * cachestore_release(*ref), which ends the read transaction that holds
 * it. While held, LMDB cannot reuse the pages of entries replaced or
 * evicted since, so a holder keeps it briefly (cacheserve: one second).
 * 1 found, 0 not, -1 error (logged; also when every reader slot is taken).
 */
struct cachestore_ref;
int cachestore_get_ref(struct cachestore *cs, const void *key, size_t klen, const char **val,
    size_t *vlen, int64_t *atime, struct cachestore_ref **ref);
void cachestore_release(struct cachestore_ref *ref);
/*
 * The caller's checksum of a value, remembered by where the value lies
 * and its length (per process, a table of CACHESTORE_CHECKED slots): a
 * value read again in place is not checked again. 1 when val (with tag,
 * the caller's checksum) was marked checked.
 */
#define CACHESTORE_CHECKED 256
int cachestore_checked(struct cachestore *cs, const void *val, size_t vlen, uint32_t tag);
void cachestore_set_checked(struct cachestore *cs, const void *val, size_t vlen, uint32_t tag);
/* Stores val under key (replacing), evicting the least recently used beyond the budget. */
int cachestore_put(struct cachestore *cs, const void *key, size_t klen, const void *val,
    size_t vlen, int64_t now);
/* Records an access (LRU) when the last one is CACHESTORE_TOUCH_S old. */
int cachestore_touch(struct cachestore *cs, const void *key, size_t klen, int64_t atime,
    int64_t now);
/* Removes key, and with prefix every key that starts with it. Entries removed, or -1. */
long cachestore_del(struct cachestore *cs, const void *key, size_t klen, int prefix);
/*
 * The fill lock of key (no thundering herd): one worker's request fills,
 * the others wait for the entry. 1: taken (or expired and taken over), 0:
 * someone else holds it, -1 error. Held until cachestore_unlock or
 * until now_ms + ttl_ms (a worker that died holding it).
 */
int cachestore_lock(struct cachestore *cs, const void *key, size_t klen, uint64_t now_ms,
    uint32_t ttl_ms);
/* 1 while someone holds key's fill lock. */
int cachestore_locked(struct cachestore *cs, const void *key, size_t klen, uint64_t now_ms);
void cachestore_unlock(struct cachestore *cs, const void *key, size_t klen);
/*
 * Removes every entry whose value match() accepts (a scan: for haloyd-ctl,
 * not for the data path). Entries removed, or -1.
 */
long cachestore_del_if(struct cachestore *cs, int (*match)(void *arg, const void *val,
    size_t vlen), void *arg);
/*
 * Told after each store that evicted entries, once per entry: the first
 * len (<= CACHESTORE_EVICT_HEAD) bytes of its value, or NULL past the
 * first CACHESTORE_EVICT_MAX of one store (the values are gone by then).
 */
#define CACHESTORE_EVICT_HEAD 16
#define CACHESTORE_EVICT_MAX 64
typedef void cachestore_evict_fn(void *arg, const void *head, size_t len);
void cachestore_on_evict(struct cachestore *cs, cachestore_evict_fn *fn, void *arg);
/* Entries and their bytes. */
int cachestore_stats(struct cachestore *cs, uint64_t *entries, uint64_t *bytes);

#endif
