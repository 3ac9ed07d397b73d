/*
 * Unit tests for worker/balance.c: round-robin per route id, the pick that
 * skips backends passive health marked down, the down time and its expiry
 * by loop time, which connect errors count against a backend, and freeing.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "master/snapbuild.h"
#include "share/evloop.h"
#include "share/health.h"
#include "share/snap.h"
#include "tests/unit/suites.h"
#include "worker/balance.h"
#include "worker/context.h"

static const struct snapb_route bl_routes[] = {
	{ .id = 7, .name = "three.example.com", .be_first = 0, .be_count = 3 },
	{ .id = 8, .name = "one.example.com", .be_first = 3, .be_count = 1 },
	{ .id = 9, .name = "lif.example.com", .be_first = 4, .be_count = 3,
	  .flags = SNAP_ROUTE_BALANCE_LIF },
};

static const struct snapb_host bl_hosts[] = {
	{ .id = 1, .name = "three.example.com", .route = 0, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 2, .name = "one.example.com", .route = 1, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 3, .name = "lif.example.com", .route = 2, .kind = SNAP_HOST_EXACT, NULL },
};

static const struct snapb_backend bl_backends[] = {
	{ 100, AF_INET, 3000, { 127, 0, 0, 1 }, 0, NULL },
	{ 101, AF_INET, 3001, { 127, 0, 0, 1 }, 0, NULL },
	{ 102, AF_INET, 3002, { 127, 0, 0, 1 }, 0, NULL },
	{ 200, AF_INET, 4000, { 127, 0, 0, 2 }, 0, NULL },
	{ 300, AF_INET, 5000, { 127, 0, 0, 3 }, 0, NULL },
	{ 301, AF_INET, 5001, { 127, 0, 0, 3 }, 0, NULL },
	{ 302, AF_INET, 5002, { 127, 0, 0, 3 }, 0, NULL },
};

static struct worker w;
static struct snap *s;
static const struct snap_route *three, *one;

static void
setup(void)
{
	struct snapb_input in = {
		.routes = bl_routes, .nroutes = 3, .hosts = bl_hosts, .nhosts = 3,
		.backends = bl_backends, .nbackends = 7, .default_route = SNAP_NONE,
		.generation = 1,
	};
	char err[256] = "";
	int fd;

	memset(&w, 0, sizeof(w));
	w.loop = ev_loop_new();
	ck_assert_ptr_nonnull(w.loop);
	w.cfg.backend_down_ms = 10000;
	ck_assert_msg(snapb_build(&in, &fd, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(snap_map(fd, &s, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	three = snap_route_at(s, 0);
	one = snap_route_at(s, 1);
	ck_assert_uint_eq(three->id, 7);
	ck_assert_uint_eq(one->id, 8);
}

static void
teardown(void)
{
	balance_free(&w.balance);
	snap_unref(s);
	s = NULL;
	ev_loop_free(w.loop);
	w.loop = NULL;
}

/* The snapshot's backend with store id id. */
static const struct snap_backend *
be_id(uint32_t id)
{
	uint32_t i;

	for (i = 0; i < snap_backend_count(s); i++)
		if (snap_backend_at(s, i)->id == id)
			return snap_backend_at(s, i);
	/* Not in the snapshot: a stand-in (without a shared region only the id counts). */
	{
		static struct snap_backend fake[8];
		static unsigned next;
		struct snap_backend *f = &fake[next++ % 8];

		*f = (struct snap_backend){ .id = id, .family = AF_INET };
		return f;
	}
}

/* The store id of the backend a round starting at start picks, tries from 0. */
static uint32_t
pick_id(uint32_t start, uint32_t *tries)
{
	const struct snap_backend *b = balance_pick(&w, s, three, &start, tries);

	return b != NULL ? b->id : 0;
}

START_TEST(round_robin_per_route)
{
	uint32_t a0 = balance_start(&w, three), a1, b0, b1, a2;

	/* Each call starts the route's next round; another route keeps its own count. */
	a1 = balance_start(&w, three);
	b0 = balance_start(&w, one);
	b1 = balance_start(&w, one);
	a2 = balance_start(&w, three);
	ck_assert_uint_eq(a1, a0 + 1);
	ck_assert_uint_eq(a2, a1 + 1);
	ck_assert_uint_eq(b0, 0);
	ck_assert_uint_eq(b1, 1);
	/* Successive rounds go through the backends in turn. */
	{
		uint32_t t0 = 0, t1 = 0, t2 = 0, t3 = 0;

		ck_assert_uint_eq(pick_id(a0, &t0), 100);
		ck_assert_uint_eq(pick_id(a1, &t1), 101);
		ck_assert_uint_eq(pick_id(a2, &t2), 102);
		ck_assert_uint_eq(pick_id(a2 + 1, &t3), 100);
		ck_assert_uint_eq(t0 + t1 + t2 + t3, 0);
	}
}
END_TEST

START_TEST(pick_walks_the_round)
{
	uint32_t tries = 0;

	/* A failed backend moves the same round on: the caller counts the try. */
	ck_assert_uint_eq(pick_id(1, &tries), 101);
	tries++;
	ck_assert_uint_eq(pick_id(1, &tries), 102);
	tries++;
	ck_assert_uint_eq(pick_id(1, &tries), 100);
	tries++;
	/* Every backend tried: the round is over. */
	ck_assert_ptr_null(balance_pick(&w, s, three, &(uint32_t){ 1 }, &tries));
	ck_assert_uint_eq(tries, 3);
}
END_TEST

START_TEST(pick_skips_down_backends)
{
	uint32_t tries = 0;

	balance_mark_down(&w, s, be_id(101));
	ck_assert_int_eq(balance_is_down(&w, s, be_id(101)), 1);
	ck_assert_int_eq(balance_is_down(&w, s, be_id(100)), 0);
	/* Starting at the down one: the next, with the skip counted as a try. */
	ck_assert_uint_eq(pick_id(1, &tries), 102);
	ck_assert_uint_eq(tries, 1);
	tries++;
	ck_assert_uint_eq(pick_id(1, &tries), 100);
	ck_assert_uint_eq(tries, 2);
	tries++;
	ck_assert_ptr_null(balance_pick(&w, s, three, &(uint32_t){ 1 }, &tries));
	ck_assert_uint_eq(tries, 3);

	/* All down: NULL at once, every backend counted. */
	balance_mark_down(&w, s, be_id(100));
	balance_mark_down(&w, s, be_id(102));
	tries = 0;
	ck_assert_ptr_null(balance_pick(&w, s, three, &(uint32_t){ 5 }, &tries));
	ck_assert_uint_eq(tries, 3);
	/* Failed connects alone: the route answers 502 as it always did, not 503. */
	ck_assert_int_eq(balance_checked_out(&w, s, three), 0);
	/* Another route's backend is not affected. */
	tries = 0;
	ck_assert_ptr_nonnull(balance_pick(&w, s, one, &(uint32_t){ 0 }, &tries));
	ck_assert_uint_eq(tries, 0);
}
END_TEST

START_TEST(down_time_zero_never_down)
{
	size_t i;

	w.cfg.backend_down_ms = 0;
	balance_mark_down(&w, s, be_id(100));
	ck_assert_int_eq(balance_is_down(&w, s, be_id(100)), 0);
	/* Nothing is even remembered. */
	for (i = 0; i < BALANCE_BUCKETS; i++)
		ck_assert_ptr_null(w.balance.bucket[i]);
}
END_TEST

START_TEST(down_expires_by_loop_time)
{
	uint64_t t0;
	uint32_t tries = 0;

	w.cfg.backend_down_ms = 50;
	ck_assert_int_eq(ev_run_once(w.loop, 0), 0);
	t0 = ev_now(w.loop);
	balance_mark_down(&w, s, be_id(102));
	ck_assert_int_eq(balance_is_down(&w, s, be_id(102)), 1);
	/* Loop time, not the clock: without an iteration it stays down. */
	usleep(80 * 1000);
	ck_assert_int_eq(balance_is_down(&w, s, be_id(102)), 1);
	ck_assert_int_eq(ev_run_once(w.loop, 0), 0);
	ck_assert_uint_ge(ev_now(w.loop), t0 + 50);
	ck_assert_int_eq(balance_is_down(&w, s, be_id(102)), 0);
	ck_assert_uint_eq(pick_id(2, &tries), 102);
	ck_assert_uint_eq(tries, 0);

	/* Marking again extends, without a second entry for the same backend. */
	w.cfg.backend_down_ms = 10000;
	balance_mark_down(&w, s, be_id(102));
	balance_mark_down(&w, s, be_id(102));
	ck_assert_int_eq(balance_is_down(&w, s, be_id(102)), 1);
	ck_assert_ptr_nonnull(w.balance.bucket[102 % BALANCE_BUCKETS]);
	ck_assert_ptr_null(w.balance.bucket[102 % BALANCE_BUCKETS]->next);
	ck_assert_uint_ge(w.balance.bucket[102 % BALANCE_BUCKETS]->down_until,
	    ev_now(w.loop) + 10000);
}
END_TEST

START_TEST(backend_fault_classification)
{
	static const int theirs[] = {
		ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, ECONNRESET, EHOSTDOWN, ENETDOWN,
	};
	static const int ours[] = {
		0, EMFILE, ENFILE, ENOBUFS, ENOMEM, EAGAIN, EINTR, EACCES, EPERM, EADDRNOTAVAIL,
	};
	size_t i;

	for (i = 0; i < sizeof(theirs) / sizeof(theirs[0]); i++)
		ck_assert_msg(balance_backend_fault(theirs[i]) == 1, "%s", strerror(theirs[i]));
	for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		ck_assert_msg(balance_backend_fault(ours[i]) == 0, "%s", strerror(ours[i]));
}
END_TEST

START_TEST(free_forgets_everything)
{
	size_t i;

	/* Three in one bucket, one elsewhere; counters moved. */
	balance_mark_down(&w, s, be_id(5));
	balance_mark_down(&w, s, be_id(5 + BALANCE_BUCKETS));
	balance_mark_down(&w, s, be_id(5 + 2 * BALANCE_BUCKETS));
	balance_mark_down(&w, s, be_id(6));
	ck_assert_int_eq(balance_is_down(&w, s, be_id(5 + BALANCE_BUCKETS)), 1);
	ck_assert_int_eq(balance_is_down(&w, s, be_id(5 + 3 * BALANCE_BUCKETS)), 0);
	(void)balance_start(&w, three);
	balance_free(&w.balance);
	for (i = 0; i < BALANCE_BUCKETS; i++)
		ck_assert_ptr_null(w.balance.bucket[i]);
	ck_assert_int_eq(balance_is_down(&w, s, be_id(5)), 0);
	ck_assert_int_eq(balance_is_down(&w, s, be_id(6)), 0);
	ck_assert_uint_eq(balance_start(&w, three), 0);
	/* Usable again, and freeing twice is harmless. */
	balance_mark_down(&w, s, be_id(5));
	ck_assert_int_eq(balance_is_down(&w, s, be_id(5)), 1);
	balance_free(&w.balance);
	balance_free(&w.balance);
}
END_TEST

/*
 * With the shared region: least-in-flight picks the backend with the
 * fewest requests in flight over every worker (ties: the round's order),
 * skips one its checks took out, and passive health is shared.
 */
START_TEST(least_in_flight_shared)
{
	const struct snap_route *lif = snap_route_at(s, 2);
	struct shm_backend *e[3];
	uint32_t start, tries, i;
	char err[256];
	int fd = shm_create(2u << 20, 4, &w.shm, err, sizeof(err));

	ck_assert_msg(fd >= 0, "%s", err);
	w.snap = s;
	w.index = 1;
	for (i = 0; i < 3; i++) {
		e[i] = balance_entry(&w, s, be_id(300 + i));
		ck_assert_ptr_nonnull(e[i]);
	}
	/* In flight: 300 two (workers 0 and 3), 301 one, 302 one. */
	health_inflight_add(&w.shm, e[0], 0);
	health_inflight_add(&w.shm, e[0], 3);
	health_inflight_add(&w.shm, e[1], 2);
	health_inflight_add(&w.shm, e[2], 1);
	/* A tie between 301 and 302: the first in the round from start. */
	start = 0, tries = 0;
	ck_assert_uint_eq(balance_pick(&w, s, lif, &start, &tries)->id, 301);
	start = 2, tries = 0;
	ck_assert_uint_eq(balance_pick(&w, s, lif, &start, &tries)->id, 302);
	/* Its checks took 301 out: 302 whatever the start. */
	for (i = 0; i < 3; i++)
		health_report(e[1], 0, 500, 1, 2, 3);
	start = 0, tries = 0;
	ck_assert_uint_eq(balance_pick(&w, s, lif, &start, &tries)->id, 302);
	/* A worker's reaped requests go: 300 has none left and wins. */
	health_forget_worker(&w.shm, 0);
	health_forget_worker(&w.shm, 3);
	start = 1, tries = 0;
	ck_assert_uint_eq(balance_pick(&w, s, lif, &start, &tries)->id, 300);
	/* Passive health lives in the table too: every worker sees it. */
	balance_mark_down(&w, s, be_id(300));
	ck_assert(!health_usable(e[0], ev_now(w.loop)));
	ck_assert_int_eq(balance_is_down(&w, s, be_id(300)), 1);
	/* 302 still takes requests: not all out. Then every one out, 301 by its checks: 503. */
	ck_assert_int_eq(balance_checked_out(&w, s, lif), 0);
	balance_mark_down(&w, s, be_id(302));
	ck_assert_int_eq(balance_checked_out(&w, s, lif), 1);
	/* The round-robin route is untouched by counts. */
	start = 0, tries = 0;
	ck_assert_uint_eq(balance_pick(&w, s, three, &start, &tries)->id, 100);
	balance_free(&w.balance);
	w.snap = NULL;
	shm_unmap(&w.shm);
	close(fd);
}
END_TEST

Suite *
suite_balance(void)
{
	Suite *su = suite_create("balance");
	TCase *tc = tcase_create("balance");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_robin_per_route);
	tcase_add_test(tc, pick_walks_the_round);
	tcase_add_test(tc, pick_skips_down_backends);
	tcase_add_test(tc, down_time_zero_never_down);
	tcase_add_test(tc, down_expires_by_loop_time);
	tcase_add_test(tc, backend_fault_classification);
	tcase_add_test(tc, free_forgets_everything);
	tcase_add_test(tc, least_in_flight_shared);
	suite_add_tcase(su, tc);
	return su;
}
