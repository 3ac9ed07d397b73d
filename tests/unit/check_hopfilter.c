/* Unit tests for agent/hopfilter.c: the fields that never cross haloyd-tunnel. */
#include "config.h"

#include <string.h>

#include "agent/hopfilter.h"
#include "tests/unit/suites.h"

START_TEST(names)
{
	static const char *const hop[] = { "connection", "Keep-Alive", "PROXY-CONNECTION",
		"transfer-encoding", "Upgrade", "http2-settings" };
	static const char *const pass[] = { "content-length", "trailer", "te", "host",
		"x-forwarded-for", "connectionx", "keep", "" };
	unsigned i;

	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		ck_assert_msg(hopfilter_is_hop(hop[i], strlen(hop[i])), "%s passed", hop[i]);
	for (i = 0; i < sizeof(pass) / sizeof(pass[0]); i++)
		ck_assert_msg(!hopfilter_is_hop(pass[i], strlen(pass[i])), "%s dropped", pass[i]);
	/* The length counts: a prefix of a hop name is not one. */
	ck_assert(!hopfilter_is_hop("connection", 4));
}
END_TEST

START_TEST(fields)
{
	struct msg_head h;
	static const int drop[] = { 1, 1, 0, 1, 0, 1, 0, 1, 0 };
	uint32_t i;

	msg_init(&h);
	ck_assert_int_eq(msg_add(&h, "Connection", "close, X-Private"), 0);
	ck_assert_int_eq(msg_add(&h, "Keep-Alive", "timeout=5"), 0);
	ck_assert_int_eq(msg_add(&h, "X-Public", "1"), 0);
	ck_assert_int_eq(msg_add(&h, "x-private", "2"), 0);	/* listed by Connection */
	ck_assert_int_eq(msg_add(&h, "TE", "trailers"), 0);	/* the one TE HTTP/2 allows */
	ck_assert_int_eq(msg_add(&h, "te", "gzip"), 0);
	ck_assert_int_eq(msg_add(&h, "Content-Length", "5"), 0);
	ck_assert_int_eq(msg_add(&h, "Transfer-Encoding", "chunked"), 0);
	ck_assert_int_eq(msg_add(&h, "Close", "x"), 0);	/* "close" is listed: a field of that name goes */
	for (i = 0; i < h.nf; i++)
		ck_assert_msg(hopfilter_drop(&h, i) == (drop[i] || i == 8), "field %u (%s)", i,
		    msg_name(&h, &h.f[i]));
	msg_free(&h);
}
END_TEST

START_TEST(no_connection_field)
{
	struct msg_head h;

	msg_init(&h);
	ck_assert_int_eq(msg_add(&h, "X-Private", "2"), 0);
	ck_assert_int_eq(msg_add(&h, "Upgrade", "websocket"), 0);
	ck_assert(!hopfilter_drop(&h, 0));
	ck_assert(hopfilter_drop(&h, 1));
	msg_free(&h);
}
END_TEST

Suite *
suite_hopfilter(void)
{
	Suite *s = suite_create("hopfilter");
	TCase *tc = tcase_create("hopfilter");

	tcase_add_test(tc, names);
	tcase_add_test(tc, fields);
	tcase_add_test(tc, no_connection_field);
	suite_add_tcase(s, tc);
	return s;
}
