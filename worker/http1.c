/*
 * HTTP/1.x on the wire (see http1.h): the http-parser callbacks that fill a
 * neutral head within our limits, and the HTTP/1.1 encoder.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "worker/h1head.h"
#include "worker/http1.h"

/* Bytes of chunk framing (size line, extensions, CRLFs) allowed per chunk. */
#define H1_CHUNK_LINE_MAX 4096
/* An unknown method longer than this is not worth a 501. */
#define H1_METHOD_MAX 1024

enum h1_cur { H1_NONE, H1_TARGET, H1_NAME, H1_VALUE };

struct h1 {
	http_parser p;
	struct msg_head *head;
	const struct h1_events *ev;
	void *arg;
	enum h1_cur cur;	/* what the last callback was building */
	uint32_t start;		/* where the string being built starts in head->mem */
	struct msg_str name;	/* the field name whose value is being built */
	uint32_t nsection;	/* fields in the section being parsed (head or trailers) */
	const char *value_end;	/* end of the last value piece in this feed */
	size_t fed;		/* bytes of this feed given to a callback (body, trailer fields) */
	uint64_t gap;		/* chunked framing bytes not yet paid for by a chunk header */
	uint32_t nchunk;	/* chunk headers parsed in this feed */
	uint64_t left;		/* quick path: body bytes still to come */
	unsigned quick : 1;	/* this message's head was read by h1head_parse */
	unsigned started : 1;
	unsigned head_done : 1;
	unsigned done : 1;	/* a whole message was parsed; h1_reset before the next */
	unsigned error;		/* HTTP status for a bad message (400, 414, 431...) */
};

static struct h1 *
h1_of(http_parser *p)
{
	return p->data;
}

/* The status for a section that overflows: 431 in the head, 400 in trailers. */
static unsigned
h1_full(const struct h1 *h)
{
	return h->head_done ? 400 : 431;
}

static size_t
h1_max(const struct h1 *h)
{
	return h->head_done ? MSG_HEAD_MAX + MSG_TRAILER_MAX : MSG_HEAD_MAX;
}

/* Appends a piece of the string being built (starting one when cur changes). */
static int
h1_piece(struct h1 *h, enum h1_cur cur, const char *at, size_t n, unsigned status)
{
	if (h->cur != cur && msg_mark(h->head, &h->start) == -1)
		goto full;
	h->cur = cur;
	if (msg_append(h->head, at, n, h1_max(h)) == -1)
		goto full;
	return 0;
full:
	h->error = status;
	return -1;
}

/* Ends the string being built: the target, a name or a value. */
static int
h1_end_string(struct h1 *h)
{
	struct msg_head *hd = h->head;
	struct msg_str s;

	if (h->cur == H1_NONE)
		return 0;
	if (msg_close(hd, &s, h->start, h1_max(h)) == -1) {
		h->error = h1_full(h);
		return -1;
	}
	switch (h->cur) {
	case H1_TARGET:
		if (h->p.type == HTTP_REQUEST)
			hd->path = s;
		else
			hd->reason = s;
		break;
	case H1_NAME:
		h->name = s;
		break;
	case H1_VALUE:
		if (++h->nsection > MSG_FIELDS_MAX || msg_push(hd, h->name, s, h->head_done) == -1) {
			h->error = h1_full(h);
			return -1;
		}
		break;
	case H1_NONE:
		break;
	}
	h->cur = H1_NONE;
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	struct h1 *h = h1_of(p);

	msg_reset(h->head);
	h->cur = H1_NONE;
	h->nsection = 0;
	h->head_done = h->done = 0;
	h->started = 1;
	return 0;
}

/* The request-target or the reason phrase; may come in pieces. */
static int
on_target(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = h1_of(p);
	size_t sofar = h->cur == H1_TARGET ? h->head->len - h->start : 0;

	if (sofar + n > MSG_TARGET_MAX) {
		h->error = 414;
		return -1;
	}
	return h1_piece(h, H1_TARGET, at, n, 414);
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
	h->fed += n;
	if (h->cur != H1_NAME && h1_end_string(h) == -1)
		return -1;
	return h1_piece(h, H1_NAME, at, n, h1_full(h));
}

static int
on_header_value(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = h1_of(p);

	/* A value continued at another place of the same input is an obs-fold line. */
	if (!h1_value_ok(at, n) || (h->cur == H1_VALUE && h->value_end != NULL && at != h->value_end)) {
		h->error = 400;
		return -1;
	}
	h->value_end = at + n;
	h->fed += n;
	if (h->cur == H1_NAME && h1_end_string(h) == -1)
		return -1;
	return h1_piece(h, H1_VALUE, at, n, h1_full(h));
}

/* Closes the last name (with an empty value) or value. */
static int
h1_close_fields(struct h1 *h)
{
	if (h->cur == H1_NAME) {
		if (h1_end_string(h) == -1 || h1_piece(h, H1_VALUE, "", 0, h1_full(h)) == -1)
			return -1;
	}
	return h1_end_string(h);
}

/*
 * One Transfer-Encoding value: "chunked" is all we take, since other codings
 * would be forwarded undecoded under our own chunking. Chunked not last
 * (or absent) leaves the length unknown: 400 and close (RFC 9112 6.3).
 * Chunked last after codings we do not implement is a 501 (RFC 9112 6.1),
 * unless one of them is chunked again (applied twice: a 400).
 */
static unsigned
h1_te_status(const char *v)
{
	unsigned ncodings = 0, nchunked = 0;
	int last_chunked = 0;
	size_t n;

	for (;;) {
		v += strspn(v, " \t,");
		if (*v == '\0')
			break;
		n = strcspn(v, ",");
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		last_chunked = n == 7 && strncasecmp(v, "chunked", 7) == 0;
		nchunked += (unsigned)last_chunked;
		ncodings++;
		v += strcspn(v, ",");
	}
	if (!last_chunked || nchunked > 1)
		return 400;
	return ncodings == 1 ? 0 : 501;
}

/*
 * Transfer-Encoding in one field only (a list spread over fields is how
 * requests are smuggled past parsers that disagree), never in an HTTP/1.0
 * request (RFC 9112 6.1: its framing is faulty).
 */
static unsigned
h1_check_framing(const struct msg_head *hd, int http10)
{
	uint32_t i, nte = 0;
	unsigned st;

	for (i = 0; i < hd->nf; i++)
		if (msg_field_is(hd, &hd->f[i], "transfer-encoding")) {
			if (http10 || ++nte > 1)
				return 400;
			if ((st = h1_te_status(msg_value(hd, &hd->f[i]))) != 0)
				return st;
		}
	return 0;
}

/*
 * RFC 9112 2.3: only HTTP/1.x is parsed here. A request line without a
 * version (HTTP/0.9) is a 400, another major version a 505 (RFC 9110
 * 15.6.6); a backend answering in another version is broken (400: a 502).
 */
static unsigned
h1_check_version(const http_parser *p)
{
	if (p->http_major == 1)
		return 0;
	return p->type == HTTP_REQUEST && p->http_major > 1 ? 505 : 400;
}

static int
h1_set_method(struct h1 *h)
{
	struct msg_head *hd = h->head;
	const char *name = http_method_str((enum http_method)h->p.method);

	hd->method = msg_method_of(name, strlen(name));
	if (hd->method == MSG_M_OTHER && msg_str(hd, name, strlen(name), &hd->method_name) == -1) {
		h->error = 431;
		return -1;
	}
	return 0;
}

static int
on_headers_complete(http_parser *p)
{
	struct h1 *h = h1_of(p);
	struct msg_head *hd = h->head;
	const struct msg_field *up;
	int rc;

	if (h1_close_fields(h) == -1)
		return -1;
	if ((h->error = h1_check_version(p)) != 0 ||
	    (h->error = h1_check_framing(hd, p->type == HTTP_REQUEST && p->http_minor == 0)) != 0) {
		if (p->type == HTTP_RESPONSE)
			h->error = 400;
		return -1;
	}
	if (p->type == HTTP_REQUEST && h1_set_method(h) == -1)
		return -1;
	/* RFC 9110 7.8: an HTTP/1.0 request's Upgrade is ignored, and its body parsed as one. */
	if (p->type == HTTP_REQUEST && p->http_minor == 0 && p->method != HTTP_CONNECT)
		p->upgrade = 0;
	hd->status = p->status_code;
	hd->major = (uint8_t)p->http_major;
	hd->minor = (uint8_t)p->http_minor;
	hd->chunked = (p->flags & F_CHUNKED) != 0;
	hd->has_length = (p->flags & F_CONTENTLENGTH) != 0;
	hd->length = hd->has_length ? p->content_length : 0;
	hd->keepalive = http_should_keep_alive(p) != 0;
	hd->upgrade = p->upgrade != 0;
	if (hd->upgrade && (up = msg_find(hd, "upgrade")) != NULL)
		hd->upgrade_proto = up->value;
	h->head_done = 1;
	h->nsection = 0;
	rc = h->ev->head(h->arg, hd);
	return rc < 0 ? -1 : rc;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = h1_of(p);

	h->fed += n;
	return h->ev->body(h->arg, at, n);
}

static int
on_chunk_header(http_parser *p)
{
	h1_of(p)->nchunk++;
	return 0;
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
	.on_chunk_header = on_chunk_header,
};

size_t
h1_size(void)
{
	return (sizeof(struct h1) + 15) & ~(size_t)15;
}

struct h1 *
h1_init(void *mem, enum h1_type type, struct msg_head *head, const struct h1_events *ev,
    void *arg)
{
	struct h1 *h = mem;

	*h = (struct h1){ .head = head, .ev = ev, .arg = arg };
	http_parser_init(&h->p, type == H1_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE);
	h->p.data = h;
	return h;
}

struct h1 *
h1_new(enum h1_type type, struct msg_head *head, const struct h1_events *ev, void *arg)
{
	/* Not calloc (nor malloc and memset): glibc's calloc skips its thread cache. */
	struct h1 *h = malloc(sizeof(*h));

	return h != NULL ? h1_init(h, type, head, ev, arg) : NULL;
}

void
h1_free(struct h1 *h)
{
	free(h);
}

void
h1_reset(struct h1 *h)
{
	http_parser_init(&h->p, (enum http_parser_type)h->p.type);
	h->p.data = h;
	h->cur = H1_NONE;
	h->head_done = h->done = h->started = 0;
	h->error = 0;
	h->gap = 0;
	h->quick = 0;
	h->left = 0;
}

/*
 * http-parser skips chunk extensions without a callback or a bound, so a
 * client could send an endless chunk-size line (RFC 9112 7.1.1: limit
 * them like other parts of a message). The bytes of a feed that were not
 * body or trailer fields are chunk framing; each chunk header pays for
 * H1_CHUNK_LINE_MAX of them. Returns -1 (a 400) past the bound.
 */
static int
h1_bound_chunk_lines(struct h1 *h, size_t parsed)
{
	if (!h->head_done || !(h->p.flags & F_CHUNKED))
		return 0;
	h->gap += parsed > h->fed ? parsed - h->fed : 0;
	h->gap = h->gap > (uint64_t)h->nchunk * H1_CHUNK_LINE_MAX ?
	    h->gap - (uint64_t)h->nchunk * H1_CHUNK_LINE_MAX : 0;
	if (h->gap <= H1_CHUNK_LINE_MAX)
		return 0;
	h->error = 400;
	return -1;
}

/*
 * RFC 9110 9.1: a method we do not know is a 501 when it is a token (a
 * method we might not implement), a 400 when it is not one at all.
 */
static unsigned
h1_method_error(const char *data, size_t len)
{
	size_t i = 0, end;

	while (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n')
		i += 2;
	/* HTTP/2's preface where HTTP/2 is off (RFC 9113 3.4): the version is what we lack. */
	if (len - i >= 14 && memcmp(data + i, "PRI * HTTP/2.0", 14) == 0)
		return 505;
	for (end = i; end < len && end - i < H1_METHOD_MAX && data[end] != ' '; end++)
		if (!h1_is_token(data + end, 1))
			return 400;
	/* All token so far: a method we do not know, whatever follows. */
	return end > i && (end == len || end - i == H1_METHOD_MAX || data[end] == ' ') ? 501 : 400;
}

/* Quick path: a Content-Length body (or none), then the end. Bytes consumed, or -1. */
static ssize_t
h1_quick_body(struct h1 *h, const char *data, size_t len)
{
	size_t n = len < h->left ? len : (size_t)h->left;

	if (n > 0 && h->ev->body(h->arg, data, n) == -1)
		return -1;
	h->left -= n;
	if (h->left == 0) {
		h->done = 1;
		if (h->ev->end(h->arg, h->head) == -1)
			return -1;
	}
	return (ssize_t)n;
}

/*
 * Quick path: a whole plain head read by h1head_parse (hlen bytes); the
 * events as http-parser would give them: the head, the body bytes of this
 * feed, the end.
 */
static ssize_t
h1_quick(struct h1 *h, const char *data, size_t len, size_t hlen)
{
	/* The framing as read: the head callback may rewrite the head (compression drops the length). */
	uint64_t length = h->head->has_length ? h->head->length : 0;
	ssize_t n;
	int rc;

	h->started = h->head_done = h->quick = 1;
	h->cur = H1_NONE;
	h->nsection = 0;
	if ((rc = h->ev->head(h->arg, h->head)) < 0)
		return -1;
	h->left = rc == 0 ? length : 0;
	if ((n = h1_quick_body(h, data + hlen, len - hlen)) == -1)
		return -1;
	return (ssize_t)hlen + n;
}

ssize_t
h1_feed(struct h1 *h, const char *data, size_t len)
{
	size_t n;
	enum http_errno e;

	if (h->done || len == 0)
		return 0;
	if (h->quick)
		return h1_quick_body(h, data, len);
	if (!h->started &&
	    (n = h1head_parse(h->p.type == HTTP_RESPONSE, data, len, h->head)) > 0)
		return h1_quick(h, data, len, n);
	h->value_end = NULL;
	h->fed = 0;
	h->nchunk = 0;
	n = http_parser_execute(&h->p, &h1_settings, data, len);
	e = HTTP_PARSER_ERRNO(&h->p);
	if ((e == HPE_OK || e == HPE_PAUSED) && h1_bound_chunk_lines(h, n) == -1)
		return -1;
	if (e == HPE_INVALID_METHOD && h->p.type == HTTP_REQUEST && h->error == 0)
		h->error = h1_method_error(data, len);
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
	if (h->quick)
		return -1;	/* a Content-Length body cut short */
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
h1_head_done(const struct h1 *h)
{
	return h->head_done;
}

int
h1_done(const struct h1 *h)
{
	return h->done;
}

unsigned
h1_error(const struct h1 *h)
{
	return h->error;
}

const char *
h1_error_name(const struct h1 *h)
{
	return http_errno_name(HTTP_PARSER_ERRNO(&h->p));
}

int
h1_upgraded(const struct h1 *h)
{
	return h->p.upgrade != 0;
}

/* --- encoding */

/* A C string, its length known to the compiler for literals. */
#define H1_ADD(b, s) buf_add((b), (s), strlen(s))

static int
h1_add_str(struct buf *b, const struct msg_head *h, struct msg_str s)
{
	return buf_add(b, msg_s(h, s), s.len);
}

/* A head that did not fit leaves nothing behind: the caller may flush and try again. */
static int
h1_undo(struct buf *b, size_t at)
{
	b->len = at;
	return -1;
}

/* One room check and four copies per field: the head's hot loop (a buf_add per piece cost twice). */
static int
h1_write_fields(struct buf *b, const struct msg_head *h, uint32_t from, uint32_t to)
{
	size_t room = buf_room(b);
	uint32_t i;

	for (i = from; i < to; i++) {
		const struct msg_field *f = &h->f[i];
		size_t need = (size_t)f->name.len + f->value.len + 4;
		char *p = buf_tail(b);

		if (need > room)
			return -1;
		memcpy(p, msg_s(h, f->name), f->name.len);
		p += f->name.len;
		memcpy(p, ": ", 2);
		memcpy(p + 2, msg_s(h, f->value), f->value.len);
		memcpy(p + 2 + f->value.len, "\r\n", 2);
		b->len += need;
		room -= need;
	}
	return 0;
}

/* Content-Length, or chunked, or neither. */
static int
h1_write_framing(struct buf *b, int length, uint64_t n, int chunked)
{
	if (length)
		return H1_ADD(b, "Content-Length: ") == -1 || buf_add_num(b, n, 10) == -1 ||
		    buf_add(b, "\r\n", 2) == -1 ? -1 : 0;
	return chunked ? H1_ADD(b, "Transfer-Encoding: chunked\r\n") : 0;
}

static int
h1_write_upgrade(struct buf *b, const struct msg_head *h)
{
	return H1_ADD(b, "Upgrade: ") == -1 || h1_add_str(b, h, h->upgrade_proto) == -1 ||
	    H1_ADD(b, "\r\nConnection: upgrade\r\n") == -1 ? -1 : 0;
}

int
h1_write_request(struct buf *b, const struct msg_head *req)
{
	const char *path = msg_s(req, req->path);
	size_t at = b->len;

	if (H1_ADD(b, msg_method_str(req)) == -1 || buf_add(b, " ", 1) == -1 ||
	    /* An absolute-form target arrives here as its path, possibly empty or "?query". */
	    (path[0] != '/' && path[0] != '*' && buf_add(b, "/", 1) == -1) ||
	    h1_add_str(b, req, req->path) == -1 || H1_ADD(b, " HTTP/1.1\r\n") == -1 ||
	    h1_write_fields(b, req, 0, msg_nheaders(req)) == -1)
		return h1_undo(b, at);
	if (msg_find(req, "host") == NULL && req->authority.len > 0 &&
	    (H1_ADD(b, "Host: ") == -1 || h1_add_str(b, req, req->authority) == -1 ||
	    buf_add(b, "\r\n", 2) == -1))
		return h1_undo(b, at);
	if (req->upgrade && req->upgrade_proto.len > 0 && h1_write_upgrade(b, req) == -1)
		return h1_undo(b, at);
	if (h1_write_framing(b, req->has_length, req->length, req->chunked) == -1)
		return h1_undo(b, at);
	return buf_add(b, "\r\n", 2) == -1 ? h1_undo(b, at) : 0;
}

int
h1_write_response(struct buf *b, const struct msg_head *resp, enum h1_framing fr,
    int keepalive, int client_minor)
{
	int length = fr == H1_FRAME_LENGTH || (fr == H1_FRAME_NONE && resp->has_length &&
	    resp->status != 204 && resp->status / 100 != 1);
	size_t at = b->len;

	/* RFC 9110 2.5: our version, whatever the client's minor version. */
	if (H1_ADD(b, "HTTP/1.1 ") == -1 ||
	    buf_add_num(b, resp->status % 1000, 10) == -1 || buf_add(b, " ", 1) == -1 ||
	    h1_add_str(b, resp, resp->reason) == -1 || buf_add(b, "\r\n", 2) == -1 ||
	    h1_write_fields(b, resp, 0, msg_nheaders(resp)) == -1 ||
	    h1_write_framing(b, length, resp->length, fr == H1_FRAME_CHUNKED) == -1)
		return h1_undo(b, at);
	if (fr == H1_FRAME_UPGRADE && (resp->upgrade_proto.len == 0 || h1_write_upgrade(b, resp) == -1))
		return h1_undo(b, at);
	if (resp->status / 100 != 1) {
		if (!keepalive && H1_ADD(b, "Connection: close\r\n") == -1)
			return h1_undo(b, at);
		if (keepalive && client_minor == 0 && H1_ADD(b, "Connection: keep-alive\r\n") == -1)
			return h1_undo(b, at);
	}
	return buf_add(b, "\r\n", 2) == -1 ? h1_undo(b, at) : 0;
}

int
h1_write_chunk(struct buf *b, const char *p, size_t n)
{
	size_t at = b->len;

	if (buf_add_num(b, n, 16) == -1 || buf_add(b, "\r\n", 2) == -1 || n + 2 > buf_room(b))
		return h1_undo(b, at);
	buf_append(b, p, n);
	buf_append(b, "\r\n", 2);
	return 0;
}

int
h1_write_last_chunk(struct buf *b, const struct msg_head *h)
{
	size_t at = b->len;

	if (H1_ADD(b, "0\r\n") == -1 ||
	    (h != NULL && h1_write_fields(b, h, msg_nheaders(h), h->nf) == -1) ||
	    buf_add(b, "\r\n", 2) == -1)
		return h1_undo(b, at);
	return 0;
}
