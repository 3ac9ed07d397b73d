/*
 * The forwarding rules (see forward.h). Which fields are hop-by-hop follows
 * RFC 9110 7.6.1: the fixed list plus every field the Connection header
 * names. Framing fields go too: each encoder writes its own.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "worker/forward.h"

#define XFF_MAX 4096

/* With their lengths: a field is compared only with the names of its length. */
static const struct {
	const char *name;
	size_t len;
} hop_fields[] = {
	{ "connection", 10 }, { "keep-alive", 10 }, { "proxy-connection", 16 }, { "te", 2 },
	{ "trailer", 7 }, { "transfer-encoding", 17 }, { "upgrade", 7 }, { "content-length", 14 },
};

/* The options the Connection fields name, read once per message (most name one or none). */
#define FWD_OPTS_MAX 16

struct fwd_opts {
	uint32_t n;
	int many;	/* more than FWD_OPTS_MAX: each field looks through the fields */
	struct {
		const char *p;
		size_t len;
	} v[FWD_OPTS_MAX];
};

/* The fixed list: hop-by-hop whatever Connection says. */
static int
forward_fixed_hop(const struct msg_head *h, const struct msg_field *f)
{
	uint32_t i;

	for (i = 0; i < sizeof(hop_fields) / sizeof(hop_fields[0]); i++)
		if (msg_field_is_n(h, f, hop_fields[i].name, hop_fields[i].len))
			return 1;
	return 0;
}

/* has_conn: h has a Connection field (looked for once per message, not once per field). */
static int
forward_hop(const struct msg_head *h, const struct msg_field *f, int has_conn)
{
	const char *name = msg_name(h, f);

	if (forward_fixed_hop(h, f))
		return 1;
	/* Host names the request's target, not the connection: "Connection: host" keeps it. */
	if (!has_conn || msg_field_is(h, f, "host"))
		return 0;
	return msg_lists(h, "connection", name);
}

int
forward_is_hop(const struct msg_head *h, const struct msg_field *f)
{
	return forward_hop(h, f, 1);
}

/*
 * Fields only haloyd writes: X-Forwarded-* and X-Request-Id (set again
 * below), and haloyd-tunnel* (the worker's word to the tunnel process on
 * the local hop: a client must never choose a tunnel or its balance).
 */
static int
forward_is_ours(const struct msg_head *h, const struct msg_field *f)
{
	return msg_field_is(h, f, "x-forwarded-for") || msg_field_is(h, f, "x-forwarded-proto") ||
	    msg_field_is(h, f, "x-forwarded-host") || msg_field_is(h, f, "x-request-id") ||
	    (f->name.len >= 13 && strncasecmp(msg_name(h, f), "haloyd-tunnel", 13) == 0);
}

/* The Connection fields' options, split as msg_has_token splits them. */
static void
forward_opts(const struct msg_head *h, struct fwd_opts *o)
{
	const char *v, *end, *t;
	uint32_t i;
	size_t len;

	o->n = 0;
	o->many = 0;
	for (i = 0; i < msg_nheaders(h); i++) {
		if (!msg_field_is(h, &h->f[i], "connection"))
			continue;
		v = msg_value(h, &h->f[i]);
		end = v + h->f[i].value.len;
		while (msg_list_next(&v, end, &t, &len)) {
			if (o->n == FWD_OPTS_MAX) {
				o->many = 1;
				return;
			}
			o->v[o->n].p = t;
			o->v[o->n++].len = len;
		}
	}
}

/* 1 when a Connection field names f (forward_hop's second half, with the options read once). */
static int
forward_named(const struct msg_head *h, const struct msg_field *f, const struct fwd_opts *o)
{
	uint32_t i;

	if (o->many)
		return forward_hop(h, f, 1);
	if (o->n == 0 || msg_field_is(h, f, "host"))
		return 0;
	for (i = 0; i < o->n; i++)
		if (o->v[i].len == f->name.len &&
		    strncasecmp(o->v[i].p, msg_name(h, f), f->name.len) == 0)
			return 1;
	return 0;
}

/* Marks the fields to drop in del (one flag per header); hop-by-hop, and ours for requests. */
static void
forward_mark(const struct msg_head *h, int request, char *del)
{
	struct fwd_opts o;
	uint32_t i;

	forward_opts(h, &o);
	for (i = 0; i < msg_nheaders(h); i++)
		del[i] = (char)(forward_fixed_hop(h, &h->f[i]) || forward_named(h, &h->f[i], &o) ||
		    (request && forward_is_ours(h, &h->f[i])));
}

static void
forward_sweep(struct msg_head *h, const char *del)
{
	uint32_t i = msg_nheaders(h);

	while (i-- > 0)
		if (del[i])
			msg_del(h, i);
}

/* Appends s (slen bytes) at *n, NUL-terminated; -1 when it does not fit in len. */
static int
forward_put(char *out, size_t len, size_t *n, const char *s, size_t slen)
{
	if (slen >= len - *n)
		return -1;
	memcpy(out + *n, s, slen);
	*n += slen;
	out[*n] = '\0';
	return 0;
}

/* "a, b, " from a trusted proxy's X-Forwarded-For fields, then the client's address. */
static int
forward_xff(const struct msg_head *h, const struct fwd_info *fi, char *out, size_t len)
{
	size_t n = 0;
	uint32_t i;

	for (i = 0; fi->trusted && i < msg_nheaders(h); i++) {
		const struct msg_field *f = &h->f[i];

		if (!msg_field_is(h, f, "x-forwarded-for") || f->value.len == 0)
			continue;
		if (forward_put(out, len, &n, msg_value(h, f), strlen(msg_value(h, f))) == -1 ||
		    forward_put(out, len, &n, ", ", 2) == -1)
			return -1;
	}
	return forward_put(out, len, &n, fi->client_ip, strlen(fi->client_ip));
}

/* dst gets a copy of src, cut to dstlen - 1 bytes (as snprintf "%s" did, without the formatting). */
static void
forward_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * RFC 9110 7.6.3: a gateway adds itself to Via in every request it
 * forwards, after the hops before it, with the version it received.
 */
static int
forward_via(struct msg_head *h)
{
	char v[32];

	/* The versions we parse are literals: no formatting on the request's path. */
	if (h->major == 1 && h->minor <= 1)
		return msg_add(h, "Via", h->minor == 1 ? "1.1 " FORWARD_PSEUDONYM :
		    "1.0 " FORWARD_PSEUDONYM);
	if (h->major == 2)
		return msg_add(h, "Via", "2 " FORWARD_PSEUDONYM);
	if (h->major > 2)
		snprintf(v, sizeof(v), "%u " FORWARD_PSEUDONYM, (unsigned)h->major);
	else
		snprintf(v, sizeof(v), "%u.%u " FORWARD_PSEUDONYM, (unsigned)h->major,
		    (unsigned)h->minor);
	return msg_add(h, "Via", v);
}

int64_t
forward_max_forwards(const struct msg_head *h)
{
	const struct msg_field *f;
	uint64_t v = 0;
	uint32_t i;
	const char *s;

	if ((h->method != MSG_M_OPTIONS && h->method != MSG_M_TRACE) ||
	    (f = msg_find(h, "max-forwards")) == NULL || f->value.len == 0 || f->value.len > 18)
		return -1;
	s = msg_value(h, f);
	for (i = 0; i < f->value.len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return (int64_t)v;
}

/* RFC 9110 7.6.2: one hop fewer for the next intermediary (0 was answered here). */
static int
forward_count_hop(struct msg_head *h)
{
	int64_t left = forward_max_forwards(h);
	char v[24];
	uint32_t i;

	if (left <= 0)
		return 0;
	for (i = msg_nheaders(h); i-- > 0;)
		if (msg_field_is(h, &h->f[i], "max-forwards"))
			msg_del(h, i);
	snprintf(v, sizeof(v), "%lld", (long long)(left - 1));
	return msg_add(h, "Max-Forwards", v);
}

int
forward_request(struct msg_head *h, const struct fwd_info *fi)
{
	const struct msg_field *f;
	char del[MSG_FIELDS_MAX * 2 + 16], xff[XFF_MAX], rid[256] = "", fhost[1024] = "";
	int trailers;

	if (msg_nheaders(h) > sizeof(del) || forward_xff(h, fi, xff, sizeof(xff)) == -1)
		return -1;
	trailers = msg_lists(h, "te", "trailers");
	if ((f = msg_find(h, "x-request-id")) != NULL)
		forward_copy(rid, sizeof(rid), msg_value(h, f));
	if ((f = msg_find(h, "host")) != NULL)
		forward_copy(fhost, sizeof(fhost), msg_value(h, f));
	else if (h->authority.len > 0)
		forward_copy(fhost, sizeof(fhost), msg_s(h, h->authority));
	forward_mark(h, 1, del);
	forward_sweep(h, del);
	if (msg_add(h, "X-Forwarded-For", xff) == -1 ||
	    msg_add(h, "X-Forwarded-Proto", fi->proto) == -1 ||
	    (fhost[0] != '\0' && msg_add(h, "X-Forwarded-Host", fhost) == -1) ||
	    msg_add(h, "X-Request-Id", rid[0] != '\0' ? rid : fi->request_id) == -1 ||
	    (trailers && msg_add(h, "TE", "trailers") == -1) || forward_via(h) == -1 ||
	    forward_count_hop(h) == -1)
		return -1;
	return 0;
}

int
forward_response(struct msg_head *h, int hsts, const char *date)
{
	char del[MSG_FIELDS_MAX * 2 + 16];

	if (msg_nheaders(h) > sizeof(del))
		return -1;
	forward_mark(h, 0, del);
	forward_sweep(h, del);
	if (hsts && msg_add(h, "Strict-Transport-Security", FORWARD_HSTS_VALUE) == -1)
		return -1;
	/* RFC 9110 6.6.1: a recipient with a clock adds Date to a response without one. */
	if (h->status / 100 != 1 && msg_find(h, "date") == NULL && msg_add(h, "Date", date) == -1)
		return -1;
	return 0;
}
