/*
 * Unit tests for master/store_cluster.c (schema 17) on the SQLite engine:
 * the change counter only grows, a node's heartbeat row is one row per
 * name (written again, not added), rows come back by name, and the SQLite
 * store is not shared (no change channel).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/store.h"
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

struct rows {
	char name[4][STORE_NODE_NAME_MAX + 1], addr[4][STORE_NODE_ADDR_MAX + 1];
	int64_t served[4], seen[4];
	int n;
};

static int
collect(void *arg, const char *name, const char *addr, int64_t served, int64_t seen)
{
	struct rows *r = arg;

	ck_assert_int_lt(r->n, 4);
	snprintf(r->name[r->n], sizeof(r->name[0]), "%s", name);
	snprintf(r->addr[r->n], sizeof(r->addr[0]), "%s", addr);
	r->served[r->n] = served;
	r->seen[r->n++] = seen;
	return 0;
}

START_TEST(changes_grow)
{
	int64_t a = -1, b = -1, c = -1;

	ck_assert_int_eq(store_changes_get(st, &a), STORE_OK);
	ck_assert_int_eq(a, 0);
	ck_assert_int_eq(store_changes_bump(st, &b), STORE_OK);
	ck_assert_int_eq(store_changes_bump(st, &c), STORE_OK);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(c, 2);
	ck_assert_int_eq(store_changes_get(st, &a), STORE_OK);
	ck_assert_int_eq(a, 2);
}
END_TEST

START_TEST(heartbeat_rows)
{
	struct rows r;

	ck_assert_int_eq(store_node_beat(st, "node2", "127.0.0.1:81", 3, 1000), STORE_OK);
	ck_assert_int_eq(store_node_beat(st, "node1", "127.0.0.1:80", 1, 1000), STORE_OK);
	/* The same node again: its row is updated. */
	ck_assert_int_eq(store_node_beat(st, "node1", "127.0.0.1:8080", 5, 1001), STORE_OK);
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(store_node_foreach(st, collect, &r), 0);
	ck_assert_int_eq(r.n, 2);
	ck_assert_str_eq(r.name[0], "node1");
	ck_assert_str_eq(r.addr[0], "127.0.0.1:8080");
	ck_assert_int_eq(r.served[0], 5);
	ck_assert_int_eq(r.seen[0], 1001);
	ck_assert_str_eq(r.name[1], "node2");
	/* The schema's bounds: a name of 1 to 64 bytes. */
	ck_assert_int_eq(store_node_beat(st, "", "", 0, 0), STORE_EINVAL);
}
END_TEST

START_TEST(sqlite_is_not_shared)
{
	char buf[64];

	ck_assert_int_eq(store_shared(st), 0);
	ck_assert_int_eq(store_notice_fd(st), -1);
	ck_assert_int_eq(store_notice_next(st, buf, sizeof(buf)), 0);
	ck_assert_int_eq(store_notice_listen(st), STORE_ERR);
	ck_assert_int_eq(store_notice_send(st, "c 1 x"), STORE_ERR);
	ck_assert_int_eq(store_is_postgresql("postgresql://db/h"), 1);
	ck_assert_int_eq(store_is_postgresql("postgres://db/h"), 1);
	ck_assert_int_eq(store_is_postgresql("/var/lib/haloyd/store.db"), 0);
}
END_TEST

Suite *
suite_store_cluster(void)
{
	Suite *s = suite_create("store_cluster");
	TCase *tc = tcase_create("store_cluster");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, changes_grow);
	tcase_add_test(tc, heartbeat_rows);
	tcase_add_test(tc, sqlite_is_not_shared);
	suite_add_tcase(s, tc);
	return s;
}
