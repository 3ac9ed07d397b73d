/*
 * On-the-fly response compression (route flag SNAP_ROUTE_COMPRESS): the
 * streaming encoders (gzip, Brotli, zstd behind one table of function
 * pointers), the negotiation from Accept-Encoding, the rules that say
 * whether a response is compressed and how its head changes, and the
 * transform stage the exchange puts between the upstream and the sink.
 */
#ifndef HALOYD_WORKER_COMPRESS_H
#define HALOYD_WORKER_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

struct msg_head;
struct sink_ops;

enum compress_enc {
	COMPRESS_NONE = 0, COMPRESS_GZIP, COMPRESS_BR, COMPRESS_ZSTD,
};

/* Where an encoder writes: p[len..cap). */
struct compress_out {
	char *p;
	size_t cap, len;
};

/*
 * A streaming encoder. feed takes all n bytes or fails (-1: the output had
 * no room, or the library failed); flush and finish return 1 when all their
 * output is written, 0 when out is full and they must be called again, -1.
 */
struct compress_codec {
	const char *name;	/* the Content-Encoding token */
	void *(*init)(void);
	int (*feed)(void *st, const char *p, size_t n, struct compress_out *out);
	int (*flush)(void *st, struct compress_out *out);
	int (*finish)(void *st, struct compress_out *out);
	void (*free)(void *st);
};

/* Below this many bytes (a known length) a response goes as it is. */
#define COMPRESS_MIN_LENGTH 256
/* Compressed bytes a response holds while the sink has no room. */
#define COMPRESS_OUT_MAX (16 * 1024)

const struct compress_codec *compress_codec(enum compress_enc enc);
/* The best coding of the request's Accept-Encoding fields; COMPRESS_NONE if none. */
enum compress_enc compress_negotiate(const struct msg_head *req);
/* 1 when a response of this Content-Type value is worth compressing. */
int compress_type_ok(const char *content_type);

struct compress;

/*
 * 1 when compress_begin would vary the response by Accept-Encoding (and add
 * Vary for it): its bytes then depend on compress_negotiate's choice alone,
 * which is what a cache keys its variants by (worker/cache.c). Asked on the
 * head before compress_begin edits it.
 */
int compress_varies(const struct msg_head *req, const struct msg_head *resp,
    uint32_t route_flags, int nobody);

/*
 * Decides for one final response head (already through forward_response)
 * and edits it: Content-Encoding, Vary, a weakened ETag, unknown length.
 * *out is the stage, or NULL when the response goes unchanged. -1 when the
 * head could not take the edits (the exchange then fails it).
 */
int compress_begin(struct compress **out, const struct msg_head *req, struct msg_head *resp,
    uint32_t route_flags, int nobody);
/* Body bytes the stage takes now, when the sink has sink_room. */
size_t compress_room(struct compress *c, size_t sink_room);
/* Compresses n bytes (at most compress_room()) and flushes them. 0 or -1. */
int compress_body(struct compress *c, const char *p, size_t n);
/* The body is complete: the encoder's end follows what is pending. */
void compress_end(struct compress *c);
/* Hands pending output to the sink as far as its room goes. 0 or -1. */
int compress_drain(struct compress *c, const struct sink_ops *ops, void *arg);
/* 1 while output waits (or the encoder has more to say). */
int compress_pending(const struct compress *c);
void compress_free(struct compress *c);

#endif
