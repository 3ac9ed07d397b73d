/*
 * Unit tests for worker/cachecdn.c: CDN-Cache-Control parsed as an RFC
 * 8941 Dictionary (integers, Booleans, strings, tokens, parameters,
 * several lines), invalid fields ignored whole (unknown item, upper-case
 * key, space around "=", trailing comma), wrong types ignored alone, and
 * its precedence over Cache-Control and Expires in cachepol_storable.
 */
#include "config.h"

#include <string.h>

#include "tests/unit/suites.h"
#include "worker/cachecdn.h"
#include "worker/cachepolicy.h"
#include "worker/message.h"

static struct msg_head rs;

static void
setup(void)
{
	msg_init(&rs);
	rs.status = 200;
}

static void
teardown(void)
{
	msg_free(&rs);
}

/* The field set to v (one line); cachecdn_parse's answer. */
static int
parse(const char *v, struct cachecc *cc)
{
	msg_reset(&rs);
	rs.status = 200;
	ck_assert_int_eq(msg_add(&rs, "CDN-Cache-Control", v), 0);
	return cachecdn_parse(&rs, cc);
}

START_TEST(valid_dictionaries)
{
	struct cachecc cc;

	ck_assert_int_eq(parse("max-age=3600", &cc), 1);
	ck_assert(cc.has_max_age);
	ck_assert_uint_eq(cc.max_age, 3600);
	ck_assert_int_eq(parse("foobar, max-age=60;x=1, no-store, private=?0", &cc), 1);
	ck_assert(cc.has_max_age && cc.no_store && !cc.private_);
	ck_assert_uint_eq(cc.max_age, 60);
	ck_assert_int_eq(parse("no-cache=\"set-cookie\", s-maxage=5, stale-if-error=9", &cc), 1);
	ck_assert(cc.no_cache && cc.has_s_maxage && cc.has_sie);
	ck_assert_uint_eq(cc.sie, 9);
	ck_assert_int_eq(parse("max-age=99999999999", &cc), 1);
	ck_assert_uint_eq(cc.max_age, CACHECC_DELTA_MAX);
	/* A wrong type drops the directive, not the field. */
	ck_assert_int_eq(parse("max-age=\"10000\", public", &cc), 1);
	ck_assert(!cc.has_max_age && cc.public_);
	ck_assert_int_eq(parse("max-age=1.5, token=abc, b=:aGk=:", &cc), 1);
	ck_assert(!cc.has_max_age);
	/* Two lines are one dictionary. */
	msg_reset(&rs);
	ck_assert_int_eq(msg_add(&rs, "CDN-Cache-Control", "max-age=10"), 0);
	ck_assert_int_eq(msg_add(&rs, "cdn-cache-control", "must-revalidate"), 0);
	ck_assert_int_eq(cachecdn_parse(&rs, &cc), 1);
	ck_assert(cc.has_max_age && cc.must_revalidate);
}
END_TEST

START_TEST(invalid_fields_ignored)
{
	static const char *const bad[] = {
		"max-age=10000, &&&&&", "MaX-aGe=3600", "max-age =100", "max-age= 100",
		"max-age=10,", "max-age=1234567890123456", "a=\"open", "a=?2", "a;=1", "",
	};
	struct cachecc cc;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i], &cc) == 0, "%s", bad[i]);
		ck_assert(!cc.has_max_age);
	}
	msg_reset(&rs);
	ck_assert_int_eq(cachecdn_parse(&rs, &cc), 0);
}
END_TEST

START_TEST(precedence_in_storable)
{
	struct msg_head rq;
	struct cachepol_times t;

	msg_init(&rq);
	rq.method = MSG_M_GET;
	/* CDN-Cache-Control rules: Cache-Control's no-store is not ours. */
	ck_assert_int_eq(parse("max-age=10000", &(struct cachecc){ 0 }), 1);
	ck_assert_int_eq(msg_add(&rs, "Cache-Control", "no-store"), 0);
	ck_assert_int_eq(cachepol_storable(&rq, &rs, 1000, 1000, &t), 1);
	ck_assert_uint_eq(t.lifetime, 10000);
	/* ... and its private is, whatever Cache-Control and Expires say. */
	ck_assert_int_eq(parse("private", &(struct cachecc){ 0 }), 1);
	ck_assert_int_eq(msg_add(&rs, "Cache-Control", "max-age=10000"), 0);
	ck_assert_int_eq(cachepol_storable(&rq, &rs, 1000, 1000, &t), 0);
	/* An invalid one is as if absent. */
	ck_assert_int_eq(parse("max-age=10000, &&", &(struct cachecc){ 0 }), 0);
	ck_assert_int_eq(msg_add(&rs, "Cache-Control", "no-store"), 0);
	ck_assert_int_eq(cachepol_storable(&rq, &rs, 1000, 1000, &t), 0);
	msg_free(&rq);
}
END_TEST

Suite *
suite_cachecdn(void)
{
	Suite *s = suite_create("cachecdn");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, valid_dictionaries);
	tcase_add_test(tc, invalid_fields_ignored);
	tcase_add_test(tc, precedence_in_storable);
	suite_add_tcase(s, tc);
	return s;
}
