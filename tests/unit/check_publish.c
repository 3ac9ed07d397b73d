/*
 * Unit tests for master/publish.c, the publish barrier: real workers (this
 * program re-executed, acking or lagging as CHECK_CHILD says) get each
 * generation; a change is served only once every live worker acked it,
 * changes made while a build is being acked share the next build, and a
 * worker that lags is killed so the barrier completes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "master/proc.h"
#include "master/publish.h"
#include "master/rtable.h"
#include "master/store.h"
#include "master/workers.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testmaster.h"

static struct master m;

static int
served(struct master *mm, void *arg)
{
	return publish_served(mm, *(uint32_t *)arg);
}

static int
all_ready(struct master *mm, void *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i < mm->nworkers; i++)
		if (!mm->workers[i].proc.ready)
			return 0;
	return 1;
}

static void
start(size_t n, const char *const *modes)
{
	size_t i;

	testmaster_init(&m, n);
	ck_assert_int_eq(workers_init(&m), 0);
	ck_assert_int_eq(publish_build(&m), 0);
	ck_assert_uint_eq(m.gen, 1);
	for (i = 0; i < n; i++) {
		setenv("CHECK_CHILD", modes[i], 1);
		ck_assert_int_eq(proc_spawn(&m.workers[i].proc), 0);
	}
	setenv("CHECK_CHILD", "ack", 1);
	ck_assert(testmaster_run_until(&m, all_ready, NULL, 5000));
}

static void
add_route(const char *name)
{
	const char *be[] = { "127.0.0.1:9" };

	ck_assert_int_eq(store_route_add(m.store, name, NULL, 0, be, 1, NULL), STORE_OK);
	/* As master/commands.c does: the route table reads only what it is told changed. */
	rtable_touch(&m.rt, name);
}

START_TEST(ok_only_when_every_worker_acked)
{
	static const char *const modes[] = { "ack", "ack" };
	uint32_t gen = 1;

	start(2, modes);
	ck_assert(testmaster_run_until(&m, served, &gen, 5000));
	add_route("a.example.com");
	gen = publish_changed(&m);
	ck_assert_uint_eq(gen, 2);
	/* Built from the loop, then acked by each: not served before. */
	ck_assert(!publish_served(&m, gen));
	ck_assert(testmaster_run_until(&m, served, &gen, 5000));
	ck_assert_uint_eq(m.gen, 2);
	ck_assert_uint_eq(m.nroutes, 1);
	ck_assert_uint_eq(m.workers[0].acked_gen, 2);
	ck_assert_uint_eq(m.workers[1].acked_gen, 2);
	testmaster_free(&m);
}
END_TEST

START_TEST(changes_during_a_build_share_the_next)
{
	static const char *const modes[] = { "ack", "ack" };
	uint32_t gen = 1, g2, g3;

	start(2, modes);
	ck_assert(testmaster_run_until(&m, served, &gen, 5000));
	add_route("a.example.com");
	g2 = publish_changed(&m);
	/* One turn of the loop builds generation 2 and sends it; nobody acked yet. */
	ev_run_once(m.loop, 0);
	ck_assert_uint_eq(m.gen, 2);
	ck_assert(!publish_served(&m, 2));
	/* Two more changes while 2 is being acked: both wait for one build. */
	add_route("b.example.com");
	g3 = publish_changed(&m);
	add_route("c.example.com");
	ck_assert_uint_eq(publish_changed(&m), g3);
	ck_assert_uint_eq(g3, g2 + 1);
	ck_assert(!ev_timer_armed(&m.build_timer));
	ck_assert(testmaster_run_until(&m, served, &g3, 5000));
	ck_assert_uint_eq(m.gen, 3);
	ck_assert_uint_eq(m.nroutes, 3);
	testmaster_free(&m);
}
END_TEST

static int
killed_once(struct master *mm, void *arg)
{
	(void)arg;
	return mm->workers[1].proc.spawns >= 2 || mm->workers[1].proc.pid == 0;
}

START_TEST(a_lagging_worker_is_replaced)
{
	static const char *const modes[] = { "ack", "lag" };
	uint32_t gen = 1, g2;
	uint64_t t0;

	start(2, modes);
	/* Worker 1 never acks: generation 1 is not served, and a change waits. */
	testmaster_run_for(&m, 300);
	ck_assert_uint_eq(m.workers[0].acked_gen, 1);
	ck_assert_uint_eq(m.workers[1].acked_gen, 0);
	ck_assert(!publish_served(&m, gen));
	add_route("a.example.com");
	g2 = publish_changed(&m);
	ck_assert(!ev_timer_armed(&m.build_timer));
	ck_assert_uint_eq(m.gen, 1);
	/* After the ack grace it is killed; its respawn acks (CHECK_CHILD is "ack" now). */
	t0 = util_now_ms();
	ck_assert(testmaster_run_until(&m, killed_once, NULL, PUBLISH_ACK_GRACE_MS + 3000));
	ck_assert_uint_ge(util_now_ms() - t0 + 1000, PUBLISH_ACK_GRACE_MS);
	ck_assert(testmaster_run_until(&m, served, &g2, 5000));
	ck_assert_uint_eq(m.gen, 2);
	ck_assert(testmaster_run_until(&m, all_ready, NULL, 5000));
	ck_assert_uint_ge(m.workers[1].proc.spawns, 2);
	testmaster_free(&m);
}
END_TEST

Suite *
suite_publish(void)
{
	Suite *s = suite_create("publish");
	TCase *tc = tcase_create("barrier");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, ok_only_when_every_worker_acked);
	tcase_add_test(tc, changes_during_a_build_share_the_next);
	tcase_add_test(tc, a_lagging_worker_is_replaced);
	suite_add_tcase(s, tc);
	return s;
}
