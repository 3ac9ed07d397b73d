/*
 * Unit tests for tunnel/hop.c, the tunnel process's request step, on a
 * worker set up by hand with no agent attached: a request without a valid
 * haloyd-tunnel field is a 400, one for a tunnel with no agent a 503 with
 * Retry-After, and the internal fields are gone from the head either way
 * the exchange would see it.
 */
#include "config.h"

#include <string.h>

#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "tunnel/hop.h"
#include "worker/context.h"
#include "worker/message.h"
#include "worker/request.h"
#include "worker/upstream.h"

static struct worker w;
static struct msg_head h;
static struct request r;

static void
setup(void)
{
	tw_worker_init(&w);
	w.cfg.connect_timeout_ms = 1000;
	w.cfg.response_timeout_ms = 1000;
	w.cfg.access_log = 0;
	w.cfg.access_log_sample = 1;
	ck_assert_int_eq(h2client_pools_init(&w), 0);
	msg_init(&h);
	memset(&r, 0, sizeof(r));
	msg_init(&r.ans.head);
}

static void
teardown(void)
{
	request_answer_free(&r.ans);
	msg_free(&h);
	h2client_pools_free(&w);
	tw_run_ms(5);
	buf_pool_clear(&w.bufs);
	ev_loop_free(w.loop);
}

static void
step(const char *text)
{
	tw_parse_head(&h, text);
	ck_assert_int_eq(hop_step(&w, &(struct request_peer){ "", 0, 0, NULL }, &h, util_now_us(), NULL,
	    NULL, &r), 0);
	ck_assert_ptr_null(r.ex);
}

static const char *
field(const struct msg_head *m, const char *name)
{
	const struct msg_field *f = msg_find(m, name);

	return f != NULL ? msg_value(m, f) : NULL;
}

START_TEST(hop_without_a_name_400)
{
	step("GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
	ck_assert_uint_eq(r.ans.head.status, 400);
}
END_TEST

START_TEST(hop_bad_name_400)
{
	step("GET / HTTP/1.1\r\nHost: app.test\r\nHaloyd-Tunnel: Bad_Name\r\n\r\n");
	ck_assert_uint_eq(r.ans.head.status, 400);
}
END_TEST

START_TEST(hop_no_agent_503_retry_after)
{
	step("GET / HTTP/1.1\r\nHost: app.test\r\nhaloyd-tunnel: app1\r\n"
	    "Haloyd-Tunnel-Balance: round-robin\r\nhaloyd-tunnel-x: 1\r\nX-Keep: 1\r\n\r\n");
	ck_assert_uint_eq(r.ans.head.status, 503);
	ck_assert_str_eq(field(&r.ans.head, "retry-after"), "5");
	ck_assert_ptr_null(field(&h, "haloyd-tunnel"));
	ck_assert_ptr_null(field(&h, "haloyd-tunnel-balance"));
	ck_assert_ptr_null(field(&h, "haloyd-tunnel-x"));
	ck_assert_str_eq(field(&h, "x-keep"), "1");
	ck_assert_str_eq(field(&h, "host"), "app.test");
}
END_TEST

Suite *
suite_hop(void)
{
	Suite *s = suite_create("hop");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, hop_without_a_name_400);
	tcase_add_test(tc, hop_bad_name_400);
	tcase_add_test(tc, hop_no_agent_503_retry_after);
	suite_add_tcase(s, tc);
	return s;
}
