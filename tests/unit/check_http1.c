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
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
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
	    "X-Forwarded-Host: app.example.com\r\nX-Request-Id: abc\r\nTE: trailers\r\n\r\n");
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
	suite_add_tcase(s, tc);
	return s;
}
