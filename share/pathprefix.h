/*
 * Path-prefix routes (haloyd issue 18 point 5): the rule a prefix is
 * written in, the request path as prefixes see it, the segment-boundary
 * match and the stripped path. One file so haloyd-ctl, the master, the
 * snapshot builder and reader and the worker apply the same rules.
 */
#ifndef HALOYD_PATHPREFIX_H
#define HALOYD_PATHPREFIX_H

#include <stddef.h>

/* Bytes of a prefix ("/api"); the whole route name stays within HOSTNAME_MAX too. */
#define PATHPREFIX_MAX 128
/* Prefix routes under one host route (the worker scans them in order). */
#define PATHPREFIX_PER_ROUTE_MAX 64

/*
 * Why prefix (len bytes, "/api/v2") is not in its one accepted form, or
 * NULL: starts with '/', 2..PATHPREFIX_MAX bytes, no trailing '/', no empty,
 * "." or ".." segment, only unreserved characters, sub-delims, ':', '@' and
 * '/' (no '%': an escape would be a second spelling of the same prefix).
 */
const char *pathprefix_check(const char *prefix, size_t len);

/*
 * A route name as haloyd-ctl and the master take it: a host name, or a
 * host name, '/' and a prefix. out (HOSTNAME_MAX + 1 bytes) gets the host
 * normalised (share/hostname.h) followed by the prefix as given. Returns
 * the host part's length in out (== strlen(out) without a prefix), or -1
 * with a one-line reason in err.
 */
int pathprefix_route_name(const char *raw, char *out, char *err, size_t errlen);

/* The offset of the prefix in a normalised route name, or 0 when it has none. */
size_t pathprefix_of(const char *name);

/*
 * The path of a request target ("/a/./b%7E?q") as prefixes are matched
 * against it, into out (cap bytes): up to '?', escapes of unreserved
 * characters decoded and others upper-cased (so "%2F" stays data, never a
 * separator), empty and "." segments dropped, ".." taking the segment
 * before it (never above the root). A trailing '/' stays. Returns its
 * length, or -1 when the target is not an origin-form path, has a bad
 * escape or does not fit (such a request is matched against no prefix).
 */
int pathprefix_normalize(const char *target, size_t len, char *out, size_t cap);

/* 1 when prefix matches the normalised path on a segment boundary (/api: /api, /api/, /api/x). */
int pathprefix_match(const char *npath, size_t nlen, const char *prefix, size_t plen);

/*
 * The target a --strip-prefix route's backend gets: the normalised path
 * without its first plen bytes ("/" when nothing is left), then the
 * original target's query ("?..." as it came). Returns its length in out
 * (cap bytes), or -1 when it does not fit.
 */
int pathprefix_strip(const char *npath, size_t nlen, size_t plen, const char *target,
    size_t tlen, char *out, size_t cap);

#endif
