/*
 * Unit tests for master/rtable.c: the master's in-memory route table over
 * a SQLite store. A first sync loads every route in name order; later
 * syncs read only touched routes (a change not touched stays unseen, which
 * proves no full read happened), pick up adds, removals and alias or
 * backend changes, and fall back to a full read when invalidated or past
 * RTABLE_DIRTY_MAX touched names.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/rtable.h"
#include "master/store.h"
#include "tests/unit/suites.h"
#include "tests/unit/teststore.h"

static struct store *st;
static struct rtable t;

static void
setup(void)
{
	st = teststore_open();
	rtable_init(&t);
}

static void
teardown(void)
{
	rtable_free(&t);
	teststore_close(st);
}

static void
add(const char *name, const char *backend)
{
	const char *be[1] = { backend };

	ck_assert_int_eq(store_route_add(st, name, NULL, 0, be, backend != NULL, NULL), STORE_OK);
}

struct names {
	char v[8][64];
	size_t n;
};

static int
collect(void *arg, const struct store_route *r)
{
	struct names *n = arg;

	ck_assert_uint_lt(n->n, 8);
	snprintf(n->v[n->n++], sizeof(n->v[0]), "%s", r->name);
	return 0;
}

static size_t
count(void)
{
	struct names n = { .n = 0 };

	ck_assert_int_eq(rtable_foreach(&t, collect, &n), 0);
	return n.n;
}

START_TEST(first_sync_loads_all_in_order)
{
	struct names n = { .n = 0 };
	const struct store_route *r;

	add("c.example", "127.0.0.1:3");
	add("a.example", "127.0.0.1:1");
	add("b.example", NULL);
	ck_assert_int_eq(store_alias_add(st, "a.example", "www.a.example"), STORE_OK);
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	ck_assert_int_eq(rtable_foreach(&t, collect, &n), 0);
	ck_assert_uint_eq(n.n, 3);
	ck_assert_str_eq(n.v[0], "a.example");
	ck_assert_str_eq(n.v[1], "b.example");
	ck_assert_str_eq(n.v[2], "c.example");
	ck_assert_ptr_nonnull(r = rtable_find(&t, "a.example"));
	ck_assert_uint_eq(r->naliases, 1);
	ck_assert_str_eq(r->aliases[0], "www.a.example");
	ck_assert_uint_eq(r->nbackends, 1);
	ck_assert_str_eq(r->backends[0], "127.0.0.1:1");
	ck_assert_ptr_null(rtable_find(&t, "d.example"));
}
END_TEST

START_TEST(touched_routes_only)
{
	const struct store_route *r;

	add("a.example", "127.0.0.1:1");
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	/* Not touched: the table does not read the store again, so it does not see it. */
	add("untouched.example", NULL);
	add("b.example", "127.0.0.1:2");
	rtable_touch(&t, "b.example");
	rtable_touch(&t, "b.example");
	ck_assert_uint_eq(t.ndirty, 1);
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	ck_assert_uint_eq(count(), 2);
	ck_assert_ptr_nonnull(rtable_find(&t, "b.example"));
	ck_assert_ptr_null(rtable_find(&t, "untouched.example"));
	/* Backend and alias changes of one route. */
	ck_assert_int_eq(store_backend_add(st, "a.example", "127.0.0.1:9"), STORE_OK);
	ck_assert_int_eq(store_alias_add(st, "a.example", "*.a.example"), STORE_OK);
	rtable_touch(&t, "a.example");
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	ck_assert_ptr_nonnull(r = rtable_find(&t, "a.example"));
	ck_assert_uint_eq(r->nbackends, 2);
	ck_assert_str_eq(r->backends[1], "127.0.0.1:9");
	ck_assert_uint_eq(r->naliases, 1);
	/* A removal, and a touched name that never existed. */
	ck_assert_int_eq(store_route_rm(st, "b.example"), STORE_OK);
	rtable_touch(&t, "b.example");
	rtable_touch(&t, "never.example");
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	ck_assert_ptr_null(rtable_find(&t, "b.example"));
	ck_assert_uint_eq(count(), 1);
}
END_TEST

START_TEST(settings_follow)
{
	struct store_route cur;
	const struct store_route *r;

	add("a.example", "127.0.0.1:1");
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	ck_assert_int_eq(store_route_get(st, "a.example", &cur), STORE_OK);
	cur.set.connect_ms = 1234;
	cur.set.health_path = strdup("/healthz");
	ck_assert_int_eq(store_route_set(st, "a.example", &cur.set), STORE_OK);
	store_route_free(&cur);
	rtable_touch(&t, "a.example");
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	ck_assert_ptr_nonnull(r = rtable_find(&t, "a.example"));
	ck_assert_int_eq(r->set.connect_ms, 1234);
	ck_assert_str_eq(r->set.health_path, "/healthz");
}
END_TEST

START_TEST(invalidate_reads_all)
{
	add("a.example", NULL);
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	add("b.example", NULL);
	ck_assert_int_eq(store_route_rm(st, "a.example"), STORE_OK);
	rtable_invalidate(&t);
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	ck_assert_uint_eq(count(), 1);
	ck_assert_ptr_nonnull(rtable_find(&t, "b.example"));
}
END_TEST

START_TEST(dirty_bound_falls_back)
{
	char name[64];
	size_t i;

	add("a.example", NULL);
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	for (i = 0; i < RTABLE_DIRTY_MAX; i++) {
		snprintf(name, sizeof(name), "r%zu.example", i);
		rtable_touch(&t, name);
	}
	ck_assert_int_eq(t.stale, 0);
	ck_assert_uint_eq(t.ndirty, RTABLE_DIRTY_MAX);
	rtable_touch(&t, "one-more.example");
	ck_assert_int_eq(t.stale, 1);
	ck_assert_uint_eq(t.ndirty, 0);
	add("late.example", NULL);
	ck_assert_int_eq(rtable_sync(&t, st), 0);
	ck_assert_uint_eq(count(), 2);
	ck_assert_int_eq(t.stale, 0);
}
END_TEST

Suite *
suite_rtable(void)
{
	Suite *s = suite_create("rtable");
	TCase *tc = tcase_create("rtable");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, first_sync_loads_all_in_order);
	tcase_add_test(tc, touched_routes_only);
	tcase_add_test(tc, settings_follow);
	tcase_add_test(tc, invalidate_reads_all);
	tcase_add_test(tc, dirty_bound_falls_back);
	suite_add_tcase(s, tc);
	return s;
}
