/*
 * The cache's rules (RFC 9111) as pure functions: Cache-Control parsed
 * into a struct, whether a response may be stored by a shared cache, its
 * freshness lifetime and age, and whether a stored response may answer a
 * request. No I/O and no clock of its own: times are passed in (unix
 * seconds), so the check suite covers every rule.
 */
#ifndef HALOYD_WORKER_CACHEPOLICY_H
#define HALOYD_WORKER_CACHEPOLICY_H

#include <stdint.h>
#include <time.h>

#include "worker/cachecc.h"

struct msg_head;

/* Heuristic freshness: 10 % of the time since Last-Modified, at most a day. */
#define CACHEPOL_HEURISTIC_MAX (24 * 3600)

void cachepol_parse_cc(const struct msg_head *h, struct cachecc *cc);
/* An HTTP-date (IMF-fixdate, RFC 850, asctime) in unix seconds; -1 when invalid. */
int64_t cachepol_parse_date(const char *s);

/* What the cache keeps about a stored response's times (RFC 9111 4.2). */
struct cachepol_times {
	int64_t response_time;	/* when we got it */
	uint32_t initial_age;	/* corrected_initial_age */
	uint32_t lifetime;	/* freshness lifetime */
	uint32_t swr, sie;	/* stale-while-revalidate, stale-if-error seconds */
	unsigned must_validate : 1;	/* no-cache: never served without validation */
	unsigned no_stale : 1;		/* must-revalidate, proxy-revalidate, s-maxage */
};

/*
 * 1 when a shared cache may store resp to req (a GET) — RFC 9111 3 and
 * 3.5 (Authorization) — and fills t; 0 when not. A response with
 * Set-Cookie is stored only when it says public or s-maxage (see
 * ARCHITECTURE.md: RFC 9111 7.3 allows more; a shared cache that hands
 * one user's cookie to the next is the classic leak).
 */
int cachepol_storable(const struct msg_head *req, const struct msg_head *resp,
    int64_t request_time, int64_t response_time, struct cachepol_times *t);
/* current_age of a stored response at now (RFC 9111 4.2.3). */
uint32_t cachepol_age(const struct cachepol_times *t, int64_t now);

enum cachepol_use {
	CACHEPOL_FRESH = 1,	/* answer from the cache */
	CACHEPOL_STALE,		/* validate with the backend first */
	CACHEPOL_BYPASS,	/* the request wants the backend (no-cache, max-age=0...) */
};
/* How a stored response may answer req at now. */
enum cachepol_use cachepol_use(const struct msg_head *req, const struct cachepol_times *t,
    int64_t now);
/* 1 when a stale response may still be served because the backend failed (stale-if-error). */
int cachepol_stale_if_error(const struct cachepol_times *t, int64_t now);

/*
 * The client's conditional request against a stored response's ETag and
 * Last-Modified (either may be NULL): 1 when the answer is 304 (RFC 9110
 * 13.2.2: If-None-Match first, weak comparison; else If-Modified-Since).
 */
int cachepol_not_modified(const struct msg_head *req, const char *etag, const char *last_mod);

#endif
