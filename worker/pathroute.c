/*
 * Path-prefix routing in the worker (see pathroute.h): HTTP/1.1 and
 * HTTP/2 requests both come through request_step, so one lookup serves both.
 */
#include "config.h"

#include <string.h>

#include "share/log.h"
#include "share/pathprefix.h"
#include "worker/pathroute.h"

int
pathroute_pick(const struct snap *s, const struct snap_route **route, struct msg_head *h)
{
	/* Normalising never lengthens a target by more than its trailing '/'. */
	char npath[MSG_TARGET_MAX + 2], out[MSG_TARGET_MAX + 2];
	const struct snap_route *p;
	const char *t = msg_s(h, h->path);
	size_t plen;
	int n, m;

	if ((*route)->pfx_count == 0)
		return 0;
	/* "*", or a bad escape: no prefix applies; the host's route has it, as before. */
	if ((n = pathprefix_normalize(t, h->path.len, npath, sizeof(npath))) < 0)
		return 0;
	if ((p = snap_lookup_prefix(s, *route, npath, (size_t)n, &plen)) == NULL)
		return 0;
	*route = p;
	if (!(p->flags & SNAP_ROUTE_STRIP_PREFIX))
		return 0;
	if ((m = pathprefix_strip(npath, (size_t)n, plen, t, h->path.len, out, sizeof(out))) < 0 ||
	    msg_str(h, out, (size_t)m, &h->path) == -1) {
		log_warnx("route %u: cannot store the stripped path", p->id);
		return -1;
	}
	return 0;
}
