/*
 * Response compression (see compress.h): the three encoders, negotiation,
 * the rules for a response head, and the streaming stage with its bounded
 * output buffer.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include "share/log.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/compress.h"
#include "worker/exchange.h"
#include "worker/message.h"

/*
 * Levels: what nginx, Caddy and CDNs use on the fly, where speed counts as
 * much as ratio. Windows are bounded so one response costs at most a few
 * hundred KiB of encoder state: gzip's is the format's 32 KiB, Brotli's and
 * zstd's 256 KiB (their defaults, 4 and 2 MiB, would cost that much per
 * response in flight for little gain on web pages).
 */
#define GZIP_LEVEL 6
#define BROTLI_QUALITY 4
#define BROTLI_LGWIN 18
#define ZSTD_LEVEL 3
#define ZSTD_WLOG 18

/* --- gzip (zlib) */

static void *
gz_init(void)
{
	z_stream *z = calloc(1, sizeof(*z));

	if (z == NULL)
		return NULL;
	/* 15 + 16: a gzip wrapper, 32 KiB window. */
	if (deflateInit2(z, GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		log_warnx("compress: deflateInit2 failed");
		free(z);
		return NULL;
	}
	return z;
}

/* One deflate call into out; Z_OK or Z_BUF_ERROR (no progress) count as fine. */
static int
gz_run(z_stream *z, struct compress_out *out, int flush)
{
	int rc;

	z->next_out = (Bytef *)out->p + out->len;
	z->avail_out = (uInt)(out->cap - out->len);
	rc = deflate(z, flush);
	out->len = out->cap - z->avail_out;
	if (rc == Z_STREAM_ERROR) {
		log_warnx("compress: deflate failed");
		return -1;
	}
	return rc;
}

static int
gz_feed(void *st, const char *p, size_t n, struct compress_out *out)
{
	z_stream *z = st;

	z->next_in = (Bytef *)(uintptr_t)p;
	z->avail_in = (uInt)n;
	if (gz_run(z, out, Z_NO_FLUSH) == -1 || z->avail_in != 0)
		return -1;
	return 0;
}

static int
gz_flush(void *st, struct compress_out *out)
{
	z_stream *z = st;

	z->avail_in = 0;
	if (gz_run(z, out, Z_SYNC_FLUSH) == -1)
		return -1;
	/* All output is out when deflate left room in the buffer. */
	return z->avail_out != 0;
}

static int
gz_finish(void *st, struct compress_out *out)
{
	z_stream *z = st;
	int rc;

	z->avail_in = 0;
	if ((rc = gz_run(z, out, Z_FINISH)) == -1)
		return -1;
	return rc == Z_STREAM_END;
}

static void
gz_free(void *st)
{
	z_stream *z = st;

	deflateEnd(z);
	free(z);
}

/* --- Brotli */

static void *
br_init(void)
{
	BrotliEncoderState *b = BrotliEncoderCreateInstance(NULL, NULL, NULL);

	if (b == NULL || !BrotliEncoderSetParameter(b, BROTLI_PARAM_QUALITY, BROTLI_QUALITY) ||
	    !BrotliEncoderSetParameter(b, BROTLI_PARAM_LGWIN, BROTLI_LGWIN)) {
		log_warnx("compress: cannot set up a Brotli encoder");
		if (b != NULL)
			BrotliEncoderDestroyInstance(b);
		return NULL;
	}
	return b;
}

/* One operation until its input is taken; 1 when the encoder has nothing more to say. */
static int
br_run(BrotliEncoderState *b, BrotliEncoderOperation op, const char *p, size_t n,
    struct compress_out *out)
{
	const uint8_t *in = (const uint8_t *)p;
	uint8_t *o = (uint8_t *)out->p + out->len;
	size_t room = out->cap - out->len;

	do {
		if (!BrotliEncoderCompressStream(b, op, &n, &in, &room, &o, NULL)) {
			log_warnx("compress: Brotli encoder failed");
			return -1;
		}
	} while (room > 0 && (n > 0 || (op != BROTLI_OPERATION_PROCESS &&
	    BrotliEncoderHasMoreOutput(b))));
	out->len = out->cap - room;
	if (n > 0)
		return -1;
	if (op == BROTLI_OPERATION_FINISH)
		return BrotliEncoderIsFinished(b) ? 1 : 0;
	return !BrotliEncoderHasMoreOutput(b);
}

static int
br_feed(void *st, const char *p, size_t n, struct compress_out *out)
{
	return br_run(st, BROTLI_OPERATION_PROCESS, p, n, out) == -1 ? -1 : 0;
}

static int
br_flush(void *st, struct compress_out *out)
{
	return br_run(st, BROTLI_OPERATION_FLUSH, NULL, 0, out);
}

static int
br_finish(void *st, struct compress_out *out)
{
	return br_run(st, BROTLI_OPERATION_FINISH, NULL, 0, out);
}

static void
br_free(void *st)
{
	BrotliEncoderDestroyInstance(st);
}

/* --- zstd */

static void *
zs_init(void)
{
	ZSTD_CCtx *z = ZSTD_createCCtx();

	if (z == NULL ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, ZSTD_WLOG))) {
		log_warnx("compress: cannot set up a zstd encoder");
		ZSTD_freeCCtx(z);
		return NULL;
	}
	return z;
}

/* 1 when the directive's output is all written, 0 when out is full, -1. */
static int
zs_run(ZSTD_CCtx *z, ZSTD_EndDirective d, const char *p, size_t n, struct compress_out *out)
{
	ZSTD_inBuffer in = { p, n, 0 };
	ZSTD_outBuffer o = { out->p, out->cap, out->len };
	size_t left;

	do {
		left = ZSTD_compressStream2(z, &o, &in, d);
		if (ZSTD_isError(left)) {
			log_warnx("compress: zstd: %s", ZSTD_getErrorName(left));
			return -1;
		}
	} while (o.pos < o.size && (in.pos < in.size || (d != ZSTD_e_continue && left != 0)));
	out->len = o.pos;
	if (in.pos < in.size)
		return -1;
	return d == ZSTD_e_continue || left == 0;
}

static int
zs_feed(void *st, const char *p, size_t n, struct compress_out *out)
{
	return zs_run(st, ZSTD_e_continue, p, n, out) == -1 ? -1 : 0;
}

static int
zs_flush(void *st, struct compress_out *out)
{
	return zs_run(st, ZSTD_e_flush, NULL, 0, out);
}

static int
zs_finish(void *st, struct compress_out *out)
{
	return zs_run(st, ZSTD_e_end, NULL, 0, out);
}

static void
zs_free(void *st)
{
	ZSTD_freeCCtx(st);
}

static const struct compress_codec codecs[] = {
	[COMPRESS_GZIP] = { "gzip", gz_init, gz_feed, gz_flush, gz_finish, gz_free },
	[COMPRESS_BR] = { "br", br_init, br_feed, br_flush, br_finish, br_free },
	[COMPRESS_ZSTD] = { "zstd", zs_init, zs_feed, zs_flush, zs_finish, zs_free },
};

const struct compress_codec *
compress_codec(enum compress_enc enc)
{
	if (enc <= COMPRESS_NONE || enc > COMPRESS_ZSTD)
		return NULL;
	return &codecs[enc];
}

/* --- negotiation */

/* A q-value (RFC 9110 12.4.2) in thousandths; -1 when it is not one. */
static int
ae_qvalue(const char *v, size_t n)
{
	int q = 0, scale = 100;
	size_t i;

	if (n == 0 || (v[0] != '0' && v[0] != '1'))
		return -1;
	q = (v[0] - '0') * 1000;
	if (n == 1)
		return q;
	if (v[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < n; i++, scale /= 10) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		q += (v[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

/* The q of one member "coding *( OWS ; OWS param )"; its coding's length in *clen. */
static int
ae_member_q(const char *v, size_t n, size_t *clen)
{
	const char *semi = memchr(v, ';', n), *p, *end = v + n;

	*clen = semi != NULL ? (size_t)(semi - v) : n;
	while (*clen > 0 && (v[*clen - 1] == ' ' || v[*clen - 1] == '\t'))
		(*clen)--;
	for (p = semi; p != NULL && p < end; p = memchr(p + 1, ';', (size_t)(end - p - 1))) {
		const char *s = p + 1, *e = memchr(s, ';', (size_t)(end - s));

		e = e != NULL ? e : end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e - s >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=')
			return ae_qvalue(s + 2, (size_t)(e - s - 2));
	}
	return 1000;
}

/* q[enc] from one Accept-Encoding value; -1 stays "not named". star gets "*"'s. */
static void
ae_scan(const char *v, size_t n, int q[COMPRESS_ZSTD + 1], int *star)
{
	static const char *const names[] = { "*", "gzip", "br", "zstd", "x-gzip" };
	const char *end = v + n;

	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v)), *e = comma ? comma : end;
		size_t clen, i;
		int mq;

		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		mq = ae_member_q(v, (size_t)(e - v), &clen);
		for (i = 0; i < ARRAY_LEN(names); i++) {
			if (clen != strlen(names[i]) || strncasecmp(v, names[i], clen) != 0)
				continue;
			if (i == 0)
				*star = mq < 0 ? 0 : mq;
			else
				q[i == 4 ? COMPRESS_GZIP : i] = mq < 0 ? 0 : mq;
		}
		v = comma != NULL ? comma + 1 : end;
	}
}

enum compress_enc
compress_negotiate(const struct msg_head *req)
{
	int q[COMPRESS_ZSTD + 1] = { -1, -1, -1, -1 }, star = -1, best = 0;
	enum compress_enc enc = COMPRESS_NONE, e;
	uint32_t i;

	for (i = 0; i < msg_nheaders(req); i++)
		if (msg_field_is(req, &req->f[i], "accept-encoding"))
			ae_scan(msg_value(req, &req->f[i]), req->f[i].value.len, q, &star);
	/* Ties go to the later coding: zstd, then br, then gzip (ratio and speed). */
	for (e = COMPRESS_GZIP; e <= COMPRESS_ZSTD; e++) {
		int eq = q[e] >= 0 ? q[e] : star > 0 ? star : 0;

		if (eq > 0 && eq >= best) {
			best = eq;
			enc = e;
		}
	}
	return enc;
}

/*
 * Text formats compress 3-10x. Images other than SVG, audio, video, fonts
 * in WOFF/WOFF2, archives and gRPC messages are compressed already or
 * binary: compressing them again costs CPU for nothing. WebAssembly
 * compresses 2-4x and browsers accept it encoded. text/event-stream is
 * text/ too: SSE is flushed after each chunk, so events are not held.
 */
int
compress_type_ok(const char *ct)
{
	static const char *const types[] = {
		"application/json", "application/javascript", "application/x-javascript",
		"application/ecmascript", "application/xml", "application/wasm",
		"image/svg+xml", "image/x-icon", "font/ttf", "font/otf",
		"application/vnd.ms-fontobject", "application/x-ndjson",
	};
	size_t n = strcspn(ct, "; \t"), i;

	if (n >= 5 && strncasecmp(ct, "text/", 5) == 0)
		return 1;
	for (i = 0; i < ARRAY_LEN(types); i++)
		if (n == strlen(types[i]) && strncasecmp(ct, types[i], n) == 0)
			return 1;
	/* application/ld+json, application/rss+xml... */
	if (strncasecmp(ct, "application/", 12) == 0 && n >= 17 &&
	    (strncasecmp(ct + n - 5, "+json", 5) == 0 || strncasecmp(ct + n - 4, "+xml", 4) == 0))
		return 1;
	return 0;
}

/* --- the rules for one response */

/*
 * 1 when everything but Accept-Encoding allows compression: then the
 * response varies with Accept-Encoding, whatever this client sent.
 */
static int
compress_allowed(const struct msg_head *req, const struct msg_head *resp, uint32_t flags,
    int nobody)
{
	const struct msg_field *ct = msg_find(resp, "content-type");

	if (!(flags & SNAP_ROUTE_COMPRESS) || nobody || resp->status < 200 ||
	    resp->status == 204 || resp->status == 206 || resp->status == 304)
		return 0;
	/* A range is of the stored bytes; no-transform forbids us (RFC 9110 7.7, 9111 5.2). */
	if (msg_find(req, "range") != NULL || msg_find(resp, "content-encoding") != NULL ||
	    msg_find(resp, "content-range") != NULL ||
	    msg_lists(resp, "cache-control", "no-transform") ||
	    msg_lists(req, "cache-control", "no-transform"))
		return 0;
	if (resp->has_length && resp->length < COMPRESS_MIN_LENGTH)
		return 0;
	return ct != NULL && compress_type_ok(msg_value(resp, ct));
}

int
compress_varies(const struct msg_head *req, const struct msg_head *resp, uint32_t route_flags,
    int nobody)
{
	return compress_allowed(req, resp, route_flags, nobody);
}

/* Adds Accept-Encoding to Vary unless it is there, or Vary is "*". */
static int
compress_vary(struct msg_head *resp)
{
	char v[1024];
	uint32_t i;

	for (i = 0; i < msg_nheaders(resp); i++) {
		const struct msg_field *f = &resp->f[i];

		if (!msg_field_is(resp, f, "vary"))
			continue;
		if (msg_has_token(resp, f, "accept-encoding") || msg_has_token(resp, f, "*"))
			return 0;
	}
	for (i = 0; i < msg_nheaders(resp); i++) {
		const struct msg_field *f = &resp->f[i];

		if (!msg_field_is(resp, f, "vary") || f->value.len == 0 ||
		    f->value.len + 20 > sizeof(v))
			continue;
		/* One Vary field merged, so caches that read only the first see it. */
		snprintf(v, sizeof(v), "%s, Accept-Encoding", msg_value(resp, f));
		msg_del(resp, i);
		return msg_add(resp, "Vary", v);
	}
	return msg_add(resp, "Vary", "Accept-Encoding");
}

/* A strong ETag names these bytes; the encoded ones are only equivalent (RFC 9110 8.8.3). */
static int
compress_etag(struct msg_head *resp)
{
	char v[1024];
	uint32_t i;

	for (i = 0; i < msg_nheaders(resp); i++) {
		const struct msg_field *f = &resp->f[i];

		if (!msg_field_is(resp, f, "etag"))
			continue;
		if (f->value.len == 0 || msg_value(resp, f)[0] != '"')
			return 0;	/* weak already, or not an entity-tag */
		if (f->value.len + 3 > sizeof(v)) {
			msg_del(resp, i);	/* too long to weaken here: no validator beats a wrong one */
			return 0;
		}
		snprintf(v, sizeof(v), "W/%s", msg_value(resp, f));
		msg_del(resp, i);
		return msg_add(resp, "ETag", v);
	}
	return 0;
}

struct compress {
	const struct compress_codec *codec;
	void *st;
	size_t off;			/* out.p[off..out.len) waits for the sink */
	struct compress_out out;
	unsigned flushing : 1, finishing : 1, done : 1;
};

static struct compress *
compress_new(enum compress_enc enc)
{
	struct compress *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->out.p = malloc(COMPRESS_OUT_MAX)) == NULL)
		goto fail;
	c->out.cap = COMPRESS_OUT_MAX;
	/* The caller negotiated enc; an encoding without a codec is a broken invariant. */
	if ((c->codec = compress_codec(enc)) == NULL || (c->st = c->codec->init()) == NULL)
		goto fail;
	return c;
fail:
	if (c != NULL)
		free(c->out.p);
	free(c);
	log_warnx("compress: out of memory");
	return NULL;
}

int
compress_begin(struct compress **out, const struct msg_head *req, struct msg_head *resp,
    uint32_t route_flags, int nobody)
{
	enum compress_enc enc;

	*out = NULL;
	if (!compress_allowed(req, resp, route_flags, nobody))
		return 0;
	if (compress_vary(resp) == -1)
		return -1;
	if ((enc = compress_negotiate(req)) == COMPRESS_NONE)
		return 0;
	/* Without an encoder the response still goes out, as it came. */
	if ((*out = compress_new(enc)) == NULL)
		return 0;
	if (compress_etag(resp) == -1 ||
	    msg_add(resp, "Content-Encoding", (*out)->codec->name) == -1) {
		compress_free(*out);
		*out = NULL;
		return -1;
	}
	resp->has_length = 0;
	resp->length = 0;
	resp->chunked = 1;
	return 0;
}

/* --- the stage */

/*
 * Input bytes whose compressed and flushed form surely fits in avail:
 * stored (incompressible) deflate blocks cost 5 bytes per 16 KiB, Brotli's
 * a few per metablock, zstd's 3 per 128 KiB block; flush markers and a
 * header under 64 bytes. 1/64 + 128 bytes covers all three.
 */
static size_t
compress_bound_in(size_t avail)
{
	return avail > 256 ? (avail - 128) - (avail - 128) / 64 - 1 : 0;
}

/* Moves what waits to the front of the buffer. */
static void
compress_compact(struct compress *c)
{
	if (c->off == 0)
		return;
	memmove(c->out.p, c->out.p + c->off, c->out.len - c->off);
	c->out.len -= c->off;
	c->off = 0;
}

/* Runs a pending flush, then the end, as far as the buffer has room. */
static int
compress_step(struct compress *c)
{
	int rc;

	compress_compact(c);
	if (c->flushing) {
		if ((rc = c->codec->flush(c->st, &c->out)) == -1)
			return -1;
		c->flushing = rc == 0;
	}
	if (!c->flushing && c->finishing && !c->done) {
		if ((rc = c->codec->finish(c->st, &c->out)) == -1)
			return -1;
		c->done = rc == 1;
	}
	return 0;
}

size_t
compress_room(struct compress *c, size_t sink_room)
{
	size_t avail = COMPRESS_OUT_MAX - (c->out.len - c->off);

	if (c->flushing || c->finishing)
		return 0;
	return compress_bound_in(avail < sink_room ? avail : sink_room);
}

int
compress_body(struct compress *c, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	compress_compact(c);
	if (c->codec->feed(c->st, p, n, &c->out) == -1) {
		log_warnx("compress: %s: no room for %zu bytes", c->codec->name, n);
		return -1;
	}
	/* Every chunk handed on is flushed: SSE and slow backends are not held back. */
	c->flushing = 1;
	return compress_step(c);
}

void
compress_end(struct compress *c)
{
	c->finishing = 1;
}

int
compress_drain(struct compress *c, const struct sink_ops *ops, void *arg)
{
	for (;;) {
		size_t n = c->out.len - c->off, room;

		if (n == 0 && (c->flushing || (c->finishing && !c->done))) {
			if (compress_step(c) == -1)
				return -1;
			if ((n = c->out.len - c->off) == 0)
				return 0;	/* (cannot happen: an empty buffer has room) */
		}
		if (n == 0 || (room = ops->room(arg)) == 0)
			return 0;
		if (n > room)
			n = room;
		if (ops->body(arg, c->out.p + c->off, n) == -1)
			return -1;
		c->off += n;
		if (c->off == c->out.len)
			c->off = c->out.len = 0;
	}
}

int
compress_pending(const struct compress *c)
{
	return c->out.len > c->off || c->flushing || (c->finishing && !c->done);
}

void
compress_free(struct compress *c)
{
	if (c == NULL)
		return;
	c->codec->free(c->st);
	free(c->out.p);
	free(c);
}
