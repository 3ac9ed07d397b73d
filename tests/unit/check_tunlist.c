/*
 * Unit tests for tunnel/tunlist.c: the MSG_T_LIST payload (share/msg.h)
 * from hand-made tunnel records, with a fake in place of the sessions'
 * figures: only ready tunnels are listed, every field in its place, and at
 * most MSG_T_LIST_MAX rows, all within one IPC message.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "share/cursor.h"
#include "share/ipc.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tunnel/tunlist.h"
#include "tunnel/tunproc.h"
#include "worker/upstream.h"

static struct tunnel_ctx t;
static struct tunnel_rec recs[MSG_T_LIST_MAX + 8];
static uint8_t *buf;

static void
fake_info(const struct h2conn *c, struct h2client_info *out)
{
	const struct tunnel_rec *r = (const void *)c;	/* each rec is its own "session" */

	out->in_flight = (uint32_t)(r - recs);
	out->served = 100 + (uint64_t)(r - recs);
	out->ping_rtt_us = 250;
	out->going_away = r == &recs[1];
}

static void
add(int i, const char *name, int ready)
{
	struct tunnel_rec *r = &recs[i];

	memset(r, 0, sizeof(*r));
	r->t = &t;
	r->c = (struct h2conn *)(void *)r;
	util_strlcpy(r->name, name, sizeof(r->name));
	util_strlcpy(r->peer, "192.0.2.9:4000", sizeof(r->peer));
	memset(r->subject, 'S', MSG_T_SUBJECT_MAX);
	r->not_after = 1900000000;
	r->since_s = 1800000000;
	r->ready = ready;
	r->next = t.recs;
	t.recs = r;
	t.nrecs++;
}

static void
setup(void)
{
	memset(&t, 0, sizeof(t));
	buf = malloc(IPC_MAX_PAYLOAD);
	ck_assert_ptr_nonnull(buf);
}

static void
teardown(void)
{
	free(buf);
}

START_TEST(tunlist_rows)
{
	char name[64], peer[64], subject[MSG_T_SUBJECT_MAX + 1];
	struct wbuf w;
	struct cur c;

	add(0, "app0", 1);
	add(1, "app1", 1);
	add(2, "app2", 0);	/* attaching: not listed */
	wb_init(&w, buf, IPC_MAX_PAYLOAD);
	tunlist_encode(&t, &w, fake_info);
	ck_assert_int_eq(w.bad, 0);
	cur_init(&c, buf, w.len);
	ck_assert_uint_eq(cur_u16(&c), 2);
	/* Newest first, as the records are kept. */
	ck_assert_int_eq(cur_str(&c, name, sizeof(name)), 0);
	ck_assert_str_eq(name, "app1");
	ck_assert_int_eq(cur_str(&c, peer, sizeof(peer)), 0);
	ck_assert_str_eq(peer, "192.0.2.9:4000");
	ck_assert_int_eq(cur_str(&c, subject, sizeof(subject)), 0);
	ck_assert_uint_eq(strlen(subject), MSG_T_SUBJECT_MAX);
	ck_assert_uint_eq(cur_u64(&c), 1900000000);
	ck_assert_uint_eq(cur_u64(&c), 1800000000);
	ck_assert_uint_eq(cur_u32(&c), 1);	/* in flight */
	ck_assert_uint_eq(cur_u64(&c), 101);	/* served */
	ck_assert_uint_eq(cur_u32(&c), 250);
	ck_assert_uint_eq(cur_u32(&c), 1);	/* going away */
	ck_assert_int_eq(cur_str(&c, name, sizeof(name)), 0);
	ck_assert_str_eq(name, "app0");
	ck_assert_int_eq(cur_str(&c, peer, sizeof(peer)), 0);
	ck_assert_int_eq(cur_str(&c, subject, sizeof(subject)), 0);
	(void)cur_u64(&c);
	(void)cur_u64(&c);
	(void)cur_u32(&c);
	(void)cur_u64(&c);
	(void)cur_u32(&c);
	ck_assert_uint_eq(cur_u32(&c), 0);
	ck_assert_int_eq(cur_end(&c), 0);
}
END_TEST

START_TEST(tunlist_bounded)
{
	struct wbuf w;
	struct cur c;
	int i;

	for (i = 0; i < MSG_T_LIST_MAX + 8; i++)
		add(i, "app", 1);
	wb_init(&w, buf, IPC_MAX_PAYLOAD);
	tunlist_encode(&t, &w, fake_info);
	ck_assert_int_eq(w.bad, 0);	/* the longest rows fit one message */
	cur_init(&c, buf, w.len);
	ck_assert_uint_eq(cur_u16(&c), MSG_T_LIST_MAX);
}
END_TEST

START_TEST(tunlist_empty)
{
	struct wbuf w;
	struct cur c;

	wb_init(&w, buf, IPC_MAX_PAYLOAD);
	tunlist_encode(&t, &w, fake_info);
	cur_init(&c, buf, w.len);
	ck_assert_uint_eq(cur_u16(&c), 0);
	ck_assert_int_eq(cur_end(&c), 0);
}
END_TEST

Suite *
suite_tunlist(void)
{
	Suite *s = suite_create("tunlist");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, tunlist_rows);
	tcase_add_test(tc, tunlist_bounded);
	tcase_add_test(tc, tunlist_empty);
	suite_add_tcase(s, tc);
	return s;
}
