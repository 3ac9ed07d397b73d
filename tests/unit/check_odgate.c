/* Unit tests for master/odgate.c: on-demand TLS's dedup, per-name back-off and overall rate, on a fake clock. */
#include "config.h"

#include <stdio.h>

#include "master/odgate.h"
#include "tests/unit/suites.h"

#define MIN_MS 60000u

/* One ask per name at a time; an allowed name leaves the table, so it may be asked again. */
START_TEST(dedup_in_flight)
{
	struct odgate g;

	ck_assert_int_eq(odgate_init(&g, 10, 3600000, 1000), 0);
	ck_assert_int_eq(odgate_admit(&g, "a.example.com", 1000), ODGATE_ASK);
	ck_assert_int_eq(odgate_inflight(&g, "a.example.com"), 1);
	ck_assert_int_eq(odgate_admit(&g, "a.example.com", 1001), ODGATE_INFLIGHT);
	ck_assert_int_eq(odgate_admit(&g, "a.example.com", 900000), ODGATE_INFLIGHT);
	ck_assert_int_eq(odgate_admit(&g, "b.example.com", 1002), ODGATE_ASK);
	odgate_done(&g, "a.example.com", 0, 2000);
	ck_assert_int_eq(odgate_inflight(&g, "a.example.com"), 0);
	ck_assert_int_eq(odgate_admit(&g, "a.example.com", 2001), ODGATE_ASK);
	odgate_free(&g);
}
END_TEST

/* A refusal backs the name off for backoff_ms, then it may be asked again; others are not held. */
START_TEST(backoff_after_refusal)
{
	struct odgate g;

	ck_assert_int_eq(odgate_init(&g, 100, 3600000, 0), 0);
	ck_assert_int_eq(odgate_admit(&g, "no.example.com", 10), ODGATE_ASK);
	odgate_done(&g, "no.example.com", 1, 20);
	ck_assert_int_eq(odgate_inflight(&g, "no.example.com"), 0);
	ck_assert_int_eq(odgate_admit(&g, "no.example.com", 30), ODGATE_BACKOFF);
	ck_assert_int_eq(odgate_admit(&g, "no.example.com", 20 + 3600000 - 1), ODGATE_BACKOFF);
	ck_assert_int_eq(odgate_admit(&g, "yes.example.com", 40), ODGATE_ASK);
	ck_assert_int_eq(odgate_admit(&g, "no.example.com", 20 + 3600000), ODGATE_ASK);
	/* A failed order backs off a name whatever its state, even one the gate never saw. */
	odgate_backoff(&g, "new.example.com", 5000);
	ck_assert_int_eq(odgate_admit(&g, "new.example.com", 5001), ODGATE_BACKOFF);
	odgate_backoff(&g, "yes.example.com", 5000);
	ck_assert_int_eq(odgate_inflight(&g, "yes.example.com"), 0);
	ck_assert_int_eq(odgate_admit(&g, "yes.example.com", 5001), ODGATE_BACKOFF);
	odgate_free(&g);
}
END_TEST

/* The bucket: rate asks at once, then one per 60/rate s; refusals by rate leave no state. */
START_TEST(rate_over_all_names)
{
	struct odgate g;
	char name[64];
	unsigned i, asked = 0;

	ck_assert_int_eq(odgate_init(&g, 3, 3600000, 0), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "n%u.example.com", i);
		if (odgate_admit(&g, name, i) == ODGATE_ASK)
			asked++;
	}
	ck_assert_uint_eq(asked, 3);
	ck_assert_int_eq(odgate_admit(&g, "late.example.com", 1000), ODGATE_RATE);
	ck_assert_int_eq(odgate_inflight(&g, "late.example.com"), 0);
	/* One token every 20 s. */
	ck_assert_int_eq(odgate_admit(&g, "late.example.com", MIN_MS / 3 - 1), ODGATE_RATE);
	ck_assert_int_eq(odgate_admit(&g, "late.example.com", MIN_MS / 3 + 1000), ODGATE_ASK);
	ck_assert_int_eq(odgate_admit(&g, "later.example.com", MIN_MS / 3 + 1001), ODGATE_RATE);
	/* A long quiet time refills to the rate, not beyond. */
	for (i = 0, asked = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "q%u.example.com", i);
		if (odgate_admit(&g, name, 100 * MIN_MS) == ODGATE_ASK)
			asked++;
	}
	ck_assert_uint_eq(asked, 3);
	/* A lower rate (a reload) caps what is left. */
	odgate_set(&g, 1, 1000);
	ck_assert_int_eq(odgate_admit(&g, "r.example.com", 200 * MIN_MS), ODGATE_ASK);
	ck_assert_int_eq(odgate_admit(&g, "s.example.com", 200 * MIN_MS), ODGATE_RATE);
	odgate_free(&g);
}
END_TEST

/* The table is bounded: full of names in flight it refuses; ended back-offs free their slots. */
START_TEST(table_bounded)
{
	struct odgate g;
	char name[64];
	unsigned i;

	ck_assert_int_eq(odgate_init(&g, 10000, 1000, 0), 0);
	g.tokens = UINT64_MAX / 2;	/* the bucket is not what this tests */
	for (i = 0; i < ODGATE_NAMES_MAX; i++) {
		snprintf(name, sizeof(name), "f%u.example.com", i);
		ck_assert_int_eq(odgate_admit(&g, name, 0), ODGATE_ASK);
	}
	ck_assert_int_eq(odgate_admit(&g, "one-more.example.com", 0), ODGATE_FULL);
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "f%u.example.com", i);
		odgate_done(&g, name, 1, 0);	/* back off until 1000 */
	}
	ck_assert_int_eq(odgate_admit(&g, "one-more.example.com", 999), ODGATE_FULL);
	g.tokens = UINT64_MAX / 2;
	ck_assert_int_eq(odgate_admit(&g, "one-more.example.com", 1000), ODGATE_ASK);
	ck_assert_uint_eq(g.n, ODGATE_NAMES_MAX - 9);
	odgate_free(&g);
}
END_TEST

Suite *
suite_odgate(void)
{
	Suite *s = suite_create("odgate");
	TCase *tc = tcase_create("odgate");

	tcase_add_test(tc, dedup_in_flight);
	tcase_add_test(tc, backoff_after_refusal);
	tcase_add_test(tc, rate_over_all_names);
	tcase_add_test(tc, table_bounded);
	suite_add_tcase(s, tc);
	return s;
}
