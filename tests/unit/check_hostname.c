/* Unit tests for share/hostname.c and share/addr.c: the host-name rules table. */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "share/addr.h"
#include "share/hostname.h"
#include "tests/unit/suites.h"

static const struct {
	const char *in;
	const char *out;	/* NULL: refused */
} header_cases[] = {
	{ "example.com", "example.com" },
	{ "APP.Example.COM", "app.example.com" },
	{ "app.example.com:8080", "app.example.com" },
	{ "APP.example.com:8080", "app.example.com" },
	{ "app.example.com.", "app.example.com" },
	{ "app.example.com.:443", "app.example.com" },
	{ "127.0.0.1:8080", "127.0.0.1" },
	{ "a_b.example.com", "a_b.example.com" },
	{ "x", "x" },
	{ "[::1]:8080", "[::1]" },
	{ "[FE80::1]", "[fe80::1]" },
	{ "", NULL },
	{ ".", NULL },
	{ "a..b", NULL },
	{ ".a.b", NULL },
	{ "a.b..", NULL },
	{ "-a.example.com", NULL },
	{ "a-.example.com", NULL },
	{ "a.example.com:", NULL },
	{ "a.example.com:0", NULL },
	{ "a.example.com:65536", NULL },
	{ "a.example.com:80x", NULL },
	{ "a.example.com:80:80", NULL },
	{ "a b.com", NULL },
	{ "a/b.com", NULL },
	{ "a\r.com", NULL },
	{ "*.example.com", NULL },
	{ "[::1", NULL },
	{ "[::g]", NULL },
	{ "[::1]x", NULL },
	{ "h\xc3\xa9.com", NULL },
};

START_TEST(header_table)
{
	char out[HOSTNAME_MAX + 1];
	const char *in = header_cases[_i].in;
	int n = hostname_from_header(in, strlen(in), out);

	if (header_cases[_i].out == NULL) {
		ck_assert_msg(n == -1, "'%s' accepted as '%s'", in, out);
	} else {
		ck_assert_msg(n >= 0, "'%s' refused", in);
		ck_assert_str_eq(out, header_cases[_i].out);
		ck_assert_int_eq(n, (int)strlen(header_cases[_i].out));
	}
}
END_TEST

START_TEST(length_limits)
{
	char in[400], out[HOSTNAME_MAX + 1];
	size_t i;

	/* A 63-byte label is fine, 64 is not. */
	memset(in, 'a', 63);
	strcpy(in + 63, ".com");
	ck_assert_int_eq(hostname_from_header(in, strlen(in), out), 67);
	memset(in, 'a', 64);
	strcpy(in + 64, ".com");
	ck_assert_int_eq(hostname_from_header(in, strlen(in), out), -1);
	/* 253 bytes in all is fine (with a trailing dot too), 254 is not. */
	for (i = 0; i < 253; i++)
		in[i] = (i % 2) ? '.' : 'a';
	in[252] = 'a';
	in[253] = '\0';
	ck_assert_int_eq(hostname_from_header(in, 253, out), 253);
	in[253] = '.';
	ck_assert_int_eq(hostname_from_header(in, 254, out), 253);
	in[253] = 'a';
	in[254] = '\0';
	ck_assert_int_eq(hostname_from_header(in, 254, out), -1);
}
END_TEST

START_TEST(route_names)
{
	char out[HOSTNAME_MAX + 1];

	ck_assert_int_eq(hostname_normalize_name("*.Example.com", out), 13);
	ck_assert_str_eq(out, "*.example.com");
	ck_assert(hostname_is_wildcard(out));
	ck_assert_int_eq(hostname_normalize_name("App.Example.com.", out), 15);
	ck_assert(!hostname_is_wildcard(out));
	ck_assert_int_eq(hostname_normalize_name("a.example.com:80", out), -1);
	ck_assert_int_eq(hostname_normalize_name("*", out), -1);
	ck_assert_int_eq(hostname_normalize_name("*.", out), -1);
	ck_assert_int_eq(hostname_normalize_name("a.*.example.com", out), -1);
	ck_assert_int_eq(hostname_normalize_name("**.example.com", out), -1);
	ck_assert_int_eq(hostname_normalize_name("[::1]", out), -1);
	ck_assert_int_eq(hostname_normalize_name("", out), -1);
}
END_TEST

/* A TLS server name: a host name, never a wildcard or an address. */
START_TEST(sni_names)
{
	char out[HOSTNAME_MAX + 1];

	ck_assert_int_eq(hostname_normalize_sni("Internal.Example.NET.", out), 20);
	ck_assert_str_eq(out, "internal.example.net");
	ck_assert_int_eq(hostname_normalize_sni("localhost", out), 9);
	ck_assert_int_eq(hostname_normalize_sni("10.0.0.1", out), -1);
	ck_assert_int_eq(hostname_normalize_sni("::1", out), -1);
	ck_assert_int_eq(hostname_normalize_sni("[::1]", out), -1);
	ck_assert_int_eq(hostname_normalize_sni("*.example.com", out), -1);
	ck_assert_int_eq(hostname_normalize_sni("a..b", out), -1);
	ck_assert_int_eq(hostname_normalize_sni("", out), -1);
	ck_assert_int_eq(hostname_normalize_sni("host:443", out), -1);
	/* Digits-only labels are a name when they are not a dotted quad. */
	ck_assert_int_ge(hostname_normalize_sni("10.0.0.1.example", out), 1);
}
END_TEST

START_TEST(addresses)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[ADDR_STR_MAX];

	ck_assert_int_eq(addr_parse("127.0.0.1:3000", &ss, &len), 0);
	ck_assert_int_eq(addr_format((struct sockaddr *)&ss, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "127.0.0.1:3000");
	ck_assert_int_eq(addr_parse("[::1]:443", &ss, &len), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_int_eq(addr_format((struct sockaddr *)&ss, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "[::1]:443");
	ck_assert_int_eq(addr_parse("[0:0::1]:443", &ss, &len), 0);
	ck_assert_int_eq(addr_format((struct sockaddr *)&ss, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "[::1]:443");
	ck_assert_int_eq(addr_parse("127.0.0.1", &ss, &len), -1);
	ck_assert_int_eq(addr_parse("127.0.0.1:0", &ss, &len), -1);
	ck_assert_int_eq(addr_parse("127.0.0.1:65536", &ss, &len), -1);
	ck_assert_int_eq(addr_parse("localhost:80", &ss, &len), -1);
	ck_assert_int_eq(addr_parse("::1:80", &ss, &len), -1);
	ck_assert_int_eq(addr_parse("[::1]80", &ss, &len), -1);
	ck_assert_int_eq(addr_parse("1.2.3.4:+80", &ss, &len), -1);
	ck_assert_int_eq(addr_parse(":80", &ss, &len), -1);
}
END_TEST

Suite *
suite_hostname(void)
{
	Suite *s = suite_create("hostname");
	TCase *tc = tcase_create("rules");

	tcase_add_loop_test(tc, header_table, 0, (int)(sizeof(header_cases) / sizeof(header_cases[0])));
	tcase_add_test(tc, length_limits);
	tcase_add_test(tc, route_names);
	tcase_add_test(tc, addresses);
	tcase_add_test(tc, sni_names);
	suite_add_tcase(s, tc);
	return s;
}
