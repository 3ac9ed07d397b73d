/* ACME HTTP-01 answers in the snapshot: builder, reader checks, lookup. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "master/acmemaster.h"
#include "master/snapbuild.h"
#include "share/snap.h"
#include "tests/unit/suites.h"

static const struct snapb_route chal_routes[] = {
	{ .id = 1, .name = "app.example.com" },
};

static const struct snapb_host chal_hosts[] = {
	{ .id = 2, .name = "app.example.com", .route = 0, .kind = SNAP_HOST_EXACT, NULL },
};

/* Builds and maps a snapshot with chals; -1 (and err) when either step refuses. */
static int
chal_build(const struct snapb_chal *chals, uint32_t n, struct snap **s, char *err, size_t len)
{
	struct snapb_input in;
	int fd, rc;

	memset(&in, 0, sizeof(in));
	in.routes = chal_routes;
	in.nroutes = 1;
	in.hosts = chal_hosts;
	in.nhosts = 1;
	in.default_route = SNAP_NONE;
	in.generation = 7;
	in.chals = chals;
	in.nchals = n;
	if (snapb_build(&in, &fd, err, len) == -1)
		return -1;
	rc = snap_map(fd, s, err, len);
	close(fd);
	return rc;
}

START_TEST(chal_lookup)
{
	static const struct snapb_chal chals[] = {
		{ "tok-one_A", "tok-one_A.thumbprintthumbprintthumbprintthumbpri" },
		{ "tok2", "tok2.xyz" },
	};
	struct snap *s = NULL;
	char err[256] = "";
	const char *ka;

	ck_assert_msg(chal_build(chals, 2, &s, err, sizeof(err)) == 0, "%s", err);
	ka = snap_challenge(s, "tok2", 4);
	ck_assert_ptr_nonnull(ka);
	ck_assert_str_eq(ka, "tok2.xyz");
	ck_assert_str_eq(snap_challenge(s, "tok-one_A", 9), chals[0].keyauth);
	ck_assert_ptr_null(snap_challenge(s, "tok", 3));	/* a prefix is not a token */
	ck_assert_ptr_null(snap_challenge(s, "tok2x", 5));
	snap_unref(s);
}
END_TEST

START_TEST(chal_none)
{
	struct snap *s = NULL;
	char err[256] = "";

	ck_assert_msg(chal_build(NULL, 0, &s, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_null(snap_challenge(s, "tok2", 4));
	snap_unref(s);
}
END_TEST

START_TEST(chal_refused)
{
	static const struct snapb_chal not_b64[] = { { "a/b", "a/b.x" } };
	static const struct snapb_chal twice[] = { { "same", "same.1" }, { "same", "same.2" } };
	static const struct snapb_chal empty[] = { { "", "x" } };
	struct snap *s = NULL;
	char err[256] = "";

	/* The reader refuses what a worker must never serve, whoever built it. */
	ck_assert_int_eq(chal_build(not_b64, 1, &s, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "base64url") != NULL, "%s", err);
	ck_assert_int_eq(chal_build(twice, 2, &s, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "repeated") != NULL, "%s", err);
	ck_assert_int_eq(chal_build(empty, 1, &s, err, sizeof(err)), -1);
}
END_TEST

/* Which route names get an ACME order. */
START_TEST(acme_names)
{
	static const char *ok[] = { "app.example.com", "www.app.example.com", "x.io",
	    "123.example.com", "example.org" };
	static const char *refused[] = { "*.example.com", "127.0.0.1", "::1", "localhost",
	    "app.localhost", "intranet", "printer.local", "db.internal", "10.0.0.300",
	    "app.example.com/api" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(acme_name_refusal(ok[i]) == NULL, "%s refused", ok[i]);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ck_assert_msg(acme_name_refusal(refused[i]) != NULL, "%s accepted", refused[i]);
}
END_TEST

Suite *
suite_chal(void)
{
	Suite *s = suite_create("chal");
	TCase *tc = tcase_create("chal");

	tcase_add_test(tc, chal_lookup);
	tcase_add_test(tc, chal_none);
	tcase_add_test(tc, chal_refused);
	tcase_add_test(tc, acme_names);
	suite_add_tcase(s, tc);
	return s;
}
