/*
 * Unit tests for master/drainscope.c against a fake of systemd's bus calls:
 * which jobs mean a restart, the scope's name and properties, the wait for
 * its start (active, failed, never, the bus failing), the stop of the
 * scopes a plain stop ends.
 */
#include "config.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "master/drainscope.h"
#include "tests/unit/suites.h"

struct fake {
	const char *job;	/* what job_type answers; NULL: the call fails */
	pid_t asked_pid;
	int start_fails;
	char started[DRAINSCOPE_NAME_MAX];
	char description[128];
	pid_t pids[8];
	size_t npids;
	int polls;		/* active_state calls */
	int active_after;	/* "active" from this poll on; -1: never */
	const char *other;	/* what it answers before ("" or "activating"), or "failed" */
	int state_fails;
	unsigned paused_ms;
	char stop_pattern[64];
	uint64_t stop_ms;
};

static int
fake_job_type(void *impl, pid_t pid, char *type, size_t size)
{
	struct fake *f = impl;

	f->asked_pid = pid;
	if (f->job == NULL)
		return -1;
	snprintf(type, size, "%s", f->job);
	return 0;
}

static int
fake_start_scope(void *impl, const char *name, const char *description, const pid_t *pids,
    size_t npids, uint64_t stop_ms)
{
	struct fake *f = impl;

	if (f->start_fails)
		return -1;
	snprintf(f->started, sizeof(f->started), "%s", name);
	snprintf(f->description, sizeof(f->description), "%s", description);
	ck_assert_uint_le(npids, 8);
	memcpy(f->pids, pids, npids * sizeof(*pids));
	f->npids = npids;
	f->stop_ms = stop_ms;
	return 0;
}

static int
fake_active_state(void *impl, const char *name, char *state, size_t size)
{
	struct fake *f = impl;

	ck_assert_str_eq(name, f->started);
	if (f->state_fails)
		return -1;
	f->polls++;
	snprintf(state, size, "%s",
	    f->active_after >= 0 && f->polls >= f->active_after ? "active" : f->other);
	return 0;
}

static int
fake_stop_units(void *impl, const char *pattern)
{
	struct fake *f = impl;

	snprintf(f->stop_pattern, sizeof(f->stop_pattern), "%s", pattern);
	return 2;
}

static void
fake_pause(void *impl, unsigned ms)
{
	((struct fake *)impl)->paused_ms += ms;
}

static const struct drainscope_bus fake_bus = {
	fake_job_type, fake_start_scope, fake_active_state, fake_stop_units, fake_pause,
};

static void
fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->job = "restart";
	f->active_after = 1;
	f->other = "";
}

START_TEST(restart_jobs_drain)
{
	struct fake f;
	char why[128];

	fake_init(&f);
	ck_assert_int_eq(drainscope_restarting(&fake_bus, &f, 4242, why, sizeof(why)), 1);
	ck_assert_int_eq(f.asked_pid, 4242);
	f.job = "try-restart";
	ck_assert_int_eq(drainscope_restarting(&fake_bus, &f, 4242, why, sizeof(why)), 1);
}
END_TEST

START_TEST(stop_and_no_job_do_not)
{
	struct fake f;
	char why[128];

	fake_init(&f);
	f.job = "stop";
	ck_assert_int_eq(drainscope_restarting(&fake_bus, &f, 7, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "the service's job is a stop, not a restart");
	f.job = "";
	ck_assert_int_eq(drainscope_restarting(&fake_bus, &f, 7, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "no systemd job"));
	f.job = NULL;
	ck_assert_int_eq(drainscope_restarting(&fake_bus, &f, 7, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "could not be asked"));
}
END_TEST

START_TEST(move_starts_the_scope_and_waits)
{
	struct fake f;
	pid_t pids[3] = { 11, 12, 13 };
	char why[128] = "";

	fake_init(&f);
	f.active_after = 4;
	f.other = "activating";
	ck_assert_int_eq(drainscope_move(&fake_bus, &f, 99, pids, 3, 32000, why, sizeof(why)), 0);
	ck_assert_str_eq(f.started, "haloyd-drain-99.scope");
	ck_assert_ptr_nonnull(strstr(f.description, "master 99"));
	ck_assert_uint_eq(f.npids, 3);
	ck_assert_int_eq(f.pids[0], 11);
	ck_assert_int_eq(f.pids[2], 13);
	ck_assert_int_eq(f.polls, 4);
	ck_assert_uint_eq(f.stop_ms, 32000);
	ck_assert_uint_eq(f.paused_ms, 3 * DRAINSCOPE_POLL_MS);
	ck_assert_str_eq(why, "");
}
END_TEST

START_TEST(move_fails_cleanly)
{
	struct fake f;
	pid_t pid = 5;
	char why[128];

	fake_init(&f);
	ck_assert_int_eq(drainscope_move(&fake_bus, &f, 1, &pid, 0, 1, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "no child has work left");
	ck_assert_str_eq(f.started, "");

	fake_init(&f);
	f.start_fails = 1;
	ck_assert_int_eq(drainscope_move(&fake_bus, &f, 1, &pid, 1, 1, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "systemd refused to start haloyd-drain-1.scope");

	fake_init(&f);
	f.active_after = -1;
	f.other = "failed";
	ck_assert_int_eq(drainscope_move(&fake_bus, &f, 1, &pid, 1, 1, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "haloyd-drain-1.scope failed to start");
	ck_assert_int_eq(f.polls, 1);

	fake_init(&f);
	f.state_fails = 1;
	ck_assert_int_eq(drainscope_move(&fake_bus, &f, 1, &pid, 1, 1, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "could not be asked"));
}
END_TEST

/* A start job that never runs: bounded by DRAINSCOPE_WAIT_MS, not forever. */
START_TEST(move_wait_is_bounded)
{
	struct fake f;
	pid_t pid = 5;
	char why[128];

	fake_init(&f);
	f.active_after = -1;
	ck_assert_int_eq(drainscope_move(&fake_bus, &f, 1, &pid, 1, 1, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "was not active within"));
	ck_assert_uint_le(f.paused_ms, DRAINSCOPE_WAIT_MS + DRAINSCOPE_POLL_MS);
	ck_assert_uint_ge(f.paused_ms, DRAINSCOPE_WAIT_MS);
}
END_TEST

/* A plain stop stops every scope a restart left, whatever its master's pid. */
START_TEST(stop_all_matches_every_drain_scope)
{
	struct fake f;
	char name[DRAINSCOPE_NAME_MAX];

	fake_init(&f);
	ck_assert_int_eq(drainscope_stop_all(&fake_bus, &f), 2);
	ck_assert_str_eq(f.stop_pattern, "haloyd-drain-*.scope");
	drainscope_name(123456, name, sizeof(name));
	ck_assert_int_eq(fnmatch(f.stop_pattern, name, 0), 0);
	ck_assert_int_ne(fnmatch(f.stop_pattern, "haloyd.service", 0), 0);
}
END_TEST

Suite *
suite_drainscope(void)
{
	Suite *s = suite_create("drainscope");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, restart_jobs_drain);
	tcase_add_test(tc, stop_and_no_job_do_not);
	tcase_add_test(tc, move_starts_the_scope_and_waits);
	tcase_add_test(tc, move_fails_cleanly);
	tcase_add_test(tc, move_wait_is_bounded);
	tcase_add_test(tc, stop_all_matches_every_drain_scope);
	suite_add_tcase(s, tc);
	return s;
}
