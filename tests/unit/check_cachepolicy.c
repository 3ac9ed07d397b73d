/*
 * Unit tests for worker/cachepolicy.c: Cache-Control parsing (values,
 * quotes, invalid numbers, several fields), HTTP-dates in their three
 * forms, what a shared cache may store (status, directives, Authorization,
 * Set-Cookie, Vary: *), freshness lifetime (s-maxage > max-age > Expires >
 * heuristic), age, reuse (request directives, no-cache, max-stale against
 * must-revalidate), stale-if-error and the conditional answers.
 */
#include "config.h"

#include <string.h>

#include "tests/unit/suites.h"
#include "worker/cachepolicy.h"
#include "worker/message.h"

static struct msg_head rq, rs;

static void
setup(void)
{
	msg_init(&rq);
	msg_init(&rs);
	rq.method = MSG_M_GET;
	rs.status = 200;
}

static void
teardown(void)
{
	msg_free(&rq);
	msg_free(&rs);
}

/* msg_reset empties the method and status too: a fresh GET or 200 again. */
static void
reset_rq(void)
{
	msg_reset(&rq);
	rq.method = MSG_M_GET;
}

static void
reset_rs(void)
{
	msg_reset(&rs);
	rs.status = 200;
}

#define T0 1700000000	/* a response's arrival */

static int
storable(struct cachepol_times *t)
{
	return cachepol_storable(&rq, &rs, T0, T0, t);
}

START_TEST(cc_parse)
{
	struct cachecc cc;

	ck_assert_int_eq(msg_add(&rs, "Cache-Control", "Public, MAX-AGE=\"30\" , no-cache=\"a, b\""), 0);
	ck_assert_int_eq(msg_add(&rs, "Cache-Control", "s-maxage=99999999999, stale-if-error=5"), 0);
	cachepol_parse_cc(&rs, &cc);
	ck_assert(cc.public_ && cc.no_cache && cc.has_max_age && cc.has_s_maxage && cc.has_sie);
	ck_assert_uint_eq(cc.max_age, 30);
	ck_assert_uint_eq(cc.s_maxage, CACHECC_DELTA_MAX);
	ck_assert_uint_eq(cc.sie, 5);
	ck_assert(!cc.private_ && !cc.no_store && !cc.has_swr);
	msg_reset(&rs);
	ck_assert_int_eq(msg_add(&rs, "cache-control", "max-age=abc, max-stale, private"), 0);
	cachepol_parse_cc(&rs, &cc);
	ck_assert(cc.has_max_age && cc.max_age == 0);	/* invalid: stale */
	ck_assert(cc.has_max_stale && cc.max_stale == CACHECC_DELTA_MAX);
	ck_assert(cc.private_);
}
END_TEST

START_TEST(dates)
{
	ck_assert_int_eq(cachepol_parse_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
	ck_assert_int_eq(cachepol_parse_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
	ck_assert_int_eq(cachepol_parse_date("Sun Nov  6 08:49:37 1994"), 784111777);
	ck_assert_int_eq(cachepol_parse_date("0"), -1);
	ck_assert_int_eq(cachepol_parse_date("Sun, 06  Nov 1994 08:49:37 GMT"), -1);
	ck_assert_int_eq(cachepol_parse_date("Sun, 06 Nov 1994 8:49:37 GMT"), -1);
	ck_assert_int_eq(cachepol_parse_date("Sun, 06 Nov 1994 08:49:37 GMT trailing"), -1);
	ck_assert_int_eq(cachepol_parse_date(NULL), -1);
}
END_TEST

START_TEST(storable_rules)
{
	struct cachepol_times t;

	/* Nothing explicit, no Last-Modified: nothing to gain. */
	ck_assert(!storable(&t));
	msg_add(&rs, "Cache-Control", "max-age=60");
	ck_assert(storable(&t));
	ck_assert_uint_eq(t.lifetime, 60);
	rq.method = MSG_M_HEAD;
	ck_assert(!storable(&t));
	rq.method = MSG_M_GET;
	rs.status = 206;
	ck_assert(!storable(&t));
	rs.status = 200;
	msg_add(&rq, "Authorization", "Basic eDp5");
	ck_assert(!storable(&t));
	reset_rs();
	msg_add(&rs, "Cache-Control", "s-maxage=60");
	ck_assert(storable(&t));
	ck_assert(t.no_stale);		/* s-maxage implies proxy-revalidate */
	reset_rq();
	msg_add(&rs, "Set-Cookie", "a=b");
	ck_assert(storable(&t));		/* s-maxage: shared on purpose */
	reset_rs();
	msg_add(&rs, "Cache-Control", "max-age=60");
	msg_add(&rs, "Set-Cookie", "a=b");
	ck_assert(!storable(&t));
	reset_rs();
	msg_add(&rs, "Cache-Control", "max-age=60, private");
	ck_assert(!storable(&t));
	reset_rs();
	msg_add(&rs, "Cache-Control", "max-age=60");
	msg_add(&rs, "Vary", "Accept, *");
	ck_assert(!storable(&t));
	reset_rs();
	msg_add(&rs, "Cache-Control", "max-age=60");
	msg_add(&rq, "Cache-Control", "no-store");
	ck_assert(!storable(&t));
}
END_TEST

START_TEST(lifetimes)
{
	struct cachepol_times t;

	msg_add(&rs, "Date", "Tue, 14 Nov 2023 22:13:20 GMT");	/* T0 */
	msg_add(&rs, "Expires", "Tue, 14 Nov 2023 22:15:00 GMT");
	ck_assert(storable(&t));
	ck_assert_uint_eq(t.lifetime, 100);
	msg_add(&rs, "Cache-Control", "max-age=10");
	ck_assert(storable(&t));
	ck_assert_uint_eq(t.lifetime, 10);
	reset_rs();
	msg_add(&rs, "Expires", "garbage");
	msg_add(&rs, "ETag", "\"x\"");
	ck_assert(storable(&t));
	ck_assert_uint_eq(t.lifetime, 0);
	/* Heuristic: 10 % of the time since Last-Modified, for heuristic statuses only. */
	reset_rs();
	msg_add(&rs, "Date", "Tue, 14 Nov 2023 22:13:20 GMT");
	msg_add(&rs, "Last-Modified", "Tue, 14 Nov 2023 21:13:20 GMT");
	ck_assert(storable(&t));
	ck_assert_uint_eq(t.lifetime, 360);
	rs.status = 302;
	ck_assert(!storable(&t));
	rs.status = 404;
	ck_assert(storable(&t));
}
END_TEST

START_TEST(ages)
{
	struct cachepol_times t;

	msg_add(&rs, "Cache-Control", "max-age=60");
	msg_add(&rs, "Age", "15");
	/* Asked at T0 - 2: two seconds in flight count too. */
	ck_assert(cachepol_storable(&rq, &rs, T0 - 2, T0, &t));
	ck_assert_uint_eq(t.initial_age, 17);
	ck_assert_uint_eq(cachepol_age(&t, T0 + 10), 27);
	reset_rs();
	msg_add(&rs, "Cache-Control", "max-age=60");
	msg_add(&rs, "Age", "7200, 0");
	ck_assert(storable(&t));
	ck_assert_uint_eq(t.initial_age, 7200);
	reset_rs();
	msg_add(&rs, "Cache-Control", "max-age=60");
	msg_add(&rs, "Age", "15");
	ck_assert(cachepol_storable(&rq, &rs, T0 - 2, T0, &t));
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 10), CACHEPOL_FRESH);
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 43), CACHEPOL_STALE);
	/* A Date in the past is an apparent age. */
	reset_rs();
	msg_add(&rs, "Cache-Control", "max-age=60");
	msg_add(&rs, "Date", "Tue, 14 Nov 2023 22:12:20 GMT");	/* T0 - 60 */
	ck_assert(storable(&t));
	ck_assert_uint_eq(t.initial_age, 60);
	ck_assert_int_eq(cachepol_use(&rq, &t, T0), CACHEPOL_STALE);
}
END_TEST

START_TEST(reuse)
{
	struct cachepol_times t;

	msg_add(&rs, "Cache-Control", "max-age=60, stale-if-error=30");
	ck_assert(storable(&t));
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 5), CACHEPOL_FRESH);
	msg_add(&rq, "Cache-Control", "max-age=2");
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 5), CACHEPOL_STALE);
	reset_rq();
	msg_add(&rq, "Cache-Control", "min-fresh=58");
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 5), CACHEPOL_STALE);
	reset_rq();
	msg_add(&rq, "Cache-Control", "no-cache");
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 5), CACHEPOL_BYPASS);
	reset_rq();
	msg_add(&rq, "Pragma", "no-cache");
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 5), CACHEPOL_BYPASS);
	reset_rq();
	msg_add(&rq, "Cache-Control", "max-stale=20");
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 70), CACHEPOL_FRESH);
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 90), CACHEPOL_STALE);
	ck_assert(cachepol_stale_if_error(&t, T0 + 80));
	ck_assert(!cachepol_stale_if_error(&t, T0 + 100));
	/* must-revalidate: never served stale, whatever the client accepts. */
	reset_rs();
	msg_add(&rs, "Cache-Control", "max-age=60, must-revalidate, stale-if-error=30");
	ck_assert(storable(&t));
	ck_assert_int_eq(cachepol_use(&rq, &t, T0 + 70), CACHEPOL_STALE);
	ck_assert(!cachepol_stale_if_error(&t, T0 + 70));
	/* no-cache in the response: always validated. */
	reset_rs();
	reset_rq();
	msg_add(&rs, "Cache-Control", "no-cache, max-age=60");
	ck_assert(storable(&t));
	ck_assert_int_eq(cachepol_use(&rq, &t, T0), CACHEPOL_STALE);
}
END_TEST

START_TEST(conditionals)
{
	const char *lm = "Tue, 14 Nov 2023 21:13:20 GMT";

	ck_assert(!cachepol_not_modified(&rq, "\"a\"", lm));
	msg_add(&rq, "If-None-Match", "\"b\", W/\"a\"");
	ck_assert(cachepol_not_modified(&rq, "\"a\"", lm));
	ck_assert(cachepol_not_modified(&rq, "W/\"a\"", NULL));
	ck_assert(!cachepol_not_modified(&rq, "\"c\"", lm));
	ck_assert(!cachepol_not_modified(&rq, NULL, lm));
	reset_rq();
	msg_add(&rq, "If-None-Match", "*");
	ck_assert(cachepol_not_modified(&rq, "\"z\"", NULL));
	/* If-Modified-Since only without If-None-Match. */
	reset_rq();
	msg_add(&rq, "If-Modified-Since", "Tue, 14 Nov 2023 21:13:20 GMT");
	ck_assert(cachepol_not_modified(&rq, NULL, lm));
	ck_assert(!cachepol_not_modified(&rq, NULL, "Tue, 14 Nov 2023 21:13:21 GMT"));
	ck_assert(!cachepol_not_modified(&rq, NULL, NULL));
	msg_add(&rq, "If-None-Match", "\"other\"");
	ck_assert(!cachepol_not_modified(&rq, "\"a\"", lm));
}
END_TEST

Suite *
suite_cachepolicy(void)
{
	Suite *s = suite_create("cachepolicy");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, cc_parse);
	tcase_add_test(tc, dates);
	tcase_add_test(tc, storable_rules);
	tcase_add_test(tc, lifetimes);
	tcase_add_test(tc, ages);
	tcase_add_test(tc, reuse);
	tcase_add_test(tc, conditionals);
	suite_add_tcase(s, tc);
	return s;
}
