/*
 * RFC 9111's rules as pure functions (see cachepolicy.h): directives,
 * storability, freshness, age, reuse, and the conditional answers.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "worker/cachecdn.h"
#include "worker/cachepolicy.h"
#include "worker/message.h"

/* delta-seconds (RFC 9111 1.2.2): digits only; too big is CACHECC_DELTA_MAX. -1: invalid. */
static int
cp_delta(const char *v, size_t n, uint32_t *out)
{
	uint64_t x = 0;
	size_t i;

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {	/* tolerated, as most caches do */
		v++;
		n -= 2;
	}
	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		if (x < CACHECC_DELTA_MAX)
			x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x > CACHECC_DELTA_MAX ? CACHECC_DELTA_MAX : (uint32_t)x;
	return 0;
}

#define CP_IS(d, dn, name) ((dn) == strlen(name) && strncasecmp(d, name, dn) == 0)

static void
cp_directive(struct cachecc *cc, const char *d, size_t dn, const char *v, size_t vn, int hv)
{
	uint32_t secs;

	if (cachecc_flag(cc, d, dn))
		return;
	if (CP_IS(d, dn, "must-understand"))
		cc->must_understand = 1;
	else if (CP_IS(d, dn, "only-if-cached"))
		cc->only_if_cached = 1;
	else if (CP_IS(d, dn, "max-stale")) {
		/* No value: any staleness is acceptable. */
		cc->has_max_stale = 1;
		if (!hv || cp_delta(v, vn, &cc->max_stale) == -1)
			cc->max_stale = CACHECC_DELTA_MAX;
	} else {
		/* An invalid seconds value counts as 0 (RFC 9111 4.2.1: then stale). */
		if (!hv || cp_delta(v, vn, &secs) == -1)
			secs = 0;
		if (CP_IS(d, dn, "min-fresh")) {
			cc->has_min_fresh = 1;
			cc->min_fresh = secs;
		} else
			(void)cachecc_seconds(cc, d, dn, secs);
	}
}

/* One field's value: directives split at commas outside quoted strings. */
static void
cp_field(struct cachecc *cc, const char *p, const char *end)
{
	while (p < end) {
		const char *s, *eq = NULL, *e;
		int quoted = 0;

		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		for (s = p; p < end && (quoted || *p != ','); p++) {
			if (*p == '"')
				quoted = !quoted;
			else if (*p == '=' && eq == NULL && !quoted)
				eq = p;
		}
		e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == s)
			continue;
		if (eq != NULL) {
			const char *dn = eq, *v = eq + 1;

			while (dn > s && (dn[-1] == ' ' || dn[-1] == '\t'))
				dn--;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			cp_directive(cc, s, (size_t)(dn - s), v, (size_t)(e - v), 1);
		} else
			cp_directive(cc, s, (size_t)(e - s), NULL, 0, 0);
	}
}

void
cachepol_parse_cc(const struct msg_head *h, struct cachecc *cc)
{
	uint32_t i;

	memset(cc, 0, sizeof(*cc));
	for (i = 0; i < msg_nheaders(h); i++)
		if (msg_field_is(h, &h->f[i], "cache-control"))
			cp_field(cc, msg_value(h, &h->f[i]),
			    msg_value(h, &h->f[i]) + h->f[i].value.len);
}

/* fmts[i] of cachepol_parse_date, printed (literal formats: -Wformat-nonliteral). */
static size_t
cp_format(size_t i, const struct tm *tm, char *out, size_t len)
{
	switch (i) {
	case 0:
		return strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", tm);
	case 1: {	/* RFC 850's two-digit year (%y is a -Wformat-y2k error) */
		char a[40], b[24];
		int n;

		if (strftime(a, sizeof(a), "%A, %d-%b-", tm) == 0 ||
		    strftime(b, sizeof(b), " %H:%M:%S GMT", tm) == 0)
			return 0;
		n = snprintf(out, len, "%s%02d%s", a, tm->tm_year % 100, b);
		return n > 0 && (size_t)n < len ? (size_t)n : 0;
	}
	default:
		return strftime(out, len, "%a %b %e %H:%M:%S %Y", tm);
	}
}

int64_t
cachepol_parse_date(const char *s)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT",	/* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT",	/* RFC 850 */
		"%a %b %e %H:%M:%S %Y",		/* asctime */
	};
	char back[80];
	struct tm tm;
	const char *end;
	size_t i;

	if (s == NULL || strlen(s) > 64)
		return -1;
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, fmts[i], &tm);
		/*
		 * strptime skips any white space and takes 1-digit fields: the
		 * date is valid only if it prints back exactly as it came
		 * (RFC 9110 5.6.7: an invalid date is no date).
		 */
		if (end == NULL || *end != '\0' || cp_format(i, &tm, back, sizeof(back)) == 0 ||
		    strcmp(back, s) != 0)
			continue;
		return (int64_t)timegm(&tm);
	}
	return -1;
}

static const char *
cp_value(const struct msg_head *h, const char *name)
{
	const struct msg_field *f = msg_find(h, name);

	return f != NULL ? msg_value(h, f) : NULL;
}

/* Statuses a cache may store without explicit freshness (RFC 9110 15.1). */
static int
cp_heuristic_status(unsigned s)
{
	return s == 200 || s == 203 || s == 204 || s == 300 || s == 301 || s == 308 ||
	    s == 404 || s == 405 || s == 410 || s == 414 || s == 501;
}

/* Statuses whose meaning this cache knows (RFC 9111 3: must-understand). */
static int
cp_understood(unsigned s)
{
	return cp_heuristic_status(s) || s == 302 || s == 303 || s == 307 || s == 403;
}

/* Freshness lifetime (RFC 9111 4.2.1); -1: none explicit and no heuristic allowed. */
static int64_t
cp_lifetime(const struct msg_head *resp, const struct cachecc *cc, int64_t date,
    int targeted)
{
	/* RFC 9213 2.1: with a targeted field, Expires is not used either. */
	const char *exp = targeted ? NULL : cp_value(resp, "expires"), *lm;
	int64_t e, l;

	if (cc->has_s_maxage)
		return cc->s_maxage;
	if (cc->has_max_age)
		return cc->max_age;
	if (exp != NULL) {
		/* An invalid Expires (such as "0") means already expired. */
		e = cachepol_parse_date(exp);
		return e == -1 || e <= date ? 0 : e - date;
	}
	if (!cp_heuristic_status(resp->status) && !cc->public_)
		return -1;
	lm = cp_value(resp, "last-modified");
	if (lm == NULL || (l = cachepol_parse_date(lm)) == -1 || l >= date)
		return 0;
	return (date - l) / 10 > CACHEPOL_HEURISTIC_MAX ? CACHEPOL_HEURISTIC_MAX : (date - l) / 10;
}

/* The request may use a shared cache's answer at all (RFC 9111 3, 3.5). */
static int
cp_request_ok(const struct msg_head *req, const struct cachecc *rcc,
    const struct cachecc *cc)
{
	if (req->method != MSG_M_GET || rcc->no_store)
		return 0;
	if (msg_find(req, "authorization") != NULL &&
	    !cc->must_revalidate && !cc->public_ && !cc->has_s_maxage)
		return 0;
	return 1;
}

int
cachepol_storable(const struct msg_head *req, const struct msg_head *resp,
    int64_t request_time, int64_t response_time, struct cachepol_times *t)
{
	struct cachecc rcc, cc;
	const char *dv = cp_value(resp, "date"), *av = cp_value(resp, "age");
	int64_t date, lifetime, apparent, corrected;
	uint32_t age = 0, i;
	int targeted;

	cachepol_parse_cc(req, &rcc);
	/* CDN-Cache-Control, when valid, is what a reverse proxy obeys (RFC 9213). */
	if (!(targeted = cachecdn_parse(resp, &cc)))
		cachepol_parse_cc(resp, &cc);
	if (!cp_request_ok(req, &rcc, &cc) || cc.no_store || cc.private_ ||
	    resp->status < 200 || resp->status == 206 || resp->status == 304 ||
	    (cc.must_understand && !cp_understood(resp->status)))
		return 0;
	if (msg_find(resp, "set-cookie") != NULL && !cc.public_ && !cc.has_s_maxage)
		return 0;
	for (i = 0; i < msg_nheaders(resp); i++)
		if (msg_field_is(resp, &resp->f[i], "vary") &&
		    strchr(msg_value(resp, &resp->f[i]), '*') != NULL)
			return 0;
	if ((date = dv != NULL ? cachepol_parse_date(dv) : -1) == -1)
		date = response_time;
	if ((lifetime = cp_lifetime(resp, &cc, date, targeted)) == -1)
		return 0;
	/* Nothing to gain from an entry that is stale at once and cannot be validated. */
	if (lifetime == 0 && msg_find(resp, "etag") == NULL &&
	    msg_find(resp, "last-modified") == NULL)
		return 0;
	/* A list ("7200, 0": lines a hop joined) counts by its first member. */
	if (av != NULL && cp_delta(av, strcspn(av, ", \t"), &age) == -1)
		age = 0;
	apparent = response_time - date > 0 ? response_time - date : 0;
	corrected = (int64_t)age + (response_time - request_time);
	memset(t, 0, sizeof(*t));
	t->response_time = response_time;
	t->initial_age = (uint32_t)(apparent > corrected ? apparent : corrected);
	t->lifetime = lifetime > CACHECC_DELTA_MAX ? CACHECC_DELTA_MAX : (uint32_t)lifetime;
	t->swr = cc.has_swr ? cc.swr : 0;
	t->sie = cc.has_sie ? cc.sie : 0;
	t->must_validate = cc.no_cache;
	t->no_stale = cc.must_revalidate || cc.proxy_revalidate || cc.has_s_maxage;
	return 1;
}

uint32_t
cachepol_age(const struct cachepol_times *t, int64_t now)
{
	int64_t resident = now > t->response_time ? now - t->response_time : 0;
	int64_t age = (int64_t)t->initial_age + resident;

	return age > CACHECC_DELTA_MAX ? CACHECC_DELTA_MAX : (uint32_t)age;
}

enum cachepol_use
cachepol_use(const struct msg_head *req, const struct cachepol_times *t, int64_t now)
{
	struct cachecc rcc;
	const struct msg_field *pragma;
	int64_t age = cachepol_age(t, now), fresh_left = (int64_t)t->lifetime - age;

	cachepol_parse_cc(req, &rcc);
	pragma = msg_find(req, "pragma");
	if (rcc.no_cache || (msg_find(req, "cache-control") == NULL && pragma != NULL &&
	    msg_has_token(req, pragma, "no-cache")))
		return CACHEPOL_BYPASS;
	if (t->must_validate)
		return CACHEPOL_STALE;
	if (rcc.has_max_age && age > (int64_t)rcc.max_age)
		return CACHEPOL_STALE;
	if (rcc.has_min_fresh && fresh_left < (int64_t)rcc.min_fresh)
		return CACHEPOL_STALE;
	if (fresh_left > 0)
		return CACHEPOL_FRESH;
	/* max-stale: the client accepts it stale, unless the response forbids that. */
	if (rcc.has_max_stale && !t->no_stale && -fresh_left <= (int64_t)rcc.max_stale)
		return CACHEPOL_FRESH;
	return CACHEPOL_STALE;
}

int
cachepol_stale_if_error(const struct cachepol_times *t, int64_t now)
{
	int64_t over = (int64_t)cachepol_age(t, now) - (int64_t)t->lifetime;

	return !t->no_stale && t->sie > 0 && over <= (int64_t)t->sie;
}

/* 1 when the comma-separated list of entity tags v holds etag (weak comparison) or "*". */
static int
cp_etag_match(const char *v, const char *etag)
{
	const char *tag = strncmp(etag, "W/", 2) == 0 ? etag + 2 : etag;
	size_t tl = strlen(tag);

	while (*v != '\0') {
		const char *e;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		if (*v == '*')
			return 1;
		if (strncmp(v, "W/", 2) == 0)
			v += 2;
		if (*v != '"')
			return 0;
		if ((e = strchr(v + 1, '"')) == NULL)
			return 0;
		if ((size_t)(e + 1 - v) == tl && strncmp(v, tag, tl) == 0)
			return 1;
		v = e + 1;
	}
	return 0;
}

int
cachepol_not_modified(const struct msg_head *req, const char *etag, const char *last_mod)
{
	const char *inm = cp_value(req, "if-none-match"), *ims = cp_value(req, "if-modified-since");
	int64_t since, lm;

	if (inm != NULL)
		return etag != NULL && cp_etag_match(inm, etag);
	if (ims == NULL || last_mod == NULL)
		return 0;
	since = cachepol_parse_date(ims);
	lm = cachepol_parse_date(last_mod);
	return since != -1 && lm != -1 && lm <= since;
}
