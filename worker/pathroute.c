/*
 * Path-prefix routing in the worker (see pathroute.h): HTTP/1.1 and
 * HTTP/2 requests both come through request_step, so one lookup serves both.
 */
#include "config.h"

#include <string.h>

#include "share/log.h"
#include "share/pathprefix.h"
#include "worker/pathroute.h"

/* Normalising never lengthens a target by more than its trailing '/'. */
#define PATHROUTE_BUF (MSG_TARGET_MAX + 2)

size_t
pathroute_pick(const struct snap *s, const struct snap_route **route, const struct msg_head *h)
{
	char npath[PATHROUTE_BUF];
	const struct snap_route *p;
	size_t plen = 0;
	int n;

	if ((*route)->pfx_count == 0)
		return 0;
	/* "*", or a bad escape: no prefix applies; the host's route has it, as before. */
	if ((n = pathprefix_normalize(msg_s(h, h->path), h->path.len, npath, sizeof(npath))) < 0)
		return 0;
	if ((p = snap_lookup_prefix(s, *route, npath, (size_t)n, &plen)) == NULL)
		return 0;
	*route = p;
	return plen;
}

int
pathroute_strip(const struct snap_route *route, struct msg_head *h, size_t plen)
{
	char npath[PATHROUTE_BUF], out[PATHROUTE_BUF];
	const char *t = msg_s(h, h->path);
	int n, m;

	if (plen == 0 || !(route->flags & SNAP_ROUTE_STRIP_PREFIX))
		return 0;
	/* pathroute_pick normalised this very path, so this cannot fail but for memory. */
	if ((n = pathprefix_normalize(t, h->path.len, npath, sizeof(npath))) < 0 ||
	    (m = pathprefix_strip(npath, (size_t)n, plen, t, h->path.len, out, sizeof(out))) < 0 ||
	    msg_str(h, out, (size_t)m, &h->path) == -1) {
		log_warnx("route %u: cannot store the stripped path", route->id);
		return -1;
	}
	return 0;
}
