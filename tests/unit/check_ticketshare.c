/*
 * Unit tests for master/ticketshare.c's pure parts (a key as text and back,
 * malformed text refused, when the current key is due) and for
 * master/store_tickets.c on SQLite: the keys are written only under the
 * current "ticketkeys" lease, and read back in slot order.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "master/store.h"
#include "master/ticketshare.h"
#include "tests/unit/suites.h"
#include "tests/unit/teststore.h"

static void
key_fill(struct keyring_ticket_key *k, uint8_t seed, uint64_t not_after)
{
	size_t i;

	memset(k, 0, sizeof(*k));
	for (i = 0; i < sizeof(k->name); i++)
		k->name[i] = (uint8_t)(seed + i);
	for (i = 0; i < sizeof(k->hmac_key); i++)
		k->hmac_key[i] = (uint8_t)(seed * 3 + i);
	for (i = 0; i < sizeof(k->aes_key); i++)
		k->aes_key[i] = (uint8_t)(255 - seed - i);
	k->not_after = not_after;
}

START_TEST(text_round_trip)
{
	struct keyring_ticket_key k, back;
	struct store_ticket_key t;

	key_fill(&k, 7, 123456);
	ticketshare_encode(&k, &t);
	ck_assert_uint_eq(strlen(t.secret), STORE_TICKET_SECRET_LEN);
	ck_assert_int_eq(t.not_after, 123456);
	ck_assert_int_eq(ticketshare_decode(&t, &back), 0);
	ck_assert_int_eq(memcmp(&k, &back, sizeof(k)), 0);
	/* Upper case, a short text, a stray character or no expiry: refused. */
	t.secret[0] = 'A';
	ck_assert_int_eq(ticketshare_decode(&t, &back), -1);
	t.secret[0] = '0';
	t.secret[159] = 'g';
	ck_assert_int_eq(ticketshare_decode(&t, &back), -1);
	t.secret[159] = '\0';
	ck_assert_int_eq(ticketshare_decode(&t, &back), -1);
	ticketshare_encode(&k, &t);
	t.not_after = 0;
	ck_assert_int_eq(ticketshare_decode(&t, &back), -1);
}
END_TEST

START_TEST(due)
{
	struct keyring_ticket_key k;

	/* Made at 1000 with a lifetime of 100: current until 1100, usable until 1200. */
	key_fill(&k, 1, 1200);
	ck_assert_int_eq(ticketshare_due(&k, 100, 1099), 0);
	ck_assert_int_eq(ticketshare_due(&k, 100, 1100), 1);
}
END_TEST

START_TEST(store_fenced)
{
	struct store *st = teststore_open();
	struct keyring_ticket_key k;
	struct store_ticket_key in[2], out[2];
	struct store_lease l1, l2;
	int n = -1;

	ck_assert_int_eq(store_ticket_keys_get(st, out, &n), STORE_OK);
	ck_assert_int_eq(n, 0);
	key_fill(&k, 1, 5000);
	ticketshare_encode(&k, &in[0]);
	key_fill(&k, 2, 4000);
	ticketshare_encode(&k, &in[1]);
	ck_assert_int_eq(store_lease_take(st, "ticketkeys", "node1", 100, 200, &l1), STORE_OK);
	ck_assert_int_eq(store_ticket_keys_put(st, "ticketkeys", "node1", l1.token, in, 2), STORE_OK);
	ck_assert_int_eq(store_ticket_keys_get(st, out, &n), STORE_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(out[0].secret, in[0].secret);
	ck_assert_int_eq(out[1].not_after, 4000);
	/* node2 takes over after expiry; node1's late rotation is refused and changes nothing. */
	ck_assert_int_eq(store_lease_take(st, "ticketkeys", "node2", 200, 300, &l2), STORE_OK);
	ck_assert_str_eq(l2.holder, "node2");
	ck_assert_int_eq(store_ticket_keys_put(st, "ticketkeys", "node1", l1.token, &in[1], 1),
	    STORE_ENOENT);
	ck_assert_int_eq(store_ticket_keys_get(st, out, &n), STORE_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(store_ticket_keys_put(st, "ticketkeys", "node2", l2.token, &in[1], 1),
	    STORE_OK);
	ck_assert_int_eq(store_ticket_keys_get(st, out, &n), STORE_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0].secret, in[1].secret);
	teststore_close(st);
}
END_TEST

Suite *
suite_ticketshare(void)
{
	Suite *s = suite_create("ticketshare");
	TCase *tc = tcase_create("ticketshare");

	tcase_add_test(tc, text_round_trip);
	tcase_add_test(tc, due);
	tcase_add_test(tc, store_fenced);
	suite_add_tcase(s, tc);
	return s;
}
