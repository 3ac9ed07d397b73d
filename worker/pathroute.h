/*
 * The request step's path-prefix part: which prefix route of the host's
 * route takes a request, and the path its backend gets.
 */
#ifndef HALOYD_PATHROUTE_H
#define HALOYD_PATHROUTE_H

#include "share/snap.h"
#include "worker/message.h"

/*
 * The route for request h among host route *route and its prefix routes
 * (the longest prefix that matches h's normalised path on a segment
 * boundary, share/pathprefix.h), into *route. Returns the matched prefix's
 * length, 0 when the host route keeps the request.
 */
size_t pathroute_pick(const struct snap *s, const struct snap_route **route,
    const struct msg_head *h);

/*
 * For a route with SNAP_ROUTE_STRIP_PREFIX that pathroute_pick matched with
 * a prefix of plen bytes: h's path becomes the normalised path without the
 * prefix, the query as sent. Called once the request is going to the
 * backend, so redirects and pages keep the client's path. 0, or -1 when the
 * new path could not be stored (logged).
 */
int pathroute_strip(const struct snap_route *route, struct msg_head *h, size_t plen);

#endif
