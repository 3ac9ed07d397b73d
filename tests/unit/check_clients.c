/*
 * Unit tests of the shared client table (share/clients.c): address keys
 * (IPv4, IPv6 by /64, mapped IPv4), the leaky bucket's arithmetic (nginx's
 * limit_req: burst, the wait, the refusal's retry time), the probe window's
 * eviction of the oldest idle entry, connection counts per worker and their
 * reset, the memory per client, and processes killed with SIGKILL in the
 * middle of updates leaving the table usable.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "share/clients.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testshm.h"

#define REGION TESTSHM_REGION
#define T 100000u	/* 10 r/s: 100 ms between requests */

static struct shm s;
static int fd = -1;

static void
setup(void)
{
	fd = testshm_open(&s);
}

static void
teardown(void)
{
	testshm_close(&s, fd);
	fd = -1;
}

static uint64_t
key_of(const char *ip, uint32_t route)
{
	struct clients_addr a;

	ck_assert_int_eq(clients_addr_parse(ip, strlen(ip), &a), 0);
	return clients_key(&s, &a, route);
}

START_TEST(addr_keys)
{
	struct clients_addr a, b;

	ck_assert_int_eq(clients_addr_parse("192.0.2.1", 9, &a), 0);
	ck_assert_uint_eq(a.family, AF_INET);
	ck_assert_int_eq(clients_addr_parse("::ffff:192.0.2.1", 16, &b), 0);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	/* One /64, one client; the next /64 another. */
	ck_assert_uint_eq(key_of("2001:db8:1:2::1", 5), key_of("2001:db8:1:2:ffff::9", 5));
	ck_assert_uint_ne(key_of("2001:db8:1:2::1", 5), key_of("2001:db8:1:3::1", 5));
	ck_assert_uint_ne(key_of("192.0.2.1", 5), key_of("192.0.2.2", 5));
	ck_assert_uint_ne(key_of("192.0.2.1", 5), key_of("192.0.2.1", 6));
	ck_assert_uint_ne(key_of("192.0.2.1", 0), 0);
	ck_assert_int_eq(clients_addr_parse("example.com", 11, &a), -1);
	ck_assert_int_eq(clients_addr_parse("", 0, &a), -1);
	ck_assert_int_eq(clients_addr_parse("1.2.3.4:80", 10, &a), -1);
}
END_TEST

/* Takes one request at now (µs) and checks the verdict and the wait. */
static void
take(struct shm_client *e, uint64_t key, uint32_t burst, uint64_t now, enum clients_verdict want,
    uint64_t want_wait)
{
	struct clients_rate r = { T, burst };
	enum clients_verdict v;
	uint64_t wait;

	ck_assert_int_eq(clients_take(e, key, &r, now, &v, &wait), 0);
	ck_assert_int_eq(v, want);
	ck_assert_uint_eq(wait, want_wait);
}

START_TEST(bucket_arithmetic)
{
	uint64_t k = key_of("192.0.2.1", 7), now = 5000000000ull;
	struct shm_client *e = clients_get(&s, k, now / 1000);

	ck_assert_ptr_nonnull(e);
	/* The first request of a fresh bucket passes at once; burst 2 lets two more wait. */
	take(e, k, 2, now, CLIENTS_PASS, 0);
	take(e, k, 2, now, CLIENTS_PASS, T);
	take(e, k, 2, now, CLIENTS_PASS, 2 * T);
	/* The fourth is refused and changes nothing; one would pass T later. */
	take(e, k, 2, now, CLIENTS_REFUSE, T);
	take(e, k, 2, now + 10, CLIENTS_REFUSE, T - 10);
	/* Draining: after 1.5 T the backlog is 0.5 T, and this one waits 1.5 T. */
	take(e, k, 2, now + T + T / 2, CLIENTS_PASS, T + T / 2);
	/* Long idle: empty again, as nginx's clamp to 0. */
	take(e, k, 0, now + 100 * T, CLIENTS_PASS, 0);
	/* burst 0: the next within T is refused, the one T later passes. */
	take(e, k, 0, now + 100 * T + 1, CLIENTS_REFUSE, T - 1);
	take(e, k, 0, now + 101 * T, CLIENTS_PASS, 0);
}
END_TEST

/* rate × time + burst + 1 requests pass when they come faster than the rate. */
START_TEST(bucket_precision)
{
	uint64_t k = key_of("192.0.2.8", 7), now = 7000000000ull, t;
	struct shm_client *e = clients_get(&s, k, now / 1000);
	struct clients_rate r = { T, 20 };
	enum clients_verdict v;
	uint64_t wait, passed = 0;

	for (t = 0; t < 10000000; t += 1000) {	/* a request every ms for 10 s */
		ck_assert_int_eq(clients_take(e, k, &r, now + t, &v, &wait), 0);
		passed += v == CLIENTS_PASS;
	}
	ck_assert_uint_eq(passed, 10 * 10 + 20);
}
END_TEST

START_TEST(probe_window_evicts_oldest)
{
	struct shm_client *first[SHM_CLIENT_PROBE + 1], *e;
	uint64_t keys[2 * SHM_CLIENT_PROBE + 1], start = ~0ull, k;
	uint32_t i, n = 0, idx0;
	char ip[32];

	/* Small table: find keys whose window starts at the same entry. */
	ck_assert_uint_ge(s.nclients, 1000);
	for (i = 0; n < SHM_CLIENT_PROBE + 1 && i < 2000000; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16 & 255, i >> 8 & 255, i & 255);
		k = key_of(ip, 1);
		idx0 = (uint32_t)(((unsigned __int128)k * s.nclients) >> 64);
		if (start == ~0ull)
			start = idx0;
		if (idx0 == start)
			keys[n++] = k;
	}
	ck_assert_uint_eq(n, SHM_CLIENT_PROBE + 1);
	for (i = 0; i < SHM_CLIENT_PROBE; i++) {
		first[i] = clients_get(&s, keys[i], 1000 + i);
		ck_assert_ptr_nonnull(first[i]);
	}
	/* Each distinct, and found again. */
	for (i = 0; i < SHM_CLIENT_PROBE; i++)
		ck_assert_ptr_eq(clients_get(&s, keys[i], 2000), first[i]);
	/* Touch all but #3; the window is full: the new key takes #3's entry, the oldest. */
	for (i = 0; i < SHM_CLIENT_PROBE; i++)
		if (i != 3)
			clients_get(&s, keys[i], 3000);
	e = clients_get(&s, keys[SHM_CLIENT_PROBE], 3001);
	ck_assert_ptr_eq(e, first[3]);
	ck_assert_uint_eq(e->key, keys[SHM_CLIENT_PROBE]);
	/* An entry with an open connection is never evicted: #5 is now the oldest but busy. */
	ck_assert_int_eq(clients_conn_open(&s, first[5], keys[5], 2, 10), 0);
	for (i = 0; i < SHM_CLIENT_PROBE; i++)
		if (i != 5 && i != 3)
			clients_get(&s, keys[i], 4000);
	clients_get(&s, keys[SHM_CLIENT_PROBE], 4000);
	e = clients_get(&s, keys[3], 4001);
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_ne(e, first[5]);
	ck_assert_uint_eq(first[5]->key, keys[5]);
}
END_TEST

START_TEST(conn_counts)
{
	uint64_t k = key_of("192.0.2.3", 0);
	struct shm_client *e = clients_get(&s, k, 1);

	ck_assert_ptr_nonnull(e);
	/* A cap of 3 across workers 0, 1 and 3. */
	ck_assert_int_eq(clients_conn_open(&s, e, k, 0, 3), 0);
	ck_assert_int_eq(clients_conn_open(&s, e, k, 1, 3), 0);
	ck_assert_int_eq(clients_conn_open(&s, e, k, 3, 3), 0);
	ck_assert_int_eq(clients_conn_open(&s, e, k, 1, 3), -1);
	ck_assert_uint_eq(clients_conn_count(&s, e), 3);
	clients_conn_close(e, 1);
	ck_assert_int_eq(clients_conn_open(&s, e, k, 2, 3), 0);
	/* Worker 3 died: the master forgets its count; its successor's close never goes below 0. */
	clients_forget_worker(&s, 3);
	ck_assert_uint_eq(clients_conn_count(&s, e), 2);
	clients_conn_close(e, 3);
	ck_assert_uint_eq(e->conns[3], 0);
	/* A key that is no longer the entry's is not counted. */
	ck_assert_int_eq(clients_conn_open(&s, e, k + 1, 0, 3), -2);
	ck_assert_uint_eq(clients_conn_count(&s, e), 2);
}
END_TEST

/* The documented memory per client: 100 000 of them in under 16 MiB. */
START_TEST(memory_per_client)
{
	ck_assert_uint_eq(SHM_CLIENT_SIZE(4), 32);
	ck_assert_uint_eq(SHM_CLIENT_SIZE(8), 40);
	ck_assert_uint_eq(SHM_CLIENT_SIZE(16), 56);
	ck_assert_uint_lt((size_t)100000 * SHM_CLIENT_SIZE(64), 16u << 20);
	ck_assert_uint_eq(s.client_size, 32);
	ck_assert_uint_eq(s.nclients, shm_client_capacity(REGION, 4));
	ck_assert_uint_gt(s.nclients, (REGION - shm_needed(4)) / 32 - 1);
	/* The default 8 MiB with 8 workers tracks over 150 000 clients. */
	ck_assert_uint_gt(shm_client_capacity(SHM_SIZE_DEFAULT, 8), 150000);
}
END_TEST

/* Children that hammer the table, the same few keys, until killed. */
static pid_t
hammer(uint32_t wi)
{
	pid_t pid = fork();
	struct clients_rate r = { 1, 1000000 };
	enum clients_verdict v;
	uint64_t wait, now = 1000000, k;
	char ip[32];
	uint32_t i;

	ck_assert_int_ne(pid, -1);
	if (pid != 0)
		return pid;
	for (i = 0;; i++) {
		struct shm_client *e;

		snprintf(ip, sizeof(ip), "198.51.100.%u", i % 16);
		k = key_of(ip, i % 2);
		if ((e = clients_get(&s, k, now / 1000)) == NULL)
			continue;
		if (i % 2 == 0)
			(void)clients_take(e, k, &r, now++, &v, &wait);
		else if (clients_conn_open(&s, e, k, wi, 60000) == 0)
			clients_conn_close(e, wi);
		/* Progress the parent waits for (a counter of the same region nobody else uses here). */
		shm_add(&s.slots[wi].retries, 1);
	}
}

/*
 * Processes killed with SIGKILL at random points of their updates leave
 * no lock (there is none to hold) and a table that still limits: a new
 * key is inserted, its bucket refuses past its burst, a connection cap
 * holds once the dead workers' columns are forgotten.
 */
START_TEST(killed_writers_leave_it_usable)
{
	uint64_t k = key_of("203.0.113.9", 4), kc = key_of("198.51.100.3", 0);
	struct shm_client *e;

	testshm_kill_writers(&s, hammer, clients_forget_worker);
	e = clients_get(&s, k, 1);
	ck_assert_ptr_nonnull(e);
	take(e, k, 1, 9000000000ull, CLIENTS_PASS, 0);
	take(e, k, 1, 9000000000ull, CLIENTS_PASS, T);
	take(e, k, 1, 9000000000ull, CLIENTS_REFUSE, T);
	e = clients_get(&s, kc, 1);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(clients_conn_count(&s, e), 0);
	ck_assert_int_eq(clients_conn_open(&s, e, kc, 0, 1), 0);
	ck_assert_int_eq(clients_conn_open(&s, e, kc, 0, 1), -1);
}
END_TEST

Suite *
suite_clients(void)
{
	Suite *su = suite_create("clients");
	TCase *tc = tcase_create("clients");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, addr_keys);
	tcase_add_test(tc, bucket_arithmetic);
	tcase_add_test(tc, bucket_precision);
	tcase_add_test(tc, probe_window_evicts_oldest);
	tcase_add_test(tc, conn_counts);
	tcase_add_test(tc, memory_per_client);
	tcase_add_test(tc, killed_writers_leave_it_usable);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(su, tc);
	return su;
}
