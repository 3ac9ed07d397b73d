/*
 * Writing HTTP/1.1 heads for the proxy (see headers.h). Which fields are
 * hop-by-hop follows RFC 9110 7.6.1: the fixed list plus every field the
 * Connection header names.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "worker/headers.h"

static const char *const hop_fields[] = {
	"connection", "keep-alive", "proxy-connection", "te", "trailer",
	"transfer-encoding", "upgrade", "content-length",
};

int
headers_is_hop(const struct http_head *h, const struct http_field *f)
{
	const char *name = http_name(h, f);
	uint32_t i;

	for (i = 0; i < sizeof(hop_fields) / sizeof(hop_fields[0]); i++)
		if (strcasecmp(name, hop_fields[i]) == 0)
			return 1;
	for (i = 0; i < h->nf - h->ntrailers; i++)
		if (http_field_is(h, &h->f[i], "connection") &&
		    http_value_has_token(h, &h->f[i], name))
			return 1;
	return 0;
}

static int
is_forwarded_field(const struct http_head *h, const struct http_field *f)
{
	return http_field_is(h, f, "x-forwarded-for") || http_field_is(h, f, "x-forwarded-proto") ||
	    http_field_is(h, f, "x-forwarded-host") || http_field_is(h, f, "x-request-id");
}

/* Copies the fields that pass, in order; skip_fwd drops X-Forwarded-* too. */
static int
write_fields(struct buf *b, const struct http_head *h, int skip_fwd)
{
	uint32_t i;

	for (i = 0; i < h->nf - h->ntrailers; i++) {
		const struct http_field *f = &h->f[i];

		if (headers_is_hop(h, f) || (skip_fwd && is_forwarded_field(h, f)))
			continue;
		if (buf_printf(b, "%s: %s\r\n", http_name(h, f), http_value(h, f)) == -1)
			return -1;
	}
	return 0;
}

/* The client's address, after what a trusted proxy says came before it. */
static int
write_xff(struct buf *b, const struct http_head *req, const struct fwd_info *fi)
{
	uint32_t i;

	if (buf_printf(b, "X-Forwarded-For: ") == -1)
		return -1;
	for (i = 0; fi->trusted && i < req->nf - req->ntrailers; i++) {
		const struct http_field *f = &req->f[i];

		if (http_field_is(req, f, "x-forwarded-for") && f->value_len > 0 &&
		    buf_printf(b, "%s, ", http_value(req, f)) == -1)
			return -1;
	}
	return buf_printf(b, "%s\r\n", fi->client_ip);
}

int
headers_write_request(struct buf *b, const struct http_head *req, const struct fwd_info *fi)
{
	const struct http_field *host = http_find(req, "host");
	const struct http_field *rid = http_find(req, "x-request-id");
	const struct http_field *up;
	const char *target = req->raw + req->target_off;

	/* An absolute-form target arrives here as its path, possibly empty or "?query". */
	if (buf_printf(b, "%s %s%s HTTP/1.1\r\n", http_method_str((enum http_method)req->method),
	    target[0] == '/' || target[0] == '*' ? "" : "/", target) == -1 ||
	    write_fields(b, req, 1) == -1)
		return -1;
	if (write_xff(b, req, fi) == -1 ||
	    buf_printf(b, "X-Forwarded-Proto: %s\r\n", fi->proto) == -1)
		return -1;
	if (host != NULL && buf_printf(b, "X-Forwarded-Host: %s\r\n", http_value(req, host)) == -1)
		return -1;
	if (buf_printf(b, "X-Request-Id: %s\r\n", rid != NULL ? http_value(req, rid) : fi->request_id) == -1)
		return -1;
	if (req->upgrade && (up = http_find(req, "upgrade")) != NULL &&
	    buf_printf(b, "Upgrade: %s\r\nConnection: upgrade\r\n", http_value(req, up)) == -1)
		return -1;
	if (req->chunked && buf_printf(b, "Transfer-Encoding: chunked\r\n") == -1)
		return -1;
	if (req->has_length && buf_printf(b, "Content-Length: %" PRIu64 "\r\n", req->length) == -1)
		return -1;
	return buf_printf(b, "\r\n");
}

int
headers_write_response(struct buf *b, const struct http_head *resp, enum resp_framing fr,
    int keepalive, int client_minor)
{
	const char *reason = resp->target_len > 0 ? resp->raw + resp->target_off : "";

	if (buf_printf(b, "HTTP/1.%d %u %s\r\n", client_minor > 0 ? 1 : 0, resp->status, reason) == -1 ||
	    write_fields(b, resp, 0) == -1)
		return -1;
	if (fr == FRAME_LENGTH || (fr == FRAME_NONE && resp->has_length && resp->status != 204 &&
	    resp->status / 100 != 1)) {
		if (buf_printf(b, "Content-Length: %" PRIu64 "\r\n", resp->length) == -1)
			return -1;
	} else if (fr == FRAME_CHUNKED && buf_printf(b, "Transfer-Encoding: chunked\r\n") == -1)
		return -1;
	if (fr == FRAME_UPGRADE) {
		const struct http_field *up = http_find(resp, "upgrade");

		if (up == NULL || buf_printf(b, "Upgrade: %s\r\nConnection: upgrade\r\n",
		    http_value(resp, up)) == -1)
			return -1;
	}
	if (resp->status / 100 != 1) {
		if (!keepalive && buf_printf(b, "Connection: close\r\n") == -1)
			return -1;
		if (keepalive && client_minor == 0 && buf_printf(b, "Connection: keep-alive\r\n") == -1)
			return -1;
	}
	return buf_printf(b, "\r\n");
}

int
headers_write_last_chunk(struct buf *b, const struct http_head *h)
{
	uint32_t i;

	if (buf_printf(b, "0\r\n") == -1)
		return -1;
	for (i = h->nf - h->ntrailers; i < h->nf; i++)
		if (buf_printf(b, "%s: %s\r\n", http_name(h, &h->f[i]), http_value(h, &h->f[i])) == -1)
			return -1;
	return buf_printf(b, "\r\n");
}
