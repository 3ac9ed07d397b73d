/*
 * Path-prefix routes in the snapshot builder: finds each prefix route's
 * host route by name and orders them longest first per host route.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/snapprefix.h"
#include "share/hostname.h"
#include "share/log.h"
#include "share/pathprefix.h"

int
snapprefix_name_ok(const char *name)
{
	char norm[HOSTNAME_MAX + 1], err[300];
	int n;

	if (name == NULL || strnlen(name, HOSTNAME_MAX + 1) > HOSTNAME_MAX)
		return 0;
	n = pathprefix_route_name(name, norm, err, sizeof(err));
	return n > 0 && strcmp(norm, name) == 0;
}

/* qsort_r over route indexes by name, for the parent search; arg points to the routes. */
static int
sp_by_name(const void *a, const void *b, void *arg)
{
	const struct snapb_route *r = *(const struct snapb_route **)arg;

	return strcmp(r[*(const uint32_t *)a].name, r[*(const uint32_t *)b].name);
}

/* Parent ascending, then the longer prefix first, then by name: one order for one input. */
static int
sp_by_parent(const void *a, const void *b, void *arg)
{
	const struct snapprefix_entry *x = a, *y = b;
	const struct snapb_route *sp_routes = *(const struct snapb_route **)arg;
	size_t lx = strlen(sp_routes[x->route].name) - x->hostlen;
	size_t ly = strlen(sp_routes[y->route].name) - y->hostlen;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if (lx != ly)
		return lx > ly ? -1 : 1;
	return strcmp(sp_routes[x->route].name, sp_routes[y->route].name);
}

/* The index of the host route named host (hostlen bytes) among the sorted hosts, or -1. */
static int64_t
sp_find(const struct snapb_input *in, const uint32_t *hosts, uint32_t nhosts, const char *host,
    size_t hostlen)
{
	uint32_t lo = 0, hi = nhosts, mid;
	const char *n;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		n = in->routes[hosts[mid]].name;
		if ((c = strncmp(n, host, hostlen)) == 0 && n[hostlen] != '\0')
			c = 1;
		if (c == 0)
			return hosts[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Drops the entries past the per-host bound (the shortest prefixes go), logged. */
static void
sp_bound(const struct snapb_input *in, struct snapprefix_plan *p)
{
	uint32_t i, out = 0, run = 0;

	for (i = 0; i < p->n; i++) {
		run = i > 0 && p->v[i].parent == p->v[i - 1].parent ? run + 1 : 1;
		if (run > PATHPREFIX_PER_ROUTE_MAX) {
			log_warnx("route %s: more than %d prefix routes under %s; left out",
			    in->routes[p->v[i].route].name, PATHPREFIX_PER_ROUTE_MAX,
			    in->routes[p->v[i].parent].name);
			continue;
		}
		p->v[out++] = p->v[i];
	}
	p->n = out;
}

int
snapprefix_plan(const struct snapb_input *in, struct snapprefix_plan *p, char *err,
    size_t errlen)
{
	const struct snapb_route *routes = in->routes;
	uint32_t *hosts = NULL, nhosts = 0, i;
	size_t hl;
	int64_t parent;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if ((hosts = calloc((size_t)in->nroutes + 1, sizeof(*hosts))) == NULL ||
	    (p->v = calloc((size_t)in->nroutes + 1, sizeof(*p->v))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < in->nroutes; i++)
		if (pathprefix_of(in->routes[i].name) == 0)
			hosts[nhosts++] = i;
	/* The route table (master/rtable.c) hands them over in name order: one pass, no sort. */
	for (i = 1; i < nhosts && sp_by_name(&hosts[i - 1], &hosts[i], &routes) < 0; i++)
		;
	if (i < nhosts)
		qsort_r(hosts, nhosts, sizeof(*hosts), sp_by_name, &routes);
	for (i = 0; i < in->nroutes; i++) {
		if ((hl = pathprefix_of(in->routes[i].name)) == 0)
			continue;
		if ((parent = sp_find(in, hosts, nhosts, in->routes[i].name, hl)) == -1) {
			log_warnx("route %s: no route for its host; left out", in->routes[i].name);
			continue;
		}
		p->v[p->n++] = (struct snapprefix_entry){ i, (uint32_t)parent, (uint32_t)hl };
	}
	qsort_r(p->v, p->n, sizeof(*p->v), sp_by_parent, &routes);
	sp_bound(in, p);
	rc = 0;
out:
	free(hosts);
	if (rc == -1)
		snapprefix_free(p);
	return rc;
}

void
snapprefix_free(struct snapprefix_plan *p)
{
	free(p->v);
	memset(p, 0, sizeof(*p));
}
