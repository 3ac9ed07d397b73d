/*
 * Path-prefix routes: the prefix rule, request path normalisation, the
 * segment-boundary match and the stripped target (see pathprefix.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "share/hostname.h"
#include "share/pathprefix.h"
#include "share/util.h"

/* RFC 3986 unreserved: what an escape may be decoded to without changing meaning. */
static int
pp_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~';
}

/* What a prefix may hold besides unreserved characters: sub-delims, ':', '@'. */
static int
pp_prefix_char(unsigned char c)
{
	return pp_unreserved(c) || (c != '\0' && strchr("!$&'()*+,;=:@", c) != NULL);
}

const char *
pathprefix_check(const char *p, size_t len)
{
	size_t i, seg;

	if (len < 2 || p[0] != '/')
		return "a path prefix starts with '/' and names at least one segment";
	if (len > PATHPREFIX_MAX)
		return "a path prefix is at most 128 bytes";
	if (p[len - 1] == '/')
		return "a path prefix does not end with '/' (/api matches /api/ and /api/x)";
	for (i = 0; i < len; i++)
		if (p[i] != '/' && !pp_prefix_char((unsigned char)p[i]))
			return p[i] == '%' ? "a path prefix has no percent-escapes: write the "
			    "character itself" : "a path prefix has only letters, digits, "
			    "-._~!$&'()*+,;=:@ and /";
	for (i = 0; i < len; i = seg) {
		seg = i + 1;
		while (seg < len && p[seg] != '/')
			seg++;
		if (seg == i + 1)
			return "a path prefix has no empty segment ('//')";
		if ((seg - i == 2 && p[i + 1] == '.') ||
		    (seg - i == 3 && p[i + 1] == '.' && p[i + 2] == '.'))
			return "a path prefix has no '.' or '..' segment";
	}
	return NULL;
}

int
pathprefix_route_name(const char *raw, char *out, char *err, size_t errlen)
{
	char host[HOSTNAME_MAX + 1];
	const char *slash = strchr(raw, '/'), *why;
	size_t hlen = slash != NULL ? (size_t)(slash - raw) : strlen(raw), plen, n;

	if (hlen > HOSTNAME_MAX)
		goto badhost;
	memcpy(host, raw, hlen);
	host[hlen] = '\0';
	if (hostname_normalize_name(host, out) == -1)
		goto badhost;
	if (slash == NULL)
		return (int)strlen(out);
	plen = strlen(slash);
	if ((why = pathprefix_check(slash, plen)) != NULL) {
		snprintf(err, errlen, "invalid path prefix '%.140s': %s", slash, why);
		return -1;
	}
	if (hostname_is_wildcard(out)) {
		snprintf(err, errlen, "invalid route '%.253s': a path prefix goes under an exact "
		    "host name, not a wildcard", raw);
		return -1;
	}
	if ((n = strlen(out)) + plen > HOSTNAME_MAX) {
		snprintf(err, errlen, "invalid route '%.253s': host and path prefix are %zu bytes, "
		    "at most %d", raw, n + plen, HOSTNAME_MAX);
		return -1;
	}
	memcpy(out + n, slash, plen + 1);
	return (int)n;
badhost:
	snprintf(err, errlen, "invalid host name '%.*s'", (int)(hlen > 253 ? 253 : hlen), raw);
	return -1;
}

size_t
pathprefix_of(const char *name)
{
	const char *slash = strchr(name, '/');

	return slash != NULL ? (size_t)(slash - name) : 0;
}

/*
 * Copies one segment (in[0..len), no '/') to out at *at, escapes decoded
 * when unreserved, else upper-cased; -1 on a bad escape or no room.
 */
static int
pp_segment(const char *in, size_t len, char *out, size_t cap, size_t *at)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t i;
	int hi, lo, c;

	/* Room is kept for the NUL. */
	for (i = 0; i < len; i++) {
		if (in[i] != '%') {
			if (*at + 1 >= cap)
				return -1;
			out[(*at)++] = in[i];
			continue;
		}
		if (i + 2 >= len || *at + 3 >= cap)
			return -1;
		if ((hi = util_hexval((unsigned char)in[i + 1])) < 0 ||
		    (lo = util_hexval((unsigned char)in[i + 2])) < 0)
			return -1;
		c = hi * 16 + lo;
		if (pp_unreserved((unsigned char)c))
			out[(*at)++] = (char)c;
		else {
			out[(*at)++] = '%';
			out[(*at)++] = hexd[hi];
			out[(*at)++] = hexd[lo];
		}
		i += 2;
	}
	return 0;
}

/* Applies segment out[start..*at) as RFC 3986 5.2.4 would: "." goes, ".." takes one more. */
static void
pp_dots(char *out, size_t start, size_t *at)
{
	size_t n = *at - start;

	if (n == 1 && out[start] == '.')
		*at = start - 1;	/* the '/' before it goes too */
	else if (n == 2 && out[start] == '.' && out[start + 1] == '.') {
		*at = start - 1;
		while (*at > 0 && out[*at - 1] != '/')
			(*at)--;
		if (*at > 0)
			(*at)--;
	}
}

int
pathprefix_normalize(const char *t, size_t len, char *out, size_t cap)
{
	size_t i = 0, seg, at = 0, start;
	int trailing = 0;

	for (seg = 0; seg < len && t[seg] != '?' && t[seg] != '#'; seg++)
		;
	len = seg;
	if (len == 0 || t[0] != '/' || cap < 2)
		return -1;
	while (i < len) {
		i++;	/* the '/' */
		for (seg = i; seg < len && t[seg] != '/'; seg++)
			;
		trailing = seg == i;
		if (seg > i) {
			if (at + 1 >= cap)
				return -1;
			out[at++] = '/';
			start = at;
			if (pp_segment(t + i, seg - i, out, cap, &at) == -1)
				return -1;
			pp_dots(out, start, &at);
			trailing = at < start;	/* a dot segment ends in a directory */
		}
		i = seg;
	}
	/* A dot segment may leave "" or "/a": the '/' after them is the directory's. */
	if (at == 0 || trailing) {
		if (at + 2 > cap)
			return -1;
		out[at++] = '/';
	}
	out[at] = '\0';
	return (int)at;
}

int
pathprefix_match(const char *npath, size_t nlen, const char *prefix, size_t plen)
{
	return nlen >= plen && memcmp(npath, prefix, plen) == 0 &&
	    (nlen == plen || npath[plen] == '/');
}

int
pathprefix_strip(const char *npath, size_t nlen, size_t plen, const char *target, size_t tlen,
    char *out, size_t cap)
{
	const char *q = memchr(target, '?', tlen);
	size_t qlen = q != NULL ? tlen - (size_t)(q - target) : 0, rlen = nlen - plen;

	if (plen > nlen)
		return -1;
	if (rlen == 0) {
		npath = "/";
		plen = 0;
		rlen = 1;
	}
	if (rlen + qlen + 1 > cap)
		return -1;
	memcpy(out, npath + plen, rlen);
	if (qlen > 0)
		memcpy(out + rlen, q, qlen);
	out[rlen + qlen] = '\0';
	return (int)(rlen + qlen);
}
