/*
 * Unit tests for ctl/cmdline.c: the backend forms of route add and backend
 * add (unix:/path, tunnel:NAME beside IP:PORT) reach the request in their
 * canonical text, bad ones stop at the command line with the reason and
 * the exit code for invalid input, and route set --balance is a setting.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/cmdline.h"
#include "share/cursor.h"
#include "share/msg.h"
#include "tests/unit/suites.h"

static struct cmdline *cl;

static void
setup(void)
{
	cl = calloc(1, sizeof(*cl));
	ck_assert_ptr_nonnull(cl);
}

static void
teardown(void)
{
	free(cl);
}

/* Parses the NULL-terminated words after the program name. */
static int
parse(const char *first, ...)
{
	char *argv[32];
	const char *w;
	va_list ap;
	int argc = 0;

	memset(cl, 0, sizeof(*cl));
	argv[argc++] = (char *)(uintptr_t)"haloyd-ctl";
	va_start(ap, first);
	for (w = first; w != NULL && argc < 31; w = va_arg(ap, const char *))
		argv[argc++] = (char *)(uintptr_t)w;
	va_end(ap);
	argv[argc] = NULL;
	return cmdline_parse(cl, argc, argv);
}

START_TEST(route_add_every_kind)
{
	char s[MSG_STR_MAX];
	struct cur c;

	ck_assert_int_eq(parse("route", "add", "app.example.com", "unix:/run/app.sock",
	    "--backend", "tunnel:office", "--backend", "[0::1]:80", NULL), CTL_OK);
	ck_assert_uint_eq(cl->type, MSG_C_ROUTE_ADD);
	cur_init(&c, cl->payload, cl->len);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "app.example.com");
	ck_assert_uint_eq(cur_u16(&c), 0);
	ck_assert_uint_eq(cur_u16(&c), 3);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "unix:/run/app.sock");
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "tunnel:office");
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "[::1]:80");
}
END_TEST

START_TEST(backend_add_tunnel)
{
	char s[MSG_STR_MAX];
	struct cur c;

	ck_assert_int_eq(parse("backend", "add", "x.example.com", "tunnel:office-nas", NULL),
	    CTL_OK);
	ck_assert_uint_eq(cl->type, MSG_C_BACKEND_ADD);
	cur_init(&c, cl->payload, cl->len);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "tunnel:office-nas");
}
END_TEST

/* Each bad form: the invalid-input code and the reason on one line. */
static void
bad_backend(const char *be, const char *reason)
{
	ck_assert_int_eq(parse("route", "add", "x.example.com", be, NULL), CTL_EINVAL);
	ck_assert_msg(strstr(cl->error, reason) != NULL, "'%s': '%s' lacks '%s'", be, cl->error,
	    reason);
	ck_assert_ptr_null(strchr(cl->error, '\n'));
	ck_assert_int_eq(parse("backend", "rm", "x.example.com", be, NULL), CTL_EINVAL);
}

START_TEST(bad_forms_refused)
{
	char path[160];

	bad_backend("unix:run/app.sock", "must be absolute");
	bad_backend("tunnel:Office", "a tunnel name is 1 to 63 characters");
	bad_backend("tunnel:", "a tunnel name");
	bad_backend("localhost:0", "use IP:PORT, [IPv6]:PORT, HOST:PORT, unix:/PATH or tunnel:NAME");
	memset(path, 'a', sizeof(path));
	memcpy(path, "unix:/", 6);
	path[5 + 108] = '\0';
	bad_backend(path, "at most 107");
}
END_TEST

START_TEST(route_set_balance)
{
	char s[MSG_STR_MAX];
	struct cur c;

	ck_assert_int_eq(parse("route", "set", "x.example.com", "--balance", "round-robin", NULL),
	    CTL_OK);
	ck_assert_uint_eq(cl->type, MSG_C_ROUTE_SET);
	cur_init(&c, cl->payload, cl->len);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_uint_eq(cur_u16(&c), 1);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "balance");
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "round-robin");
	ck_assert_int_eq(parse("route", "set", "x.example.com", "--balance", "least-in-flight",
	    NULL), CTL_OK);
}
END_TEST

/* apply FILE: the file becomes a sealed memfd with a final newline; flags and name in the payload. */
START_TEST(apply_file_and_flags)
{
	char path[] = "/tmp/check_cmdline.XXXXXX", s[MSG_STR_MAX], buf[64];
	struct cur c;
	int fd;

	ck_assert_int_ne(fd = mkstemp(path), -1);
	ck_assert_int_eq(write(fd, "route a.example 127.0.0.1:1", 27), 27);
	close(fd);
	ck_assert_int_eq(parse("apply", path, "--prune", "--dry-run", NULL), CTL_OK);
	ck_assert_uint_eq(cl->type, MSG_C_APPLY);
	ck_assert_int_ge(cl->send_fd, 0);
	cur_init(&c, cl->payload, cl->len);
	ck_assert_uint_eq(cur_u8(&c), MSG_APPLY_DRY_RUN | MSG_APPLY_PRUNE);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_str_eq(s, path);
	ck_assert_int_eq(cur_end(&c), 0);
	ck_assert_int_eq(pread(cl->send_fd, buf, sizeof(buf), 0), 28);
	ck_assert_int_eq(memcmp(buf, "route a.example 127.0.0.1:1\n", 28), 0);
	ck_assert_int_eq(write(cl->send_fd, "x", 1), -1);	/* sealed */
	close(cl->send_fd);
	unlink(path);
	ck_assert_int_eq(parse("apply", path, NULL), CTL_EINVAL);
	ck_assert_msg(strstr(cl->error, "No such file") != NULL, "%s", cl->error);
	ck_assert_int_eq(parse("apply", NULL), CTL_EUSAGE);
	ck_assert_int_eq(parse("route", "list", "--prune", NULL), CTL_EUSAGE);
	ck_assert_str_eq(cl->error, "--dry-run and --prune go with 'apply' only");
	ck_assert_int_eq(parse("export", NULL), CTL_OK);
	ck_assert_uint_eq(cl->type, MSG_C_EXPORT);
	ck_assert_uint_eq(cl->len, 0);
	ck_assert_int_eq(cl->send_fd, -1);
}
END_TEST

/* --health-check takes a request-target as it is (a query too); the master checks the rest. */
START_TEST(route_set_health)
{
	char s[MSG_STR_MAX];
	struct cur c;
	uint16_t i, n;
	int seen = 0;

	ck_assert_int_eq(parse("route", "set", "x.example.com", "--health-check", "/healthz?deep=1",
	    "--health-interval", "500ms", "--health-timeout", "300ms", "--health-rise", "2",
	    "--health-fall", "3", NULL), CTL_OK);
	cur_init(&c, cl->payload, cl->len);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	n = cur_u16(&c);
	ck_assert_uint_eq(n, 5);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
		if (strcmp(s, "health_check") == 0) {
			ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
			ck_assert_str_eq(s, "/healthz?deep=1");
			seen = 1;
		} else
			ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	}
	ck_assert(seen);
	ck_assert_int_eq(parse("route", "set", "x.example.com", "--health-check", "/a b", NULL),
	    CTL_EINVAL);
	ck_assert_int_eq(parse("route", "set", "x.example.com", "--health-check", "off", NULL),
	    CTL_OK);
}
END_TEST

Suite *
suite_cmdline(void)
{
	Suite *s = suite_create("cmdline");
	TCase *tc = tcase_create("backends");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, route_add_every_kind);
	tcase_add_test(tc, backend_add_tunnel);
	tcase_add_test(tc, bad_forms_refused);
	tcase_add_test(tc, route_set_balance);
	tcase_add_test(tc, apply_file_and_flags);
	tcase_add_test(tc, route_set_health);
	suite_add_tcase(s, tc);
	return s;
}
