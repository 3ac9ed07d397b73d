/* Unit tests for tunnel/tunname.c: the tunnel name rule of issue 13's contract. */
#include "config.h"

#include <string.h>

#include "tests/unit/suites.h"
#include "tunnel/tunname.h"

static int
ok(const char *s)
{
	return tunname_valid(s, strlen(s));
}

START_TEST(tunname_accepts)
{
	char longest[TUNNAME_MAX + 1];

	ck_assert(ok("app1"));
	ck_assert(ok("office-nas"));
	ck_assert(ok("a.b-c.9"));
	ck_assert(ok("0"));
	memset(longest, 'a', TUNNAME_MAX);
	longest[TUNNAME_MAX] = '\0';
	ck_assert(ok(longest));
}
END_TEST

START_TEST(tunname_refuses)
{
	char toolong[TUNNAME_MAX + 2];

	ck_assert(!ok(""));
	ck_assert(!ok("-app"));
	ck_assert(!ok(".app"));
	ck_assert(!ok("App1"));		/* upper case */
	ck_assert(!ok("bad_name"));
	ck_assert(!ok("a b"));
	ck_assert(!ok("a/b"));
	ck_assert(!ok("caf\xc3\xa9"));
	ck_assert(!tunname_valid("ab\0c", 4));	/* a NUL inside a certificate's CN */
	memset(toolong, 'a', TUNNAME_MAX + 1);
	toolong[TUNNAME_MAX + 1] = '\0';
	ck_assert(!ok(toolong));
}
END_TEST

Suite *
suite_tunname(void)
{
	Suite *s = suite_create("tunname");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, tunname_accepts);
	tcase_add_test(tc, tunname_refuses);
	suite_add_tcase(s, tc);
	return s;
}
