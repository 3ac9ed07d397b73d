/*
 * CDN-Cache-Control (RFC 9213), the cache's targeted field: parsed as a
 * Structured Field Dictionary (RFC 8941 3.2) into the directives of
 * cachecc.h. A field that does not parse is ignored whole, as RFC 9213
 * 2.1 says; a directive whose value has the wrong type is ignored alone.
 */
#include "config.h"

#include <string.h>

#include "worker/cachecc.h"
#include "worker/cachecdn.h"
#include "worker/message.h"

/* The bare item's kinds the directives take (RFC 8941 3.3). */
enum cdn_item { CDN_BOOL, CDN_INT, CDN_OTHER };

struct cdn_parse {
	const char *p, *end;
};

static int
cdn_lc(char c)
{
	return c >= 'a' && c <= 'z';
}

static int
cdn_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void
cdn_ows(struct cdn_parse *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
		s->p++;
}

/* key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ); its length, 0: none. */
static size_t
cdn_key(struct cdn_parse *s)
{
	const char *k = s->p;

	if (s->p >= s->end || (!cdn_lc(*s->p) && *s->p != '*'))
		return 0;
	while (s->p < s->end && (cdn_lc(*s->p) || cdn_digit(*s->p) || *s->p == '_' ||
	    *s->p == '-' || *s->p == '.' || *s->p == '*'))
		s->p++;
	return (size_t)(s->p - k);
}

/* An integer or decimal; *v the integer (clamped), kind CDN_INT or CDN_OTHER. -1: invalid. */
static int
cdn_number(struct cdn_parse *s, uint64_t *v, enum cdn_item *kind)
{
	int neg = 0, n = 0, frac = -1;

	*v = 0;
	if (*s->p == '-') {
		neg = 1;
		s->p++;
	}
	for (; s->p < s->end; s->p++) {
		if (cdn_digit(*s->p)) {
			if (frac >= 0 && ++frac > 3)
				return -1;
			if (frac < 0 && ++n > 15)
				return -1;
			if (frac < 0)
				*v = *v * 10 + (uint64_t)(*s->p - '0');
		} else if (*s->p == '.' && frac < 0 && n > 0 && n <= 12)
			frac = 0;
		else
			break;
	}
	if (n == 0 || frac == 0)
		return -1;
	*kind = neg || frac > 0 ? CDN_OTHER : CDN_INT;
	return 0;
}

/* A bare item; -1: invalid. */
static int
cdn_item(struct cdn_parse *s, uint64_t *v, enum cdn_item *kind)
{
	char c;

	*kind = CDN_OTHER;
	if (s->p >= s->end)
		return -1;
	c = *s->p;
	if (c == '-' || cdn_digit(c))
		return cdn_number(s, v, kind);
	if (c == '"') {
		for (s->p++; s->p < s->end && *s->p != '"'; s->p++)
			if (*s->p == '\\' && (++s->p >= s->end || (*s->p != '"' && *s->p != '\\')))
				return -1;
			else if ((unsigned char)*s->p < 0x20 || (unsigned char)*s->p > 0x7e)
				return -1;
		if (s->p >= s->end)
			return -1;
		s->p++;
		return 0;
	}
	if (c == ':') {
		for (s->p++; s->p < s->end && *s->p != ':'; s->p++)
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
			    *s->p))
				return -1;
		if (s->p >= s->end)
			return -1;
		s->p++;
		return 0;
	}
	if (c == '?') {
		if (s->end - s->p < 2 || (s->p[1] != '0' && s->p[1] != '1'))
			return -1;
		*kind = CDN_BOOL;
		*v = s->p[1] == '1';
		s->p += 2;
		return 0;
	}
	if ((c >= 'A' && c <= 'Z') || cdn_lc(c) || c == '*') {
		while (s->p < s->end && *s->p != ',' && *s->p != ';' && *s->p != ' ' &&
		    *s->p != '\t' && (unsigned char)*s->p > 0x20 && (unsigned char)*s->p < 0x7f &&
		    !strchr("\"(),;<=>?@[\\]{}", *s->p))
			s->p++;
		return 0;
	}
	return -1;
}

/* Parameters after an item: *( ";" OWS key [ "=" bare-item ] ). */
static int
cdn_params(struct cdn_parse *s)
{
	uint64_t v;
	enum cdn_item k;

	while (s->p < s->end && *s->p == ';') {
		s->p++;
		cdn_ows(s);
		if (cdn_key(s) == 0)
			return -1;
		if (s->p < s->end && *s->p == '=') {
			s->p++;
			if (cdn_item(s, &v, &k) == -1)
				return -1;
		}
	}
	return 0;
}

static void
cdn_directive(struct cachecc *cc, const char *key, size_t n, enum cdn_item kind,
    uint64_t v)
{
	uint32_t secs = v > CACHECC_DELTA_MAX ? CACHECC_DELTA_MAX : (uint32_t)v;

	/* Keys are lower case (cdn_key), so cachepolicy's case-blind names match exactly. */
	if (kind == CDN_INT) {
		(void)cachecc_seconds(cc, key, n, secs);
		return;
	}
	if (kind == CDN_BOOL && v == 0)
		return;
	/* Flags are Booleans; no-cache and private may carry field names (taken unqualified). */
	(void)cachecc_flag(cc, key, n);
}

/* One field's value into cc, its members counted in *n; -1 when it is not a valid Dictionary. */
static int
cdn_field(struct cdn_parse *s, struct cachecc *cc, unsigned *members)
{
	const char *key;
	enum cdn_item kind;
	uint64_t v;
	size_t n;

	cdn_ows(s);
	while (s->p < s->end) {
		key = s->p;
		if ((n = cdn_key(s)) == 0)
			return -1;
		kind = CDN_BOOL;
		v = 1;
		if (s->p < s->end && *s->p == '=') {
			s->p++;
			if (cdn_item(s, &v, &kind) == -1)
				return -1;
		}
		if (cdn_params(s) == -1)
			return -1;
		cdn_directive(cc, key, n, kind, v);
		(*members)++;
		cdn_ows(s);
		if (s->p >= s->end)
			return 0;
		if (*s->p++ != ',')
			return -1;
		cdn_ows(s);
		if (s->p >= s->end)
			return -1;	/* a trailing comma */
	}
	return 0;
}

int
cachecdn_parse(const struct msg_head *resp, struct cachecc *cc)
{
	struct cdn_parse s;
	unsigned members = 0;
	uint32_t i;

	memset(cc, 0, sizeof(*cc));
	/* Several lines are one list, joined by commas (RFC 8941 3.2). */
	for (i = 0; i < msg_nheaders(resp); i++) {
		if (!msg_field_is(resp, &resp->f[i], "cdn-cache-control"))
			continue;
		s.p = msg_value(resp, &resp->f[i]);
		s.end = s.p + resp->f[i].value.len;
		if (cdn_field(&s, cc, &members) == -1) {
			memset(cc, 0, sizeof(*cc));
			return 0;
		}
	}
	return members > 0;	/* an empty field is as if absent */
}
