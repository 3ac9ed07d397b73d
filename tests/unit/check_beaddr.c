/*
 * Unit tests for share/beaddr.c: every backend form haloyd-ctl, the master
 * and the snapshot accept (IP:PORT, [IPv6]:PORT, HOST:PORT, unix:/path, tunnel:NAME),
 * printed back canonically, and each bad form refused with its reason.
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "share/beaddr.h"
#include "tests/unit/suites.h"

/* Parses s and prints it back; the canonical text is want. */
static void
roundtrip(const char *s, enum beaddr_kind kind, const char *want)
{
	char err[300] = "", out[BEADDR_STR_MAX];
	struct beaddr b;

	ck_assert_msg(beaddr_parse(s, &b, err, sizeof(err)) == 0, "%s: %s", s, err);
	ck_assert_int_eq(b.kind, kind);
	ck_assert_int_eq(beaddr_format(&b, out, sizeof(out)), 0);
	ck_assert_str_eq(out, want);
}

static void
refused(const char *s, const char *reason)
{
	char err[300] = "";
	struct beaddr b;

	ck_assert_int_eq(beaddr_parse(s, &b, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, reason) != NULL, "'%s': error '%s' lacks '%s'", s, err, reason);
	ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(every_kind_roundtrips)
{
	char path[BEADDR_UNIX_PATH_MAX + 6], name[80];

	roundtrip("127.0.0.1:3000", BEADDR_IP, "127.0.0.1:3000");
	roundtrip("[0:0::1]:443", BEADDR_IP, "[::1]:443");
	roundtrip("unix:/run/app.sock", BEADDR_UNIX, "unix:/run/app.sock");
	roundtrip("tunnel:office-nas", BEADDR_TUNNEL, "tunnel:office-nas");
	roundtrip("tunnel:a.b-c.9", BEADDR_TUNNEL, "tunnel:a.b-c.9");
	roundtrip("tunnel:0", BEADDR_TUNNEL, "tunnel:0");
	roundtrip("localhost:3000", BEADDR_NAME, "localhost:3000");
	roundtrip("App.Example.COM.:65535", BEADDR_NAME, "app.example.com:65535");
	roundtrip("_svc.db-1.internal:1", BEADDR_NAME, "_svc.db-1.internal:1");
	/* Hosts named like a kind keep the root dot that tells them apart (fuzz_applyfile). */
	roundtrip("unix.:173", BEADDR_NAME, "unix.:173");
	roundtrip("UNIX:173", BEADDR_NAME, "unix.:173");
	roundtrip("Tunnel.:8080", BEADDR_NAME, "tunnel.:8080");
	roundtrip("tunnel.:8080", BEADDR_NAME, "tunnel.:8080");
	roundtrip("unix.example:80", BEADDR_NAME, "unix.example:80");
	roundtrip("tunnel:8080", BEADDR_TUNNEL, "tunnel:8080");
	/* The longest path sun_path holds (107 bytes and its NUL). */
	memcpy(path, "unix:/", 6);
	memset(path + 6, 'p', BEADDR_UNIX_PATH_MAX - 1);
	path[5 + BEADDR_UNIX_PATH_MAX] = '\0';
	roundtrip(path, BEADDR_UNIX, path);
	memcpy(name, "tunnel:", 7);
	memset(name + 7, 'n', 63);
	name[70] = '\0';
	roundtrip(name, BEADDR_TUNNEL, name);
}
END_TEST

/* HOST:PORT: host-name rules (share/hostname.c), a port 1..65535, no numeric TLD. */
START_TEST(dns_names)
{
	char host[HOSTNAME_MAX + 16];
	struct beaddr b;
	char err[300];
	size_t i;

	ck_assert_int_eq(beaddr_parse("app.example.com:8080", &b, err, sizeof(err)), 0);
	ck_assert_int_eq(b.port, 8080);
	ck_assert_str_eq(b.name, "app.example.com");
	/* 253 bytes: three labels of 63 and one of 61, with dots; one more is too long. */
	for (i = 0; i < 3; i++) {
		memset(host + i * 64, 'a', 63);
		host[i * 64 + 63] = '.';
	}
	memset(host + 192, 'b', 61);
	memcpy(host + 253, ":80", 4);
	ck_assert_msg(beaddr_parse(host, &b, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(strlen(b.name), 253);
	memset(host + 192, 'b', 62);
	memcpy(host + 254, ":80", 4);
	ck_assert_int_eq(beaddr_parse(host, &b, err, sizeof(err)), -1);
	refused("example.com:0", "use IP:PORT");
	refused("example.com:65536", "use IP:PORT");
	refused("example.com:80x", "use IP:PORT");
	refused("example.com:+80", "use IP:PORT");
	refused("example.com:", "use IP:PORT");
	refused(":80", "use IP:PORT");
	refused("exa mple.com:80", "use IP:PORT");
	refused("*.example.com:80", "use IP:PORT");
	refused("bad-.example.com:80", "use IP:PORT");
	refused("10.0.0.256:80", "use IP:PORT");
	refused("1.2.3:80", "use IP:PORT");
	refused("::1:80", "use IP:PORT");
	ck_assert_int_eq(beaddr_dns_name_ok("a.b", 3), 1);
	ck_assert_int_eq(beaddr_dns_name_ok("A.b", 3), 0);	/* not normalised */
	ck_assert_int_eq(beaddr_dns_name_ok("a.1", 3), 0);
	ck_assert_int_eq(beaddr_dns_name_ok("", 0), 0);
}
END_TEST

START_TEST(bad_forms_refused)
{
	char path[BEADDR_UNIX_PATH_MAX + 8], name[80];

	refused("localhost", "use IP:PORT, [IPv6]:PORT, HOST:PORT, unix:/PATH or tunnel:NAME");
	refused("127.0.0.1", "use IP:PORT");
	refused("", "use IP:PORT");
	refused("unix:", "must be absolute");
	refused("unix:run/app.sock", "must be absolute");
	refused("unix:/", "must name a file");
	refused("unix:/run/a\tb", "no control characters");
	memcpy(path, "unix:/", 6);
	memset(path + 6, 'p', BEADDR_UNIX_PATH_MAX);
	path[6 + BEADDR_UNIX_PATH_MAX] = '\0';	/* 108 bytes */
	refused(path, "is 108 bytes, at most 107");
	refused("tunnel:", "a tunnel name is 1 to 63 characters");
	refused("tunnel:Office", "a tunnel name");
	refused("tunnel:-office", "starting with a letter or digit");
	refused("tunnel:.office", "a tunnel name");
	refused("tunnel:off_ice", "a tunnel name");
	refused("tunnel:office nas", "a tunnel name");
	memcpy(name, "tunnel:", 7);
	memset(name + 7, 'n', 64);
	name[71] = '\0';
	refused(name, "a tunnel name");
	refused("Unix:/run/app.sock", "use IP:PORT");
}
END_TEST

START_TEST(checks_alone)
{
	ck_assert_int_eq(beaddr_tunnel_name_ok("ab", 2), 1);
	ck_assert_int_eq(beaddr_tunnel_name_ok("ab", 0), 0);
	ck_assert_int_eq(beaddr_tunnel_name_ok("a\0b", 3), 0);
	ck_assert_int_eq(beaddr_unix_path_ok("/a", 2), 1);
	ck_assert_int_eq(beaddr_unix_path_ok("/a\0b", 4), 0);
	ck_assert_int_eq(beaddr_unix_path_ok("/a\x7f", 3), 0);
}
END_TEST

Suite *
suite_beaddr(void)
{
	Suite *s = suite_create("beaddr");
	TCase *tc = tcase_create("forms");

	tcase_add_test(tc, every_kind_roundtrips);
	tcase_add_test(tc, bad_forms_refused);
	tcase_add_test(tc, dns_names);
	tcase_add_test(tc, checks_alone);
	suite_add_tcase(s, tc);
	return s;
}
