/* HTTP/2 fields <-> the neutral head for haloyd-tunnel (see h2h1.h). */
#include "config.h"

#include <string.h>

#include "agent/h2h1.h"
#include "agent/hopfilter.h"
#include "share/util.h"

int
h2h1_pseudo(struct msg_head *r, const char *name, size_t nlen, const char *v, size_t vlen)
{
	if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
		r->method = msg_method_of(v, vlen);
		return r->method == MSG_M_OTHER ? msg_str(r, v, vlen, &r->method_name) : 0;
	}
	if (nlen == 5 && memcmp(name, ":path", 5) == 0)
		return msg_str(r, v, vlen, &r->path);
	if (nlen == 10 && memcmp(name, ":authority", 10) == 0)
		return msg_str(r, v, vlen, &r->authority);
	/* :scheme says nothing true about the public side (HAProxy sends https for http). */
	return 0;
}

int
h2h1_prepare(struct msg_head *r, int end)
{
	const struct msg_field *f;
	uint64_t len;
	uint32_t i;

	if (r->authority.len == 0 && (f = msg_find(r, "host")) != NULL)
		r->authority = f->value;
	if (r->authority.len == 0 || r->path.len == 0 || r->method == MSG_M_CONNECT)
		return -1;
	for (i = msg_nheaders(r); i-- > 0;) {
		f = &r->f[i];
		if (hopfilter_drop(r, i) || msg_field_is(r, f, "host")) {
			msg_del(r, i);
		} else if (msg_field_is(r, f, "content-length")) {
			/* nghttp2 checked it against the DATA; two different ones are refused. */
			if (util_parse_u64(msg_value(r, f), 0, UINT64_MAX, &len) == -1 ||
			    (r->has_length && r->length != len))
				return -1;
			r->has_length = 1;
			r->length = len;
			msg_del(r, i);
		}
	}
	/* No length and more to come: the body goes chunked, as it arrives. */
	r->chunked = !r->has_length && !end;
	return 0;
}

int
h2h1_last_chunk(const struct msg_head *r, struct bytequeue *q, size_t max)
{
	uint32_t i;

	if (bytequeue_add(q, "0\r\n", 3, max) == -1)
		return -1;
	for (i = msg_nheaders(r); i < r->nf; i++) {
		const struct msg_field *f = &r->f[i];

		if (hopfilter_drop(r, i) || msg_field_is(r, f, "content-length"))
			continue;
		if (bytequeue_add(q, msg_name(r, f), f->name.len, max) == -1 ||
		    bytequeue_add(q, ": ", 2, max) == -1 ||
		    bytequeue_add(q, msg_value(r, f), f->value.len, max) == -1 ||
		    bytequeue_add(q, "\r\n", 2, max) == -1)
			return -1;
	}
	return bytequeue_add(q, "\r\n", 2, max);
}

static void
h2h1_lower(struct msg_head *h, struct msg_str s)
{
	char *p = h->mem + s.off;
	uint32_t i;

	for (i = 0; i < s.len; i++)
		if (p[i] >= 'A' && p[i] <= 'Z')
			p[i] = (char)(p[i] - 'A' + 'a');
}

size_t
h2h1_nv(struct msg_head *h, uint32_t from, uint32_t to, nghttp2_nv *nv, size_t at)
{
	uint32_t i;

	for (i = from; i < to; i++) {
		if (hopfilter_drop(h, i))
			continue;
		h2h1_lower(h, h->f[i].name);
		nv[at].name = (uint8_t *)h->mem + h->f[i].name.off;
		nv[at].namelen = h->f[i].name.len;
		nv[at].value = (uint8_t *)h->mem + h->f[i].value.off;
		nv[at].valuelen = h->f[i].value.len;
		nv[at].flags = NGHTTP2_NV_FLAG_NONE;
		at++;
	}
	return at;
}
