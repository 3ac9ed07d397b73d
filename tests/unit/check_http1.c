/* Unit tests for worker/http1.c (the http-parser wrapper and the encoder) and worker/forward.c. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/suites.h"
#include "worker/buf.h"
#include "worker/forward.h"
#include "worker/http1.h"
#include "worker/message.h"

/* What the events saw. */
struct seen {
	int heads, ends;
	char body[4096];
	size_t bodylen;
	int skip_body;
};

static int
on_head(void *arg, struct msg_head *h)
{
	struct seen *s = arg;

	(void)h;
	s->heads++;
	return s->skip_body;
}

static int
on_body(void *arg, const char *p, size_t n)
{
	struct seen *s = arg;

	ck_assert_uint_le(s->bodylen + n, sizeof(s->body));
	memcpy(s->body + s->bodylen, p, n);
	s->bodylen += n;
	return 0;
}

static int
on_end(void *arg, struct msg_head *h)
{
	struct seen *s = arg;

	(void)h;
	s->ends++;
	return 0;
}

static const struct h1_events events = { on_head, on_body, on_end };
static struct msg_head *head;
static struct h1 *parser;
static struct seen seen;

static void teardown(void);

static void
setup(void)
{
	teardown();
	head = calloc(1, sizeof(*head));
	ck_assert_ptr_nonnull(head);
	memset(&seen, 0, sizeof(seen));
	parser = h1_new(H1_REQUEST, head, &events, &seen);
	ck_assert_ptr_nonnull(parser);
}

static void
teardown(void)
{
	h1_free(parser);
	parser = NULL;
	if (head != NULL)
		msg_free(head);
	free(head);
	head = NULL;
}

/* A response parser in place of the request one. */
static void
response_parser(void)
{
	h1_free(parser);
	parser = h1_new(H1_RESPONSE, head, &events, &seen);
	ck_assert_ptr_nonnull(parser);
}

/* Feeds s in pieces of step bytes; returns total consumed or -1. */
static ssize_t
feed_steps(const char *s, size_t step)
{
	size_t len = strlen(s), off = 0;

	while (off < len && !h1_done(parser)) {
		size_t n = len - off < step ? len - off : step;
		ssize_t r = h1_feed(parser, s + off, n);

		if (r == -1)
			return -1;
		off += (size_t)r;
		if ((size_t)r < n && !h1_done(parser))
			return -1;
	}
	return (ssize_t)off;
}

static const char simple_req[] =
    "POST /up?x=1 HTTP/1.1\r\nHost: App.Example.com:8080\r\nX-Thing: a\r\n"
    "Content-Length: 5\r\nConnection: keep-alive, X-Thing\r\n\r\nhello";

START_TEST(test_request_every_split)
{
	size_t step;

	for (step = 1; step <= sizeof(simple_req); step++) {
		const struct msg_field *f;

		setup();
		ck_assert_int_eq(feed_steps(simple_req, step), (ssize_t)strlen(simple_req));
		ck_assert_int_eq(seen.heads, 1);
		ck_assert_int_eq(seen.ends, 1);
		ck_assert_uint_eq(seen.bodylen, 5);
		ck_assert_int_eq(memcmp(seen.body, "hello", 5), 0);
		ck_assert_uint_eq(head->method, MSG_M_POST);
		ck_assert_str_eq(msg_s(head, head->path), "/up?x=1");
		ck_assert_uint_eq(head->nf, 4);
		f = msg_find(head, "host");
		ck_assert_ptr_nonnull(f);
		ck_assert_str_eq(msg_value(head, f), "App.Example.com:8080");
		ck_assert_int_eq(head->has_length, 1);
		ck_assert_uint_eq(head->length, 5);
		ck_assert_int_eq(head->keepalive, 1);
		teardown();
	}
}
END_TEST

START_TEST(test_chunked_body_and_trailers)
{
	static const char req[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n";
	size_t step;

	for (step = 1; step <= sizeof(req); step += 3) {
		setup();
		ck_assert_int_eq(feed_steps(req, step), (ssize_t)strlen(req));
		ck_assert_int_eq(head->chunked, 1);
		ck_assert_uint_eq(seen.bodylen, 11);
		ck_assert_int_eq(memcmp(seen.body, "hello world", 11), 0);
		ck_assert_uint_eq(head->ntrailers, 1);
		ck_assert_str_eq(msg_name(head, &head->f[head->nf - 1]), "X-Sum");
		ck_assert_str_eq(msg_value(head, &head->f[head->nf - 1]), "42");
		/* Trailers are not found as header fields. */
		ck_assert_ptr_null(msg_find(head, "x-sum"));
		teardown();
	}
}
END_TEST

START_TEST(test_stops_after_each_message)
{
	static const char two[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
	ssize_t n = h1_feed(parser, two, strlen(two));

	ck_assert_int_eq(n, (ssize_t)strlen(two) / 2);
	ck_assert_int_eq(h1_done(parser), 1);
	ck_assert_int_eq(h1_feed(parser, two + n, strlen(two) - (size_t)n), 0);
	h1_reset(parser);
	ck_assert_int_eq(h1_feed(parser, two + n, strlen(two) - (size_t)n), n);
	ck_assert_str_eq(msg_s(head, head->path), "/b");
	ck_assert_int_eq(seen.ends, 2);
}
END_TEST

static unsigned
parse_error_len(const char *req, size_t len)
{
	setup();
	if (h1_feed(parser, req, len) != -1)
		return 0;
	return h1_error(parser);
}

static unsigned
parse_error(const char *req)
{
	setup();
	if (h1_feed(parser, req, strlen(req)) != -1)
		return 0;
	return h1_error(parser);
}

START_TEST(test_limits)
{
	char *req = malloc(MSG_HEAD_MAX * 2);
	size_t n;

	ck_assert_ptr_nonnull(req);
	n = (size_t)sprintf(req, "GET /");
	memset(req + n, 'a', MSG_TARGET_MAX + 1);
	strcpy(req + n + MSG_TARGET_MAX + 1, " HTTP/1.1\r\n\r\n");
	ck_assert_uint_eq(parse_error(req), 414);
	teardown();

	n = (size_t)sprintf(req, "GET / HTTP/1.1\r\nX-Big: ");
	memset(req + n, 'b', MSG_HEAD_MAX);
	strcpy(req + n + MSG_HEAD_MAX, "\r\n\r\n");
	ck_assert_uint_eq(parse_error(req), 431);
	teardown();

	n = (size_t)sprintf(req, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= MSG_FIELDS_MAX; i++)
		n += (size_t)sprintf(req + n, "X-%d: v\r\n", i);
	strcpy(req + n, "\r\n");
	ck_assert_uint_eq(parse_error(req), 431);
	teardown();
	free(req);
}
END_TEST

START_TEST(test_smuggling_refused)
{
	static const char *const bad[] = {
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3x\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
		"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned st = parse_error(bad[i]);

		ck_assert_msg(st == 400, "vector %zu: %u", i, st);
		teardown();
	}
	{
		static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n";

		ck_assert_uint_eq(parse_error_len(nul, sizeof(nul) - 1), 400);
	}
}
END_TEST

START_TEST(test_request_head_for_backend)
{
	static const char req[] = "GET /p HTTP/1.1\r\nHost: app.example.com\r\nConnection: close, X-Drop\r\n"
	    "X-Drop: 1\r\nKeep-Alive: 5\r\nX-Forwarded-For: 6.6.6.6\r\nAccept: */*\r\n"
	    "TE: trailers, deflate\r\n\r\n";
	struct buf_pool pool = { .size = BUF_SIZE };
	struct buf b = { 0 };
	struct fwd_info fi = { "192.0.2.7", "http", "abc", 0 };

	ck_assert_int_eq(h1_feed(parser, req, strlen(req)), (ssize_t)strlen(req));
	ck_assert_int_eq(buf_get(&pool, &b), 0);
	ck_assert_int_eq(forward_request(head, &fi), 0);
	ck_assert_int_eq(h1_write_request(&b, head), 0);
	buf_append(&b, "", 1);
	ck_assert_str_eq(buf_head(&b), "GET /p HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n"
	    "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
	    "X-Forwarded-Host: app.example.com\r\nX-Request-Id: abc\r\nTE: trailers\r\n"
	    "Via: 1.1 " FORWARD_PSEUDONYM "\r\n\r\n");
	/* From a trusted proxy the chain is kept and the peer appended. */
	setup();
	ck_assert_int_eq(h1_feed(parser, req, strlen(req)), (ssize_t)strlen(req));
	b.len = 0;
	fi.trusted = 1;
	ck_assert_int_eq(forward_request(head, &fi), 0);
	ck_assert_int_eq(h1_write_request(&b, head), 0);
	buf_append(&b, "", 1);
	ck_assert_ptr_nonnull(strstr(buf_head(&b), "\r\nX-Forwarded-For: 6.6.6.6, 192.0.2.7\r\n"));
	buf_put(&pool, &b);
	buf_pool_clear(&pool);
}
END_TEST

START_TEST(test_response_to_head_has_no_body)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";

	seen.skip_body = 1;
	response_parser();
	ck_assert_int_eq(h1_feed(parser, resp, strlen(resp)), (ssize_t)strlen(resp));
	ck_assert_int_eq(seen.ends, 1);
	ck_assert_uint_eq(head->status, 200);
	ck_assert_str_eq(msg_s(head, head->reason), "OK");
}
END_TEST

START_TEST(test_close_delimited_response)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nX: y\r\n\r\nabc";

	response_parser();
	ck_assert_int_eq(h1_feed(parser, resp, strlen(resp)), (ssize_t)strlen(resp));
	ck_assert_int_eq(seen.ends, 0);
	ck_assert_int_eq(h1_eof(parser), 0);
	ck_assert_int_eq(seen.ends, 1);
	ck_assert_uint_eq(seen.bodylen, 3);
}
END_TEST

/* --- parsing: what the reshape added */

START_TEST(test_upgrade_response)
{
	static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\n\r\nraw";

	response_parser();
	ck_assert_int_eq(h1_feed(parser, resp, strlen(resp)), (ssize_t)strlen(resp) - 3);
	ck_assert_uint_eq(head->status, 101);
	ck_assert_str_eq(msg_s(head, head->reason), "Switching Protocols");
	ck_assert_int_eq(head->upgrade, 1);
	ck_assert_str_eq(msg_s(head, head->upgrade_proto), "websocket");
	ck_assert_int_eq(h1_upgraded(parser), 1);
	ck_assert_int_eq(h1_done(parser), 1);
	ck_assert_uint_eq(seen.bodylen, 0);
}
END_TEST

/* RFC 9112 2.3, 3, 6.1 and 7.1.1: what is refused with which status. */
START_TEST(test_conformance_statuses)
{
	static const struct { const char *req; unsigned status; } v[] = {
		{ "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505 },
		{ "GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505 },
		{ "GET /\r\nHost: a\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo;x=1 , chunked\r\n\r\n", 501 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n",
		    400 },
		{ "FROBNICATE / HTTP/1.1\r\nHost: a\r\n\r\n", 501 },
		{ "\r\nFROB / HTTP/1.1\r\nHost: a\r\n\r\n", 501 },
		{ "F(O / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "FROB", 501 },	/* no method we know starts so */
		{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505 },	/* HTTP/2 where it is off */
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unsigned st = parse_error(v[i].req);

		ck_assert_msg(st == v[i].status, "vector %zu: %u, not %u", i, st, v[i].status);
		teardown();
	}
}
END_TEST

/* A chunk-size line may carry extensions, within a bound (RFC 9112 7.1.1). */
START_TEST(test_chunk_extensions_bounded)
{
	static const char head_part[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	char *req = malloc(16384);
	size_t n;

	ck_assert_ptr_nonnull(req);
	n = (size_t)sprintf(req, "%s5;a=b;c=\"d\"\r\nhello\r\n0;x\r\n\r\n", head_part);
	ck_assert_int_eq(feed_steps(req, 7), (ssize_t)n);
	ck_assert_int_eq(h1_done(parser), 1);
	ck_assert_uint_eq(seen.bodylen, 5);
	teardown();
	setup();
	n = (size_t)sprintf(req, "%s5;", head_part);
	memset(req + n, 'e', 10000);
	strcpy(req + n + 10000, "\r\nhello\r\n0\r\n\r\n");
	ck_assert_int_eq(feed_steps(req, 100), -1);
	ck_assert_uint_eq(h1_error(parser), 400);
	free(req);
}
END_TEST

/* RFC 9110 7.8: an HTTP/1.0 request's Upgrade is ignored; its body is a body. */
START_TEST(test_upgrade_ignored_in_http10)
{
	static const char req[] = "POST /ws HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\nContent-Length: 2\r\n\r\nhi";

	ck_assert_int_eq(h1_feed(parser, req, strlen(req)), (ssize_t)strlen(req));
	ck_assert_int_eq(head->upgrade, 0);
	ck_assert_int_eq(h1_upgraded(parser), 0);
	ck_assert_int_eq(h1_done(parser), 1);
	ck_assert_uint_eq(seen.bodylen, 2);
}
END_TEST

START_TEST(test_upgrade_request)
{
	static const char req[] = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";

	ck_assert_int_eq(h1_feed(parser, req, strlen(req)), (ssize_t)strlen(req));
	ck_assert_int_eq(head->upgrade, 1);
	ck_assert_str_eq(msg_s(head, head->upgrade_proto), "websocket");
	ck_assert_int_eq(seen.heads, 1);
}
END_TEST

START_TEST(test_other_method_keeps_name)
{
	static const char req[] = "PROPFIND /dav HTTP/1.1\r\nHost: a\r\nDepth: 1\r\n\r\n";

	ck_assert_int_eq(h1_feed(parser, req, strlen(req)), (ssize_t)strlen(req));
	ck_assert_uint_eq(head->method, MSG_M_OTHER);
	ck_assert_str_eq(msg_s(head, head->method_name), "PROPFIND");
	ck_assert_str_eq(msg_method_str(head), "PROPFIND");
	ck_assert_int_eq(msg_idempotent(head), 0);
	/* Known ones get their enum and no name of their own. */
	setup();
	ck_assert_int_eq(h1_feed(parser, "PATCH / HTTP/1.1\r\nHost: a\r\n\r\n", 29), 29);
	ck_assert_uint_eq(head->method, MSG_M_PATCH);
	ck_assert_uint_eq(head->method_name.len, 0);
	ck_assert_str_eq(msg_method_str(head), "PATCH");
}
END_TEST

START_TEST(test_reason_phrase)
{
	static const char resp[] = "HTTP/1.1 404 Not Here, Sorry\r\nContent-Length: 0\r\n\r\n";
	size_t step;

	for (step = 1; step <= sizeof(resp); step++) {
		setup();
		response_parser();
		ck_assert_int_eq(feed_steps(resp, step), (ssize_t)strlen(resp));
		ck_assert_uint_eq(head->status, 404);
		ck_assert_str_eq(msg_s(head, head->reason), "Not Here, Sorry");
		ck_assert_uint_eq(head->major, 1);
		ck_assert_uint_eq(head->minor, 1);
		ck_assert_int_eq(seen.ends, 1);
		teardown();
	}
	/* No reason phrase at all. */
	setup();
	response_parser();
	ck_assert_int_eq(h1_feed(parser, "HTTP/1.1 204 \r\n\r\n", 17), 17);
	ck_assert_uint_eq(head->status, 204);
	ck_assert_str_eq(msg_s(head, head->reason), "");
}
END_TEST

START_TEST(test_trailers_counted)
{
	static const char req[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	    "X-Head: h\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\nX-Head: t\r\nX-Empty:\r\n\r\n";
	const struct msg_field *f;

	ck_assert_int_eq(h1_feed(parser, req, strlen(req)), (ssize_t)strlen(req));
	ck_assert_uint_eq(head->nf, 6);
	ck_assert_uint_eq(head->ntrailers, 3);
	ck_assert_uint_eq(msg_nheaders(head), 3);
	ck_assert_str_eq(msg_name(head, &head->f[3]), "X-Sum");
	ck_assert_str_eq(msg_name(head, &head->f[5]), "X-Empty");
	ck_assert_str_eq(msg_value(head, &head->f[5]), "");
	/* The header, not the trailer of the same name. */
	f = msg_find(head, "x-head");
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(msg_value(head, f), "h");
}
END_TEST

/*
 * The parser allows MSG_FIELDS_MAX fields in the head and again in the
 * trailers: a message with both full parses.
 */
START_TEST(test_full_head_and_trailers)
{
	char *req = malloc(8192);
	size_t n;
	int i;

	ck_assert_ptr_nonnull(req);
	n = (size_t)sprintf(req, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n");
	for (i = 1; i < MSG_FIELDS_MAX; i++)
		n += (size_t)sprintf(req + n, "H%d: v\r\n", i);
	n += (size_t)sprintf(req + n, "\r\n1\r\nx\r\n0\r\n");
	for (i = 0; i < MSG_FIELDS_MAX; i++)
		n += (size_t)sprintf(req + n, "T%d: w\r\n", i);
	n += (size_t)sprintf(req + n, "\r\n");
	ck_assert_int_eq(h1_feed(parser, req, n), (ssize_t)n);
	ck_assert_int_eq(h1_done(parser), 1);
	ck_assert_uint_eq(head->nf, 2 * MSG_FIELDS_MAX);
	ck_assert_uint_eq(head->ntrailers, MSG_FIELDS_MAX);
	/* One more trailer is one too many: 400 (the head went out already). */
	setup();
	n -= 2;
	n += (size_t)sprintf(req + n, "T%d: w\r\n\r\n", MSG_FIELDS_MAX);
	ck_assert_int_eq(h1_feed(parser, req, n), -1);
	ck_assert_uint_eq(h1_error(parser), 400);
	free(req);
}
END_TEST

/* --- encoding */

static struct buf_pool enc_pool = { .size = BUF_SIZE };
static struct buf enc;

/* What was encoded, as a string. */
static const char *
encoded(void)
{
	static char out[BUF_SIZE + 1];

	memcpy(out, buf_head(&enc), enc.len);
	out[enc.len] = '\0';
	return out;
}

static void
enc_setup(void)
{
	setup();
	ck_assert_int_eq(buf_get(&enc_pool, &enc), 0);
}

static void
enc_teardown(void)
{
	buf_put(&enc_pool, &enc);
	buf_pool_clear(&enc_pool);
	teardown();
}

/* A request head by hand: method, path, then name/value pairs. */
static void
req_head(enum msg_method m, const char *path, const char *const *fields)
{
	msg_reset(head);
	head->method = m;
	head->major = head->minor = 1;
	ck_assert_int_eq(msg_str(head, path, strlen(path), &head->path), 0);
	for (; fields != NULL && fields[0] != NULL; fields += 2)
		ck_assert_int_eq(msg_add(head, fields[0], fields[1]), 0);
	enc.off = enc.len = 0;
}

START_TEST(test_write_request_framing)
{
	static const char *const host[] = { "Host", "a.example", "Accept", "*/*", NULL };

	req_head(MSG_M_POST, "/up", host);
	head->has_length = 1;
	head->length = 12345;
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "POST /up HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n"
	    "Content-Length: 12345\r\n\r\n");

	req_head(MSG_M_POST, "/up", host);
	head->chunked = 1;
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "POST /up HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");

	/* A length wins over chunked; a zero length is still written. */
	req_head(MSG_M_PUT, "/x", host);
	head->chunked = 1;
	head->has_length = 1;
	head->length = 0;
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_ptr_nonnull(strstr(encoded(), "\r\nContent-Length: 0\r\n\r\n"));
	ck_assert_ptr_null(strstr(encoded(), "Transfer-Encoding"));

	/* No body: no framing field at all. */
	req_head(MSG_M_GET, "/", host);
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "GET / HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n");
}
END_TEST

START_TEST(test_write_request_target_and_method)
{
	static const char *const host[] = { "Host", "a", NULL };

	/* An absolute-form target reduced to "" or "?q" gets its "/". */
	req_head(MSG_M_GET, "", host);
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	req_head(MSG_M_GET, "?q=1", host);
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "GET /?q=1 HTTP/1.1\r\nHost: a\r\n\r\n");
	req_head(MSG_M_OPTIONS, "*", host);
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
	/* Another method by its name. */
	req_head(MSG_M_OTHER, "/dav", host);
	ck_assert_int_eq(msg_str(head, "PROPFIND", 8, &head->method_name), 0);
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n");
	/* An HTTP/1.0 request goes out as HTTP/1.1. */
	req_head(MSG_M_GET, "/", host);
	head->minor = 0;
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
}
END_TEST

START_TEST(test_write_request_host_from_authority)
{
	static const char *const accept[] = { "Accept", "*/*", NULL };
	static const char *const host[] = { "Host", "given", NULL };

	req_head(MSG_M_GET, "/", accept);
	ck_assert_int_eq(msg_str(head, "h2.example:8443", 15, &head->authority), 0);
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "GET / HTTP/1.1\r\nAccept: */*\r\nHost: h2.example:8443\r\n\r\n");
	/* A Host field is the one written. */
	req_head(MSG_M_GET, "/", host);
	ck_assert_int_eq(msg_str(head, "h2.example:8443", 15, &head->authority), 0);
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "GET / HTTP/1.1\r\nHost: given\r\n\r\n");
}
END_TEST

START_TEST(test_write_request_upgrade)
{
	static const char *const f[] = { "Host", "a", "Sec-WebSocket-Version", "13", NULL };

	req_head(MSG_M_GET, "/ws", f);
	head->upgrade = 1;
	ck_assert_int_eq(msg_str(head, "websocket", 9, &head->upgrade_proto), 0);
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_str_eq(encoded(), "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Version: 13\r\n"
	    "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n");
	/* No protocol named: no Upgrade. */
	req_head(MSG_M_GET, "/ws", f);
	head->upgrade = 1;
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_ptr_null(strstr(encoded(), "Upgrade"));
	/* A protocol without the flag: no Upgrade either. */
	req_head(MSG_M_GET, "/ws", f);
	ck_assert_int_eq(msg_str(head, "websocket", 9, &head->upgrade_proto), 0);
	ck_assert_int_eq(h1_write_request(&enc, head), 0);
	ck_assert_ptr_null(strstr(encoded(), "Upgrade"));
}
END_TEST


/* A response head by hand. */
static void
resp_head(unsigned status, const char *reason, const char *const *fields)
{
	msg_reset(head);
	head->status = status;
	head->major = head->minor = 1;
	ck_assert_int_eq(msg_str(head, reason, strlen(reason), &head->reason), 0);
	for (; fields != NULL && fields[0] != NULL; fields += 2)
		ck_assert_int_eq(msg_add(head, fields[0], fields[1]), 0);
	enc.off = enc.len = 0;
}

START_TEST(test_write_request_no_room)
{
	static const char *const host[] = { "Host", "a", NULL };

	req_head(MSG_M_GET, "/", host);
	head->chunked = 1;
	/* Room for the request line and Host, not for the framing field. */
	/* Refused heads leave nothing behind: the caller may flush and try again. */
	enc.len = BUF_SIZE - 40;
	ck_assert_int_eq(h1_write_request(&enc, head), -1);
	ck_assert_uint_eq(enc.len, BUF_SIZE - 40);
	enc.len = BUF_SIZE - 5;
	ck_assert_int_eq(h1_write_request(&enc, head), -1);
	ck_assert_uint_eq(enc.len, BUF_SIZE - 5);
	resp_head(200, "OK", NULL);
	enc.len = BUF_SIZE - 20;
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_CHUNKED, 1, 1), -1);
	ck_assert_uint_eq(enc.len, BUF_SIZE - 20);
}
END_TEST

START_TEST(test_write_response_framings)
{
	static const char *const ct[] = { "Content-Type", "text/plain", NULL };

	resp_head(200, "OK", ct);
	head->has_length = 1;
	head->length = 42;
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_LENGTH, 1, 1), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 42\r\n\r\n");

	resp_head(200, "OK", ct);
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_CHUNKED, 1, 1), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");

	/* Close-delimited: no framing field, the connection closes. */
	resp_head(200, "OK", ct);
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_CLOSE, 0, 1), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Connection: close\r\n\r\n");

	/* No body (a HEAD answer): the length it would have, no bytes. */
	resp_head(200, "OK", ct);
	head->has_length = 1;
	head->length = 42;
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_NONE, 1, 1), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 42\r\n\r\n");
	/* No body and no length known: nothing. */
	resp_head(200, "OK", ct);
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_NONE, 1, 1), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
	/* 204 never carries Content-Length. */
	resp_head(204, "No Content", NULL);
	head->has_length = 1;
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_NONE, 1, 1), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 204 No Content\r\n\r\n");

	/* 101: Upgrade and Connection from the protocol; never "close" on an interim head. */
	resp_head(101, "Switching Protocols", NULL);
	ck_assert_int_eq(msg_str(head, "websocket", 9, &head->upgrade_proto), 0);
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_UPGRADE, 0, 1), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n");
	/* An upgrade without a protocol is refused. */
	resp_head(101, "Switching Protocols", NULL);
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_UPGRADE, 1, 1), -1);

	/* An interim response: no framing, no Connection. */
	resp_head(103, "Early Hints", NULL);
	ck_assert_int_eq(msg_add(head, "Link", "</s.css>; rel=preload"), 0);
	head->has_length = 1;
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_NONE, 0, 1), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n");
}
END_TEST

START_TEST(test_write_response_http10_client)
{
	resp_head(200, "OK", NULL);
	head->has_length = 1;
	head->length = 2;
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_LENGTH, 1, 0), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Connection: keep-alive\r\n\r\n");
	resp_head(200, "OK", NULL);
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_CLOSE, 0, 0), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
	/* HTTP/1.1 keep-alive is the default: no field. */
	resp_head(200, "OK", NULL);
	head->has_length = 1;
	head->length = 2;
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_LENGTH, 1, 1), 0);
	ck_assert_ptr_null(strstr(encoded(), "Connection"));
	/* Interim heads get no Connection field for an HTTP/1.0 client either. */
	resp_head(100, "Continue", NULL);
	ck_assert_int_eq(h1_write_response(&enc, head, H1_FRAME_NONE, 1, 0), 0);
	ck_assert_str_eq(encoded(), "HTTP/1.1 100 Continue\r\n\r\n");
}
END_TEST

START_TEST(test_write_chunks)
{
	static const char req[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	    "X-Head: h\r\n\r\n0\r\nX-Sum: 42\r\nX-Other: o\r\n\r\n";
	char big[300];

	ck_assert_int_eq(h1_write_chunk(&enc, "hello", 5), 0);
	ck_assert_str_eq(encoded(), "5\r\nhello\r\n");
	enc.len = 0;
	memset(big, 'z', sizeof(big));
	ck_assert_int_eq(h1_write_chunk(&enc, big, sizeof(big)), 0);
	ck_assert_int_eq(strncmp(encoded(), "12c\r\nzzz", 8), 0);
	ck_assert_uint_eq(enc.len, 5 + sizeof(big) + 2);
	ck_assert_int_eq(memcmp(buf_head(&enc) + enc.len - 3, "z\r\n", 3), 0);

	/* The last chunk without trailers, with none in the head, and with them. */
	enc.len = 0;
	ck_assert_int_eq(h1_write_last_chunk(&enc, NULL), 0);
	ck_assert_str_eq(encoded(), "0\r\n\r\n");
	resp_head(200, "OK", NULL);
	ck_assert_int_eq(msg_add(head, "X-Head", "not a trailer"), 0);
	ck_assert_int_eq(h1_write_last_chunk(&enc, head), 0);
	ck_assert_str_eq(encoded(), "0\r\n\r\n");
	/* Parsed trailers go out, the head's fields do not. */
	msg_reset(head);
	ck_assert_int_eq(h1_feed(parser, req, strlen(req)), (ssize_t)strlen(req));
	enc.len = 0;
	ck_assert_int_eq(h1_write_last_chunk(&enc, head), 0);
	ck_assert_str_eq(encoded(), "0\r\nX-Sum: 42\r\nX-Other: o\r\n\r\n");

	/* No room: refused. */
	enc.len = BUF_SIZE - 8;
	ck_assert_int_eq(h1_write_chunk(&enc, "hello", 5), -1);
	ck_assert_uint_eq(enc.len, BUF_SIZE - 8);
	enc.len = BUF_SIZE - 3;
	ck_assert_int_eq(h1_write_last_chunk(&enc, NULL), -1);
	ck_assert_uint_eq(enc.len, BUF_SIZE - 3);
}
END_TEST

Suite *
suite_http1(void)
{
	Suite *s = suite_create("http1");
	TCase *tc = tcase_create("http1");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_request_every_split);
	tcase_add_test(tc, test_chunked_body_and_trailers);
	tcase_add_test(tc, test_stops_after_each_message);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_smuggling_refused);
	tcase_add_test(tc, test_request_head_for_backend);
	tcase_add_test(tc, test_response_to_head_has_no_body);
	tcase_add_test(tc, test_close_delimited_response);
	tcase_add_test(tc, test_upgrade_response);
	tcase_add_test(tc, test_upgrade_request);
	tcase_add_test(tc, test_conformance_statuses);
	tcase_add_test(tc, test_chunk_extensions_bounded);
	tcase_add_test(tc, test_upgrade_ignored_in_http10);
	tcase_add_test(tc, test_other_method_keeps_name);
	tcase_add_test(tc, test_reason_phrase);
	tcase_add_test(tc, test_trailers_counted);
	tcase_add_test(tc, test_full_head_and_trailers);
	suite_add_tcase(s, tc);

	tc = tcase_create("http1-encode");
	tcase_add_checked_fixture(tc, enc_setup, enc_teardown);
	tcase_add_test(tc, test_write_request_framing);
	tcase_add_test(tc, test_write_request_target_and_method);
	tcase_add_test(tc, test_write_request_host_from_authority);
	tcase_add_test(tc, test_write_request_upgrade);
	tcase_add_test(tc, test_write_request_no_room);
	tcase_add_test(tc, test_write_response_framings);
	tcase_add_test(tc, test_write_response_http10_client);
	tcase_add_test(tc, test_write_chunks);
	suite_add_tcase(s, tc);
	return s;
}
