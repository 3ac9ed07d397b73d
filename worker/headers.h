/*
 * HTTP/1.1 heads as the proxy writes them: the request to a backend (hop-by-
 * hop fields removed, X-Forwarded-* set, Host kept) and the response to a
 * client (hop-by-hop removed, framing and Connection chosen by the caller).
 */
#ifndef HALOYD_WORKER_HEADERS_H
#define HALOYD_WORKER_HEADERS_H

#include "worker/buf.h"
#include "worker/http1.h"

/* Who asked, for the X-Forwarded-* fields. */
struct fwd_info {
	const char *client_ip;	/* the peer's address */
	const char *proto;	/* "http" or "https" */
	const char *request_id;
	int trusted;		/* the peer is a trusted proxy: its X-Forwarded-For is kept */
};

/* 1 when field f must not be forwarded (hop-by-hop or named in Connection). */
int headers_is_hop(const struct http_head *h, const struct http_field *f);

/* Writes the request head for a backend into b; -1 when it does not fit. */
int headers_write_request(struct buf *b, const struct http_head *req, const struct fwd_info *fi);

enum resp_framing {
	FRAME_NONE,		/* no body: HEAD, 1xx, 204, 304 */
	FRAME_LENGTH,		/* Content-Length */
	FRAME_CHUNKED,		/* we chunk it */
	FRAME_CLOSE,		/* the body ends when we close */
	FRAME_UPGRADE,		/* 101: Upgrade and Connection: upgrade kept */
};

/* Writes a response head for a client into b; -1 when it does not fit. */
int headers_write_response(struct buf *b, const struct http_head *resp,
    enum resp_framing fr, int keepalive, int client_minor);

/* Writes the trailers of h (chunked framing's last chunk and trailer section). */
int headers_write_last_chunk(struct buf *b, const struct http_head *h);

#endif
