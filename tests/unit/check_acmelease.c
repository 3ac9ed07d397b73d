/*
 * Unit tests for master/acmelease.c and master/store_lease.c (schema 18)
 * on the SQLite engine, two nodes simulated by two holder names on one
 * store: one holder at a time, a take-over only after expiry and with a
 * higher token, renewals and releases only with the current token, and
 * the fenced certificate save refused once the lease was taken over.
 * (PostgreSQL runs the same statements in test_pgacme.py.)
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "master/acmelease.h"
#include "master/store.h"
#include "share/keyring.h"
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

static void
cert_fill(struct store_cert *c, char *fp)
{
	static char name[] = "a.example.com", *names[] = { name };
	static char chain[] = "chain", key[] = "key", issuer[] = "CN=test";

	memset(c, 0, sizeof(*c));
	c->domain = names[0];
	c->source = KEYRING_SRC_ACME;
	c->names = names;
	c->nnames = 1;
	c->chain = chain;
	c->key = key;
	c->issuer = issuer;
	c->fingerprint = fp;
	c->not_before = 10;
	c->not_after = 20;
}

START_TEST(one_holder)
{
	struct acmelease n1, n2;
	int64_t until;

	acmelease_init(&n1, "node1");
	acmelease_init(&n2, "node2");
	ck_assert_int_eq(acmelease_take(st, &n1, "a.example.com", 1000, &until), 1);
	ck_assert_int_eq(n1.token, 1);
	/* Held and not expired: the other node waits until its expiry. */
	ck_assert_int_eq(acmelease_take(st, &n2, "a.example.com", 1000 + ACMELEASE_TTL_S - 1,
	    &until), 0);
	ck_assert_int_eq(until, 1000 + ACMELEASE_TTL_S);
	ck_assert_str_eq(n2.name, "");
	/* Another name is another lease. */
	ck_assert_int_eq(acmelease_take(st, &n2, "b.example.com", 1000, &until), 1);
	/* Renewed: still held past the first expiry. */
	ck_assert_int_eq(acmelease_renew(st, &n1, 1100), 0);
	ck_assert_int_eq(acmelease_take(st, &n2, "a.example.com", 1000 + ACMELEASE_TTL_S, &until), 0);
	ck_assert_int_eq(until, 1100 + ACMELEASE_TTL_S);
}
END_TEST

START_TEST(takeover_after_expiry)
{
	struct acmelease n1, n2;
	int64_t until;

	acmelease_init(&n1, "node1");
	acmelease_init(&n2, "node2");
	ck_assert_int_eq(acmelease_take(st, &n1, "a.example.com", 1000, &until), 1);
	/* node1 stalls: at its expiry node2 takes over with a higher token. */
	ck_assert_int_eq(acmelease_take(st, &n2, "a.example.com", 1000 + ACMELEASE_TTL_S, &until), 1);
	ck_assert_int_gt(n2.token, n1.token);
	/* node1 wakes up: its renewal is refused and it knows it lost the lease. */
	ck_assert_int_eq(acmelease_renew(st, &n1, 1200), -1);
	ck_assert_str_eq(n1.name, "");
	/* Its release cannot free node2's lease either. */
	ck_assert_int_eq(store_lease_release(st, "acme:a.example.com", "node1", 1), STORE_ENOENT);
	ck_assert_int_eq(store_lease_current(st, "acme:a.example.com", "node2", n2.token), STORE_OK);
}
END_TEST

START_TEST(release_frees)
{
	struct acmelease n1, n2;
	int64_t until, t1;

	acmelease_init(&n1, "node1");
	acmelease_init(&n2, "node2");
	ck_assert_int_eq(acmelease_take(st, &n1, "a.example.com", 1000, &until), 1);
	t1 = n1.token;
	acmelease_release(st, &n1);
	ck_assert_str_eq(n1.name, "");
	/* Free at once, and the token still grows (the row is kept). */
	ck_assert_int_eq(acmelease_take(st, &n2, "a.example.com", 1001, &until), 1);
	ck_assert_int_gt(n2.token, t1);
	/* Releasing nothing is harmless; renewing nothing is a loss. */
	acmelease_release(st, &n1);
	ck_assert_int_eq(acmelease_renew(st, &n1, 1002), -1);
	/* The same node taking its own lease again (a restart) also bumps the token. */
	t1 = n2.token;
	ck_assert_int_eq(acmelease_take(st, &n2, "a.example.com", 1003, &until), 1);
	ck_assert_int_gt(n2.token, t1);
}
END_TEST

START_TEST(fenced_cert_put)
{
	char fp1[] = "1111111111111111111111111111111111111111111111111111111111111111";
	char fp2[] = "2222222222222222222222222222222222222222222222222222222222222222";
	struct acmelease n1, n2;
	struct store_cert c, got;
	int64_t until;

	acmelease_init(&n1, "node1");
	acmelease_init(&n2, "node2");
	ck_assert_int_eq(acmelease_take(st, &n1, "a.example.com", 1000, &until), 1);
	ck_assert_int_eq(acmelease_take(st, &n2, "a.example.com", 1000 + ACMELEASE_TTL_S, &until), 1);
	cert_fill(&c, fp2);
	ck_assert_int_eq(acmelease_cert_put(st, &n2, &c), STORE_OK);
	/* The stalled node's late result is refused: node2's certificate stays. */
	cert_fill(&c, fp1);
	ck_assert_int_eq(acmelease_cert_put(st, &n1, &c), STORE_ENOENT);
	ck_assert_int_eq(store_cert_get(st, "a.example.com", 0, &got), STORE_OK);
	ck_assert_str_eq(got.fingerprint, fp2);
	store_cert_free(&got);
	/* Without a lease nothing is saved. */
	acmelease_release(st, &n2);
	ck_assert_int_eq(acmelease_cert_put(st, &n2, &c), STORE_ENOENT);
}
END_TEST

START_TEST(bounds)
{
	char name[STORE_LEASE_NAME_MAX + 10];
	struct acmelease n1;
	int64_t until;

	acmelease_init(&n1, "node1");
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_int_eq(acmelease_take(st, &n1, name, 1000, &until), -1);
	/* The schema refuses an empty holder. */
	acmelease_init(&n1, "");
	ck_assert_int_eq(acmelease_take(st, &n1, "a.example.com", 1000, &until), -1);
}
END_TEST

Suite *
suite_acmelease(void)
{
	Suite *s = suite_create("acmelease");
	TCase *tc = tcase_create("acmelease");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, one_holder);
	tcase_add_test(tc, takeover_after_expiry);
	tcase_add_test(tc, release_frees);
	tcase_add_test(tc, fenced_cert_put);
	tcase_add_test(tc, bounds);
	suite_add_tcase(s, tc);
	return s;
}
