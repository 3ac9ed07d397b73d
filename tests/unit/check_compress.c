/*
 * Unit tests for worker/compress.c: Accept-Encoding negotiation (q-values,
 * "*", identity, ties), the compressible types, the rules for a response
 * head and its edits (Content-Encoding, Vary merged, ETag weakened, length
 * dropped), and for each codec through the stage and a fake sink: a round
 * trip decoded by the codec's own library, a flush after each chunk that
 * makes what went out decodable up to that chunk, and output bounded by the
 * sink's room with incompressible input.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include "share/snap.h"
#include "tests/unit/suites.h"
#include "worker/compress.h"
#include "worker/exchange.h"
#include "worker/message.h"

static struct msg_head rq, rs;

static void
setup(void)
{
	msg_init(&rq);
	msg_init(&rs);
}

static void
teardown(void)
{
	msg_free(&rq);
	msg_free(&rs);
}

static enum compress_enc
neg(const char *ae)
{
	msg_reset(&rq);
	if (ae != NULL)
		ck_assert_int_eq(msg_add(&rq, "Accept-Encoding", ae), 0);
	return compress_negotiate(&rq);
}

START_TEST(negotiation_table)
{
	ck_assert_int_eq(neg(NULL), COMPRESS_NONE);
	ck_assert_int_eq(neg(""), COMPRESS_NONE);
	ck_assert_int_eq(neg("identity"), COMPRESS_NONE);
	ck_assert_int_eq(neg("gzip"), COMPRESS_GZIP);
	ck_assert_int_eq(neg("x-gzip"), COMPRESS_GZIP);
	ck_assert_int_eq(neg("GZIP"), COMPRESS_GZIP);
	ck_assert_int_eq(neg("gzip, deflate, br"), COMPRESS_BR);
	ck_assert_int_eq(neg("gzip, deflate, br, zstd"), COMPRESS_ZSTD);
	ck_assert_int_eq(neg("zstd;q=0.5, gzip"), COMPRESS_GZIP);
	ck_assert_int_eq(neg("zstd ; q=0.9, br;q=0.9, gzip;q=0.8"), COMPRESS_ZSTD);
	ck_assert_int_eq(neg("br;q=1.0, zstd;q=0.999"), COMPRESS_BR);
	ck_assert_int_eq(neg("gzip;q=0"), COMPRESS_NONE);
	ck_assert_int_eq(neg("gzip;q=0.000, br"), COMPRESS_BR);
	ck_assert_int_eq(neg("*"), COMPRESS_ZSTD);
	ck_assert_int_eq(neg("*;q=0"), COMPRESS_NONE);
	ck_assert_int_eq(neg("gzip, *;q=0"), COMPRESS_GZIP);
	ck_assert_int_eq(neg("*;q=0.5, gzip;q=0.6"), COMPRESS_GZIP);
	ck_assert_int_eq(neg("br;q=0, zstd;q=0, *"), COMPRESS_GZIP);
	ck_assert_int_eq(neg("identity;q=0, gzip"), COMPRESS_GZIP);
	ck_assert_int_eq(neg("identity;q=0"), COMPRESS_NONE);
	/* Invalid q-values make that coding unacceptable. */
	ck_assert_int_eq(neg("gzip;q=2"), COMPRESS_NONE);
	ck_assert_int_eq(neg("gzip;q=0.5x"), COMPRESS_NONE);
	ck_assert_int_eq(neg("gzip;q=1.0001"), COMPRESS_NONE);
	ck_assert_int_eq(neg("gzipx, brr"), COMPRESS_NONE);
	/* Two fields count as one list. */
	msg_reset(&rq);
	msg_add(&rq, "accept-encoding", "gzip");
	msg_add(&rq, "accept-encoding", "br");
	ck_assert_int_eq(compress_negotiate(&rq), COMPRESS_BR);
}
END_TEST

START_TEST(type_table)
{
	ck_assert_int_eq(compress_type_ok("text/html; charset=utf-8"), 1);
	ck_assert_int_eq(compress_type_ok("text/event-stream"), 1);
	ck_assert_int_eq(compress_type_ok("TEXT/CSS"), 1);
	ck_assert_int_eq(compress_type_ok("application/json"), 1);
	ck_assert_int_eq(compress_type_ok("application/ld+json"), 1);
	ck_assert_int_eq(compress_type_ok("application/rss+xml"), 1);
	ck_assert_int_eq(compress_type_ok("application/javascript"), 1);
	ck_assert_int_eq(compress_type_ok("image/svg+xml"), 1);
	ck_assert_int_eq(compress_type_ok("application/wasm"), 1);
	ck_assert_int_eq(compress_type_ok("image/png"), 0);
	ck_assert_int_eq(compress_type_ok("application/octet-stream"), 0);
	ck_assert_int_eq(compress_type_ok("application/grpc"), 0);
	ck_assert_int_eq(compress_type_ok("application/jsonx"), 0);
	ck_assert_int_eq(compress_type_ok("font/woff2"), 0);
	ck_assert_int_eq(compress_type_ok(""), 0);
}
END_TEST

/* A 200 response of text/html with length len (0: unknown) and its request. */
static void
pair(uint64_t len)
{
	msg_reset(&rq);
	msg_reset(&rs);
	rq.method = MSG_M_GET;
	msg_add(&rq, "Accept-Encoding", "gzip");
	rs.status = 200;
	msg_add(&rs, "Content-Type", "text/html");
	rs.has_length = len != 0;
	rs.chunked = len == 0;
	rs.length = len;
}

/* compress_begin's verdict: 1 compressed. */
static int
begin(uint32_t flags, int nobody)
{
	struct compress *c = NULL;

	ck_assert_int_eq(compress_begin(&c, &rq, &rs, flags, nobody), 0);
	compress_free(c);
	return c != NULL;
}

static const char *
field(const struct msg_head *h, const char *name)
{
	const struct msg_field *f = msg_find(h, name);

	return f != NULL ? msg_value(h, f) : NULL;
}

START_TEST(head_rules)
{
	pair(1000);
	ck_assert_int_eq(begin(0, 0), 0);	/* route off */
	pair(1000);
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 1), 0);	/* HEAD, 204, 304 */
	pair(100);
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 0);	/* small */
	pair(1000);
	rs.status = 206;
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 0);
	pair(1000);
	msg_add(&rq, "Range", "bytes=0-10");
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 0);
	pair(1000);
	msg_add(&rs, "Content-Encoding", "gzip");
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 0);
	pair(1000);
	msg_add(&rs, "Cache-Control", "public, no-transform");
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 0);
	pair(1000);
	msg_del(&rs, 0);
	msg_add(&rs, "Content-Type", "image/png");
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 0);
	ck_assert_ptr_null(field(&rs, "vary"));
	/* Not acceptable to this client: unchanged but for Vary. */
	pair(1000);
	msg_del(&rq, 0);
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 0);
	ck_assert_str_eq(field(&rs, "vary"), "Accept-Encoding");
	ck_assert_int_eq(rs.has_length, 1);
	pair(0);	/* unknown length */
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 1);
}
END_TEST

START_TEST(head_edits)
{
	pair(5000);
	msg_add(&rs, "ETag", "\"abc\"");
	msg_add(&rs, "Vary", "Origin");
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 1);
	ck_assert_str_eq(field(&rs, "content-encoding"), "gzip");
	ck_assert_str_eq(field(&rs, "etag"), "W/\"abc\"");
	ck_assert_str_eq(field(&rs, "vary"), "Origin, Accept-Encoding");
	ck_assert_int_eq(rs.has_length, 0);
	ck_assert_int_eq(rs.chunked, 1);
	/* Weak ETags and a Vary that has it already stay. */
	pair(5000);
	msg_add(&rs, "ETag", "W/\"abc\"");
	msg_add(&rs, "Vary", "accept-encoding");
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 1);
	ck_assert_str_eq(field(&rs, "etag"), "W/\"abc\"");
	ck_assert_str_eq(field(&rs, "vary"), "accept-encoding");
	pair(5000);
	msg_add(&rs, "Vary", "*");
	ck_assert_int_eq(begin(SNAP_ROUTE_COMPRESS, 0), 1);
	ck_assert_str_eq(field(&rs, "vary"), "*");
}
END_TEST

/* --- the stage with a fake sink */

struct fsink {
	char *p;
	size_t len, cap;
	size_t room;		/* what room() says each time */
	size_t max_call;	/* the largest body() */
};

static size_t
fs_room(void *arg)
{
	struct fsink *f = arg;

	return f->room;
}

static int
fs_body(void *arg, const char *p, size_t n)
{
	struct fsink *f = arg;

	ck_assert_uint_le(n, f->room);
	if (f->len + n > f->cap) {
		f->cap = (f->len + n) * 2;
		f->p = realloc(f->p, f->cap);
		ck_assert_ptr_nonnull(f->p);
	}
	memcpy(f->p + f->len, p, n);
	f->len += n;
	if (n > f->max_call)
		f->max_call = n;
	return 0;
}

static const struct sink_ops fs_ops = { .body = fs_body, .room = fs_room };

/* Text that compresses, or (random) bytes that do not. */
static char *
sample(size_t n, int random)
{
	char *p = malloc(n);
	uint32_t x = 12345;
	size_t i;

	for (i = 0; i < n; i++) {
		x = x * 1103515245 + 12345;
		p[i] = random ? (char)(x >> 16) : "<p>hello, compressed world</p>\n"[i % 31];
	}
	return p;
}

/* Decodes all of in with the codec's library; the length decoded, data in *out. */
static size_t
decode(enum compress_enc enc, const char *in, size_t n, char *out, size_t cap)
{
	if (enc == COMPRESS_GZIP) {
		z_stream z = { 0 };

		ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
		z.next_in = (Bytef *)(uintptr_t)in;
		z.avail_in = (uInt)n;
		z.next_out = (Bytef *)out;
		z.avail_out = (uInt)cap;
		ck_assert_int_ge(inflate(&z, Z_SYNC_FLUSH), 0);
		ck_assert_uint_eq(z.avail_in, 0);
		inflateEnd(&z);
		return cap - z.avail_out;
	}
	if (enc == COMPRESS_BR) {
		BrotliDecoderState *b = BrotliDecoderCreateInstance(NULL, NULL, NULL);
		const uint8_t *i = (const uint8_t *)in;
		uint8_t *o = (uint8_t *)out;
		size_t room = cap;

		ck_assert_int_ne(BrotliDecoderDecompressStream(b, &n, &i, &room, &o, NULL),
		    BROTLI_DECODER_RESULT_ERROR);
		ck_assert_uint_eq(n, 0);
		BrotliDecoderDestroyInstance(b);
		return cap - room;
	} else {
		ZSTD_DCtx *z = ZSTD_createDCtx();
		ZSTD_inBuffer i = { in, n, 0 };
		ZSTD_outBuffer o = { out, cap, 0 };

		while (i.pos < i.size)
			ck_assert_int_eq(ZSTD_isError(ZSTD_decompressStream(z, &o, &i)), 0);
		ZSTD_freeDCtx(z);
		return o.pos;
	}
}

/* Feeds n bytes of src through a stage in pieces the stage accepts; then ends it. */
static void
run(struct compress *c, struct fsink *f, const char *src, size_t n, int end)
{
	size_t at = 0;

	while (at < n) {
		size_t k;

		ck_assert_int_eq(compress_drain(c, &fs_ops, f), 0);
		k = compress_room(c, f->room);
		ck_assert_uint_gt(k, 0);
		k = k < n - at ? k : n - at;
		ck_assert_int_eq(compress_body(c, src + at, k), 0);
		ck_assert_int_eq(compress_drain(c, &fs_ops, f), 0);
		at += k;
	}
	if (end) {
		compress_end(c);
		ck_assert_int_eq(compress_drain(c, &fs_ops, f), 0);
		ck_assert_int_eq(compress_pending(c), 0);
	}
}

static struct compress *
stage(enum compress_enc enc)
{
	static const char *const names[] = { "", "gzip", "br", "zstd" };
	struct compress *c = NULL;

	pair(0);
	msg_reset(&rq);
	msg_add(&rq, "Accept-Encoding", names[enc]);
	ck_assert_int_eq(compress_begin(&c, &rq, &rs, SNAP_ROUTE_COMPRESS, 0), 0);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(field(&rs, "content-encoding"), names[enc]);
	return c;
}

START_TEST(codec_round_trip)
{
	enum compress_enc enc = (enum compress_enc)(_i + 1);
	size_t n = 300 * 1024, got;
	char *src = sample(n, 0), *dst = malloc(n + 1);
	struct fsink f = { .room = 32 * 1024 };
	struct compress *c = stage(enc);

	run(c, &f, src, n, 1);
	ck_assert_uint_lt(f.len, n / 4);
	got = decode(enc, f.p, f.len, dst, n + 1);
	ck_assert_uint_eq(got, n);
	ck_assert_int_eq(memcmp(src, dst, n), 0);
	compress_free(c);
	free(src);
	free(dst);
	free(f.p);
}
END_TEST

START_TEST(flush_gives_decodable_prefix)
{
	enum compress_enc enc = (enum compress_enc)(_i + 1);
	const char *ev1 = "data: first event\n\n", *ev2 = "data: second\n\n";
	char dst[256];
	struct fsink f = { .room = 32 * 1024 };
	struct compress *c = stage(enc);
	size_t got;

	run(c, &f, ev1, strlen(ev1), 0);
	/* The stream is not ended: what went out decodes to the first event. */
	got = decode(enc, f.p, f.len, dst, sizeof(dst));
	ck_assert_uint_eq(got, strlen(ev1));
	ck_assert_int_eq(memcmp(dst, ev1, got), 0);
	run(c, &f, ev2, strlen(ev2), 1);
	got = decode(enc, f.p, f.len, dst, sizeof(dst));
	ck_assert_uint_eq(got, strlen(ev1) + strlen(ev2));
	compress_free(c);
	free(f.p);
}
END_TEST

START_TEST(output_bounded_by_room)
{
	enum compress_enc enc = (enum compress_enc)(_i + 1);
	size_t n = 256 * 1024, got, rooms[] = { 300, 1000, 4096, 32768, 100000 }, r;
	char *src = sample(n, 1), *dst = malloc(n + 1);

	for (r = 0; r < sizeof(rooms) / sizeof(rooms[0]); r++) {
		struct fsink f = { .room = rooms[r] };
		struct compress *c = stage(enc);

		/* Incompressible input in pieces of the stage's room never overflows its buffer. */
		run(c, &f, src, n, 1);
		ck_assert_uint_le(f.max_call, rooms[r]);
		ck_assert_uint_le(compress_room(c, rooms[r]), rooms[r]);
		got = decode(enc, f.p, f.len, dst, n + 1);
		ck_assert_uint_eq(got, n);
		ck_assert_int_eq(memcmp(src, dst, n), 0);
		compress_free(c);
		free(f.p);
	}
	free(src);
	free(dst);
}
END_TEST

START_TEST(slow_sink_holds_bounded_output)
{
	enum compress_enc enc = (enum compress_enc)(_i + 1);
	char *src = sample(8192, 1);
	struct fsink f = { .room = 8000 };
	struct compress *c = stage(enc);
	size_t k = compress_room(c, f.room);

	ck_assert_int_eq(compress_body(c, src, k), 0);
	/* The sink is full now: nothing more is taken until it drains. */
	f.room = 0;
	ck_assert_int_eq(compress_drain(c, &fs_ops, &f), 0);
	ck_assert_uint_eq(compress_room(c, 0), 0);
	compress_end(c);
	ck_assert_int_eq(compress_pending(c), 1);
	f.room = 100;
	while (compress_pending(c)) {
		size_t before = f.len;

		ck_assert_int_eq(compress_drain(c, &fs_ops, &f), 0);
		ck_assert_uint_gt(f.len, before);
	}
	ck_assert_uint_eq(decode(enc, f.p, f.len, src, 8192), k);
	compress_free(c);
	free(src);
	free(f.p);
}
END_TEST

Suite *
suite_compress(void)
{
	Suite *s = suite_create("compress");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, negotiation_table);
	tcase_add_test(tc, type_table);
	tcase_add_test(tc, head_rules);
	tcase_add_test(tc, head_edits);
	tcase_add_loop_test(tc, codec_round_trip, 0, 3);
	tcase_add_loop_test(tc, flush_gives_decodable_prefix, 0, 3);
	tcase_add_loop_test(tc, output_bounded_by_room, 0, 3);
	tcase_add_loop_test(tc, slow_sink_holds_bounded_output, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}
