/*
 * HTTP/1.x messages: the one wrapper around http-parser. It turns bytes into
 * a parsed head (struct http_head), decoded body pieces and an end (with
 * trailers), enforces our limits, and stops after each message so the
 * caller decides when the next one may start (pipelining, keep-alive).
 */
#ifndef HALOYD_WORKER_HTTP1_H
#define HALOYD_WORKER_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <http_parser.h>

#define HEAD_MAX_HEADERS 100
#define HEAD_MAX_BYTES (16 * 1024)	/* request line + headers, as stored */
#define HEAD_MAX_TARGET (8 * 1024)	/* longer request-target: 414 */
#define HEAD_MAX_TRAILER 4096

struct http_field {
	uint32_t name_off, name_len;
	uint32_t value_off, value_len;
};

/* A request or response head; names and values point into raw. */
struct http_head {
	unsigned method;	/* enum http_method (requests) */
	unsigned status;	/* responses */
	unsigned short major, minor;
	uint32_t target_off, target_len;	/* request-target, or the reason phrase */
	struct http_field f[HEAD_MAX_HEADERS];
	uint32_t nf;
	uint32_t ntrailers;	/* the last ntrailers of f are trailers */
	int chunked;		/* Transfer-Encoding: chunked */
	int has_length;		/* Content-Length given */
	uint64_t length;
	int keepalive;		/* http_should_keep_alive() at the end of the head */
	int upgrade;		/* the parser stopped for an upgrade */
	uint32_t rawlen;
	char raw[HEAD_MAX_BYTES + HEAD_MAX_TRAILER];
};

struct h1_events {
	/* The head is complete. Return 0, 1 for "no body follows" (a response to HEAD), -1 to fail. */
	int (*head)(void *arg, struct http_head *h);
	/* Decoded body bytes (chunk framing removed). 0 or -1. */
	int (*body)(void *arg, const char *p, size_t n);
	/* The message ended; trailers, if any, are in the head. 0 or -1. */
	int (*end)(void *arg, struct http_head *h);
};

struct h1 {
	http_parser p;
	struct http_head *head;
	const struct h1_events *ev;
	void *arg;
	enum { H1_NONE, H1_NAME, H1_VALUE } cur;	/* what the last field callback stored */
	const char *value_end;	/* end of the last value piece in this feed */
	int started;
	int head_done;
	int done;		/* a whole message was parsed; h1_reset before the next */
	unsigned error;		/* HTTP status for a bad message (400, 414, 431...) */
};

void h1_init(struct h1 *h, enum http_parser_type type, struct http_head *head,
    const struct h1_events *ev, void *arg);
/* Prepares for the next message on the same connection. */
void h1_reset(struct h1 *h);

/*
 * Parses up to len bytes. Returns the bytes consumed (it stops right after a
 * message end), or -1 with h->error set to the status to answer (a callback
 * failure leaves error 0).
 */
ssize_t h1_feed(struct h1 *h, const char *data, size_t len);
/* The peer closed: ends a close-delimited body. 0, or -1 if the message was cut. */
int h1_eof(struct h1 *h);
/* 1 when a message has started but is not complete. */
int h1_in_message(const struct h1 *h);

/* Field access. */
static inline const char *
http_name(const struct http_head *h, const struct http_field *f)
{
	return h->raw + f->name_off;
}
static inline const char *
http_value(const struct http_head *h, const struct http_field *f)
{
	return h->raw + f->value_off;
}
/* 1 when field f's name equals name (case-insensitive). */
int http_field_is(const struct http_head *h, const struct http_field *f, const char *name);
/* The first field called name, or NULL. */
const struct http_field *http_find(const struct http_head *h, const char *name);
/* 1 when the comma-separated value of f lists token (case-insensitive). */
int http_value_has_token(const struct http_head *h, const struct http_field *f, const char *token);

#endif
