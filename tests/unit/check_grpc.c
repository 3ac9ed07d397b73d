/*
 * Unit tests for worker/grpc.c: which requests are gRPC calls, the HTTP to
 * gRPC status table (and that HTTP/1.1 and non-gRPC requests keep their HTTP
 * answer), grpc-message percent-encoding, the strict grpc-timeout parser
 * (units, rounding, the 8-digit bound, everything invalid ignored), and the
 * trailers-only answer head.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "tests/unit/suites.h"
#include "worker/grpc.h"
#include "worker/message.h"

static struct msg_head h;

static void
setup(void)
{
	msg_init(&h);
}

static void
teardown(void)
{
	msg_free(&h);
}

/* A request of HTTP version major with content-type ct (NULL: none). */
static void
req(unsigned major, const char *ct)
{
	msg_reset(&h);
	h.method = MSG_M_POST;
	h.major = (uint8_t)major;
	if (ct != NULL)
		ck_assert_int_eq(msg_add(&h, "content-type", ct), 0);
}

static const char *
field(const char *name)
{
	const struct msg_field *f = msg_find(&h, name);

	return f != NULL ? msg_value(&h, f) : NULL;
}

START_TEST(grpc_call_content_types)
{
	static const char *const yes[] = {
		"application/grpc", "application/grpc+proto", "application/grpc+json",
		"Application/GRPC", "application/grpc-web", "application/grpc-web+proto",
		"application/grpc; charset=utf-8",
	};
	static const char *const no[] = {
		"application/grpcx", "application/json", "application/grp", "text/grpc", "",
		" application/grpc",
	};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		req(2, yes[i]);
		ck_assert_msg(grpc_is_call(&h), "%s", yes[i]);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		req(2, no[i]);
		ck_assert_msg(!grpc_is_call(&h), "%s", no[i]);
	}
	req(2, NULL);
	ck_assert(!grpc_is_call(&h));
	ck_assert(!grpc_is_call(NULL));
}
END_TEST

START_TEST(grpc_status_table)
{
	static const unsigned map[][2] = {
		{ 400, 13 }, { 401, 16 }, { 403, 7 }, { 404, 12 }, { 408, 2 }, { 413, 8 },
		{ 414, 8 }, { 429, 8 }, { 431, 8 }, { 500, 13 }, { 501, 12 }, { 502, 14 },
		{ 503, 14 }, { 504, 4 }, { 505, 2 }, { 418, 2 },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		ck_assert_msg(grpc_status_of(map[i][0]) == map[i][1], "%u", map[i][0]);
		ck_assert_ptr_nonnull(grpc_message_of(map[i][0]));
	}
	ck_assert_str_eq(grpc_message_of(502), "haloyd: no backend available");
}
END_TEST

START_TEST(grpc_local_status_only_for_h2_calls)
{
	req(2, "application/grpc");
	ck_assert_int_eq(grpc_local_status(&h, 502), 14);
	ck_assert_int_eq(grpc_local_status(&h, 504), 4);
	ck_assert_int_eq(grpc_local_status(&h, 404), 12);
	ck_assert_int_eq(grpc_local_status(&h, 413), 8);
	/* Redirects and successes of ours stay HTTP. */
	ck_assert_int_eq(grpc_local_status(&h, 301), -1);
	ck_assert_int_eq(grpc_local_status(&h, 200), -1);
	/* Over HTTP/1.1 no gRPC client is listening: the HTTP answer stays. */
	req(1, "application/grpc");
	ck_assert_int_eq(grpc_local_status(&h, 502), -1);
	req(2, "text/plain");
	ck_assert_int_eq(grpc_local_status(&h, 502), -1);
	ck_assert_int_eq(grpc_local_status(NULL, 502), -1);
}
END_TEST

START_TEST(grpc_message_encoding)
{
	char out[64];

	ck_assert_int_eq(grpc_percent_encode("no backend: a b~", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "no backend: a b~");
	ck_assert_int_eq(grpc_percent_encode("100% \xc3\xa9\t\x7f", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "100%25 %C3%A9%09%7F");
	ck_assert_int_eq(grpc_percent_encode("", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	/* Exactly fitting, and one byte short. */
	ck_assert_int_eq(grpc_percent_encode("abc", out, 4), 0);
	ck_assert_int_eq(grpc_percent_encode("abcd", out, 4), -1);
	ck_assert_int_eq(grpc_percent_encode("a%", out, 5), 0);
	ck_assert_str_eq(out, "a%25");
	ck_assert_int_eq(grpc_percent_encode("a%", out, 4), -1);
}
END_TEST

static int
tparse(const char *v, uint64_t *ms)
{
	*ms = 12345;
	return grpc_timeout_parse(v, strlen(v), ms);
}

START_TEST(grpc_timeout_units)
{
	uint64_t ms;

	ck_assert_int_eq(tparse("5S", &ms), 0);
	ck_assert_uint_eq(ms, 5000);
	ck_assert_int_eq(tparse("200m", &ms), 0);
	ck_assert_uint_eq(ms, 200);
	ck_assert_int_eq(tparse("2M", &ms), 0);
	ck_assert_uint_eq(ms, 120000);
	ck_assert_int_eq(tparse("1H", &ms), 0);
	ck_assert_uint_eq(ms, 3600000);
	/* Below a millisecond rounds up: a deadline never comes before the client's. */
	ck_assert_int_eq(tparse("100u", &ms), 0);
	ck_assert_uint_eq(ms, 1);
	ck_assert_int_eq(tparse("1000u", &ms), 0);
	ck_assert_uint_eq(ms, 1);
	ck_assert_int_eq(tparse("1001u", &ms), 0);
	ck_assert_uint_eq(ms, 2);
	ck_assert_int_eq(tparse("1n", &ms), 0);
	ck_assert_uint_eq(ms, 1);
	ck_assert_int_eq(tparse("0m", &ms), 0);
	ck_assert_uint_eq(ms, 0);
	ck_assert_int_eq(tparse("00000300m", &ms), 0);
	ck_assert_uint_eq(ms, 300);
	/* The largest the spec allows fits. */
	ck_assert_int_eq(tparse("99999999H", &ms), 0);
	ck_assert_uint_eq(ms, UINT64_C(99999999) * 3600000);
}
END_TEST

START_TEST(grpc_timeout_invalid_ignored)
{
	static const char *const bad[] = {
		"", "S", "5", "5s", "5x", "123456789S", "-5S", "+5S", " 5S", "5S ", "5 S", "5.5S",
		"5SS", "0x5S", "5\0S",
	};
	size_t i;
	uint64_t ms;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(tparse(bad[i], &ms) == -1, "\"%s\"", bad[i]);
	/* A NUL inside the value (length says 3) is no digit. */
	ck_assert_int_eq(grpc_timeout_parse("5\0S", 3, &ms), -1);
}
END_TEST

START_TEST(grpc_timeout_of_request)
{
	uint64_t ms = 0;

	req(2, "application/grpc");
	ck_assert_int_eq(grpc_timeout_of(&h, &ms), -1);
	ck_assert_int_eq(msg_add(&h, "grpc-timeout", "300m"), 0);
	ck_assert_int_eq(grpc_timeout_of(&h, &ms), 0);
	ck_assert_uint_eq(ms, 300);
	req(2, "application/grpc");
	ck_assert_int_eq(msg_add(&h, "Grpc-Timeout", "soon"), 0);
	ck_assert_int_eq(grpc_timeout_of(&h, &ms), -1);
}
END_TEST

START_TEST(grpc_answer_is_trailers_only)
{
	req(2, "application/grpc");
	ck_assert_int_eq(msg_add(&h, "x-left-over", "1"), 0);
	ck_assert_int_eq(grpc_answer(&h, 14, "haloyd: no backend 100%"), 0);
	ck_assert_uint_eq(h.status, 200);
	ck_assert_int_eq(h.has_length, 0);
	ck_assert_int_eq(h.chunked, 0);
	ck_assert_uint_eq(msg_nheaders(&h), 3);
	ck_assert_uint_eq(h.ntrailers, 0);
	ck_assert_str_eq(field("content-type"), "application/grpc");
	ck_assert_str_eq(field("grpc-status"), "14");
	ck_assert_str_eq(field("grpc-message"), "haloyd: no backend 100%25");
	ck_assert_ptr_null(field("x-left-over"));
}
END_TEST

Suite *
suite_grpc(void)
{
	Suite *s = suite_create("grpc");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, grpc_call_content_types);
	tcase_add_test(tc, grpc_status_table);
	tcase_add_test(tc, grpc_local_status_only_for_h2_calls);
	tcase_add_test(tc, grpc_message_encoding);
	tcase_add_test(tc, grpc_timeout_units);
	tcase_add_test(tc, grpc_timeout_invalid_ignored);
	tcase_add_test(tc, grpc_timeout_of_request);
	tcase_add_test(tc, grpc_answer_is_trailers_only);
	suite_add_tcase(s, tc);
	return s;
}
