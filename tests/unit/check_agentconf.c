/* Unit tests for agent/agentconf.c: haloyd-tunnel's flags, its config file, and their errors. */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agentconf.h"
#include "tests/unit/suites.h"

static int
parse(struct agentconf *c, char *err, int argc, ...)
{
	char *argv[32];
	va_list ap;
	int i;

	argv[0] = (char *)(uintptr_t)"haloyd-tunnel";
	va_start(ap, argc);
	for (i = 1; i <= argc; i++)
		argv[i] = (char *)(uintptr_t)va_arg(ap, const char *);
	va_end(ap);
	argv[argc + 1] = NULL;
	agentconf_defaults(c);
	return agentconf_parse_args(c, argc + 1, argv, err, 256);
}

START_TEST(flags)
{
	struct agentconf c;
	char err[256] = "";

	ck_assert_int_eq(parse(&c, err, 13, "--proxy", "proxy.example.com:8443", "--cert", "c.pem",
	    "--key", "k.pem", "--to", "127.0.0.1:3000", "--conns=4", "--sni", "edge.example.com",
	    "--drain-timeout", "5s"), 0);
	ck_assert_str_eq(c.proxy_host, "proxy.example.com");
	ck_assert_str_eq(c.proxy_port, "8443");
	ck_assert_str_eq(c.app_host, "127.0.0.1");
	ck_assert_str_eq(c.app_port, "3000");
	ck_assert_str_eq(c.cert, "c.pem");
	ck_assert_str_eq(c.key, "k.pem");
	ck_assert_str_eq(c.sni, "edge.example.com");
	ck_assert_uint_eq(c.conns, 4);
	ck_assert_uint_eq(c.drain_ms, 5000);
	ck_assert_int_eq(agentconf_check(&c, err, sizeof(err)), 0);
}
END_TEST

START_TEST(defaults)
{
	struct agentconf c;

	agentconf_defaults(&c);
	ck_assert_uint_eq(c.conns, 2);
	ck_assert_uint_eq(c.drain_ms, 30000);
	ck_assert_uint_eq(c.connect_timeout_ms, 10000);
	ck_assert_uint_eq(c.ping_idle_ms, 20000);
	ck_assert_uint_eq(c.ping_timeout_ms, 10000);
}
END_TEST

static const struct {
	const char *in, *host, *port;	/* host NULL: refused */
} hostport_cases[] = {
	{ "proxy.example.com:8443", "proxy.example.com", "8443" },
	{ "127.0.0.1:1", "127.0.0.1", "1" },
	{ "[::1]:443", "::1", "443" },
	{ "http://127.0.0.1:3000", "127.0.0.1", "3000" },
	{ "host:080", "host", "80" },
	{ "host", NULL, NULL },
	{ "host:", NULL, NULL },
	{ ":80", NULL, NULL },
	{ "host:0", NULL, NULL },
	{ "host:65536", NULL, NULL },
	{ "host:80x", NULL, NULL },
	{ "::1:80", NULL, NULL },
	{ "[::1]80", NULL, NULL },
	{ "a b:80", NULL, NULL },
	{ "a/b:80", NULL, NULL },
};

START_TEST(hostport_table)
{
	char host[AGENTCONF_HOST_MAX + 1], port[8];
	int rc = agentconf_split_hostport(hostport_cases[_i].in, host, sizeof(host), port,
	    sizeof(port));

	if (hostport_cases[_i].host == NULL) {
		ck_assert_msg(rc == -1, "'%s' accepted", hostport_cases[_i].in);
	} else {
		ck_assert_msg(rc == 0, "'%s' refused", hostport_cases[_i].in);
		ck_assert_str_eq(host, hostport_cases[_i].host);
		ck_assert_str_eq(port, hostport_cases[_i].port);
	}
}
END_TEST

START_TEST(flag_errors)
{
	struct agentconf c;
	char err[256];

	ck_assert_int_eq(parse(&c, err, 2, "--conns", "0"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--conns"));
	ck_assert_int_eq(parse(&c, err, 2, "--conns", "65"), -1);
	ck_assert_int_eq(parse(&c, err, 2, "--proxy", "nowhere"), -1);
	ck_assert_ptr_nonnull(strstr(err, "HOST:PORT"));
	ck_assert_int_eq(parse(&c, err, 1, "--proxy"), -1);
	ck_assert_ptr_nonnull(strstr(err, "needs a value"));
	ck_assert_int_eq(parse(&c, err, 2, "--colour", "red"), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown setting"));
	ck_assert_int_eq(parse(&c, err, 1, "stray"), -1);
	ck_assert_ptr_nonnull(strstr(err, "unexpected argument"));
	ck_assert_int_eq(parse(&c, err, 2, "--drain-timeout", "soon"), -1);
	ck_assert_int_eq(parse(&c, err, 2, "--ping-idle", "10ms"), -1);
	ck_assert_int_eq(parse(&c, err, 2, "--sni", "a/b"), -1);
	ck_assert_int_eq(parse(&c, err, 2, "--cert", ""), -1);
}
END_TEST

START_TEST(required)
{
	struct agentconf c;
	char err[256];

	ck_assert_int_eq(parse(&c, err, 4, "--proxy", "p:1", "--to", "a:2"), 0);
	ck_assert_int_eq(agentconf_check(&c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "client certificate is required"));
	ck_assert_int_eq(parse(&c, err, 6, "--cert", "c", "--key", "k", "--to", "a:2"), 0);
	ck_assert_int_eq(agentconf_check(&c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "--proxy"));
	ck_assert_int_eq(parse(&c, err, 6, "--cert", "c", "--key", "k", "--proxy", "p:1"), 0);
	ck_assert_int_eq(agentconf_check(&c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "--to"));
}
END_TEST

START_TEST(config_text)
{
	static const char text[] =
	    "# the systemd template's file\n"
	    "proxy proxy.example.com:8443\n"
	    "\n"
	    "  cert   /etc/haloyd-tunnel/office.pem  \r\n"
	    "key\t/etc/haloyd-tunnel/office.key\n"
	    "to 127.0.0.1:3000\n"
	    "conns 3";
	struct agentconf c;
	char err[256];

	agentconf_defaults(&c);
	ck_assert_int_eq(agentconf_parse_text(&c, text, strlen(text), err, sizeof(err)), 0);
	ck_assert_str_eq(c.proxy_host, "proxy.example.com");
	ck_assert_str_eq(c.cert, "/etc/haloyd-tunnel/office.pem");
	ck_assert_str_eq(c.key, "/etc/haloyd-tunnel/office.key");
	ck_assert_uint_eq(c.conns, 3);
}
END_TEST

START_TEST(config_errors)
{
	struct agentconf c;
	char err[256];

	agentconf_defaults(&c);
	ck_assert_int_eq(agentconf_parse_text(&c, "proxy\n", 6, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "line 1"));
	ck_assert_int_eq(agentconf_parse_text(&c, "\nconns many\n", 12, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "line 2"));
	ck_assert_int_eq(agentconf_parse_text(&c, "config /x\n", 10, err, sizeof(err)), -1);
	ck_assert_int_eq(agentconf_parse_text(&c, "to a\0b:1\n", 9, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
}
END_TEST

/* The file is read first, then the flags: a flag wins. */
START_TEST(flags_win_over_file)
{
	char path[] = "/tmp/check_agentconf_XXXXXX", err[256];
	static const char text[] = "proxy file.example.com:1\nconns 5\nto 127.0.0.1:9\n";
	struct agentconf c;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (int)sizeof(text) - 1);
	close(fd);
	ck_assert_int_eq(parse(&c, err, 4, "--conns", "7", "--config", path), 0);
	ck_assert_str_eq(c.proxy_host, "file.example.com");
	ck_assert_uint_eq(c.conns, 7);
	unlink(path);
	ck_assert_int_eq(parse(&c, err, 2, "--config", "/nonexistent/agent.conf"), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/agent.conf"));
}
END_TEST

Suite *
suite_agentconf(void)
{
	Suite *s = suite_create("agentconf");
	TCase *tc = tcase_create("agentconf");

	tcase_add_test(tc, flags);
	tcase_add_test(tc, defaults);
	tcase_add_loop_test(tc, hostport_table, 0, sizeof(hostport_cases) / sizeof(hostport_cases[0]));
	tcase_add_test(tc, flag_errors);
	tcase_add_test(tc, required);
	tcase_add_test(tc, config_text);
	tcase_add_test(tc, config_errors);
	tcase_add_test(tc, flags_win_over_file);
	suite_add_tcase(s, tc);
	return s;
}
