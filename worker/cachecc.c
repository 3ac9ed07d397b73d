/*
 * The directives' table (see cachecc.h): a directive's name, matched
 * case-blind on its given length, to its field of struct cachecc.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "worker/cachecc.h"

#define CC_IS(d, dn, name) ((dn) == strlen(name) && strncasecmp(d, name, dn) == 0)

int
cachecc_flag(struct cachecc *cc, const char *d, size_t dn)
{
	if (CC_IS(d, dn, "no-store"))
		cc->no_store = 1;
	else if (CC_IS(d, dn, "no-cache"))
		cc->no_cache = 1;	/* the qualified form is treated as unqualified (allowed) */
	else if (CC_IS(d, dn, "private"))
		cc->private_ = 1;
	else if (CC_IS(d, dn, "public"))
		cc->public_ = 1;
	else if (CC_IS(d, dn, "must-revalidate"))
		cc->must_revalidate = 1;
	else if (CC_IS(d, dn, "proxy-revalidate"))
		cc->proxy_revalidate = 1;
	else
		return 0;
	return 1;
}

int
cachecc_seconds(struct cachecc *cc, const char *d, size_t dn, uint32_t secs)
{
	if (CC_IS(d, dn, "max-age")) {
		cc->has_max_age = 1;
		cc->max_age = secs;
	} else if (CC_IS(d, dn, "s-maxage")) {
		cc->has_s_maxage = 1;
		cc->s_maxage = secs;
	} else if (CC_IS(d, dn, "stale-while-revalidate")) {
		cc->has_swr = 1;
		cc->swr = secs;
	} else if (CC_IS(d, dn, "stale-if-error")) {
		cc->has_sie = 1;
		cc->sie = secs;
	} else
		return 0;
	return 1;
}
