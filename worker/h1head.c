/*
 * HTTP/1.x heads the quick way (see h1head.h). One pass over the bytes
 * with a class table, then one copy of the whole head into the head's
 * storage, its delimiters overwritten by the strings' NULs: no callback,
 * no copy per piece. Each check below refuses (returns 0) rather than
 * decides: the http-parser path then reads the same bytes from the start.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "worker/h1head.h"

#define TOK 1	/* tchar (RFC 9110 5.6.2) */
#define VAL 2	/* a field value or reason byte: HTAB, SP, VCHAR, obs-text */
#define URL 4	/* an origin-form target byte: VCHAR but '#' (a fragment) */

static const unsigned char h1h_class[256] = {
	['\t'] = VAL, [' '] = VAL,
	['!'] = TOK | VAL | URL, ['"'] = VAL | URL, ['#'] = TOK | VAL, ['$'] = TOK | VAL | URL,
	['%'] = TOK | VAL | URL, ['&'] = TOK | VAL | URL, ['\''] = TOK | VAL | URL,
	['('] = VAL | URL, [')'] = VAL | URL, ['*'] = TOK | VAL | URL, ['+'] = TOK | VAL | URL,
	[','] = VAL | URL, ['-'] = TOK | VAL | URL, ['.'] = TOK | VAL | URL, ['/'] = VAL | URL,
	['0' ... '9'] = TOK | VAL | URL,
	[':'] = VAL | URL, [';'] = VAL | URL, ['<'] = VAL | URL, ['='] = VAL | URL,
	['>'] = VAL | URL, ['?'] = VAL | URL, ['@'] = VAL | URL,
	['A' ... 'Z'] = TOK | VAL | URL,
	['['] = VAL | URL, ['\\'] = VAL | URL, [']'] = VAL | URL, ['^'] = TOK | VAL | URL,
	['_'] = TOK | VAL | URL, ['`'] = TOK | VAL | URL,
	['a' ... 'z'] = TOK | VAL | URL,
	['{'] = VAL | URL, ['|'] = TOK | VAL | URL, ['}'] = VAL | URL, ['~'] = TOK | VAL | URL,
	[0x80 ... 0xff] = VAL,
};

/* What the fields said about framing and the connection. */
struct h1h_facts {
	int close, keep, has_length;
	unsigned long long length;
};

/* The first byte at or after p (before end) not of class cls. */
static const unsigned char *
h1h_span(const unsigned char *p, const unsigned char *end, unsigned cls)
{
	while (p < end && (h1h_class[*p] & cls))
		p++;
	return p;
}

static int
h1h_crlf(const unsigned char *p, const unsigned char *end)
{
	return end - p >= 2 && p[0] == '\r' && p[1] == '\n';
}

static int
h1h_is(const unsigned char *p, size_t n, const char *name)
{
	return n == strlen(name) && strncasecmp((const char *)p, name, n) == 0;
}

/* "GET /x HTTP/1.1\r\n": the method, path and minor version; the line's end, or NULL. */
static const unsigned char *
h1h_request_line(const unsigned char *p, const unsigned char *end, struct msg_head *hd,
    const unsigned char *base)
{
	const unsigned char *m = p, *t;

	p = h1h_span(p, end, TOK);
	if (p == m || p - m > 7 || p == end || *p != ' ')
		return NULL;
	hd->method = msg_method_of((const char *)m, (size_t)(p - m));
	if (hd->method == MSG_M_OTHER || hd->method == MSG_M_CONNECT)
		return NULL;
	if (++p == end || *p != '/')
		return NULL;
	t = p;
	p = h1h_span(p, end, URL);
	if (p - t > MSG_TARGET_MAX || end - p < 11 || memcmp(p, " HTTP/1.", 8) != 0 ||
	    (p[8] != '0' && p[8] != '1') || !h1h_crlf(p + 9, end))
		return NULL;
	hd->path = (struct msg_str){ (uint32_t)(t - base), (uint32_t)(p - t) };
	hd->minor = (uint8_t)(p[8] - '0');
	return p + 11;
}

/* "HTTP/1.1 200 OK\r\n" for 2xx to 5xx; the line's end, or NULL. */
static const unsigned char *
h1h_status_line(const unsigned char *p, const unsigned char *end, struct msg_head *hd,
    const unsigned char *base)
{
	const unsigned char *r;

	if (end - p < 13 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
	    p[8] != ' ' || p[9] < '2' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9' || p[12] != ' ')
		return NULL;
	hd->minor = (uint8_t)(p[7] - '0');
	hd->status = (unsigned)(p[9] - '0') * 100 + (unsigned)(p[10] - '0') * 10 +
	    (unsigned)(p[11] - '0');
	r = p + 13;
	p = h1h_span(r, end, VAL);
	if (!h1h_crlf(p, end))
		return NULL;
	hd->reason = (struct msg_str){ (uint32_t)(r - base), (uint32_t)(p - r) };
	return p + 2;
}

/* The fields http-parser reads for framing; -1 for any form we leave to it. */
static int
h1h_note(const unsigned char *n, size_t nl, const unsigned char *v, size_t vl,
    struct h1h_facts *fx)
{
	size_t i;

	if (nl == 14 && h1h_is(n, nl, "content-length")) {
		if (fx->has_length || vl > 18)
			return -1;
		fx->has_length = 1;
		for (i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9')
				return -1;
			fx->length = fx->length * 10 + (unsigned)(v[i] - '0');
		}
		return 0;
	}
	if (nl == 10 && h1h_is(n, nl, "connection")) {
		if (h1h_is(v, vl, "close"))
			fx->close = 1;
		else if (h1h_is(v, vl, "keep-alive"))
			fx->keep = 1;
		else
			return -1;
		return 0;
	}
	/* http-parser notes Transfer-Encoding on the name's first 17 bytes ("Transfer-Encoding-X" too). */
	if ((nl == 7 && h1h_is(n, nl, "upgrade")) ||
	    (nl == 16 && h1h_is(n, nl, "proxy-connection")) ||
	    (nl >= 17 && h1h_is(n, 17, "transfer-encoding")))
		return -1;
	return 0;
}

/* "Name: value\r\n" lines up to the empty one; the head's end, or NULL. */
static const unsigned char *
h1h_fields(const unsigned char *p, const unsigned char *end, struct msg_head *hd,
    const unsigned char *base, struct h1h_facts *fx)
{
	for (;;) {
		const unsigned char *n = p, *v;
		struct msg_str ns, vs;

		if (h1h_crlf(p, end))
			return p + 2;
		p = h1h_span(p, end, TOK);
		if (p == n || p == end || *p != ':')
			return NULL;
		ns = (struct msg_str){ (uint32_t)(n - base), (uint32_t)(p - n) };
		p++;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		v = p;
		p = h1h_span(p, end, VAL);
		if (p == v || !h1h_crlf(p, end))
			return NULL;
		vs = (struct msg_str){ (uint32_t)(v - base), (uint32_t)(p - v) };
		if (hd->nf == MSG_FIELDS_MAX || h1h_note(n, ns.len, v, vs.len, fx) == -1 ||
		    msg_push(hd, ns, vs, 0) == -1)
			return NULL;
		p += 2;
	}
}

/* Moves the strings into hd's storage: offsets from base become offsets into mem. */
static int
h1h_store(struct msg_head *hd, const unsigned char *base, size_t n)
{
	char *m = msg_extend(hd, n, MSG_HEAD_MAX);
	uint32_t i, at;

	if (m == NULL)
		return -1;
	at = (uint32_t)(m - hd->mem);
	memcpy(m, base, n);
	/* Every string is followed by a delimiter in the head: its NUL goes there. */
	for (i = 0; i < hd->nf; i++) {
		struct msg_field *f = &hd->f[i];

		f->name.off += at;
		f->value.off += at;
		hd->mem[f->name.off + f->name.len] = '\0';
		hd->mem[f->value.off + f->value.len] = '\0';
	}
	if (hd->path.len > 0) {
		hd->path.off += at;
		hd->mem[hd->path.off + hd->path.len] = '\0';
	}
	if (hd->reason.len > 0) {
		hd->reason.off += at;
		hd->mem[hd->reason.off + hd->reason.len] = '\0';
	} else
		hd->reason = (struct msg_str){ 0, 0 };
	return 0;
}

size_t
h1head_parse(int response, const char *data, size_t len, struct msg_head *hd)
{
	const unsigned char *base = (const unsigned char *)data, *end = base + len, *p;
	struct h1h_facts fx = { 0 };

	msg_reset(hd);
	p = response ? h1h_status_line(base, end, hd, base) : h1h_request_line(base, end, hd, base);
	if (p == NULL || (p = h1h_fields(p, end, hd, base, &fx)) == NULL)
		goto refuse;
	/* A body that ends at close, and the 1xx, are http-parser's. */
	if (response && !fx.has_length && hd->status != 204 && hd->status != 304)
		goto refuse;
	/* Within the limit the http-parser path applies to what it stores. */
	if ((size_t)(p - base) + 1 > MSG_HEAD_MAX || h1h_store(hd, base, (size_t)(p - base)) == -1)
		goto refuse;
	hd->major = 1;
	hd->has_length = (uint8_t)fx.has_length;
	hd->length = fx.length;
	/* http_should_keep_alive: 1.1 unless close, 1.0 only with keep-alive. */
	hd->keepalive = hd->minor == 1 ? !fx.close : fx.keep;
	return (size_t)(p - base);
refuse:
	msg_reset(hd);
	return 0;
}
