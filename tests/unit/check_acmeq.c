/*
 * Unit tests for the ACME order queue and schedule (master/acmequeue.c)
 * against a real store: which routes are due (no certificate, renewal
 * window, names changed, forced; never an imported certificate or a name
 * a CA cannot issue for), back-off with jitter and Retry-After. The ACME
 * child is this program re-executed; it fails every order it is given.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "master/acmemaster.h"
#include "master/acmeint.h"
#include "master/proc.h"
#include "master/store.h"
#include "share/keyring.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testmaster.h"

#define DAY 86400

static struct master m;

START_TEST(names_equal)
{
	char a1[] = "b.example.com", a2[] = "a.example.com", b1[] = "a.example.com",
	    b2[] = "b.example.com";
	char *a[] = { a1, a2 }, *b[] = { b1, b2 };

	ck_assert(acmeq_names_equal(a, 2, b, 2));
	ck_assert(!acmeq_names_equal(a, 1, b, 2));
	a[1] = a1;
	ck_assert(!acmeq_names_equal(a, 2, b, 2));
}
END_TEST

START_TEST(backoff_bounds)
{
	struct master mm;
	int64_t d;
	int i;

	memset(&mm, 0, sizeof(mm));
	mm.cfg.acme_backoff_max_ms = 86400000;
	for (i = 0; i < 200; i++) {
		/* 5 s doubling per attempt, plus at most a quarter of jitter. */
		d = acmeq_backoff_s(&mm, 1, 0);
		ck_assert(d >= 5 && d <= 6);
		d = acmeq_backoff_s(&mm, 4, 0);
		ck_assert(d >= 40 && d <= 50);
		ck_assert_int_eq(acmeq_backoff_s(&mm, 40, 0), 86400);
		/* Retry-After wins when longer, even past the cap. */
		ck_assert_int_eq(acmeq_backoff_s(&mm, 1, 100000), 100000);
		d = acmeq_backoff_s(&mm, 4, 30);
		ck_assert(d >= 40 && d <= 50);
	}
	mm.cfg.acme_backoff_max_ms = 3000;
	ck_assert_int_eq(acmeq_backoff_s(&mm, 1, 0), 3);
	mm.cfg.acme_backoff_max_ms = 0;
	ck_assert_int_eq(acmeq_backoff_s(&mm, 1, 0), 1);
}
END_TEST

START_TEST(ari_window_pick)
{
	int64_t now = 1700000000, t;
	int i, lo = 0, hi = 0;

	for (i = 0; i < 2000; i++) {
		/* Uniform inside a future window: both halves get draws. */
		t = acmeq_ari_pick(now + 1000, now + 2000, now);
		ck_assert(t >= now + 1000 && t <= now + 2000);
		lo += t < now + 1500;
		hi += t >= now + 1500;
		/* A window already open: from now to its end. */
		t = acmeq_ari_pick(now - 500, now + 100, now);
		ck_assert(t >= now && t <= now + 100);
	}
	ck_assert_int_gt(lo, 800);
	ck_assert_int_gt(hi, 800);
	/* A window that is over, or a point: renew at once / at that point. */
	ck_assert_int_eq(acmeq_ari_pick(now - 500, now - 100, now), now);
	ck_assert_int_eq(acmeq_ari_pick(now + 7, now + 7, now), now + 7);
}
END_TEST

static int64_t
route(const char *name, const char *alias)
{
	const char *be[] = { "127.0.0.1:9" }, *al[] = { alias };
	struct store_route r;
	int64_t id;

	ck_assert_int_eq(store_route_add(m.store, name, al, alias != NULL, be, 1, NULL), STORE_OK);
	rtable_touch(&m.rt, name);	/* as master/commands.c does */
	ck_assert_int_eq(store_route_get(m.store, name, &r), STORE_OK);
	id = r.id;
	store_route_free(&r);
	return id;
}

/* A certificate row for domain covering names; the store checks no PEM. */
static void
cert(const char *domain, int source, char **names, size_t n, int64_t from, int64_t until)
{
	static char chain[] = "chain", key[] = "key", issuer[] = "CN=test";
	static char fp[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	struct store_cert c;

	memset(&c, 0, sizeof(c));
	c.domain = (char *)(uintptr_t)domain;
	c.source = source;
	c.names = names;
	c.nnames = n;
	c.chain = chain;
	c.key = key;
	c.issuer = issuer;
	c.fingerprint = fp;
	c.not_before = from;
	c.not_after = until;
	ck_assert_int_eq(store_cert_put(m.store, &c, NULL), STORE_OK);
}

struct count {
	int failed, rows;
};

static int
count_row(void *arg, const char *route, const struct store_order *o)
{
	struct count *c = arg;

	(void)route;
	c->rows++;
	c->failed += strcmp(o->state, "failed") == 0;
	return 0;
}

static int
failed_at_least(struct master *mm, void *arg)
{
	struct count c = { 0, 0 };

	ck_assert_int_eq(store_order_foreach(mm->store, NULL, count_row, &c), STORE_OK);
	return c.failed >= *(int *)arg;
}

static void
start_acme_as(const char *mode, const char *retry_after)
{
	setenv("CHECK_CHILD", mode, 1);
	setenv("CHECK_RETRY_AFTER", retry_after, 1);
	m.cfg.acme = 1;
	ck_assert_int_eq(acme_init(&m), 0);
	ck_assert_ptr_nonnull(m.acme);
}

static void
start_acme(const char *retry_after)
{
	start_acme_as("acme", retry_after);
}

static void
stop_acme(void)
{
	acme_stop(&m);
	testmaster_run_until(&m, NULL, NULL, 3000);
	acme_free(&m);
}

/* The row of route id: its state and attempts, "" when none. */
static const char *
row_state(int64_t id, struct store_order *o)
{
	if (store_order_get(m.store, id, o) != STORE_OK)
		return "";
	return o->state;
}

START_TEST(what_is_due)
{
	static char renamed[] = "renamed.example.com", fresh[] = "fresh.example.com",
	    old[] = "old.example.com", imp[] = "imported.example.com", forced[] = "forced.example.com";
	int64_t now = time(NULL), id_new, id_intra, id_fresh, id_old, id_ren, id_imp, id_forced,
	    id_pfx;
	struct store_order o;
	int four = 4;

	testmaster_init(&m, 0);
	id_new = route("new.example.com", NULL);	/* no certificate */
	id_intra = route("intranet", NULL);		/* no CA issues for it */
	id_pfx = route("new.example.com/api", NULL);	/* its host's certificate serves it */
	id_fresh = route(fresh, NULL);
	cert(fresh, KEYRING_SRC_ACME, (char *[]){ fresh }, 1, now - 10 * DAY, now + 80 * DAY);
	id_old = route(old, NULL);			/* inside the renewal window */
	cert(old, KEYRING_SRC_ACME, (char *[]){ old }, 1, now - 85 * DAY, now + 5 * DAY);
	id_ren = route(renamed, "www.renamed.example.com");	/* names changed */
	cert(renamed, KEYRING_SRC_ACME, (char *[]){ renamed }, 1, now - DAY, now + 89 * DAY);
	id_imp = route(imp, NULL);			/* the operator's: never */
	cert(imp, KEYRING_SRC_IMPORTED, (char *[]){ imp }, 1, now - 85 * DAY, now + DAY);
	id_forced = route(forced, NULL);		/* cert renew */
	cert(forced, KEYRING_SRC_ACME, (char *[]){ forced }, 1, now - DAY, now + 89 * DAY);
	memset(&o, 0, sizeof(o));
	util_strlcpy(o.state, "queued", sizeof(o.state));
	o.force = 1;
	ck_assert_int_eq(store_order_put(m.store, id_forced, &o, NULL), STORE_OK);

	start_acme("0");
	ck_assert(testmaster_run_until(&m, failed_at_least, &four, 10000));
	testmaster_run_for(&m, 300);
	ck_assert_str_eq(row_state(id_new, &o), "failed");
	ck_assert_int_eq(o.attempts, 1);
	ck_assert_str_eq(o.last_error, "rateLimited: slow down");
	ck_assert(o.next_attempt >= now + 5 && o.next_attempt <= time(NULL) + 6);
	ck_assert_str_eq(row_state(id_old, &o), "failed");
	ck_assert_str_eq(row_state(id_ren, &o), "failed");
	ck_assert_str_eq(row_state(id_forced, &o), "failed");
	ck_assert_int_eq(o.force, 1);	/* forced until it succeeds */
	ck_assert_str_eq(row_state(id_fresh, &o), "");
	ck_assert_str_eq(row_state(id_intra, &o), "");
	ck_assert_str_eq(row_state(id_pfx, &o), "");
	ck_assert_str_eq(row_state(id_imp, &o), "");
	/* Backing off: nothing is ordered again before next_attempt. */
	ck_assert_int_eq(m.acme->run.id, 0);
	ck_assert_str_eq(row_state(id_new, &o), "failed");
	ck_assert_int_eq(o.attempts, 1);
	stop_acme();
	testmaster_free(&m);
}
END_TEST

START_TEST(retry_after_is_honoured)
{
	int64_t now = time(NULL), id;
	struct store_order o;
	int one = 1;

	testmaster_init(&m, 0);
	id = route("slow.example.com", NULL);
	start_acme("900");
	ck_assert(testmaster_run_until(&m, failed_at_least, &one, 10000));
	ck_assert_str_eq(row_state(id, &o), "failed");
	ck_assert(o.next_attempt >= now + 900 && o.next_attempt <= time(NULL) + 900);
	stop_acme();
	testmaster_free(&m);
}
END_TEST

#define THUMB_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define THUMB_B "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

static int
chal_published(struct master *mm, void *arg)
{
	(void)arg;
	return mm->acme->nchals == 1;
}

/* An HTTP-01 child; the master must have an HTTP listener to choose HTTP-01 on its own. */
static void
start_acme_chal(const char *thumb, const char *keyauth_thumb)
{
	setenv("CHECK_THUMBPRINT", thumb, 1);
	setenv("CHECK_KEYAUTH_THUMB", keyauth_thumb, 1);
	m.lst.naddrs = 1;
	start_acme_as("acmechal", "0");
}

static int
alpn_published(struct master *mm, void *arg)
{
	(void)arg;
	return mm->acme->nalpn == 1;
}

/* Only "TOKEN.THUMBPRINT" of the account the child named at start is published. */
START_TEST(keyauth_bound_to_the_account)
{
	const struct snapb_chal *chals;
	uint32_t n;
	int one = 1;

	testmaster_init(&m, 0);
	(void)route("bound.example.com", NULL);
	start_acme_chal(THUMB_A, THUMB_A);
	ck_assert(testmaster_run_until(&m, chal_published, NULL, 10000));
	acme_snap_chals(&m, &chals, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(chals[0].keyauth, "tok-1." THUMB_A);
	stop_acme();
	testmaster_free(&m);

	testmaster_init(&m, 0);
	(void)route("unbound.example.com", NULL);
	start_acme_chal(THUMB_A, THUMB_B);
	/* Refused: the child is taken for broken and killed; its order fails. */
	ck_assert(testmaster_run_until(&m, failed_at_least, &one, 10000));
	ck_assert_uint_eq(m.acme->nchals, 0);
	stop_acme();
	testmaster_free(&m);
}
END_TEST

/*
 * TLS-ALPN-01 (no HTTP listener): the checked certificate goes into the
 * keyring for the order; one for another name, or an HTTP-01 answer, kills
 * the child and fails the order. The order's end takes it out again.
 */
START_TEST(alpn_certificate_published)
{
	const struct acme_alpn_cert *v;
	int one = 1;

	testmaster_init(&m, 0);
	(void)route("alpn.example.com", NULL);
	setenv("CHECK_THUMBPRINT", THUMB_A, 1);
	unsetenv("CHECK_ALPN_HOST");
	start_acme_as("acmealpn", "0");
	ck_assert(testmaster_run_until(&m, alpn_published, NULL, 10000));
	ck_assert_uint_eq(acme_alpn_certs(&m, &v), 1);
	ck_assert_str_eq(v[0].host, "alpn.example.com");
	ck_assert_ptr_nonnull(strstr(v[0].cert, "BEGIN CERTIFICATE"));
	ck_assert_uint_eq(m.acme->nchals, 0);	/* nothing for port 80 */
	stop_acme();
	ck_assert_uint_eq(acme_alpn_certs(&m, &v), 0);
	testmaster_free(&m);

	testmaster_init(&m, 0);
	(void)route("other.example.com", NULL);
	setenv("CHECK_ALPN_HOST", "evil.example.com", 1);
	start_acme_as("acmealpn", "0");
	ck_assert(testmaster_run_until(&m, failed_at_least, &one, 10000));
	ck_assert_uint_eq(acme_alpn_certs(&m, &v), 0);
	stop_acme();
	unsetenv("CHECK_ALPN_HOST");
	testmaster_free(&m);

	/* An HTTP-01 answer for a TLS-ALPN-01 order. */
	testmaster_init(&m, 0);
	(void)route("mixed.example.com", NULL);
	setenv("CHECK_THUMBPRINT", THUMB_A, 1);
	setenv("CHECK_KEYAUTH_THUMB", THUMB_A, 1);
	start_acme_as("acmechal", "0");
	ck_assert(testmaster_run_until(&m, failed_at_least, &one, 10000));
	ck_assert_uint_eq(m.acme->nchals, 0);
	stop_acme();
	testmaster_free(&m);
}
END_TEST

/* An ARI answer: the window and the draw are stored; the same window keeps its draw; the due time follows it. */
START_TEST(ari_answer_stored)
{
	static char name[] = "ari.example.com";
	int64_t now = time(NULL), id, renew;
	struct acme_peer a;
	struct store_order o;
	struct store_cert sc;

	testmaster_init(&m, 0);
	m.cfg.acme_renew_before = 33;
	memset(&a, 0, sizeof(a));
	a.m = &m;
	id = route(name, NULL);
	cert(name, KEYRING_SRC_ACME, (char *[]){ name }, 1, now - DAY, now + 89 * DAY);
	memset(&o, 0, sizeof(o));
	util_strlcpy(o.state, "valid", sizeof(o.state));
	ck_assert_int_eq(store_order_put(m.store, id, &o, NULL), STORE_OK);

	acmeq_ari_result(&a, id, MSG_A_ARI_WINDOW, "kid.serial", now + 10 * DAY, now + 11 * DAY, 5);
	ck_assert_int_eq(store_order_get(m.store, id, &o), STORE_OK);
	ck_assert_str_eq(o.ari_id, "kid.serial");
	ck_assert_int_eq(o.ari_start, now + 10 * DAY);
	ck_assert_int_eq(o.ari_end, now + 11 * DAY);
	ck_assert(o.ari_renew_at >= o.ari_start && o.ari_renew_at <= o.ari_end);
	/* Retry-After below a minute is a minute. */
	ck_assert(o.ari_next_poll >= now + 60 && o.ari_next_poll <= time(NULL) + 60);
	renew = o.ari_renew_at;
	ck_assert_int_eq(store_cert_get(m.store, name, 0, &sc), STORE_OK);
	ck_assert_int_eq(acmeq_renew_at(&m, &sc, &o), renew);
	/* The same window again: the same renewal time. */
	acmeq_ari_result(&a, id, MSG_A_ARI_WINDOW, "kid.serial", now + 10 * DAY, now + 11 * DAY, 7200);
	ck_assert_int_eq(store_order_get(m.store, id, &o), STORE_OK);
	ck_assert_int_eq(o.ari_renew_at, renew);
	ck_assert(o.ari_next_poll >= now + 7200);
	/* A failed poll keeps the window; a CA without ARI goes back to the lifetime rule. */
	acmeq_ari_result(&a, id, MSG_A_ARI_FAILED, "", 0, 0, 0);
	ck_assert_int_eq(store_order_get(m.store, id, &o), STORE_OK);
	ck_assert_int_eq(o.ari_renew_at, renew);
	acmeq_ari_result(&a, id, MSG_A_ARI_NONE, "", 0, 0, 0);
	ck_assert_int_eq(store_order_get(m.store, id, &o), STORE_OK);
	ck_assert_int_eq(o.ari_end, 0);
	ck_assert_str_eq(o.ari_id, "");
	ck_assert(a.ari_off_until >= now + DAY);	/* no ARI request for a day, for any route */
	ck_assert_int_eq(acmeq_renew_at(&m, &sc, &o), sc.not_after - 90 * DAY * 33 / 100);
	store_cert_free(&sc);
	testmaster_free(&m);
}
END_TEST

Suite *
suite_acmeq(void)
{
	Suite *s = suite_create("acmeq");
	TCase *tc = tcase_create("schedule");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, names_equal);
	tcase_add_test(tc, backoff_bounds);
	tcase_add_test(tc, ari_window_pick);
	tcase_add_test(tc, ari_answer_stored);
	tcase_add_test(tc, what_is_due);
	tcase_add_test(tc, retry_after_is_honoured);
	tcase_add_test(tc, keyauth_bound_to_the_account);
	tcase_add_test(tc, alpn_certificate_published);
	suite_add_tcase(s, tc);
	return s;
}
