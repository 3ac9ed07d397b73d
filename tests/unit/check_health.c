/*
 * Unit tests of the shared backend table (share/health.c): keys by store
 * id and address, the rise/fall state machine, the probe lease's
 * compare-and-swap (one winner per interval, expiry when the winner dies),
 * passive marks, in-flight counts per worker and their reset, the
 * least-in-flight pick with its round-robin ties, and processes killed
 * with SIGKILL in the middle of updates leaving the table usable.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "share/health.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testshm.h"

static struct shm s;
static int fd = -1;

static void
setup(void)
{
	fd = testshm_open(&s);
}

static void
teardown(void)
{
	testshm_close(&s, fd);
}

static uint64_t
key_of(uint32_t id, uint16_t port)
{
	uint8_t a[16] = { 127, 0, 0, 1 };

	return health_key(id, AF_INET, port, a);
}

START_TEST(keys_and_lookup)
{
	struct shm_backend *e;

	ck_assert_uint_ne(key_of(1, 80), key_of(1, 81));	/* one id, two addresses */
	ck_assert_uint_ne(key_of(1, 80), key_of(2, 80));
	ck_assert_uint_ne(key_of(0, 0), 0);
	ck_assert_uint_eq(s.nbackends, SHM_BACKENDS_MAX);
	ck_assert_ptr_null(health_find(&s, key_of(1, 80)));
	e = health_get(&s, key_of(1, 80), 1, 1000);
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_eq(health_find(&s, key_of(1, 80)), e);
	ck_assert_ptr_eq(health_get(&s, key_of(1, 80), 1, 2000), e);
	ck_assert_uint_eq(e->id, 1);
	ck_assert(health_usable(e, 1000));
}
END_TEST

START_TEST(rise_and_fall)
{
	struct shm_backend *e = health_get(&s, key_of(3, 80), 3, 1000);
	int i;

	/* fall 3: two failures leave it up, the third takes it down, once. */
	ck_assert_int_eq(health_report(e, 0, -111, 1, 2, 3), 0);
	ck_assert_int_eq(health_report(e, 0, 500, 2, 2, 3), 0);
	ck_assert(!health_is_down(e));
	ck_assert_int_eq(health_report(e, 0, 500, 3, 2, 3), -1);
	ck_assert(health_is_down(e));
	ck_assert(!health_usable(e, 3));
	ck_assert_int_eq(health_report(e, 0, 500, 4, 2, 3), 0);
	ck_assert_int_eq(e->result, 500);
	ck_assert_uint_eq(e->checked_ms, 4);
	/* rise 2: a success then a failure starts over; two in a row bring it back. */
	ck_assert_int_eq(health_report(e, 1, 200, 5, 2, 3), 0);
	ck_assert_int_eq(health_report(e, 0, 500, 6, 2, 3), 0);
	ck_assert_int_eq(health_report(e, 1, 200, 7, 2, 3), 0);
	ck_assert(health_is_down(e));
	ck_assert_int_eq(health_report(e, 1, 204, 8, 2, 3), 1);
	ck_assert(!health_is_down(e));
	ck_assert_uint_eq(e->checks_ok, 3);
	ck_assert_uint_eq(e->checks_failed, 5);
	/* The counts saturate instead of wrapping into a false transition. */
	for (i = 0; i < 600; i++)
		ck_assert_int_eq(health_report(e, 1, 200, 9, 2, 3), 0);
	ck_assert_uint_eq(HEALTH_OKS(e->state), 255);
}
END_TEST

START_TEST(lease)
{
	struct shm_backend *e = health_get(&s, key_of(4, 80), 4, 1000);

	/* Due at once; of four workers asking at the same time one wins. */
	ck_assert_int_eq(health_lease(e, 1000, 5000), 1);
	ck_assert_int_eq(health_lease(e, 1000, 5000), 0);
	ck_assert_int_eq(health_lease(e, 5999, 5000), 0);
	/* On the grid: due at 6000, taken at 6100, the next is due at 11000. */
	ck_assert_int_eq(health_lease(e, 6100, 5000), 1);
	ck_assert_uint_eq(e->next_probe, 11000);
	/* A winner that died never reported: the lease expires with the interval all the same. */
	ck_assert_int_eq(health_lease(e, 11000, 5000), 1);
	/* Far behind (nobody probed for long): the next is an interval after now. */
	ck_assert_int_eq(health_lease(e, 90000, 5000), 1);
	ck_assert_uint_eq(e->next_probe, 95000);
}
END_TEST

START_TEST(passive)
{
	struct shm_backend *e = health_get(&s, key_of(5, 80), 5, 1000);

	ck_assert_int_eq(health_mark_passive(e, 1000, 500), 1);
	ck_assert_int_eq(health_mark_passive(e, 1100, 500), 0);	/* already down: logged once */
	ck_assert(!health_usable(e, 1500));
	ck_assert(health_usable(e, 1600));
	ck_assert(!health_is_down(e));	/* the checks' state is another matter */
	ck_assert_int_eq(health_mark_passive(e, 1700, 500), 1);
}
END_TEST

START_TEST(inflight_per_worker)
{
	struct shm_backend *e = health_get(&s, key_of(6, 80), 6, 1000);

	health_inflight_add(&s, e, 0);
	health_inflight_add(&s, e, 2);
	health_inflight_add(&s, e, 2);
	health_inflight_add(&s, e, 99);	/* no such worker: ignored */
	ck_assert_uint_eq(health_inflight(&s, e), 3);
	health_forget_worker(&s, 2);
	ck_assert_uint_eq(health_inflight(&s, e), 1);
	/* The successor of the dead one never goes below zero. */
	health_inflight_done(&s, e, 2);
	ck_assert_uint_eq(e->inflight[2], 0);
	health_inflight_done(&s, e, 0);
	ck_assert_uint_eq(health_inflight(&s, e), 0);
}
END_TEST

START_TEST(least_pick)
{
	uint32_t a[4] = { 3, 1, 1, 2 }, none[2] = { UINT32_MAX, UINT32_MAX };

	ck_assert_int_eq(health_least(a, 4, 0), 1);
	ck_assert_int_eq(health_least(a, 4, 2), 2);	/* a tie goes to the next in the round */
	ck_assert_int_eq(health_least(a, 4, 3), 1);
	a[1] = a[2] = UINT32_MAX;			/* down: never picked */
	ck_assert_int_eq(health_least(a, 4, 1), 3);
	ck_assert_int_eq(health_least(none, 2, 0), -1);
}
END_TEST

START_TEST(window_full_and_eviction)
{
	uint32_t i, got = 0;
	struct shm_backend *e;

	/* More addresses than entries: the rest have none, nothing breaks. */
	for (i = 1; i <= 2 * SHM_BACKENDS_MAX; i++)
		got += health_get(&s, key_of(i, 80), i, 1000) != NULL;
	ck_assert_uint_ge(got, SHM_BACKENDS_MAX * 3 / 4);
	ck_assert_uint_le(got, SHM_BACKENDS_MAX);
	/* Entries no snapshot named for a minute go to new addresses. */
	e = health_get(&s, key_of(100000, 80), 100000, 1000 + HEALTH_IDLE_MS + 1);
	ck_assert_ptr_nonnull(e);
	ck_assert(health_usable(e, 1000 + HEALTH_IDLE_MS + 1));
	ck_assert_uint_eq(e->checks_ok + e->checks_failed, 0);
}
END_TEST

/* A writer that never stops: reports, leases, in-flight up and down, passive marks. */
static pid_t
hammer(uint32_t wi)
{
	pid_t pid = fork();
	uint64_t n = 0;

	ck_assert_int_ne(pid, -1);
	if (pid != 0)
		return pid;
	for (;; n++) {
		struct shm_backend *e = health_get(&s, key_of(7 + (uint32_t)(n % 3), 80),
		    7 + (uint32_t)(n % 3), 1000 + n);

		if (e == NULL)
			_exit(1);
		health_report(e, (n & 4) != 0, 200, 1000 + n, 2, 3);
		(void)health_lease(e, 1000 + n, 10);
		health_inflight_add(&s, e, wi);
		health_inflight_done(&s, e, wi);
		health_inflight_add(&s, e, wi);	/* left in flight when killed */
		(void)health_mark_passive(e, 1000 + n, 1);
		shm_add(&s.slots[wi].retries, 1);
	}
}

/*
 * Killed at random points of their updates, the writers leave no lock
 * (there is none) and a table that still works: the dead workers'
 * in-flight counts go with health_forget_worker, the state machine and
 * the lease go on as before.
 */
START_TEST(killed_writers_leave_it_usable)
{
	uint32_t i;
	uint64_t now = 1ull << 40;
	struct shm_backend *e;

	testshm_kill_writers(&s, hammer, health_forget_worker);
	for (i = 7; i < 10; i++) {
		e = health_get(&s, key_of(i, 80), i, now);
		ck_assert_ptr_nonnull(e);
		ck_assert_uint_eq(health_inflight(&s, e), 0);
		ck_assert_int_eq(health_lease(e, now, 10), 1);
		ck_assert_int_eq(health_lease(e, now, 10), 0);
		health_report(e, 0, 500, now, 2, 3);
		health_report(e, 0, 500, now, 2, 3);
		health_report(e, 0, 500, now, 2, 3);
		ck_assert(health_is_down(e));
		health_report(e, 1, 200, now, 2, 3);
		ck_assert_int_eq(health_report(e, 1, 200, now, 2, 3), 1);
		ck_assert(health_usable(e, now));
	}
}
END_TEST

Suite *
suite_health(void)
{
	Suite *su = suite_create("health");
	TCase *tc = tcase_create("health");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, keys_and_lookup);
	tcase_add_test(tc, rise_and_fall);
	tcase_add_test(tc, lease);
	tcase_add_test(tc, passive);
	tcase_add_test(tc, inflight_per_worker);
	tcase_add_test(tc, least_pick);
	tcase_add_test(tc, window_full_and_eviction);
	tcase_add_test(tc, killed_writers_leave_it_usable);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(su, tc);
	return su;
}
