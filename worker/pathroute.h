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
 * boundary, share/pathprefix.h), into *route. A matched route with
 * SNAP_ROUTE_STRIP_PREFIX gets h's path without the prefix (the normalised
 * path; the query as sent). 0, or -1 when the new path could not be stored.
 */
int pathroute_pick(const struct snap *s, const struct snap_route **route, struct msg_head *h);

#endif
