/*
 * acme/dnsrdata.c: NS targets (compressed or not) and A/AAAA addresses read
 * from answers, and every malformed RDATA refused.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "acme/dns01.h"
#include "share/addr.h"
#include "tests/unit/dnsfake.h"
#include "tests/unit/suites.h"

START_TEST(ns_targets)
{
	uint8_t m[DNS_MSG_MAX], a[64], b[64], e[64], f[64], c[8];
	char ns[2][DNS_NAME_MAX + 2];
	struct dns_msg d;
	size_t n, dropped, i;

	/* "ns1" + a pointer to the question (example.test), then an uncompressed name. */
	c[0] = 3;
	memcpy(c + 1, "ns1", 3);
	c[4] = 0xc0;
	c[5] = 12;
	struct dnsfake_rr rr[] = {
		{ NULL, DNS_T_NS, c, 6 },
		{ NULL, DNS_T_NS, a, dnsfake_name(a, "NS.Other.Test") },
		{ "other.test", DNS_T_NS, b, dnsfake_name(b, "ns.x.test") },	/* other owner */
		{ NULL, DNS_T_SOA, e, dnsfake_name(e, "ns.y.test") },		/* other type */
		{ NULL, DNS_T_NS, f, dnsfake_name(f, "ns9.example.test") },	/* one too many */
	};
	n = dnsfake_answer(m, sizeof(m), 1, 0, "example.test", DNS_T_NS, rr, 5);
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), 0);
	ck_assert_int_eq(dnsrdata_ns(m, n, &d, "example.test.", ns, 2, &dropped), 2);
	ck_assert_str_eq(ns[0], "ns1.example.test");
	ck_assert_str_eq(ns[1], "ns.other.test");
	ck_assert_uint_eq(dropped, 1);
	ck_assert_int_eq(dnsrdata_ns(m, n, &d, "nothing.test", ns, 2, &dropped), 0);
	/* Every truncation of the message is refused by the parser, never read past. */
	for (i = 0; i < n; i++)
		ck_assert_int_eq(dnsmsg_parse(m, i, &d), -1);
}
END_TEST

/* An NS RDATA that does not hold exactly one name. */
START_TEST(ns_malformed)
{
	uint8_t m[DNS_MSG_MAX], x[64];
	char ns[2][DNS_NAME_MAX + 2];
	struct dns_msg d;
	size_t n, k, dropped;

	/* A name and one byte more. */
	k = dnsfake_name(x, "ns.example.test");
	x[k] = 0;
	struct dnsfake_rr more = { NULL, DNS_T_NS, x, k + 1 };
	n = dnsfake_answer(m, sizeof(m), 1, 0, "example.test", DNS_T_NS, &more, 1);
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), 0);
	ck_assert_int_eq(dnsrdata_ns(m, n, &d, "example.test", ns, 2, &dropped), -1);
	/* A name cut by its RDLENGTH (the labels would run into the next bytes). */
	struct dnsfake_rr cut = { NULL, DNS_T_NS, x, k - 3 };
	uint8_t m2[DNS_MSG_MAX];
	n = dnsfake_answer(m2, sizeof(m2), 1, 0, "example.test", DNS_T_NS, &cut, 1);
	ck_assert_int_eq(dnsmsg_parse(m2, n, &d), 0);
	ck_assert_int_eq(dnsrdata_ns(m2, n, &d, "example.test", ns, 2, &dropped), -1);
	/* A forward pointer, and the root as a target. */
	static const uint8_t fwd[] = { 0xc0, 0xff };
	struct dnsfake_rr f = { NULL, DNS_T_NS, fwd, 2 };
	n = dnsfake_answer(m, sizeof(m), 1, 0, "example.test", DNS_T_NS, &f, 1);
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), 0);
	ck_assert_int_eq(dnsrdata_ns(m, n, &d, "example.test", ns, 2, &dropped), -1);
	static const uint8_t root[] = { 0 };
	struct dnsfake_rr r = { NULL, DNS_T_NS, root, 1 };
	n = dnsfake_answer(m, sizeof(m), 1, 0, "example.test", DNS_T_NS, &r, 1);
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), 0);
	ck_assert_int_eq(dnsrdata_ns(m, n, &d, "example.test", ns, 2, &dropped), -1);
}
END_TEST

START_TEST(addresses)
{
	static const uint8_t v4[4] = { 127, 0, 0, 2 };
	uint8_t v6[16], m[DNS_MSG_MAX];
	struct sockaddr_storage out[3];
	struct dns_msg d;
	char s[64];
	size_t n;

	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::53", v6), 1);
	struct dnsfake_rr rr[] = {
		{ NULL, DNS_T_A, v4, 4 },
		{ "other.example.test", DNS_T_A, v4, 4 },
		{ NULL, DNS_T_AAAA, v6, 16 },
		{ NULL, DNS_T_A, v4, 4 },
	};
	n = dnsfake_answer(m, sizeof(m), 1, 0, "ns.example.test", DNS_T_A, rr, 4);
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), 0);
	ck_assert_int_eq(dnsrdata_addrs(m, &d, "ns.example.test", 5353, out, 2), 2);
	addr_format((struct sockaddr *)&out[0], s, sizeof(s));
	ck_assert_str_eq(s, "127.0.0.2:5353");
	addr_format((struct sockaddr *)&out[1], s, sizeof(s));
	ck_assert_str_eq(s, "[2001:db8::53]:5353");
	ck_assert_int_eq(dnsrdata_addrs(m, &d, "ns.example.test", 53, out, 3), 3);
	/* An A of 3 bytes and an AAAA of 4 are refused. */
	struct dnsfake_rr bad4 = { NULL, DNS_T_A, v4, 3 };
	n = dnsfake_answer(m, sizeof(m), 1, 0, "ns.example.test", DNS_T_A, &bad4, 1);
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), 0);
	ck_assert_int_eq(dnsrdata_addrs(m, &d, "ns.example.test", 53, out, 3), -1);
	struct dnsfake_rr bad6 = { NULL, DNS_T_AAAA, v4, 4 };
	n = dnsfake_answer(m, sizeof(m), 1, 0, "ns.example.test", DNS_T_AAAA, &bad6, 1);
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), 0);
	ck_assert_int_eq(dnsrdata_addrs(m, &d, "ns.example.test", 53, out, 3), -1);
}
END_TEST

Suite *
suite_dnsrdata(void)
{
	Suite *s = suite_create("dnsrdata");
	TCase *tc = tcase_create("dnsrdata");

	tcase_add_test(tc, ns_targets);
	tcase_add_test(tc, ns_malformed);
	tcase_add_test(tc, addresses);
	suite_add_tcase(s, tc);
	return s;
}
