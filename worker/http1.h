/*
 * HTTP/1.x on the wire: the one wrapper around http-parser (the only file
 * that includes <http_parser.h>) and the encoder. Parsing turns bytes into a
 * neutral head (worker/message.h), decoded body pieces and an end (with
 * trailers), enforces our limits and the RFC 9112 smuggling rules, and stops
 * after each message so the caller decides when the next one may start.
 * Encoding writes a neutral head as HTTP/1.1 with the framing the caller
 * chose; the forwarding rules ran before, so only framing is added here.
 */
#ifndef HALOYD_WORKER_HTTP1_H
#define HALOYD_WORKER_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker/buf.h"
#include "worker/message.h"

struct h1;

enum h1_type { H1_REQUEST, H1_RESPONSE };

struct h1_events {
	/* The head is complete. Return 0, 1 for "no body follows" (a response to HEAD), -1 to fail. */
	int (*head)(void *arg, struct msg_head *h);
	/* Decoded body bytes (chunk framing removed). 0 or -1. */
	int (*body)(void *arg, const char *p, size_t n);
	/* The message ended; trailers, if any, are in the head. 0 or -1. */
	int (*end)(void *arg, struct msg_head *h);
};

/* A parser writing into head; NULL when out of memory. */
struct h1 *h1_new(enum h1_type type, struct msg_head *head, const struct h1_events *ev, void *arg);
void h1_free(struct h1 *h);
/* The bytes of a parser kept inside its owner's allocation (a multiple of 16). */
size_t h1_size(void);
/* A parser made in mem (h1_size() bytes, 16-aligned) as h1_new makes one; not for h1_free. */
struct h1 *h1_init(void *mem, enum h1_type type, struct msg_head *head,
    const struct h1_events *ev, void *arg);
/* Prepares for the next message on the same connection. */
void h1_reset(struct h1 *h);

/*
 * Parses up to len bytes. Returns the bytes consumed (it stops right after a
 * message end), or -1 with h1_error() set to the status to answer (a
 * callback failure leaves it 0).
 */
ssize_t h1_feed(struct h1 *h, const char *data, size_t len);
/* The peer closed: ends a close-delimited body. 0, or -1 if the message was cut. */
int h1_eof(struct h1 *h);
/* 1 when a message has started but is not complete. */
int h1_in_message(const struct h1 *h);
int h1_head_done(const struct h1 *h);
/* 1 when a whole message was parsed (h1_reset before the next). */
int h1_done(const struct h1 *h);
/* The HTTP status for a bad message (400, 414, 431...), 0 if none. */
unsigned h1_error(const struct h1 *h);
/* The parser's name for what went wrong, for logs. */
const char *h1_error_name(const struct h1 *h);
/* 1 when the message switched protocols (the bytes after it are not HTTP). */
int h1_upgraded(const struct h1 *h);

/* --- encoding */

enum h1_framing {
	H1_FRAME_NONE,		/* no body: HEAD, 1xx, 204, 304 */
	H1_FRAME_LENGTH,	/* Content-Length */
	H1_FRAME_CHUNKED,	/* we chunk it */
	H1_FRAME_CLOSE,		/* the body ends when we close */
	H1_FRAME_UPGRADE,	/* 101: Upgrade and Connection: upgrade */
};

/* The request line and fields for a backend; framing from has_length/chunked. -1: no room. */
int h1_write_request(struct buf *b, const struct msg_head *req);
/* A response head for a client speaking HTTP/1.client_minor. -1: no room. */
int h1_write_response(struct buf *b, const struct msg_head *resp, enum h1_framing fr,
    int keepalive, int client_minor);
/* One chunk's size line, the bytes and CRLF (the caller left room). -1: no room. */
int h1_write_chunk(struct buf *b, const char *p, size_t n);
/* The last chunk and the trailers of h (may be NULL). -1: no room. */
int h1_write_last_chunk(struct buf *b, const struct msg_head *h);

#endif
