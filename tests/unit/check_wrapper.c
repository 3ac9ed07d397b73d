/*
 * Unit tests for master/wrapper.c: HALOYD_WORKER_WRAPPER's words, its
 * program on PATH, and the argv a wrapped worker is exec'd with.
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "master/wrapper.h"
#include "tests/unit/suites.h"

START_TEST(test_parse_words)
{
	struct wrapper wr;
	char err[128];

	ck_assert_int_eq(wrapper_parse(&wr, "  valgrind\t--tool=callgrind  -q ", err, sizeof(err)), 0);
	ck_assert_uint_eq(wr.nwords, 3);
	ck_assert_str_eq(wr.word[0], "valgrind");
	ck_assert_str_eq(wr.word[1], "--tool=callgrind");
	ck_assert_str_eq(wr.word[2], "-q");
}
END_TEST

START_TEST(test_parse_bounds)
{
	struct wrapper wr;
	char err[128], big[WRAPPER_LEN_MAX + 8];
	char many[WRAPPER_WORDS_MAX * 2 + 4];
	size_t i;

	ck_assert_int_eq(wrapper_parse(&wr, " \t ", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(wrapper_parse(&wr, big, err, sizeof(err)), -1);
	for (i = 0; i < WRAPPER_WORDS_MAX + 1; i++) {
		many[2 * i] = 'x';
		many[2 * i + 1] = ' ';
	}
	many[2 * i] = '\0';
	ck_assert_int_eq(wrapper_parse(&wr, many, err, sizeof(err)), -1);
	many[2 * WRAPPER_WORDS_MAX] = '\0';	/* exactly the maximum */
	ck_assert_int_eq(wrapper_parse(&wr, many, err, sizeof(err)), 0);
	ck_assert_uint_eq(wr.nwords, WRAPPER_WORDS_MAX);
}
END_TEST

START_TEST(test_resolve)
{
	struct wrapper wr;
	char err[128];

	ck_assert_int_eq(wrapper_parse(&wr, "sh -c", err, sizeof(err)), 0);
	ck_assert_int_eq(wrapper_resolve(&wr, "/nonexistent::/bin", "/x/haloyd", err, sizeof(err)), 0);
	ck_assert_str_eq(wr.prog, "/bin/sh");
	ck_assert_str_eq(wr.exe, "/x/haloyd");
	ck_assert_int_eq(wrapper_parse(&wr, "no-such-wrapper-here", err, sizeof(err)), 0);
	ck_assert_int_eq(wrapper_resolve(&wr, "/bin:/usr/bin", "/x/haloyd", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not on PATH"));
	ck_assert_int_eq(wrapper_parse(&wr, "/nonexistent/valgrind", err, sizeof(err)), 0);
	ck_assert_int_eq(wrapper_resolve(&wr, NULL, "/x/haloyd", err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_argv)
{
	struct wrapper wr;
	char err[128], *out[8], r[] = "-R", wk[] = "worker", n[] = "-N";
	char *args[] = { r, wk, n, NULL };

	ck_assert_int_eq(wrapper_parse(&wr, "env A=1", err, sizeof(err)), 0);
	ck_assert_int_eq(wrapper_resolve(&wr, "/usr/bin:/bin", "/x/haloyd", err, sizeof(err)), 0);
	ck_assert_uint_eq(wrapper_argv(&wr, args, out, 8), 6);
	ck_assert_str_eq(out[0], "env");
	ck_assert_str_eq(out[1], "A=1");
	ck_assert_str_eq(out[2], "/x/haloyd");
	ck_assert_str_eq(out[3], "-R");
	ck_assert_str_eq(out[5], "-N");
	ck_assert_ptr_null(out[6]);
	ck_assert_uint_eq(wrapper_argv(&wr, args, out, 6), 0);	/* no room for the NULL */
	ck_assert_uint_eq(wrapper_argv(&wr, args, out, 7), 6);
}
END_TEST

Suite *
suite_wrapper(void)
{
	Suite *s = suite_create("wrapper");
	TCase *tc = tcase_create("wrapper");

	tcase_add_test(tc, test_parse_words);
	tcase_add_test(tc, test_parse_bounds);
	tcase_add_test(tc, test_resolve);
	tcase_add_test(tc, test_argv);
	suite_add_tcase(s, tc);
	return s;
}
