/*
 * Unit tests for worker/cachecc.c: the directives Cache-Control and
 * CDN-Cache-Control share.
 */
#include "config.h"

#include <string.h>

#include "tests/unit/suites.h"
#include "worker/cachecc.h"

/* Flags and seconds by name, case-blind, on the length given; anything else is not one. */
START_TEST(cc_shared_directives)
{
	struct cachecc cc;

	memset(&cc, 0, sizeof(cc));
	ck_assert_int_eq(cachecc_flag(&cc, "No-Store", 8), 1);
	ck_assert_int_eq(cachecc_flag(&cc, "private", 7), 1);
	ck_assert_int_eq(cachecc_flag(&cc, "proxy-revalidate", 16), 1);
	ck_assert_int_eq(cachecc_flag(&cc, "must-understand", 15), 0);
	ck_assert_int_eq(cachecc_flag(&cc, "max-age", 7), 0);
	ck_assert_int_eq(cachecc_flag(&cc, "no-storex", 8), 1);	/* the length given */
	ck_assert(cc.no_store && cc.private_ && cc.proxy_revalidate);
	ck_assert(!cc.must_understand && !cc.no_cache && !cc.public_ && !cc.must_revalidate);
	ck_assert_int_eq(cachecc_seconds(&cc, "S-MAXAGE", 8, 7), 1);
	ck_assert_int_eq(cachecc_seconds(&cc, "stale-while-revalidate", 22, 9), 1);
	ck_assert_int_eq(cachecc_seconds(&cc, "min-fresh", 9, 3), 0);
	ck_assert_int_eq(cachecc_seconds(&cc, "public", 6, 3), 0);
	ck_assert(cc.has_s_maxage && cc.s_maxage == 7 && cc.has_swr && cc.swr == 9);
	ck_assert(!cc.has_max_age && !cc.has_sie && !cc.has_min_fresh && !cc.public_);
}
END_TEST

Suite *
suite_cachecc(void)
{
	Suite *s = suite_create("cachecc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, cc_shared_directives);
	suite_add_tcase(s, tc);
	return s;
}
