/*
 * The http-parser wrapper (see http1.h): the only file that includes
 * <http_parser.h> callbacks. Heads are copied into struct http_head with a
 * NUL after every name and value, within HEAD_MAX_BYTES.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "worker/http1.h"

static struct h1 *
h1_of(http_parser *p)
{
	return p->data;
}

/* Appends to the head's raw bytes; sets the status to answer when full. */
static int
h1_store(struct h1 *h, const char *at, size_t n, unsigned status)
{
	struct http_head *hd = h->head;
	size_t max = h->head_done ? sizeof(hd->raw) - 1 : HEAD_MAX_BYTES - 1;

	if (n > max - hd->rawlen) {
		h->error = status;
		return -1;
	}
	memcpy(hd->raw + hd->rawlen, at, n);
	hd->rawlen += (uint32_t)n;
	return 0;
}

static int
h1_terminate(struct h1 *h)
{
	return h1_store(h, "", 1, h->head_done ? 400 : 431);
}

static int
on_message_begin(http_parser *p)
{
	struct h1 *h = h1_of(p);
	struct http_head *hd = h->head;

	hd->nf = hd->ntrailers = hd->rawlen = 0;
	hd->target_off = hd->target_len = 0;
	hd->chunked = hd->has_length = hd->keepalive = hd->upgrade = 0;
	hd->length = 0;
	h->cur = H1_NONE;
	h->head_done = h->done = 0;
	h->started = 1;
	return 0;
}

/* The request-target or the reason phrase; may come in pieces. */
static int
on_target(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = h1_of(p);
	struct http_head *hd = h->head;

	if (hd->target_len == 0)
		hd->target_off = hd->rawlen;
	if (hd->target_len + n > HEAD_MAX_TARGET) {
		h->error = 414;
		return -1;
	}
	hd->target_len += (uint32_t)n;
	return h1_store(h, at, n, 414);
}

/* A new field begins: close what came before it (the target, or the last value). */
static int
h1_new_field(struct h1 *h)
{
	struct http_head *hd = h->head;
	struct http_field *f;

	if (h->cur == H1_VALUE || (h->cur == H1_NONE && hd->nf == 0 && !h->head_done &&
	    hd->target_len > 0)) {
		if (h1_terminate(h) == -1)
			return -1;
	}
	if (hd->nf == HEAD_MAX_HEADERS) {
		h->error = h->head_done ? 400 : 431;
		return -1;
	}
	f = &hd->f[hd->nf++];
	memset(f, 0, sizeof(*f));
	f->name_off = hd->rawlen;
	if (h->head_done)
		hd->ntrailers++;
	h->cur = H1_NAME;
	return 0;
}

/* RFC 9110 5.1: a field name is a token; "Host : x" is a smuggling vector. */
static int
h1_is_token(const char *s, size_t n)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!((ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') ||
		    (ch != '\0' && strchr(extra, ch) != NULL)))
			return 0;
	}
	return 1;
}

/* Field values: no NUL, no CR or LF left in them (bare CR, obs-fold). */
static int
h1_value_ok(const char *s, size_t n)
{
	return memchr(s, '\0', n) == NULL && memchr(s, '\r', n) == NULL && memchr(s, '\n', n) == NULL;
}

static int
on_header_field(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = h1_of(p);

	if (!h1_is_token(at, n)) {
		h->error = 400;
		return -1;
	}

	if (h->cur != H1_NAME && h1_new_field(h) == -1)
		return -1;
	h->head->f[h->head->nf - 1].name_len += (uint32_t)n;
	return h1_store(h, at, n, h->head_done ? 400 : 431);
}

static int
on_header_value(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = h1_of(p);
	struct http_field *f = &h->head->f[h->head->nf - 1];

	/* A value continued at another place of the same input is an obs-fold line. */
	if (!h1_value_ok(at, n) || (h->cur == H1_VALUE && h->value_end != NULL && at != h->value_end)) {
		h->error = 400;
		return -1;
	}
	h->value_end = at + n;
	if (h->cur != H1_VALUE) {
		if (h1_terminate(h) == -1)
			return -1;
		f->value_off = h->head->rawlen;
		h->cur = H1_VALUE;
	}
	f->value_len += (uint32_t)n;
	return h1_store(h, at, n, h->head_done ? 400 : 431);
}

/* Closes the last name or value so every string in raw is terminated. */
static int
h1_close_fields(struct h1 *h)
{
	struct http_head *hd = h->head;

	if (h->cur == H1_NAME) {
		/* A name with an empty value. */
		if (h1_terminate(h) == -1)
			return -1;
		hd->f[hd->nf - 1].value_off = hd->rawlen;
		h->cur = H1_VALUE;
	}
	if (h->cur == H1_VALUE || (hd->nf == 0 && !h->head_done && hd->target_len > 0))
		if (h1_terminate(h) == -1)
			return -1;
	h->cur = H1_NONE;
	return 0;
}

/*
 * Transfer-Encoding must be exactly one "chunked": other codings would be
 * forwarded undecoded under our own chunking, and lists are how requests
 * are smuggled past parsers that disagree.
 */
static int
h1_check_framing(const struct http_head *hd)
{
	uint32_t i, nte = 0;

	for (i = 0; i < hd->nf; i++)
		if (http_field_is(hd, &hd->f[i], "transfer-encoding")) {
			if (++nte > 1 || strcasecmp(http_value(hd, &hd->f[i]), "chunked") != 0)
				return -1;
		}
	return 0;
}

static int
on_headers_complete(http_parser *p)
{
	struct h1 *h = h1_of(p);
	struct http_head *hd = h->head;
	int rc;

	if (h1_close_fields(h) == -1)
		return -1;
	if (h1_check_framing(hd) == -1) {
		h->error = 400;
		return -1;
	}
	hd->method = p->method;
	hd->status = p->status_code;
	hd->major = p->http_major;
	hd->minor = p->http_minor;
	hd->chunked = (p->flags & F_CHUNKED) != 0;
	hd->has_length = (p->flags & F_CONTENTLENGTH) != 0;
	hd->length = hd->has_length ? p->content_length : 0;
	hd->keepalive = http_should_keep_alive(p);
	hd->upgrade = p->upgrade;
	h->head_done = 1;
	rc = h->ev->head(h->arg, hd);
	return rc < 0 ? -1 : rc;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = h1_of(p);

	return h->ev->body(h->arg, at, n);
}

static int
on_message_complete(http_parser *p)
{
	struct h1 *h = h1_of(p);

	if (h1_close_fields(h) == -1)
		return -1;
	h->done = 1;
	if (h->ev->end(h->arg, h->head) == -1)
		return -1;
	/* Stop right after this message: the caller decides about the next one. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings h1_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_target,
	.on_status = on_target,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void
h1_init(struct h1 *h, enum http_parser_type type, struct http_head *head,
    const struct h1_events *ev, void *arg)
{
	memset(h, 0, sizeof(*h));
	http_parser_init(&h->p, type);
	h->p.data = h;
	h->head = head;
	h->ev = ev;
	h->arg = arg;
}

void
h1_reset(struct h1 *h)
{
	enum http_parser_type type = h->p.type;

	http_parser_init(&h->p, type);
	h->p.data = h;
	h->cur = H1_NONE;
	h->head_done = h->done = h->started = 0;
	h->error = 0;
}

ssize_t
h1_feed(struct h1 *h, const char *data, size_t len)
{
	size_t n;
	enum http_errno e;

	if (h->done || len == 0)
		return 0;
	h->value_end = NULL;
	n = http_parser_execute(&h->p, &h1_settings, data, len);
	e = HTTP_PARSER_ERRNO(&h->p);
	if (e == HPE_PAUSED) {
		http_parser_pause(&h->p, 0);
		return (ssize_t)n;
	}
	if (e != HPE_OK) {
		if (h->error == 0 && (e < HPE_CB_message_begin || e > HPE_CB_chunk_complete))
			h->error = 400;
		return -1;
	}
	if (h->p.upgrade && !h->done)
		h->done = 1;
	return (ssize_t)n;
}

int
h1_eof(struct h1 *h)
{
	if (h->done || !h1_in_message(h))
		return 0;
	http_parser_execute(&h->p, &h1_settings, NULL, 0);
	if (HTTP_PARSER_ERRNO(&h->p) == HPE_PAUSED)
		http_parser_pause(&h->p, 0);
	return h->done ? 0 : -1;
}

int
h1_in_message(const struct h1 *h)
{
	return h->started && !h->done;
}

int
http_field_is(const struct http_head *h, const struct http_field *f, const char *name)
{
	return f->name_len == strlen(name) && strcasecmp(http_name(h, f), name) == 0;
}

const struct http_field *
http_find(const struct http_head *h, const char *name)
{
	uint32_t i;

	for (i = 0; i < h->nf - h->ntrailers; i++)
		if (http_field_is(h, &h->f[i], name))
			return &h->f[i];
	return NULL;
}

int
http_value_has_token(const struct http_head *h, const struct http_field *f, const char *token)
{
	const char *v = http_value(h, f), *end = v + f->value_len;
	size_t tl = strlen(token);

	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma != NULL ? comma : end;

		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - v) == tl && strncasecmp(v, token, tl) == 0)
			return 1;
		v = comma != NULL ? comma + 1 : end;
	}
	return 0;
}
