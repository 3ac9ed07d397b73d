/*
 * Unit tests for worker/odwait.c: held handshakes of on-demand TLS, with a
 * fake send to the master and connections whose fake session counts the
 * kicks that resume them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "share/hostname.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/conn.h"
#include "worker/odwait.h"

static char sent[64][HOSTNAME_MAX + 1];
static unsigned nsent;
static int send_fails;
static unsigned runs;

static int
fake_send(struct worker *w, const char *name)
{
	(void)w;
	if (send_fails)
		return -1;
	if (nsent < 64)
		snprintf(sent[nsent], sizeof(sent[0]), "%s", name);
	nsent++;
	return 0;
}

static void
fake_run(struct conn *c)
{
	(void)c;
	runs++;
}

static const struct session_ops fake_ops = { .name = "fake", .run = fake_run };

static struct conn *
fake_conn(struct worker *w)
{
	struct conn *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	c->w = w;
	c->sops = &fake_ops;
	return c;
}

static struct odwait *
setup(struct worker *w, uint32_t wait_ms)
{
	struct odwait *o;

	tw_worker_init(w);
	w->cfg.ondemand_wait_ms = wait_ms;
	nsent = 0;
	send_fails = 0;
	runs = 0;
	ck_assert_ptr_nonnull(o = odwait_new(w, fake_send));
	return o;
}

static void
teardown(struct worker *w, struct odwait *o)
{
	odwait_free(o);
	ev_loop_free(w->loop);
}

/* One send per name however many handshakes wait for it; a refusal releases them all. */
START_TEST(one_send_per_name_and_release_on_no)
{
	struct worker w;
	struct odwait *o = setup(&w, 10000);
	struct conn *a = fake_conn(&w), *b = fake_conn(&w), *c = fake_conn(&w);

	ck_assert_int_eq(odwait_ask(o, a, "x.example.com"), 1);
	ck_assert_int_eq(odwait_ask(o, b, "x.example.com"), 1);
	ck_assert_int_eq(odwait_ask(o, c, "y.example.com"), 1);
	ck_assert_uint_eq(nsent, 2);
	ck_assert_str_eq(sent[0], "x.example.com");
	ck_assert_str_eq(sent[1], "y.example.com");
	ck_assert_uint_eq(odwait_count(o), 3);
	ck_assert(a->od_waiting && b->od_waiting && c->od_waiting);
	odwait_no(o, "x.example.com");
	ck_assert_uint_eq(odwait_count(o), 1);
	ck_assert(!a->od_waiting && !b->od_waiting && c->od_waiting);
	ck_assert(a->readable && b->readable);
	TW_RUN_UNTIL(runs == 2);
	/* A closing connection leaves the list without a kick. */
	odwait_forget(o, c);
	ck_assert_uint_eq(odwait_count(o), 0);
	ck_assert(!c->od_waiting);
	tw_run_ms(20);
	ck_assert_uint_eq(runs, 2);
	free(a);
	free(b);
	free(c);
	teardown(&w, o);
}
END_TEST

/* The wait bound releases a handshake nobody answered for. */
START_TEST(released_after_wait)
{
	struct worker w;
	struct odwait *o = setup(&w, 100);
	struct conn *a = fake_conn(&w);
	uint64_t t0 = util_now_ms();

	ck_assert_int_eq(odwait_ask(o, a, "slow.example.com"), 1);
	TW_RUN_UNTIL(runs == 1);
	ck_assert_uint_ge(util_now_ms() - t0, 100);
	ck_assert_uint_eq(odwait_count(o), 0);
	ck_assert(!a->od_waiting);
	free(a);
	teardown(&w, o);
}
END_TEST

/* Off, stopping, a failed send, or over ODWAIT_SENDS_PER_S new names: not held. */
START_TEST(not_held_when_bounded)
{
	struct worker w;
	struct odwait *o = setup(&w, 10000);
	struct conn *c[ODWAIT_SENDS_PER_S + 2];
	char name[64];
	unsigned i;

	for (i = 0; i < ODWAIT_SENDS_PER_S + 2; i++)
		c[i] = fake_conn(&w);
	w.cfg.ondemand_wait_ms = 0;
	ck_assert_int_eq(odwait_ask(o, c[0], "off.example.com"), 0);
	w.cfg.ondemand_wait_ms = 10000;
	send_fails = 1;
	ck_assert_int_eq(odwait_ask(o, c[0], "broken.example.com"), 0);
	send_fails = 0;
	ck_assert_int_eq(odwait_ask(o, NULL, "nocookie.example.com"), 0);
	for (i = 0; i < ODWAIT_SENDS_PER_S; i++) {
		snprintf(name, sizeof(name), "n%u.example.com", i);
		ck_assert_int_eq(odwait_ask(o, c[i], name), 1);
	}
	ck_assert_int_eq(odwait_ask(o, c[ODWAIT_SENDS_PER_S], "over.example.com"), 0);
	ck_assert(!c[ODWAIT_SENDS_PER_S]->od_waiting);
	/* A name already sent joins its waiters without a send. */
	ck_assert_int_eq(odwait_ask(o, c[ODWAIT_SENDS_PER_S + 1], "n0.example.com"), 1);
	ck_assert_uint_eq(nsent, ODWAIT_SENDS_PER_S);
	w.stopping = 1;
	ck_assert_int_eq(odwait_ask(o, c[ODWAIT_SENDS_PER_S], "n1.example.com"), 0);
	for (i = 0; i < ODWAIT_SENDS_PER_S + 2; i++) {
		if (c[i]->od_waiting)
			odwait_forget(o, c[i]);
		free(c[i]);
	}
	ck_assert_uint_eq(odwait_count(o), 0);
	teardown(&w, o);
}
END_TEST

Suite *
suite_odwait(void)
{
	Suite *s = suite_create("odwait");
	TCase *tc = tcase_create("odwait");

	tcase_add_test(tc, one_send_per_name_and_release_on_no);
	tcase_add_test(tc, released_after_wait);
	tcase_add_test(tc, not_held_when_bounded);
	suite_add_tcase(s, tc);
	return s;
}
