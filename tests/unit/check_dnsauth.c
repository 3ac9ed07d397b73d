/*
 * acme/dnsauth.c through a fake network (struct dnsauth_ops): the servers
 * found from an NS set (glue at the update server, the system resolver for
 * a name outside the zone, duplicates, names without addresses, no route),
 * the NS set's failures, and the polls with their back-off and lag list.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "acme/dnsauth.h"
#include "share/addr.h"
#include "share/util.h"
#include "tests/unit/dnsfake.h"
#include "tests/unit/suites.h"

#define UPDATE "127.0.0.1:5300"
#define NAME "_acme-challenge.example.test"

struct fake {
	int ns_rcode;		/* the NS query's RCODE */
	int ns_many;		/* answer 10 NS names */
	int ns_none;		/* answer no NS */
	int serves[4];		/* 127.0.0.N serves the TXT */
	int down[4];		/* 127.0.0.N refuses connections */
	int asked;		/* exchanges */
	int resolved;		/* calls of resolve */
};

static void
fake_question(const struct dns_buf *q, char name[DNS_NAME_MAX + 2], uint16_t *type)
{
	size_t off = 12;

	ck_assert_int_eq(dnsmsg_read_name(q->b, q->len, &off, name), 0);
	*type = (uint16_t)(q->b[off] << 8 | q->b[off + 1]);
}

static size_t
fake_ns(struct fake *f, uint8_t *m, uint16_t id)
{
	static char names[10][32];
	uint8_t rd[10][64];
	struct dnsfake_rr rr[10];
	size_t i, n = f->ns_many ? 10 : 4;

	static const char *const four[] = {
		"ns1.example.test", "ns2.example.test", "ns.other.test", "ns3.example.test",
	};
	for (i = 0; i < n; i++) {
		if (f->ns_many)
			snprintf(names[i], sizeof(names[i]), "ns%zu.example.test", i + 10);
		else
			snprintf(names[i], sizeof(names[i]), "%s", four[i]);
		rr[i] = (struct dnsfake_rr){ NULL, DNS_T_NS, rd[i], 0 };
		rr[i].rdlen = dnsfake_name(rd[i], names[i]);
	}
	return dnsfake_answer(m, DNS_MSG_MAX, id, f->ns_rcode, "example.test", DNS_T_NS, rr,
	    f->ns_none ? 0 : n);
}

/* ns1 127.0.0.1, ns2 127.0.0.2 and 2001:db8::2, ns1x (the many) 127.0.0.1; ns3 none. */
static size_t
fake_addr(uint8_t *m, uint16_t id, const char *name, uint16_t type)
{
	uint8_t a[16] = { 127, 0, 0, 0 };
	struct dnsfake_rr rr = { NULL, type, a, type == DNS_T_A ? 4 : 16 };
	int n = 1;

	if (strcmp(name, "ns3.example.test") == 0 ||
	    (type == DNS_T_AAAA && strcmp(name, "ns2.example.test") != 0))
		n = 0;
	else if (type == DNS_T_AAAA)
		ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::2", a), 1);
	else
		a[3] = strcmp(name, "ns2.example.test") == 0 ? 2 : 1;
	return dnsfake_answer(m, DNS_MSG_MAX, id, 0, name, type, &rr, (size_t)n);
}

static int
fake_exchange(void *ctx, const struct sockaddr_storage *srv, socklen_t srvlen,
    const struct dns_buf *q, uint8_t *resp, size_t cap, size_t *rlen, int timeout_ms,
    char *err, size_t errlen)
{
	const struct sockaddr_in *s4 = (const void *)srv;
	struct fake *f = ctx;
	char name[DNS_NAME_MAX + 2];
	uint16_t type, id = (uint16_t)(q->b[0] << 8 | q->b[1]);
	unsigned host = ntohl(s4->sin_addr.s_addr) & 0xff;
	static const uint8_t txt[] = { 5, 'v', 'a', 'l', 'u', 'e' };
	struct dnsfake_rr rr = { NULL, DNS_T_TXT, txt, sizeof(txt) };

	ck_assert_int_eq(srv->ss_family, AF_INET);
	ck_assert_uint_eq(srvlen, sizeof(struct sockaddr_in));
	ck_assert_uint_eq(ntohs(s4->sin_port), 5300);
	ck_assert_uint_eq(cap, DNS_MSG_MAX);
	ck_assert_int_eq(timeout_ms, DNSAUTH_TIMEOUT_MS);
	ck_assert_uint_lt(host, 4);
	f->asked++;
	if (f->down[host]) {
		snprintf(err, errlen, "cannot connect: Connection refused");
		return -1;
	}
	fake_question(q, name, &type);
	if (type == DNS_T_NS) {
		ck_assert_uint_eq(host, 1);
		*rlen = fake_ns(f, resp, id);
	} else if (type == DNS_T_A || type == DNS_T_AAAA) {
		ck_assert_uint_eq(host, 1);
		*rlen = fake_addr(resp, id, name, type);
	} else {
		ck_assert_str_eq(name, NAME);
		*rlen = dnsfake_answer(resp, cap, id, f->serves[host] ? 0 : 3, name, type, &rr,
		    f->serves[host] ? 1 : 0);
	}
	return 0;
}

static int
fake_resolve(void *ctx, const char *name, uint16_t port, struct sockaddr_storage *out,
    size_t max)
{
	struct fake *f = ctx;

	f->resolved++;
	ck_assert_str_eq(name, "ns.other.test");
	ck_assert_uint_ge(max, 1);
	ck_assert_int_eq(addr_parse("127.0.0.3:1", &out[0], &(socklen_t){ 0 }), 0);
	((struct sockaddr_in *)(void *)&out[0])->sin_port = htons(port);
	return 1;
}

/* No IPv6 route on this fake host. */
static int
fake_routable(void *ctx, const struct sockaddr_storage *ss, socklen_t len)
{
	(void)ctx;
	ck_assert_uint_eq(len, ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in));
	return ss->ss_family == AF_INET;
}

static struct fake fk;
static const struct dnsauth_ops fake_ops = {
	fake_exchange, fake_resolve, fake_routable, &fk,
};

static void
conf(struct dns01_conf *c, uint16_t ns_port)
{
	ck_assert_int_eq(dns01_configure(c, UPDATE, "", "k", "AAAA"), 0);
	c->ns_port = ns_port;
	memset(&fk, 0, sizeof(fk));
}

START_TEST(find_servers)
{
	struct dns01_conf c;
	struct dnsauth_set set;
	char err[256], list[512];

	conf(&c, 5300);
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test", &set, err, sizeof(err)), 0);
	/* The update server; ns1 is the same address; ns2's AAAA has no route; ns3 none. */
	ck_assert_uint_eq(set.n, 3);
	dnsauth_list(&set, 0, list, sizeof(list));
	ck_assert_str_eq(list, "update server 127.0.0.1:5300, ns2.example.test 127.0.0.2:5300, "
	    "ns.other.test 127.0.0.3:5300");
	ck_assert_int_eq(fk.resolved, 1);
	/* NS, then A and AAAA of ns1, ns2 and ns3: 7 exchanges, all with the update server. */
	ck_assert_int_eq(fk.asked, 7);
	/* A trailing dot on the zone (dns_zone as written) changes nothing. */
	conf(&c, 5300);
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test.", &set, err, sizeof(err)), 0);
	ck_assert_uint_eq(set.n, 3);
	/* dns_ns_port 0: the update server only, nothing asked. */
	conf(&c, 0);
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test", &set, err, sizeof(err)), 0);
	ck_assert_uint_eq(set.n, 1);
	ck_assert_int_eq(fk.asked, 0);
}
END_TEST

START_TEST(find_failures)
{
	struct dns01_conf c;
	struct dnsauth_set set;
	char err[256];

	conf(&c, 5300);
	fk.ns_rcode = 5;
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test", &set, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "reading the NS set of example.test at " UPDATE ": REFUSED");
	conf(&c, 5300);
	fk.ns_none = 1;
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test", &set, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "no NS set of example.test at " UPDATE);
	conf(&c, 5300);
	fk.down[1] = 1;
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test", &set, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "reading the NS set of example.test at " UPDATE
	    ": cannot connect: Connection refused");
	/* More NS names than DNSAUTH_NS_MAX: the first ones only (all 127.0.0.1 here). */
	conf(&c, 5300);
	fk.ns_many = 1;
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test", &set, err, sizeof(err)), 0);
	ck_assert_int_eq(fk.asked, 1 + 2 * DNSAUTH_NS_MAX);
	ck_assert_uint_eq(set.n, 1);
}
END_TEST

START_TEST(poll_until_all_serve)
{
	static const uint64_t gaps[] = { 250, 500, 1000, 2000, 4000, 4000, 4000 };
	struct dns01_conf c;
	struct dnsauth_set set;
	char err[256], list[512];
	uint64_t now = 1000;
	size_t i;
	int asked;

	conf(&c, 5300);
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test", &set, err, sizeof(err)), 0);
	fk.serves[1] = fk.serves[3] = 1;
	fk.down[2] = 1;
	/* ns2 lags: each poll asks it alone, after its own back-off. */
	for (i = 0; i < ARRAY_LEN(gaps); i++) {
		asked = fk.asked;
		ck_assert_int_eq(dnsauth_poll(&fake_ops, &set, NAME, "value", now), 0);
		ck_assert_int_eq(fk.asked - asked, i == 0 ? 3 : 1);
		ck_assert_uint_eq(dnsauth_next_due(&set), now + gaps[i]);
		/* Not due yet: nothing asked. */
		asked = fk.asked;
		ck_assert_int_eq(dnsauth_poll(&fake_ops, &set, NAME, "value", now + gaps[i] - 1), 0);
		ck_assert_int_eq(fk.asked, asked);
		now += gaps[i];
	}
	dnsauth_list(&set, 1, list, sizeof(list));
	ck_assert_str_eq(list,
	    "ns2.example.test 127.0.0.2:5300 (cannot connect: Connection refused)");
	fk.down[2] = 0;
	ck_assert_int_eq(dnsauth_poll(&fake_ops, &set, NAME, "value", now), 0);
	dnsauth_list(&set, 1, list, sizeof(list));
	ck_assert_str_eq(list, "ns2.example.test 127.0.0.2:5300 (does not serve the TXT yet)");
	fk.serves[2] = 1;
	now = dnsauth_next_due(&set);
	ck_assert_int_eq(dnsauth_poll(&fake_ops, &set, NAME, "value", now), 1);
	ck_assert_uint_eq(dnsauth_next_due(&set), UINT64_MAX);
	dnsauth_list(&set, 1, list, sizeof(list));
	ck_assert_str_eq(list, "");
	/* A served value that is not ours is not served. */
	conf(&c, 0);
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test", &set, err, sizeof(err)), 0);
	fk.serves[1] = 1;
	ck_assert_int_eq(dnsauth_poll(&fake_ops, &set, NAME, "other", 0), 0);
	ck_assert_int_eq(dnsauth_poll(&fake_ops, &set, NAME, "value", 250), 1);
}
END_TEST

/* The lag list is cut at its buffer, never written past. */
START_TEST(list_bounded)
{
	struct dns01_conf c;
	struct dnsauth_set set;
	char err[256], list[40];

	conf(&c, 5300);
	ck_assert_int_eq(dnsauth_find(&c, &fake_ops, "example.test", &set, err, sizeof(err)), 0);
	memset(list, 'x', sizeof(list));
	dnsauth_list(&set, 1, list, 20);
	ck_assert_uint_eq(strlen(list), 19);
	ck_assert_int_eq(list[20], 'x');
}
END_TEST

Suite *
suite_dnsauth(void)
{
	Suite *s = suite_create("dnsauth");
	TCase *tc = tcase_create("dnsauth");

	tcase_add_test(tc, find_servers);
	tcase_add_test(tc, find_failures);
	tcase_add_test(tc, poll_until_all_serve);
	tcase_add_test(tc, list_bounded);
	suite_add_tcase(s, tc);
	return s;
}
