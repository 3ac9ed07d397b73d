/* Unit tests for agent/backoff.c: haloyd-tunnel's reconnect schedule. */
#include "config.h"

#include <stdint.h>

#include "agent/backoff.h"
#include "tests/unit/suites.h"

/* Without jitter (rnd 0): at once after a healthy tunnel, then 1, 2, 4 ... 30 s. */
START_TEST(schedule)
{
	static const uint64_t want[] = { 0, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000 };
	unsigned i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_uint_eq(backoff_delay_ms(i, 0), want[i]);
	ck_assert_uint_eq(backoff_delay_ms(1000, 0), BACKOFF_CAP_MS);
	ck_assert_uint_eq(backoff_delay_ms(~0u, 0), BACKOFF_CAP_MS);
}
END_TEST

/* Jitter takes up to a quarter off a step, never adds: 30 s stays the most. */
START_TEST(jitter_bounds)
{
	uint32_t r;
	unsigned f;
	uint64_t d, step;

	for (f = 1; f < 12; f++) {
		step = backoff_delay_ms(f, 0);
		for (r = 0; r < 100000; r += 7919) {
			d = backoff_delay_ms(f, r * 2654435761u);
			ck_assert_uint_le(d, step);
			ck_assert_uint_ge(d, step - step / 4);
			ck_assert_uint_le(d, BACKOFF_CAP_MS);
		}
	}
	ck_assert_uint_eq(backoff_delay_ms(0, 12345), 0);
	/* Different random values spread the agents out. */
	ck_assert_uint_ne(backoff_delay_ms(5, 1), backoff_delay_ms(5, 2));
}
END_TEST

/* What a slot waits after each event, and when the schedule starts over. */
START_TEST(after_losses)
{
	unsigned fails = 0, i;

	/* Dials that fail: 1, 2, 4 s ... */
	ck_assert_uint_eq(backoff_next(&fails, 0, 0, 0, 0), 1000);
	ck_assert_uint_eq(backoff_next(&fails, 0, 0, 0, 0), 2000);
	ck_assert_uint_eq(backoff_next(&fails, 0, 0, 0, 0), 4000);
	/* A tunnel that served 30 s and is lost: at once, and the count starts over. */
	ck_assert_uint_eq(backoff_next(&fails, 1, BACKOFF_HEALTHY_MS, 0, 0), 0);
	ck_assert_uint_eq(fails, 1);
	ck_assert_uint_eq(backoff_next(&fails, 0, 0, 0, 0), 2000);
	/* Up only briefly: it does not reset what failed before. */
	ck_assert_uint_eq(backoff_next(&fails, 1, 5000, 0, 0), 4000);
	/* GOAWAY: a replacement at once, the count kept. */
	ck_assert_uint_eq(backoff_next(&fails, 1, 100, 1, 0), 0);
	ck_assert_uint_eq(fails, 3);
	/* A proxy that accepts and drops each tunnel at once is not hammered. */
	fails = 0;
	ck_assert_uint_eq(backoff_next(&fails, 1, 10, 0, 0), 0);
	ck_assert_uint_eq(backoff_next(&fails, 1, 10, 0, 0), 2000);
	ck_assert_uint_eq(backoff_next(&fails, 1, 10, 0, 0), 4000);
	/* The cap, however long it lasts; the count itself stays bounded. */
	for (i = 0; i < 2000; i++)
		ck_assert_uint_le(backoff_next(&fails, 0, 0, 0, 99), BACKOFF_CAP_MS);
	ck_assert_uint_le(fails, 1000);
}
END_TEST

Suite *
suite_backoff(void)
{
	Suite *s = suite_create("backoff");
	TCase *tc = tcase_create("backoff");

	tcase_add_test(tc, schedule);
	tcase_add_test(tc, jitter_bounds);
	tcase_add_test(tc, after_losses);
	suite_add_tcase(s, tc);
	return s;
}
