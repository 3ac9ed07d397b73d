/* Unit tests for agent/h2h1.c: HTTP/2 request fields into an HTTP/1.1 head and back. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "agent/h2h1.h"
#include "worker/buf.h"
#include "worker/http1.h"
#include "tests/unit/suites.h"

/* A request as the proxy's HEADERS carry it: "name" "value" pairs, NULL-terminated. */
static void
request(struct msg_head *r, const char *const *nv)
{
	msg_init(r);
	for (; nv[0] != NULL; nv += 2) {
		if (nv[0][0] == ':')
			ck_assert_int_eq(h2h1_pseudo(r, nv[0], strlen(nv[0]), nv[1], strlen(nv[1])), 0);
		else
			ck_assert_int_eq(msg_add(r, nv[0], nv[1]), 0);
	}
}

/* The HTTP/1.1 head h1_write_request makes of it, NUL-terminated (caller frees). */
static char *
written(const struct msg_head *r)
{
	struct buf b = { .data = malloc(BUF_SIZE) };
	char *out;

	ck_assert_int_eq(h1_write_request(&b, r), 0);
	out = strndup(b.data + b.off, b.len);
	free(b.data);
	return out;
}

START_TEST(get_with_authority)
{
	static const char *const nv[] = { ":method", "GET", ":scheme", "https", ":path",
		"/a?b=1", ":authority", "app.example.com", "accept", "*/*", "te", "trailers",
		"host", "other.example.com", NULL };
	struct msg_head r;
	char *h;

	request(&r, nv);
	ck_assert_int_eq(h2h1_prepare(&r, 1), 0);
	h = written(&r);
	ck_assert_str_eq(h, "GET /a?b=1 HTTP/1.1\r\naccept: */*\r\nte: trailers\r\n"
	    "Host: app.example.com\r\n\r\n");
	free(h);
	msg_free(&r);
}
END_TEST

/* HAProxy sends an HTTP/1.1 client's request with host and no :authority. */
START_TEST(host_without_authority)
{
	static const char *const nv[] = { ":method", "GET", ":scheme", "https", ":path", "/",
		"host", "h1.example.com", NULL };
	struct msg_head r;
	char *h;

	request(&r, nv);
	ck_assert_int_eq(h2h1_prepare(&r, 1), 0);
	h = written(&r);
	ck_assert_str_eq(h, "GET / HTTP/1.1\r\nHost: h1.example.com\r\n\r\n");
	free(h);
	msg_free(&r);
}
END_TEST

START_TEST(framing)
{
	static const char *const with_length[] = { ":method", "POST", ":path", "/u",
		":authority", "a", "content-length", "5", NULL };
	static const char *const without[] = { ":method", "PUT", ":path", "/u", ":authority", "a",
		NULL };
	struct msg_head r;
	char *h;

	request(&r, with_length);
	ck_assert_int_eq(h2h1_prepare(&r, 0), 0);
	ck_assert(r.has_length && r.length == 5 && !r.chunked);
	h = written(&r);
	ck_assert_str_eq(h, "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
	free(h);
	msg_free(&r);
	/* No length and DATA to come: chunked as it arrives. */
	request(&r, without);
	ck_assert_int_eq(h2h1_prepare(&r, 0), 0);
	ck_assert(r.chunked);
	h = written(&r);
	ck_assert_str_eq(h, "PUT /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
	free(h);
	msg_free(&r);
	/* END_STREAM on the head: no body, no framing. */
	request(&r, without);
	ck_assert_int_eq(h2h1_prepare(&r, 1), 0);
	ck_assert(!r.chunked && !r.has_length);
	msg_free(&r);
}
END_TEST

START_TEST(refused)
{
	static const char *const no_host[] = { ":method", "GET", ":path", "/", NULL };
	static const char *const connect[] = { ":method", "CONNECT", ":authority", "a:443", NULL };
	static const char *const bad_length[] = { ":method", "POST", ":path", "/", ":authority",
		"a", "content-length", "5x", NULL };
	static const char *const two_lengths[] = { ":method", "POST", ":path", "/", ":authority",
		"a", "content-length", "5", "content-length", "6", NULL };
	static const char *const *const cases[] = { no_host, connect, bad_length, two_lengths };
	struct msg_head r;
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		request(&r, cases[i]);
		ck_assert_msg(h2h1_prepare(&r, 1) == -1, "case %u accepted", i);
		msg_free(&r);
	}
}
END_TEST

START_TEST(method_names)
{
	static const char *const nv[] = { ":method", "PROPFIND", ":path", "/d", ":authority", "a",
		NULL };
	struct msg_head r;
	char *h;

	request(&r, nv);
	ck_assert_int_eq(h2h1_prepare(&r, 1), 0);
	h = written(&r);
	ck_assert_str_eq(h, "PROPFIND /d HTTP/1.1\r\nHost: a\r\n\r\n");
	free(h);
	msg_free(&r);
}
END_TEST

START_TEST(last_chunk_with_trailers)
{
	struct msg_head r;
	struct bytequeue q = { 0 };

	msg_init(&r);
	ck_assert_int_eq(msg_add(&r, "x-head", "1"), 0);
	ck_assert_int_eq(msg_add_n(&r, "x-sum", 5, "abc", 3, 1), 0);
	ck_assert_int_eq(msg_add_n(&r, "content-length", 14, "9", 1, 1), 0);
	ck_assert_int_eq(h2h1_last_chunk(&r, &q, 1024), 0);
	ck_assert_uint_eq(q.len, strlen("0\r\nx-sum: abc\r\n\r\n"));
	ck_assert_int_eq(memcmp(bytequeue_head(&q), "0\r\nx-sum: abc\r\n\r\n", q.len), 0);
	bytequeue_consume(&q, q.len);
	ck_assert_int_eq(h2h1_last_chunk(&r, &q, 8), -1);	/* over the cap */
	bytequeue_free(&q);
	msg_free(&r);
}
END_TEST

/* A response head from the app as HTTP/2 pairs: lower-case, no hop-by-hop field. */
START_TEST(response_nv)
{
	struct msg_head h;
	nghttp2_nv nv[8];
	size_t n;

	msg_init(&h);
	ck_assert_int_eq(msg_add(&h, "Content-Type", "text/plain"), 0);
	ck_assert_int_eq(msg_add(&h, "Connection", "keep-alive, X-Hop"), 0);
	ck_assert_int_eq(msg_add(&h, "X-Hop", "1"), 0);
	ck_assert_int_eq(msg_add(&h, "Transfer-Encoding", "chunked"), 0);
	ck_assert_int_eq(msg_add(&h, "Set-Cookie", "a=1"), 0);
	ck_assert_int_eq(msg_add(&h, "Set-Cookie", "b=2"), 0);
	n = h2h1_nv(&h, 0, h.nf, nv, 1);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(memcmp(nv[1].name, "content-type", nv[1].namelen), 0);
	ck_assert_uint_eq(nv[1].namelen, 12);
	ck_assert_int_eq(memcmp(nv[2].name, "set-cookie", 10), 0);
	ck_assert_int_eq(memcmp(nv[3].value, "b=2", 3), 0);
	msg_free(&h);
}
END_TEST

Suite *
suite_h2h1(void)
{
	Suite *s = suite_create("h2h1");
	TCase *tc = tcase_create("h2h1");

	tcase_add_test(tc, get_with_authority);
	tcase_add_test(tc, host_without_authority);
	tcase_add_test(tc, framing);
	tcase_add_test(tc, refused);
	tcase_add_test(tc, method_names);
	tcase_add_test(tc, last_chunk_with_trailers);
	tcase_add_test(tc, response_nv);
	suite_add_tcase(s, tc);
	return s;
}
