/*
 * Unit tests for worker/pathroute.c: a request head and a snapshot built
 * in memory stand in for the session and the master; the route picked and
 * the path the backend would get.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "master/snapbuild.h"
#include "share/snap.h"
#include "tests/unit/suites.h"
#include "worker/message.h"
#include "worker/pathroute.h"

static const struct snapb_route routes[] = {
	{ .id = 1, .name = "example.com" },
	{ .id = 2, .name = "example.com/api" },
	{ .id = 3, .name = "example.com/api/v2", .flags = SNAP_ROUTE_STRIP_PREFIX },
	{ .id = 4, .name = "example.com/s", .flags = SNAP_ROUTE_STRIP_PREFIX },
	{ .id = 5, .name = "plain.test" },
};

static const struct snapb_host hosts[] = {
	{ 10, "example.com", 0, SNAP_HOST_EXACT, NULL },
	{ 11, "plain.test", 4, SNAP_HOST_EXACT, NULL },
};

static struct snap *
fixture(void)
{
	static const uint8_t key[16] = { 3 };
	struct snapb_input in = { .routes = routes, .nroutes = 5, .hosts = hosts, .nhosts = 2,
	    .default_route = SNAP_NONE, .generation = 1, .hash_key = key };
	char err[256] = "";
	struct snap *s;
	int fd;

	ck_assert_msg(snapb_build(&in, &fd, err, sizeof(err)) == 0, "build: %s", err);
	ck_assert_msg(snap_map(fd, &s, err, sizeof(err)) == 0, "map: %s", err);
	close(fd);
	return s;
}

/* Routes target on host; want_path is what the backend gets. */
static void
expect(struct snap *s, const char *host, const char *target, uint32_t want_id,
    const char *want_path)
{
	const struct snap_route *r = snap_lookup(s, host, strlen(host));
	struct msg_head h;
	size_t plen;

	msg_init(&h);
	ck_assert_int_eq(msg_str(&h, target, strlen(target), &h.path), 0);
	plen = pathroute_pick(s, &r, &h);
	ck_assert_uint_eq(r->id, want_id);
	ck_assert_uint_eq(plen, want_id == 2 ? 4 : want_id == 3 ? 7 : want_id == 4 ? 2 : 0);
	/* Picking leaves the path alone: redirects and pages show the client's. */
	ck_assert_str_eq(msg_s(&h, h.path), target);
	ck_assert_int_eq(pathroute_strip(r, &h, plen), 0);
	ck_assert_str_eq(msg_s(&h, h.path), want_path);
	ck_assert_uint_eq(h.path.len, strlen(want_path));
	msg_free(&h);
}

START_TEST(picks_and_strips)
{
	struct snap *s = fixture();

	expect(s, "example.com", "/", 1, "/");
	expect(s, "example.com", "/apix?q=1", 1, "/apix?q=1");
	/* Without strip the target goes as it came, even when it needed normalising. */
	expect(s, "example.com", "/api/x?q=1", 2, "/api/x?q=1");
	expect(s, "example.com", "/api/./x", 2, "/api/./x");
	expect(s, "example.com", "/x/../api", 2, "/x/../api");
	/* With strip: the normalised path without the prefix, the query as sent. */
	expect(s, "example.com", "/api/v2", 3, "/");
	expect(s, "example.com", "/api/v2/", 3, "/");
	expect(s, "example.com", "/api/v2/users?id=7&next=/api/v2", 3, "/users?id=7&next=/api/v2");
	expect(s, "example.com", "/api/v2/a/../b?", 3, "/b?");
	expect(s, "example.com", "/s/%7Ex", 4, "/~x");
	expect(s, "example.com", "/s?x", 4, "/?x");
	/* A bad escape or no origin-form path: the host route, the target untouched. */
	expect(s, "example.com", "/api/v2%zz", 1, "/api/v2%zz");
	expect(s, "example.com", "*", 1, "*");
	expect(s, "plain.test", "/api/v2", 5, "/api/v2");
	snap_unref(s);
}
END_TEST

Suite *
suite_pathroute(void)
{
	Suite *s = suite_create("pathroute");
	TCase *tc = tcase_create("pick");

	tcase_add_test(tc, picks_and_strips);
	suite_add_tcase(s, tc);
	return s;
}
