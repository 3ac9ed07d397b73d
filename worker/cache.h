/*
 * The shared response cache of routes with SNAP_ROUTE_CACHE: the request
 * step asks cache_request what to do with a request (answer from a stored
 * entry, validate one, or go to the backend and store what comes back),
 * and the exchange feeds the response to a fill (struct cache_fill) while
 * it streams it to the client. Entries live in worker/cachestore.c's LMDB
 * environment; the rules are worker/cachepolicy.c's; a hit is served by
 * the cache upstream (worker/cacheserve.c) through a normal exchange, so
 * sinks, compression, HSTS and the access log treat it like any response.
 *
 * An entry (one LMDB value): struct cache_ehdr, then nfields pairs of
 * NUL-terminated name and value, then the body. Its checksum covers all of
 * it; anything that does not add up is a miss and is deleted.
 */
#ifndef HALOYD_WORKER_CACHE_H
#define HALOYD_WORKER_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "share/snap.h"
#include "worker/cachepolicy.h"
#include "worker/message.h"

struct worker;
struct exchange;
struct cachestore;

#define CACHE_KEY_MAX 480		/* longer URLs are not cached */
#define CACHE_OBJECT_DEFAULT (10ull << 20)	/* --cache-max-object when unset */
#define CACHE_VARY_MAX 512		/* bytes of request values a Vary names */
/*
 * No thundering herd: a miss takes the key's fill lock in LMDB (held
 * CACHE_LOCK_MS at most, so a worker that died with it is forgotten); the
 * other misses for that key, in any worker, look for the entry every
 * CACHE_POLL_MS and go to the backend themselves after CACHE_WAIT_MS or
 * once the lock is gone without an entry (the response was not storable).
 */
#define CACHE_LOCK_MS 10000
#define CACHE_WAIT_MS 5000
#define CACHE_POLL_MS 10

/* A stored response, parsed and checked (worker/cacheserve.c serves it). */
struct cache_hit {
	struct snap_backend be;		/* first: what the cache upstream's open() receives */
	const char *blob;		/* the entry: in the map while ref holds it, else own */
	size_t blob_len;
	struct cachestore_ref *ref;	/* the read transaction that holds blob, or NULL */
	char *own;			/* blob's copy once cache_hit_own made one */
	unsigned ae_choice;		/* found under its compression choice (cache_fill_encoded) */
	struct msg_head head;		/* the stored head (Age set when served) */
	const char *body;		/* into blob */
	uint64_t body_len;
	struct cachepol_times times;
	int64_t atime;
	char key[CACHE_KEY_MAX + CACHE_VARY_MAX + 2];
	size_t klen;
};

/* What the request step does with a request on a caching route. */
enum cache_verdict {
	CACHE_PASS = 0,		/* not the cache's: forward as usual (fill may be set) */
	CACHE_HIT,		/* *hit answers it (exchange_start_cached) */
	CACHE_NOT_MODIFIED,	/* the client's conditional matches a fresh entry: 304 from *hit */
	CACHE_WAIT,		/* another request fills it: exchange_start_waiting with *fill */
	CACHE_HIT_REFRESH,	/* stale-while-revalidate: *hit answers, and the entry is
				 * refreshed in the background (cache_refresh_start) */
};

struct cache_fill;

/*
 * Looks req up (GET and HEAD; other methods invalidate the URL once the
 * backend agrees). A stale entry gets the validators added to req and a
 * fill that turns the backend's 304 into a hit. *fill is for
 * exchange_cache; either out may be NULL.
 */
enum cache_verdict cache_request(struct worker *w, const struct snap_route *route,
    struct msg_head *req, const char *scheme, const char *host, struct cache_hit **hit,
    struct cache_fill **fill);

/*
 * stale-while-revalidate's background request: a GET for the same URL (no
 * conditionals, no client) whose answer is stored, under the key's fill
 * lock (no refresh when another holds it). 0, or -1 when none started.
 */
struct exchange_req;
struct upstream_ops;
int cache_refresh_start(struct worker *w, const struct exchange_req *xr,
    const struct upstream_ops *ops);
/* The fill of a refresh: the key's lock taken, or NULL (held elsewhere, or an error). */
struct cache_fill *cache_refresh_fill(struct worker *w, const struct snap_route *route,
    const struct msg_head *req, const char *scheme, const char *host);

/* A 304 answer from a stored head (Content-Type and body dropped, validators kept). */
int cache_not_modified(const struct cache_hit *hit, struct msg_head *out);

/*
 * The exchange's side of a fill. head: the final response head (after
 * forward_response, before compression). Returns 1 when the response is
 * replaced by a stored one (the backend said 304, or failed and the entry
 * may be served stale): *hit is then what the exchange serves instead.
 */
int cache_fill_head(struct cache_fill *f, const struct msg_head *resp, struct cache_hit **hit);
/*
 * The route's compression varies the response by Accept-Encoding
 * (compress_varies): what is stored is what the client gets — resp, the
 * head after compress_begin, and the body bytes after the stage — keyed by
 * the coding compress_negotiate picks for the request (gzip, br, zstd or
 * identity), so each choice is one variant that hits with its own bytes.
 */
void cache_fill_encoded(struct cache_fill *f, const struct msg_head *resp);
void cache_fill_body(struct cache_fill *f, const char *p, size_t n);
/* 1 while the response is being collected for an entry (storable, within the limit). */
int cache_fill_storing(const struct cache_fill *f);
/*
 * A fill continues when its client goes away (exchange_abort): the
 * exchange reads the backend to the end into this sink, which drops every
 * byte, and the fill stores the entry (worker/cachedrop.c). Bounded by the
 * route's --cache-max-object: past it the fill stops storing and the
 * exchange ends.
 */
struct sink_ops;
extern const struct sink_ops cache_drop_sink;
/* The response is complete: stored when it is storable and whole. */
void cache_fill_end(struct cache_fill *f);
enum cache_poll {
	CACHE_POLL_WAIT = 0,	/* still being filled: poll again in CACHE_POLL_MS */
	CACHE_POLL_HIT,		/* *hit answers it */
	CACHE_POLL_GO,		/* to the backend (the fill stores what it answers) */
};
/* A waiting request looks again. */
enum cache_poll cache_fill_poll(struct cache_fill *f, struct cache_hit **hit);
/* The backend failed before any head: a stale entry that may serve (stale-if-error), or NULL. */
struct cache_hit *cache_fill_failed(struct cache_fill *f);
void cache_fill_free(struct cache_fill *f);

void cache_hit_free(struct cache_hit *hit);
/*
 * A hit kept for longer than one response (a stale entry under
 * validation, a slow client): its entry copied out of the map and the
 * read transaction ended. 0, or -1 (out of memory: the hit is unchanged).
 */
int cache_hit_own(struct cache_hit *hit);

/* The cache upstream (worker/cacheserve.c): open() takes &hit->be and owns the hit. */
extern const struct upstream_ops cacheserve_ops;

/*
 * haloyd-ctl cache purge: the entries of a URL ("scheme://host/path", its
 * variants too), or of a route (store id). Entries removed, or -1.
 */
long cache_purge_url(struct cachestore *cs, const char *url);
long cache_purge_route(struct cachestore *cs, uint32_t route_id);

/* Opens w->cache from its config (cache_path); 0 also when caching is off. */
int cache_open(struct worker *w);
void cache_close(struct worker *w);

#endif
