/*
 * Unit tests for master/store_ondemand.c (schema 15): on-demand names
 * (add once, read back, list, route hosts told apart) and their order
 * rows through store_acme.c's functions with a negative key, listed by
 * name beside the routes' rows; a removed name takes its order row along.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/store.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/teststore.h"

static struct store *st;

static void
setup(void)
{
	st = teststore_open();
}

static void
teardown(void)
{
	teststore_close(st);
}

struct names {
	char v[4][64];
	int64_t id[4];
	int n;
};

static int
collect_name(void *arg, int64_t id, const char *name)
{
	struct names *s = arg;

	ck_assert_int_lt(s->n, 4);
	util_strlcpy(s->v[s->n], name, sizeof(s->v[0]));
	s->id[s->n++] = id;
	return 0;
}

static int
collect_order(void *arg, const char *name, const struct store_order *o)
{
	struct names *s = arg;

	ck_assert_int_lt(s->n, 4);
	util_strlcpy(s->v[s->n], name, sizeof(s->v[0]));
	s->id[s->n++] = o->attempts;
	return 0;
}

START_TEST(names_added_once)
{
	const char *be[] = { "127.0.0.1:9" };
	int64_t a, a2, b, got;
	struct names s;

	ck_assert_int_eq(store_ondemand_get(st, "a.example.com", &got), STORE_ENOENT);
	ck_assert_int_eq(store_ondemand_add(st, "a.example.com", &a), STORE_OK);
	ck_assert_int_eq(store_ondemand_add(st, "b.example.com", &b), STORE_OK);
	ck_assert_int_eq(store_ondemand_add(st, "a.example.com", &a2), STORE_OK);
	ck_assert_int_eq(a, a2);
	ck_assert_int_ne(a, b);
	ck_assert_int_gt(a, 0);
	ck_assert_int_eq(store_ondemand_get(st, "b.example.com", &got), STORE_OK);
	ck_assert_int_eq(got, b);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_ondemand_foreach(st, collect_name, &s), STORE_OK);
	ck_assert_int_eq(s.n, 2);
	ck_assert_str_eq(s.v[0], "a.example.com");
	ck_assert_str_eq(s.v[1], "b.example.com");
	/* Route names and aliases are hosts; on-demand names are not. */
	ck_assert_int_eq(store_host_exists(st, "a.example.com"), STORE_ENOENT);
	ck_assert_int_eq(store_route_add(st, "r.example.com", (const char *[]){ "al.example.com" }, 1,
	    be, 1, NULL), STORE_OK);
	ck_assert_int_eq(store_host_exists(st, "r.example.com"), STORE_OK);
	ck_assert_int_eq(store_host_exists(st, "al.example.com"), STORE_OK);
}
END_TEST

START_TEST(order_rows_by_negative_key)
{
	const char *be[] = { "127.0.0.1:9" };
	struct store_order o, back;
	struct store_route r;
	struct names s;
	int64_t id;

	ck_assert_int_eq(store_route_add(st, "m.example.com", NULL, 0, be, 1, NULL), STORE_OK);
	ck_assert_int_eq(store_route_get(st, "m.example.com", &r), STORE_OK);
	ck_assert_int_eq(store_ondemand_add(st, "od.example.com", &id), STORE_OK);
	ck_assert_int_eq(store_order_get(st, -id, &back), STORE_ENOENT);
	memset(&o, 0, sizeof(o));
	util_strlcpy(o.state, "failed", sizeof(o.state));
	o.attempts = 7;
	o.next_attempt = 99;
	util_strlcpy(o.challenge, "http-01", sizeof(o.challenge));
	ck_assert_int_eq(store_order_put(st, -id, &o, "od.example.com"), STORE_OK);
	o.attempts = 2;
	ck_assert_int_eq(store_order_put(st, r.id, &o, NULL), STORE_OK);
	ck_assert_int_eq(store_order_get(st, -id, &back), STORE_OK);
	ck_assert_str_eq(back.state, "failed");
	ck_assert_int_eq(back.attempts, 7);
	ck_assert_int_eq(back.next_attempt, 99);
	ck_assert_str_eq(back.challenge, "http-01");
	/* The same id as a route's key is another row (or none). */
	if (id != r.id)
		ck_assert_int_eq(store_order_get(st, id, &back), STORE_ENOENT);
	/* cert status lists both kinds, by name; and one by its name. */
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_order_foreach(st, NULL, collect_order, &s), STORE_OK);
	ck_assert_int_eq(s.n, 2);
	ck_assert_str_eq(s.v[0], "m.example.com");
	ck_assert_int_eq(s.id[0], 2);
	ck_assert_str_eq(s.v[1], "od.example.com");
	ck_assert_int_eq(s.id[1], 7);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_order_foreach(st, "od.example.com", collect_order, &s), STORE_OK);
	ck_assert_int_eq(s.n, 1);
	/* Removing the name takes its order row with it; the route's stays. */
	ck_assert_int_eq(store_ondemand_rm(st, "od.example.com"), STORE_OK);
	ck_assert_int_eq(store_ondemand_rm(st, "od.example.com"), STORE_ENOENT);
	ck_assert_int_eq(store_ondemand_rm(st, "m.example.com"), STORE_ENOENT);
	ck_assert_int_eq(store_ondemand_get(st, "od.example.com", &id), STORE_ENOENT);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_order_foreach(st, NULL, collect_order, &s), STORE_OK);
	ck_assert_int_eq(s.n, 1);
	ck_assert_str_eq(s.v[0], "m.example.com");
	store_route_free(&r);
}
END_TEST

Suite *
suite_store_ondemand(void)
{
	Suite *s = suite_create("store_ondemand");
	TCase *tc = tcase_create("ondemand");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, names_added_once);
	tcase_add_test(tc, order_rows_by_negative_key);
	suite_add_tcase(s, tc);
	return s;
}
