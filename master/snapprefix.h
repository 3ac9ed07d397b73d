/*
 * The snapshot builder's part for path-prefix routes: which host route
 * each prefix route hangs from and in which order (share/snap.h,
 * SNAP_SEC_PREFIXES).
 */
#ifndef HALOYD_SNAPPREFIX_H
#define HALOYD_SNAPPREFIX_H

#include <stdint.h>

#include "master/snapbuild.h"

/* One prefix entry: the prefix route, its host route, where the prefix starts in its name. */
struct snapprefix_entry {
	uint32_t route;
	uint32_t parent;
	uint32_t hostlen;
};

/* The entries grouped by parent (ascending), longest prefix first in each group. */
struct snapprefix_plan {
	struct snapprefix_entry *v;
	uint32_t n;
};

/* 1 when name is a normalised route name: a host name, or one with a valid prefix. */
int snapprefix_name_ok(const char *name);

/*
 * Plans the prefixes of in's routes. A prefix route whose host is no
 * route's name, or past PATHPREFIX_PER_ROUTE_MAX of its host, is left out
 * with a log line (haloyd-ctl refuses both; the build does not fail for
 * them). 0, or -1 when out of memory (a reason in err).
 */
int snapprefix_plan(const struct snapb_input *in, struct snapprefix_plan *p, char *err,
    size_t errlen);
void snapprefix_free(struct snapprefix_plan *p);

#endif
