/*
 * Unit tests for master/store_acme.c: the acme_orders rows (write, read
 * back, keep the names, listing by route name, gone with their route).
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

static int64_t
add_route(const char *name)
{
	const char *be[] = { "127.0.0.1:9" };
	struct store_route r;
	int64_t id;

	ck_assert_int_eq(store_route_add(st, name, NULL, 0, be, 1, NULL), STORE_OK);
	ck_assert_int_eq(store_route_get(st, name, &r), STORE_OK);
	id = r.id;
	store_route_free(&r);
	return id;
}

struct seen {
	char names[4][64];
	struct store_order o[4];
	int n;
};

static int
collect(void *arg, const char *route, const struct store_order *o)
{
	struct seen *s = arg;

	ck_assert_int_lt(s->n, 4);
	util_strlcpy(s->names[s->n], route, sizeof(s->names[0]));
	s->o[s->n++] = *o;
	return 0;
}

START_TEST(put_get)
{
	int64_t id = add_route("a.example.com");
	struct store_order o, back;

	ck_assert_int_eq(store_order_get(st, id, &back), STORE_ENOENT);
	ck_assert_str_eq(back.state, "");
	memset(&o, 0, sizeof(o));
	util_strlcpy(o.state, "failed", sizeof(o.state));
	o.attempts = 3;
	o.next_attempt = 1234;
	o.force = 1;
	util_strlcpy(o.last_error, "rateLimited: slow down", sizeof(o.last_error));
	ck_assert_int_eq(store_order_put(st, id, &o, "a.example.com www.a.example.com"), STORE_OK);
	ck_assert_int_eq(store_order_get(st, id, &back), STORE_OK);
	ck_assert_str_eq(back.state, "failed");
	ck_assert_int_eq(back.attempts, 3);
	ck_assert_int_eq(back.next_attempt, 1234);
	ck_assert_int_eq(back.force, 1);
	ck_assert_str_eq(back.last_error, "rateLimited: slow down");
	/* A rewrite without names keeps them; an empty error reads back empty. */
	util_strlcpy(o.state, "valid", sizeof(o.state));
	o.last_error[0] = '\0';
	ck_assert_int_eq(store_order_put(st, id, &o, NULL), STORE_OK);
	ck_assert_int_eq(store_order_get(st, id, &back), STORE_OK);
	ck_assert_str_eq(back.state, "valid");
	ck_assert_str_eq(back.last_error, "");
	/* The schema refuses a state it does not know. */
	util_strlcpy(o.state, "bogus", sizeof(o.state));
	ck_assert_int_eq(store_order_put(st, id, &o, NULL), STORE_EINVAL);
	/* No route (removed while its order ran), no row and no error. */
	util_strlcpy(o.state, "queued", sizeof(o.state));
	ck_assert_int_eq(store_order_put(st, id + 100, &o, NULL), STORE_OK);
	ck_assert_int_eq(store_order_get(st, id + 100, &back), STORE_ENOENT);
	ck_assert_int_eq(store_order_put(st, -(id + 100), &o, NULL), STORE_OK);
	ck_assert_int_eq(store_order_get(st, -(id + 100), &back), STORE_ENOENT);
}
END_TEST

START_TEST(foreach_by_name_and_cascade)
{
	int64_t b = add_route("b.example.com"), a = add_route("a.example.com");
	struct store_order o;
	struct seen s;

	memset(&o, 0, sizeof(o));
	util_strlcpy(o.state, "queued", sizeof(o.state));
	ck_assert_int_eq(store_order_put(st, b, &o, NULL), STORE_OK);
	util_strlcpy(o.state, "running", sizeof(o.state));
	ck_assert_int_eq(store_order_put(st, a, &o, "a.example.com"), STORE_OK);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_order_foreach(st, NULL, collect, &s), STORE_OK);
	ck_assert_int_eq(s.n, 2);
	ck_assert_str_eq(s.names[0], "a.example.com");
	ck_assert_str_eq(s.o[0].state, "running");
	ck_assert_str_eq(s.names[1], "b.example.com");
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_order_foreach(st, "b.example.com", collect, &s), STORE_OK);
	ck_assert_int_eq(s.n, 1);
	ck_assert_str_eq(s.o[0].state, "queued");
	/* The row goes with its route. */
	ck_assert_int_eq(store_route_rm(st, "b.example.com"), STORE_OK);
	ck_assert_int_eq(store_order_get(st, b, &o), STORE_ENOENT);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_order_foreach(st, "b.example.com", collect, &s), STORE_OK);
	ck_assert_int_eq(s.n, 0);
}
END_TEST

Suite *
suite_store_acme(void)
{
	Suite *s = suite_create("store_acme");
	TCase *tc = tcase_create("orders");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, put_get);
	tcase_add_test(tc, foreach_by_name_and_cascade);
	suite_add_tcase(s, tc);
	return s;
}
