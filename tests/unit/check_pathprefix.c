/*
 * Unit tests for share/pathprefix.c: the prefix rule, route names with a
 * prefix, request path normalisation, the segment-boundary match and the
 * stripped target.
 */
#include "config.h"

#include <string.h>

#include "share/hostname.h"
#include "share/pathprefix.h"
#include "tests/unit/suites.h"

static const struct {
	const char *prefix;
	const char *why;	/* a piece of the reason, NULL: accepted */
} check_cases[] = {
	{ "/api", NULL },
	{ "/api/v2", NULL },
	{ "/a-b.c_d~e/x:y@z/$&'()*+,;=!", NULL },
	{ "/API", NULL },
	{ "", "starts with '/'" },
	{ "/", "starts with '/'" },
	{ "api", "starts with '/'" },
	{ "/api/", "does not end with '/'" },
	{ "/api//v2", "empty segment" },
	{ "//api", "empty segment" },
	{ "/api/../x", "'.' or '..' segment" },
	{ "/..", "'.' or '..' segment" },
	{ "/./api", "'.' or '..' segment" },
	{ "/api/.", "'.' or '..' segment" },
	{ "/api%2Fv2", "no percent-escapes" },
	{ "/%61pi", "no percent-escapes" },
	{ "/api?x=1", "only letters" },
	{ "/api#x", "only letters" },
	{ "/a b", "only letters" },
	{ "/a\\b", "only letters" },
	{ "/caf\xc3\xa9", "only letters" },
	{ "/a\x01", "only letters" },
};

START_TEST(prefix_rule)
{
	const char *p = check_cases[_i].prefix, *why = pathprefix_check(p, strlen(p));

	if (check_cases[_i].why == NULL)
		ck_assert_msg(why == NULL, "'%s' refused: %s", p, why);
	else {
		ck_assert_msg(why != NULL, "'%s' accepted", p);
		ck_assert_msg(strstr(why, check_cases[_i].why) != NULL, "'%s': '%s' lacks '%s'", p,
		    why, check_cases[_i].why);
	}
}
END_TEST

START_TEST(prefix_length_bound)
{
	char p[PATHPREFIX_MAX + 2];

	memset(p, 'a', sizeof(p));
	p[0] = '/';
	ck_assert_ptr_null(pathprefix_check(p, PATHPREFIX_MAX));
	ck_assert_ptr_nonnull(strstr(pathprefix_check(p, PATHPREFIX_MAX + 1), "at most 128"));
}
END_TEST

START_TEST(route_names)
{
	char out[HOSTNAME_MAX + 1], err[400], big[300];

	ck_assert_int_eq(pathprefix_route_name("Example.COM", out, err, sizeof(err)), 11);
	ck_assert_str_eq(out, "example.com");
	ck_assert_int_eq(pathprefix_route_name("Example.COM/Api/v2", out, err, sizeof(err)), 11);
	ck_assert_str_eq(out, "example.com/Api/v2");	/* paths keep their case */
	ck_assert_uint_eq(pathprefix_of(out), 11);
	ck_assert_uint_eq(pathprefix_of("example.com"), 0);
	ck_assert_int_eq(pathprefix_route_name("example.com/api/", out, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "invalid path prefix '/api/': a path prefix does not end with '/' "
	    "(/api matches /api/ and /api/x)");
	ck_assert_int_eq(pathprefix_route_name("*.example.com/api", out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a wildcard"));
	ck_assert_int_eq(pathprefix_route_name("bad host/api", out, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "invalid host name 'bad host'");
	ck_assert_int_eq(pathprefix_route_name("/api", out, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "invalid host name ''");
	/* 200 bytes of host and a 60-byte prefix: each fits, together not. */
	memset(big, 'a', sizeof(big));
	memcpy(big + 60, ".", 1);
	memcpy(big + 120, ".", 1);
	memcpy(big + 180, ".com", 5);
	ck_assert_int_eq(pathprefix_route_name(big, out, err, sizeof(err)), 184);
	big[184] = '/';
	memset(big + 185, 'p', 70);
	big[255] = '\0';
	ck_assert_int_eq(pathprefix_route_name(big, out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "are 255 bytes, at most 253"));
}
END_TEST

static const struct {
	const char *target;
	const char *norm;	/* NULL: no prefix applies */
} norm_cases[] = {
	{ "/", "/" },
	{ "/api", "/api" },
	{ "/api/", "/api/" },
	{ "/api/x?q=1&r=/api", "/api/x" },
	{ "/api#frag", "/api" },
	{ "//api//x", "/api/x" },
	{ "/a/./api", "/a/api" },
	{ "/x/../api", "/api" },
	{ "/../../api", "/api" },
	{ "/api/x/..", "/api/" },
	{ "/api/x/.", "/api/x/" },
	{ "/api/..", "/" },
	{ "/%61%70%69/x", "/api/x" },
	{ "/%2e%2E/api", "/api" },
	{ "/api%2fx", "/api%2Fx" },	/* an escaped '/' is data, not a separator */
	{ "/api%2F..%2Fadmin", "/api%2F..%2Fadmin" },
	{ "/a%7e%41", "/a~A" },
	{ "/a%20b", "/a%20b" },
	{ "/api%", NULL },
	{ "/api%2", NULL },
	{ "/api%zz", NULL },
	{ "*", NULL },
	{ "api", NULL },
	{ "", NULL },
	{ "?x", NULL },
};

START_TEST(normalize)
{
	const char *t = norm_cases[_i].target;
	char out[64];
	int n = pathprefix_normalize(t, strlen(t), out, sizeof(out));

	if (norm_cases[_i].norm == NULL)
		ck_assert_msg(n == -1, "'%s' normalised to '%s'", t, out);
	else {
		ck_assert_msg(n >= 0, "'%s' refused", t);
		ck_assert_str_eq(out, norm_cases[_i].norm);
		ck_assert_int_eq(n, (int)strlen(out));
	}
}
END_TEST

START_TEST(normalize_bounds)
{
	char out[8];

	ck_assert_int_eq(pathprefix_normalize("/abcdef", 7, out, sizeof(out)), 7);
	ck_assert_int_eq(pathprefix_normalize("/abcdefg", 8, out, sizeof(out)), -1);
	ck_assert_int_eq(pathprefix_normalize("/abcdef/", 8, out, sizeof(out)), -1);
	ck_assert_int_eq(pathprefix_normalize("/a/b/c/", 7, out, sizeof(out)), 7);
	/* len is the bound, not the NUL. */
	ck_assert_int_eq(pathprefix_normalize("/api/x", 4, out, sizeof(out)), 4);
	ck_assert_str_eq(out, "/api");
}
END_TEST

START_TEST(match_boundaries)
{
	ck_assert(pathprefix_match("/api", 4, "/api", 4));
	ck_assert(pathprefix_match("/api/", 5, "/api", 4));
	ck_assert(pathprefix_match("/api/x", 6, "/api", 4));
	ck_assert(!pathprefix_match("/apix", 5, "/api", 4));
	ck_assert(!pathprefix_match("/ap", 3, "/api", 4));
	ck_assert(!pathprefix_match("/API", 4, "/api", 4));
	ck_assert(!pathprefix_match("/", 1, "/api", 4));
	ck_assert(pathprefix_match("/api/v2/x", 9, "/api/v2", 7));
	ck_assert(!pathprefix_match("/api/v20", 8, "/api/v2", 7));
}
END_TEST

static void
expect_strip(const char *target, size_t plen, const char *want)
{
	char n[64], out[64];
	int len = pathprefix_normalize(target, strlen(target), n, sizeof(n));

	ck_assert_int_ge(len, 0);
	ck_assert_int_eq(pathprefix_strip(n, (size_t)len, plen, target, strlen(target), out,
	    sizeof(out)), (int)strlen(want));
	ck_assert_str_eq(out, want);
}

START_TEST(strip)
{
	expect_strip("/api/x", 4, "/x");
	expect_strip("/api", 4, "/");
	expect_strip("/api/", 4, "/");
	expect_strip("/api?a=1&b=/api", 4, "/?a=1&b=/api");
	expect_strip("/api/x/y?q", 4, "/x/y?q");
	expect_strip("/api/v2/x?", 7, "/x?");
	expect_strip("/x/../api/%7Ey", 4, "/~y");
}
END_TEST

START_TEST(strip_bounds)
{
	char out[4];

	ck_assert_int_eq(pathprefix_strip("/api/x", 6, 4, "/api/x?", 7, out, sizeof(out)), 3);
	ck_assert_str_eq(out, "/x?");
	ck_assert_int_eq(pathprefix_strip("/api/x", 6, 4, "/api/x?q", 8, out, sizeof(out)), -1);
	ck_assert_int_eq(pathprefix_strip("/a", 2, 4, "/a", 2, out, sizeof(out)), -1);
}
END_TEST

Suite *
suite_pathprefix(void)
{
	Suite *s = suite_create("pathprefix");
	TCase *tc = tcase_create("rules");

	tcase_add_loop_test(tc, prefix_rule, 0, (int)(sizeof(check_cases) / sizeof(check_cases[0])));
	tcase_add_test(tc, prefix_length_bound);
	tcase_add_test(tc, route_names);
	tcase_add_loop_test(tc, normalize, 0, (int)(sizeof(norm_cases) / sizeof(norm_cases[0])));
	tcase_add_test(tc, normalize_bounds);
	tcase_add_test(tc, match_boundaries);
	tcase_add_test(tc, strip);
	tcase_add_test(tc, strip_bounds);
	suite_add_tcase(s, tc);
	return s;
}
