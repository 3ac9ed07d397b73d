/*
 * The directives Cache-Control (cachepolicy.c) and CDN-Cache-Control
 * (cachecdn.c) share: the struct both parsers fill, and the table of
 * names each of them sets it through, so the two fields mean the same.
 */
#ifndef HALOYD_WORKER_CACHECC_H
#define HALOYD_WORKER_CACHECC_H

#include <stddef.h>
#include <stdint.h>

/* A delta-seconds past this is this (RFC 9111 1.2.2: 2^31). */
#define CACHECC_DELTA_MAX 2147483648u

/* The directives of every Cache-Control field of a head (requests and responses). */
struct cachecc {
	unsigned no_store : 1, no_cache : 1, private_ : 1, public_ : 1;
	unsigned must_revalidate : 1, proxy_revalidate : 1, must_understand : 1;
	unsigned only_if_cached : 1;
	unsigned has_max_age : 1, has_s_maxage : 1, has_max_stale : 1, has_min_fresh : 1;
	unsigned has_swr : 1, has_sie : 1;
	uint32_t max_age, s_maxage, max_stale, min_fresh, swr, sie;
};

/*
 * The directives both fields share, by name (case-insensitive): a flag
 * (no-store, no-cache, private, public, must-revalidate,
 * proxy-revalidate) set in cc, or a seconds directive
 * (max-age, s-maxage, stale-while-revalidate, stale-if-error) set to secs.
 * 1 when d was one, else 0.
 */
int cachecc_flag(struct cachecc *cc, const char *d, size_t dn);
int cachecc_seconds(struct cachecc *cc, const char *d, size_t dn, uint32_t secs);

#endif
