/*
 * Unit tests of the worker's limits (worker/ratelimit.c): which client a
 * request counts for (the peer; X-Forwarded-For from trusted proxies only,
 * right to left past trusted addresses; IPv6 by /64), the route's policy
 * against haloyd.conf's default and "off", verdicts and their counters
 * (refused, dry run, delays, nodelay) and max_connections_per_ip.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "share/addr.h"
#include "share/clients.h"
#include "share/snap.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/context.h"
#include "worker/proxyproto.h"
#include "worker/ratelimit.h"

static struct worker w;
static struct msg_head h;
static int fd = -1;

static void
setup(void)
{
	char err[256];

	memset(&w, 0, sizeof(w));
	fd = shm_create(2u << 20, 2, &w.shm, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	w.stats = &w.shm.slots[1];
	w.index = 1;
	ck_assert_int_eq(addr_parse_cidr("10.0.0.0/8", &w.trusted[0]), 0);
	ck_assert_int_eq(addr_parse_cidr("2001:db8:ffff::/48", &w.trusted[1]), 0);
	w.cfg.ntrusted = 2;
	msg_init(&h);
}

static void
teardown(void)
{
	msg_free(&h);
	shm_unmap(&w.shm);
	close(fd);
}

/* The client of a request from peer (trusted or not) with head text is the address want. */
static void
client_is(const char *peer, int trusted, const char *text, const char *want)
{
	struct clients_addr got, exp;

	msg_free(&h);
	msg_init(&h);
	tw_parse_head(&h, text);
	struct proxyproto_addrs pa;

	ck_assert_int_eq(ratelimit_client(&w, peer, NULL, trusted, &h, &got), 0);
	ck_assert_int_eq(clients_addr_parse(want, strlen(want), &exp), 0);
	ck_assert_msg(memcmp(&got, &exp, sizeof(got)) == 0, "client of %s is not %s", text, want);
	/* The same with the connection's ends in network order, as the data path passes them. */
	memset(&pa, 0, sizeof(pa));
	pa.family = inet_pton(AF_INET, peer, pa.src) == 1 ? AF_INET : AF_INET6;
	ck_assert_int_eq(inet_pton(pa.family, peer, pa.src), 1);
	memset(&got, 0xa5, sizeof(got));
	ck_assert_int_eq(ratelimit_client(&w, "not used", &pa, trusted, &h, &got), 0);
	ck_assert_msg(memcmp(&got, &exp, sizeof(got)) == 0, "client of %s (binary) is not %s", text,
	    want);
}

START_TEST(client_keys)
{
	/* An untrusted peer: its own address, whatever it claims. */
	client_is("192.0.2.1", 0, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n",
	    "192.0.2.1");
	/* A trusted one: the first untrusted address from the right. */
	client_is("10.0.0.1", 1, "GET / HTTP/1.1\r\nHost: a\r\n"
	    "X-Forwarded-For: 6.6.6.6, 198.51.100.7, 10.1.2.3\r\n\r\n", "198.51.100.7");
	/* Over two fields, read from the last one back. */
	client_is("10.0.0.1", 1, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n"
	    "X-Forwarded-For: 10.9.9.9 ,10.8.8.8\r\n\r\n", "6.6.6.6");
	/* All trusted: the leftmost. */
	client_is("10.0.0.1", 1, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.5.5.5, 10.6.6.6\r\n\r\n",
	    "10.5.5.5");
	/* None, or garbage: the peer. */
	client_is("10.0.0.1", 1, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "10.0.0.1");
	client_is("10.0.0.1", 1, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1, evil\r\n\r\n",
	    "10.0.0.1");
	client_is("10.0.0.1", 1, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: ,, 1.1.1.1,,\r\n\r\n",
	    "1.1.1.1");
	/* IPv6 by /64, and past a trusted IPv6 proxy. */
	client_is("10.0.0.1", 1, "GET / HTTP/1.1\r\nHost: a\r\n"
	    "X-Forwarded-For: 2001:db8:1:2::99, 2001:db8:ffff::1\r\n\r\n", "2001:db8:1:2::");
	client_is("2001:db8:1:2:3:4:5:6", 0, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "2001:db8:1:2::1");
	/* A dual-stack listener's IPv4 client is that IPv4 address. */
	client_is("::ffff:192.0.2.9", 0, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "192.0.2.9");
}
END_TEST

START_TEST(client_xff_bounded)
{
	char text[2048];
	size_t n;
	int i;

	/* More than RATELIMIT_XFF_MAX trusted hops: the peer, not an address 65 hops away. */
	n = (size_t)snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1");
	for (i = 0; i < RATELIMIT_XFF_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, ", 10.0.0.%d", i);
	snprintf(text + n, sizeof(text) - n, "\r\n\r\n");
	client_is("10.0.0.1", 1, text, "10.0.0.1");
}
END_TEST

START_TEST(policy)
{
	struct snap_route r = { .id = 3 };
	struct clients_rate rate;
	int nodelay;

	ck_assert_int_eq(ratelimit_policy(&w, &r, &rate, &nodelay), 0);	/* none anywhere */
	w.cfg.rate_rpm = 600;
	w.cfg.rate_burst = 5;
	w.cfg.rate_nodelay = 1;
	ck_assert_int_eq(ratelimit_policy(&w, &r, &rate, &nodelay), 1);
	ck_assert_uint_eq(rate.emission_us, 100000);
	ck_assert_uint_eq(rate.burst, 5);
	ck_assert_int_eq(nodelay, 1);
	r.rate_rpm = 30;	/* 30r/m: its own, with its own burst and delay */
	r.rate_burst = 2;
	ck_assert_int_eq(ratelimit_policy(&w, &r, &rate, &nodelay), 1);
	ck_assert_uint_eq(rate.emission_us, 2000000);
	ck_assert_uint_eq(rate.burst, 2);
	ck_assert_int_eq(nodelay, 0);
	r.rate_rpm = SNAP_RATE_OFF;
	ck_assert_int_eq(ratelimit_policy(&w, &r, &rate, &nodelay), 0);
}
END_TEST

static void
request(const char *ip, const struct snap_route *r, struct ratelimit_result *res)
{
	msg_free(&h);
	msg_init(&h);
	tw_parse_head(&h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	ratelimit_request(&w, ip, NULL, 0, &h, r, res);
}

START_TEST(verdicts)
{
	struct snap_route r = { .id = 9, .rate_rpm = 60, .rate_burst = 1 };	/* 1r/s */
	struct ratelimit_result res;
	uint8_t *base = w.shm.base;

	request("192.0.2.50", &r, &res);
	ck_assert_int_eq(res.v, RATELIMIT_PASS);
	ck_assert_uint_eq(res.delay_ms, 0);
	request("192.0.2.50", &r, &res);	/* the burst: waits about a second */
	ck_assert_int_eq(res.v, RATELIMIT_PASS);
	ck_assert_uint_ge(res.delay_ms, 990);
	ck_assert_uint_le(res.delay_ms, 1000);
	request("192.0.2.50", &r, &res);
	ck_assert_int_eq(res.v, RATELIMIT_REFUSE);
	ck_assert_uint_eq(res.retry_after_s, 1);
	ck_assert_uint_eq(shm_route(w.stats, 9)->rate_limited, 1);
	/* Another client, another bucket; with nodelay its burst passes at once. */
	r.flags = SNAP_ROUTE_RATE_NODELAY;
	request("192.0.2.51", &r, &res);
	request("192.0.2.51", &r, &res);
	ck_assert_int_eq(res.v, RATELIMIT_PASS);
	ck_assert_uint_eq(res.delay_ms, 0);
	/* Dry run: refuses nothing, delays nothing, counts what it would have refused. */
	w.cfg.rate_dry_run = 1;
	request("192.0.2.51", &r, &res);
	ck_assert_int_eq(res.v, RATELIMIT_PASS);
	ck_assert_uint_eq(res.delay_ms, 0);
	ck_assert_uint_eq(shm_route(w.stats, 9)->rate_dry_run, 1);
	ck_assert_uint_eq(shm_route(w.stats, 9)->rate_limited, 1);
	/* Without the shared region nothing is limited. */
	w.cfg.rate_dry_run = 0;
	w.shm.base = NULL;
	request("192.0.2.50", &r, &res);
	ck_assert_int_eq(res.v, RATELIMIT_PASS);
	w.shm.base = base;
}
END_TEST

START_TEST(connections)
{
	uint32_t a, b, c;

	/* No cap configured: nothing counted. */
	ck_assert_int_eq(ratelimit_conn_open(&w, "192.0.2.60", &a), 0);
	ck_assert_uint_eq(a, RATELIMIT_NO_ENTRY);
	w.cfg.max_conns_per_ip = 2;
	ck_assert_int_eq(ratelimit_conn_open(&w, "192.0.2.60", &a), 0);
	ck_assert_int_eq(ratelimit_conn_open(&w, "192.0.2.60", &b), 0);
	ck_assert_int_eq(ratelimit_conn_open(&w, "192.0.2.60", &c), -1);
	ck_assert_uint_eq(w.stats->conn_limited, 1);
	ck_assert_int_eq(ratelimit_conn_open(&w, "192.0.2.61", &c), 0);	/* another client */
	ratelimit_conn_close(&w, c);
	ratelimit_conn_close(&w, b);
	ck_assert_int_eq(ratelimit_conn_open(&w, "192.0.2.60", &b), 0);
	/* Counted in this worker's column (index 1). */
	ck_assert_uint_eq(clients_at(&w.shm, a)->conns[1], 2);
	ratelimit_conn_close(&w, a);
	ratelimit_conn_close(&w, b);
	ck_assert_uint_eq(clients_conn_count(&w.shm, clients_at(&w.shm, a)), 0);
}
END_TEST

Suite *
suite_ratelimit(void)
{
	Suite *su = suite_create("ratelimit");
	TCase *tc = tcase_create("ratelimit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, client_keys);
	tcase_add_test(tc, client_xff_bounded);
	tcase_add_test(tc, policy);
	tcase_add_test(tc, verdicts);
	tcase_add_test(tc, connections);
	suite_add_tcase(su, tc);
	return su;
}
