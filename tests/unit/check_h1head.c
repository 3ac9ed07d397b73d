/*
 * Unit tests for worker/h1head.c: the plain heads it reads (and that they
 * come out as the http-parser path of worker/http1.c reads them), the heads
 * it leaves to that path, and the quick path's body and end in h1_feed.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tests/unit/suites.h"
#include "worker/h1head.h"
#include "worker/http1.h"
#include "worker/message.h"

struct got {
	int heads, ends, skip;
	int rewrite;	/* the head callback drops the length, as compression does */
	char body[256];
	size_t bodylen;
};

static int
got_head(void *arg, struct msg_head *h)
{
	struct got *g = arg;

	g->heads++;
	if (g->rewrite) {
		h->has_length = 0;
		h->length = 0;
	}
	return g->skip;
}

static int
got_body(void *arg, const char *p, size_t n)
{
	struct got *g = arg;

	ck_assert_uint_le(g->bodylen + n, sizeof(g->body));
	memcpy(g->body + g->bodylen, p, n);
	g->bodylen += n;
	return 0;
}

static int
got_end(void *arg, struct msg_head *h)
{
	((struct got *)arg)->ends++;
	return 0;
}

static const struct h1_events got_events = { got_head, got_body, got_end };

/* The head of s as the http-parser path reads it (its first byte fed alone). */
static void
slow_head(int response, const char *s, size_t n, struct msg_head *out)
{
	struct got g = { .skip = 1 };
	struct h1 *h = h1_new(response ? H1_RESPONSE : H1_REQUEST, out, &got_events, &g);

	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(h1_feed(h, s, 1), 1);
	ck_assert_int_eq(h1_feed(h, s + 1, n - 1), (ssize_t)(n - 1));
	ck_assert_int_eq(g.heads, 1);
	h1_free(h);
}

static void
same_str(const struct msg_head *a, struct msg_str x, const struct msg_head *b, struct msg_str y)
{
	ck_assert_uint_eq(x.len, y.len);
	ck_assert_str_eq(msg_s(a, x), msg_s(b, y));
}

/* s is read quickly, whole, and as http-parser reads it. */
static void
quick_same(int response, const char *s)
{
	struct msg_head q, w;
	size_t n = strlen(s);
	uint32_t i;

	msg_init(&q);
	msg_init(&w);
	ck_assert_uint_eq(h1head_parse(response, s, n, &q), n);
	slow_head(response, s, n, &w);
	ck_assert_int_eq(q.method, w.method);
	ck_assert_uint_eq(q.status, w.status);
	ck_assert_uint_eq(q.major, w.major);
	ck_assert_uint_eq(q.minor, w.minor);
	ck_assert_uint_eq(q.has_length, w.has_length);
	ck_assert_uint_eq(q.length, w.length);
	ck_assert_uint_eq(q.keepalive, w.keepalive);
	ck_assert_uint_eq(q.chunked, w.chunked);
	ck_assert_uint_eq(q.upgrade, w.upgrade);
	same_str(&q, q.path, &w, w.path);
	same_str(&q, q.reason, &w, w.reason);
	ck_assert_uint_eq(q.nf, w.nf);
	for (i = 0; i < q.nf; i++) {
		same_str(&q, q.f[i].name, &w, w.f[i].name);
		same_str(&q, q.f[i].value, &w, w.f[i].value);
	}
	msg_free(&q);
	msg_free(&w);
}

static size_t
quick_len_n(int response, const char *s, size_t len)
{
	struct msg_head q;
	size_t n;

	msg_init(&q);
	n = h1head_parse(response, s, len, &q);
	if (n == 0)
		ck_assert_uint_eq(q.nf, 0);
	msg_free(&q);
	return n;
}

static size_t
quick_len(int response, const char *s)
{
	return quick_len_n(response, s, strlen(s));
}

START_TEST(test_plain_request)
{
	static const char req[] = "GET /a/b?c=d&e HTTP/1.1\r\nHost: app.example\r\n"
	    "User-Agent: x y\r\nAccept:*/*\r\nX-Trail: v \t\r\nX-Obs: caf\xc3\xa9\r\n\r\nNEXT";
	struct msg_head q;

	msg_init(&q);
	ck_assert_uint_eq(h1head_parse(0, req, sizeof(req) - 1, &q), sizeof(req) - 1 - 4);
	ck_assert_int_eq(q.method, MSG_M_GET);
	ck_assert_str_eq(msg_s(&q, q.path), "/a/b?c=d&e");
	ck_assert_uint_eq(q.nf, 5);
	ck_assert_str_eq(msg_name(&q, &q.f[0]), "Host");
	ck_assert_str_eq(msg_value(&q, &q.f[0]), "app.example");
	ck_assert_str_eq(msg_value(&q, &q.f[2]), "*/*");
	ck_assert_str_eq(msg_value(&q, &q.f[3]), "v \t");	/* trailing whitespace kept, as http-parser does */
	ck_assert_uint_eq(q.keepalive, 1);
	ck_assert_uint_eq(q.has_length, 0);
	ck_assert_ptr_nonnull(msg_find(&q, "user-agent"));
	msg_free(&q);
}
END_TEST

START_TEST(test_same_as_http_parser)
{
	quick_same(0, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	quick_same(0, "GET / HTTP/1.0\r\nHost: a\r\n\r\n");
	quick_same(0, "GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n");
	quick_same(0, "GET / HTTP/1.1\r\nHost: a\r\nconnection: close\r\n\r\n");
	quick_same(0, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 00012\r\n\r\n");
	quick_same(0, "PATCH /%41\"<>{}|\\^`[]x HTTP/1.1\r\nHost: a\r\nX:  \tlead\r\n\r\n");
	quick_same(0, "DELETE / HTTP/1.1\r\n\r\n");
	quick_same(0, "OPTIONS /o HTTP/1.1\r\nhost: a\r\n!#$%&'*+-.^_`|~09az: v\r\n\r\n");
	quick_same(1, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: nginx\r\n\r\n");
	quick_same(1, "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n");
	quick_same(1, "HTTP/1.0 200 Fine Thanks\r\nContent-Length: 3\r\n\r\n");
	quick_same(1, "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n");
	quick_same(1, "HTTP/1.1 204 No Content\r\n\r\n");
	quick_same(1, "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n");
}
END_TEST

START_TEST(test_left_to_http_parser)
{
	static const char *const req[] = {
		"GET / HTTP/1.1\r\nHost: a\r\n",			/* incomplete */
		"GET / HTTP/1.1\nHost: a\r\n\r\n",			/* bare LF */
		"GET / HTTP/1.1\r\nHost: a\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",			/* bare CR */
		"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",			/* obs-fold */
		"GET / HTTP/1.1\r\nHost : a\r\n\r\n",			/* space before colon */
		"GET / HTTP/1.1\r\n: a\r\n\r\n",			/* no name */
		"GET / HTTP/1.1\r\nX:\r\n\r\n",				/* empty value */
		"GET / HTTP/1.1\r\nX: \r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",			/* a control byte */
		"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\ntransfer-encoding-x: a\r\n\r\n",	/* http-parser's prefix match */
		"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n",
		"GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1 \r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\n\r\n",			/* absolute-form */
		"OPTIONS * HTTP/1.1\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\n\r\n",
		"GET /a#f HTTP/1.1\r\n\r\n",				/* a fragment */
		"GET /\x80 HTTP/1.1\r\n\r\n",
		"GET  / HTTP/1.1\r\n\r\n",				/* two spaces */
		"GET / HTTP/1.1 \r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"GET / HTTP/1.2\r\n\r\n",
		"GET / http/1.1\r\n\r\n",
		"get / HTTP/1.1\r\n\r\n",				/* methods are case-sensitive */
		"PROPFIND / HTTP/1.1\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\n\r\n",				/* an empty line first */
		"GET / HTTP/1.1\r\n\r",
	};
	static const char *const resp[] = {
		"HTTP/1.1 200 OK\r\n\r\n",				/* ends at close */
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding-LefgHCnn-doicrng: cjunked\r\n"
		    "Content-Length: 5\r\n\r\n",				/* found by fuzz_http1_response */
		"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 20 X\r\nContent-Length: 0\r\n\r\n",
		"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(req) / sizeof(req[0]); i++)
		ck_assert_msg(quick_len(0, req[i]) == 0, "request %zu taken", i);
	for (i = 0; i < sizeof(resp) / sizeof(resp[0]); i++)
		ck_assert_msg(quick_len(1, resp[i]) == 0, "response %zu taken", i);
}
END_TEST

/* A byte at any place of a long value: refused when http-parser would refuse it, else the same head. */
START_TEST(test_value_bytes_at_every_place)
{
	static const unsigned char bad[] = { 0x00, 0x01, 0x0b, 0x1f, 0x7f };
	static const unsigned char good[] = { '\t', ' ', '~', 0x80, 0xff, '!' };
	char req[128];
	size_t pos, i, n;

	for (pos = 0; pos < 24; pos++) {
		for (i = 0; i < sizeof(bad); i++) {
			n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX: v%s\r\n\r\n",
			    "aaaaaaaaaaaaaaaaaaaaaaaa");
			req[19 + pos] = (char)bad[i];
			ck_assert_msg(quick_len_n(0, req, n) == 0, "byte %02x at %zu taken", bad[i], pos);
		}
		for (i = 0; i < sizeof(good); i++) {
			snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX: v%s\r\n\r\n",
			    "aaaaaaaaaaaaaaaaaaaaaaaa");
			req[19 + pos] = (char)good[i];
			quick_same(0, req);
		}
	}
}
END_TEST

START_TEST(test_limits_left_to_http_parser)
{
	char big[MSG_HEAD_MAX + 256];
	size_t n, i;

	/* More fields than a head may hold: http-parser's path answers 431. */
	n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\n");
	for (i = 0; i <= MSG_FIELDS_MAX; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X: %zu\r\n", i);
	snprintf(big + n, sizeof(big) - n, "\r\n");
	ck_assert_uint_eq(quick_len(0, big), 0);
	/* A target over MSG_TARGET_MAX: 414 there. */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', MSG_TARGET_MAX);
	strcpy(big + 5 + MSG_TARGET_MAX, " HTTP/1.1\r\n\r\n");
	ck_assert_uint_eq(quick_len(0, big), 0);
	/* A head over MSG_HEAD_MAX: 431 there. */
	n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX: ");
	memset(big + n, 'v', MSG_HEAD_MAX);
	strcpy(big + n + MSG_HEAD_MAX, "\r\n\r\n");
	ck_assert_uint_eq(quick_len(0, big), 0);
}
END_TEST

START_TEST(test_quick_feed_body_and_end)
{
	static const char req[] = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123";
	struct got g = { 0 };
	struct msg_head hd;
	struct h1 *h;

	msg_init(&hd);
	h = h1_new(H1_REQUEST, &hd, &got_events, &g);
	ck_assert_int_eq(h1_feed(h, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	ck_assert_int_eq(g.heads, 1);
	ck_assert_int_eq(h1_head_done(h), 1);
	ck_assert_int_eq(h1_in_message(h), 1);
	ck_assert_int_eq(h1_feed(h, "4567", 4), 4);
	ck_assert_int_eq(g.ends, 0);
	/* Stops right after the message. */
	ck_assert_int_eq(h1_feed(h, "89GET", 5), 2);
	ck_assert_int_eq(g.ends, 1);
	ck_assert_int_eq(h1_done(h), 1);
	ck_assert_uint_eq(g.bodylen, 10);
	ck_assert_int_eq(memcmp(g.body, "0123456789", 10), 0);
	ck_assert_int_eq(h1_eof(h), 0);
	/* The body is framed as it was read, whatever the head callback does to the head. */
	h1_reset(h);
	g = (struct got){ .rewrite = 1 };
	ck_assert_int_eq(h1_feed(h, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	ck_assert_int_eq(h1_feed(h, "456789", 6), 6);
	ck_assert_int_eq(g.ends, 1);
	ck_assert_uint_eq(g.bodylen, 10);
	/* A body cut by the peer's close. */
	h1_reset(h);
	ck_assert_int_eq(h1_feed(h, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	ck_assert_int_eq(h1_eof(h), -1);
	h1_free(h);
	msg_free(&hd);
}
END_TEST

START_TEST(test_quick_feed_no_body)
{
	static const char two[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
	struct got g = { 0 };
	struct msg_head hd;
	struct h1 *h;
	ssize_t n;

	msg_init(&hd);
	h = h1_new(H1_REQUEST, &hd, &got_events, &g);
	n = h1_feed(h, two, sizeof(two) - 1);
	ck_assert_int_eq(n, (ssize_t)(sizeof(two) - 1) / 2);
	ck_assert_int_eq(g.ends, 1);
	ck_assert_str_eq(msg_s(&hd, hd.path), "/1");
	h1_reset(h);
	ck_assert_int_eq(h1_feed(h, two + n, sizeof(two) - 1 - (size_t)n), n);
	ck_assert_int_eq(g.ends, 2);
	ck_assert_str_eq(msg_s(&hd, hd.path), "/2");
	h1_free(h);
	/* A response to HEAD: the head callback says "no body", Content-Length or not. */
	g = (struct got){ .skip = 1 };
	h = h1_new(H1_RESPONSE, &hd, &got_events, &g);
	ck_assert_int_eq(h1_feed(h, resp, sizeof(resp) - 1), (ssize_t)sizeof(resp) - 1 - 3);
	ck_assert_int_eq(h1_done(h), 1);
	ck_assert_uint_eq(g.bodylen, 0);
	ck_assert_uint_eq(hd.status, 200);
	ck_assert_str_eq(msg_s(&hd, hd.reason), "OK");
	h1_free(h);
	msg_free(&hd);
}
END_TEST

Suite *
suite_h1head(void)
{
	Suite *s = suite_create("h1head");
	TCase *tc = tcase_create("h1head");

	tcase_add_test(tc, test_plain_request);
	tcase_add_test(tc, test_same_as_http_parser);
	tcase_add_test(tc, test_left_to_http_parser);
	tcase_add_test(tc, test_value_bytes_at_every_place);
	tcase_add_test(tc, test_limits_left_to_http_parser);
	tcase_add_test(tc, test_quick_feed_body_and_end);
	tcase_add_test(tc, test_quick_feed_no_body);
	suite_add_tcase(s, tc);
	return s;
}
