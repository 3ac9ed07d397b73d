/*
 * Unit tests for master/store_chal.c (schema 19, on the SQLite engine:
 * two nodes simulated by two holder names) and master/acmeshare.c's wait
 * for the other nodes (a fake node table): rows written only under the
 * current lease, expired rows ignored, a node's rows cleared; the ordering
 * node goes on only when every live node serves the change, or after the
 * bound, naming the nodes that did not.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/acmeint.h"
#include "master/acmelease.h"
#include "master/store.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testmaster.h"
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

struct seen {
	int n;
	char tokens[4][64];
	char certs[4][64];
	char holders[4][64];
};

static int
seen_row(void *arg, const struct store_chal *c)
{
	struct seen *s = arg;

	ck_assert_int_lt(s->n, 4);
	snprintf(s->tokens[s->n], sizeof(s->tokens[0]), "%s", c->token);
	snprintf(s->certs[s->n], sizeof(s->certs[0]), "%s", c->cert);
	snprintf(s->holders[s->n], sizeof(s->holders[0]), "%s", c->holder);
	s->n++;
	return 0;
}

START_TEST(rows_under_the_lease)
{
	struct acmelease n1, n2;
	struct store_chal c1 = { "tok1", "a.example.com", "tok1.thumb", "", "", "node1" };
	struct store_chal c2 = { "tok2", "a.example.com", "tok2.thumb", "CERT", "KEY", "node1" };
	struct seen s;
	int64_t until;

	acmelease_init(&n1, "node1");
	acmelease_init(&n2, "node2");
	ck_assert_int_eq(acmelease_take(st, &n1, "a.example.com", 1000, &until), 1);
	ck_assert_int_eq(store_chal_put(st, n1.name, n1.token, &c1, 1600), STORE_OK);
	ck_assert_int_eq(store_chal_put(st, n1.name, n1.token, &c2, 1600), STORE_OK);
	/* Not the holder, or not its token: refused, nothing written. */
	c1.holder = "node2";
	c1.token = "tok3";
	ck_assert_int_eq(store_chal_put(st, n1.name, n1.token, &c1, 1600), STORE_ENOENT);
	c1.holder = "node1";
	ck_assert_int_eq(store_chal_put(st, n1.name, n1.token + 1, &c1, 1600), STORE_ENOENT);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_chal_foreach(st, 1500, seen_row, &s), STORE_OK);
	ck_assert_int_eq(s.n, 2);
	ck_assert_str_eq(s.tokens[0], "tok1");
	ck_assert_str_eq(s.certs[0], "");
	ck_assert_str_eq(s.tokens[1], "tok2");
	ck_assert_str_eq(s.certs[1], "CERT");
	ck_assert_str_eq(s.holders[1], "node1");
	/* Expired (a node that died mid-order): ignored. */
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_chal_foreach(st, 1600, seen_row, &s), STORE_OK);
	ck_assert_int_eq(s.n, 0);
	/* Taken over after expiry: the old holder's writes are refused. */
	ck_assert_int_eq(acmelease_take(st, &n2, "a.example.com", 1000 + ACMELEASE_TTL_S,
	    &until), 1);
	c1.token = "tok4";
	ck_assert_int_eq(store_chal_put(st, n1.name, n1.token, &c1, 1600), STORE_ENOENT);
}
END_TEST

START_TEST(clear_by_holder_and_expiry)
{
	struct acmelease n1, n2;
	struct store_chal c1 = { "tok1", "a.example.com", "tok1.thumb", "", "", "node1" };
	struct store_chal c2 = { "tok2", "b.example.com", "tok2.thumb", "", "", "node2" };
	struct store_chal c3 = { "tok3", "c.example.com", "tok3.thumb", "", "", "node2" };
	struct seen s;
	int64_t until;

	acmelease_init(&n1, "node1");
	acmelease_init(&n2, "node2");
	ck_assert_int_eq(acmelease_take(st, &n1, "a.example.com", 1000, &until), 1);
	ck_assert_int_eq(acmelease_take(st, &n2, "b.example.com", 1000, &until), 1);
	ck_assert_int_eq(store_chal_put(st, n1.name, n1.token, &c1, 1600), STORE_OK);
	ck_assert_int_eq(store_chal_put(st, n2.name, n2.token, &c2, 1600), STORE_OK);
	ck_assert_int_eq(store_chal_put(st, n2.name, n2.token, &c3, 1100), STORE_OK);
	/* node1's order ended at 1200: its rows go, and so does node2's expired one. */
	ck_assert_int_eq(store_chal_clear(st, "node1", 1200), STORE_OK);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_chal_foreach(st, 0, seen_row, &s), STORE_OK);
	ck_assert_int_eq(s.n, 1);
	ck_assert_str_eq(s.tokens[0], "tok2");
}
END_TEST

START_TEST(bounds)
{
	struct acmelease n1;
	struct store_chal c = { "tok1", "a.example.com", "tok1.thumb", "", "", "node1" };
	char big[STORE_CHAL_PEM_MAX + 2];
	int64_t until;

	acmelease_init(&n1, "node1");
	ck_assert_int_eq(acmelease_take(st, &n1, "a.example.com", 1000, &until), 1);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* The schema refuses what no node could serve. */
	c.cert = big;
	ck_assert_int_ne(store_chal_put(st, n1.name, n1.token, &c, 1600), STORE_OK);
	c.cert = "";
	big[STORE_CHAL_TOKEN_MAX + 1] = '\0';
	c.token = big;
	ck_assert_int_ne(store_chal_put(st, n1.name, n1.token, &c, 1600), STORE_OK);
	big[STORE_CHAL_TOKEN_MAX] = '\0';
	ck_assert_int_eq(store_chal_put(st, n1.name, n1.token, &c, 1600), STORE_OK);
	c.token = "tok2";
	c.keyauth = "";
	ck_assert_int_ne(store_chal_put(st, n1.name, n1.token, &c, 1600), STORE_OK);
}
END_TEST

/* --- the wait, with a fake node table */

static int64_t fake_want;
static int fake_served;

static int64_t
fake_want_fn(const struct master *m)
{
	(void)m;
	return fake_want;
}

static int
fake_served_fn(const struct master *m, int64_t n)
{
	(void)m;
	ck_assert_int_eq(n, fake_want);
	return fake_served;
}

static void
fake_lagging_fn(const struct master *m, int64_t n, char *buf, size_t len)
{
	(void)m;
	(void)n;
	snprintf(buf, len, "%s", fake_served ? "" : "node3");
}

static const struct acmeshare_nodes fake_nodes = { fake_want_fn, fake_served_fn,
    fake_lagging_fn };

static struct master m;
static struct acme_peer *peer;

static void
wait_setup(void)
{
	testmaster_init(&m, 0);
	ck_assert_ptr_nonnull(peer = calloc(1, sizeof(*peer)));
	peer->m = &m;
	peer->proc.sock = -1;
	acmeshare_init(peer, &fake_nodes, 300);
	util_strlcpy(peer->run.names[0], "a.example.com", sizeof(peer->run.names[0]));
	peer->run.nnames = 1;
	peer->run.waiting = 1;
	fake_want = 7;
	fake_served = 0;
}

static void
wait_teardown(void)
{
	ev_timer_stop(m.loop, &peer->chal_wait);
	free(peer);
	testmaster_free(&m);
}

static int
late(struct master *mm, void *arg)
{
	(void)mm;
	return ((struct acme_peer *)arg)->run.chal_late;
}

START_TEST(wait_for_every_node)
{
	acmeshare_wait(peer);
	ck_assert_int_eq(peer->run.chal_change, 7);
	ck_assert(ev_timer_armed(&peer->chal_wait));
	ck_assert_int_eq(acmeshare_served(peer), 0);
	fake_served = 1;
	ck_assert_int_eq(acmeshare_served(peer), 1);
	ck_assert(!ev_timer_armed(&peer->chal_wait));
	ck_assert_int_eq(peer->run.chal_late, 0);
}
END_TEST

START_TEST(wait_bounded)
{
	acmeshare_wait(peer);
	ck_assert_int_eq(acmeshare_served(peer), 0);
	/* A node that never serves it: after the bound the order goes on anyway. */
	ck_assert_int_eq(testmaster_run_until(&m, late, peer, 5000), 1);
	ck_assert_int_eq(acmeshare_served(peer), 1);
}
END_TEST

START_TEST(no_change_no_wait)
{
	/* SQLite, or a change the store could not number: nothing to wait for. */
	fake_want = 0;
	acmeshare_wait(peer);
	ck_assert(!ev_timer_armed(&peer->chal_wait));
	ck_assert_int_eq(acmeshare_served(peer), 1);
}
END_TEST

Suite *
suite_acmeshare(void)
{
	Suite *s = suite_create("acmeshare");
	TCase *tc = tcase_create("store_chal");
	TCase *tw = tcase_create("wait");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, rows_under_the_lease);
	tcase_add_test(tc, clear_by_holder_and_expiry);
	tcase_add_test(tc, bounds);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tw, wait_setup, wait_teardown);
	tcase_add_test(tw, wait_for_every_node);
	tcase_add_test(tw, wait_bounded);
	tcase_add_test(tw, no_change_no_wait);
	suite_add_tcase(s, tw);
	return s;
}
