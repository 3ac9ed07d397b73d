/*
 * Unit tests for path-prefix routes in the snapshot: master/snapprefix.c
 * (which host route, the order, the bound), the builder's PREFIXES section
 * and share/snap.c's checks of it and snap_lookup_prefix.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/snapbuild.h"
#include "master/snapprefix.h"
#include "share/hash.h"
#include "share/pathprefix.h"
#include "share/snap.h"
#include "tests/unit/suites.h"

static const uint8_t key[16] = { 1 };

/* A host route with three prefixes (one a sibling of /api), an orphan, a plain route. */
static const struct snapb_route fx_routes[] = {
	{ .id = 1, .name = "example.com" },
	{ .id = 2, .name = "example.com/api" },
	{ .id = 3, .name = "example.com/api/v2", .flags = SNAP_ROUTE_STRIP_PREFIX },
	{ .id = 4, .name = "example.com/apix" },
	{ .id = 5, .name = "gone.test/x" },
	{ .id = 6, .name = "b.test" },
};

static const struct snapb_host fx_hosts[] = {
	{ 10, "example.com", 0, SNAP_HOST_EXACT, NULL },
	{ 11, "www.example.com", 0, SNAP_HOST_ALIAS, NULL },
	{ 12, "b.test", 5, SNAP_HOST_EXACT, NULL },
};

static void
input(struct snapb_input *in, const struct snapb_route *routes, uint32_t n)
{
	memset(in, 0, sizeof(*in));
	in->routes = routes;
	in->nroutes = n;
	in->hosts = fx_hosts;
	in->nhosts = 3;
	in->default_route = SNAP_NONE;
	in->generation = 7;
	in->hash_key = key;
}

/* Builds in into a heap copy of its image. */
static uint8_t *
image(const struct snapb_input *in, size_t *size)
{
	char err[256] = "";
	uint8_t *p;
	off_t end;
	int fd;

	ck_assert_msg(snapb_build(in, &fd, err, sizeof(err)) == 0, "build: %s", err);
	end = lseek(fd, 0, SEEK_END);
	ck_assert_int_gt(end, 0);
	*size = (size_t)end;
	ck_assert_ptr_nonnull(p = malloc(*size));
	ck_assert_int_eq(pread(fd, p, *size, 0), (ssize_t)*size);
	close(fd);
	return p;
}

static struct snap *
mapped(const struct snapb_input *in)
{
	char err[256] = "";
	struct snap *s;
	int fd;

	ck_assert_msg(snapb_build(in, &fd, err, sizeof(err)) == 0, "build: %s", err);
	ck_assert_msg(snap_map(fd, &s, err, sizeof(err)) == 0, "map: %s", err);
	close(fd);
	return s;
}

/* The id of the route path goes to under host; 0 when the host route keeps it. */
static uint32_t
pick(const struct snap *s, const char *host, const char *path)
{
	const struct snap_route *r = snap_lookup(s, host, strlen(host)), *p;
	char n[128];
	size_t plen = 0;
	int len;

	ck_assert_ptr_nonnull(r);
	len = pathprefix_normalize(path, strlen(path), n, sizeof(n));
	ck_assert_int_ge(len, 0);
	p = snap_lookup_prefix(s, r, n, (size_t)len, &plen);
	if (p == NULL)
		return 0;
	/* plen is the matched prefix: the tail of the prefix route's name. */
	ck_assert_uint_eq(plen, strlen(snap_string(s, p->name)) -
	    pathprefix_of(snap_string(s, p->name)));
	return p->id;
}

START_TEST(longest_prefix_wins)
{
	struct snapb_input in;
	struct snap *s;

	input(&in, fx_routes, 6);
	s = mapped(&in);
	ck_assert_uint_eq(pick(s, "example.com", "/"), 0);
	ck_assert_uint_eq(pick(s, "example.com", "/ap"), 0);
	ck_assert_uint_eq(pick(s, "example.com", "/api"), 2);
	ck_assert_uint_eq(pick(s, "example.com", "/api/"), 2);
	ck_assert_uint_eq(pick(s, "example.com", "/api/v"), 2);
	ck_assert_uint_eq(pick(s, "example.com", "/api/v2"), 3);
	ck_assert_uint_eq(pick(s, "example.com", "/api/v2/users?x=1"), 3);
	ck_assert_uint_eq(pick(s, "example.com", "/api/v20"), 2);
	ck_assert_uint_eq(pick(s, "example.com", "/apix/y"), 4);
	ck_assert_uint_eq(pick(s, "example.com", "/apixy"), 0);
	ck_assert_uint_eq(pick(s, "example.com", "/x/../api/v2"), 3);
	ck_assert_uint_eq(pick(s, "example.com", "/api%2Fv2"), 0);
	/* An alias of the host route has its prefixes too. */
	ck_assert_uint_eq(pick(s, "www.example.com", "/api/v2/x"), 3);
	ck_assert_uint_eq(pick(s, "b.test", "/api"), 0);
	snap_unref(s);
}
END_TEST

START_TEST(prefix_entries)
{
	struct snapb_input in;
	const struct snap_route *host, *v2;
	struct snap *s;
	uint32_t i;

	input(&in, fx_routes, 6);
	s = mapped(&in);
	host = snap_lookup(s, "example.com", 11);
	ck_assert_uint_eq(host->pfx_count, 3);
	/* The orphan is a route still (no name leads to it), under no host route. */
	ck_assert_uint_eq(snap_route_count(s), 6);
	for (i = 0; i < snap_route_count(s); i++)
		if (snap_route_at(s, i)->id != 1)
			ck_assert_uint_eq(snap_route_at(s, i)->pfx_count, 0);
	ck_assert_ptr_null(snap_lookup(s, "gone.test", 9));
	ck_assert_ptr_null(snap_lookup(s, "example.com/api", 15));
	v2 = snap_route_at(s, 2);
	ck_assert_uint_eq(v2->flags, SNAP_ROUTE_STRIP_PREFIX);
	ck_assert_str_eq(snap_string(s, v2->name), "example.com/api/v2");
	snap_unref(s);
}
END_TEST

START_TEST(plan_order_and_bound)
{
	static char names[70][48];
	struct snapb_route r[71];
	struct snapprefix_plan p;
	struct snapb_input in;
	char err[128];
	uint32_t i;

	memset(r, 0, sizeof(r));
	r[70] = (struct snapb_route){ .id = 1000, .name = "example.com" };
	for (i = 0; i < 70; i++) {
		/* Lengths 6 to 75, given shortest first. */
		snprintf(names[i], sizeof(names[i]), "example.com/p%0*u", (int)(i % 20) + 4, i);
		r[i] = (struct snapb_route){ .id = i + 1, .name = names[i] };
	}
	input(&in, r, 71);
	ck_assert_int_eq(snapprefix_plan(&in, &p, err, sizeof(err)), 0);
	ck_assert_uint_eq(p.n, PATHPREFIX_PER_ROUTE_MAX);
	for (i = 0; i < p.n; i++) {
		ck_assert_uint_eq(p.v[i].parent, 70);
		ck_assert_uint_eq(p.v[i].hostlen, 11);
		if (i > 0)
			ck_assert_uint_ge(strlen(r[p.v[i - 1].route].name),
			    strlen(r[p.v[i].route].name));
	}
	snapprefix_free(&p);
}
END_TEST

/* Host routes in name order (as master/rtable.c gives them: no sort) or not: same parents. */
START_TEST(plan_parents_sorted_or_not)
{
	static const char *const names[] = { "a.test", "a.test/x", "b.test", "b.test/y", "c.test" };
	struct snapb_route r[5];
	struct snapprefix_plan p;
	struct snapb_input in;
	char err[128];
	uint32_t i, pass;

	for (pass = 0; pass < 2; pass++) {
		memset(r, 0, sizeof(r));
		for (i = 0; i < 5; i++) {
			uint32_t k = pass == 0 ? i : 4 - i;	/* the second pass: reversed */
			r[k] = (struct snapb_route){ .id = i + 1, .name = names[i] };
		}
		input(&in, r, 5);
		ck_assert_int_eq(snapprefix_plan(&in, &p, err, sizeof(err)), 0);
		ck_assert_uint_eq(p.n, 2);
		for (i = 0; i < p.n; i++) {
			ck_assert_uint_eq(p.v[i].hostlen, 6);
			ck_assert_int_eq(strncmp(r[p.v[i].parent].name, r[p.v[i].route].name, 6), 0);
			ck_assert_uint_eq(strlen(r[p.v[i].parent].name), 6);
		}
		snapprefix_free(&p);
	}
}
END_TEST

START_TEST(builder_refuses_bad_names)
{
	static const char *const bad[] = { "example.com/api/", "example.com/a//b",
	    "example.com/%41", "example.com/../a", "Example.com/api", "*.example.com/api" };
	struct snapb_route r[2] = { { .id = 1, .name = "example.com" } };
	struct snapb_input in;
	char err[256];
	size_t i;
	int fd;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r[1] = (struct snapb_route){ .id = 2, .name = bad[i] };
		input(&in, r, 2);
		in.nhosts = 0;
		ck_assert_int_eq(snapb_build(&in, &fd, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, "bad or too long name") != NULL, "%s: %s", bad[i], err);
	}
	ck_assert(snapprefix_name_ok("example.com/api"));
	ck_assert(snapprefix_name_ok("example.com"));
}
END_TEST

static void
fix_crc(uint8_t *img, size_t size)
{
	struct snap_header *h = (struct snap_header *)img;

	h->crc32c = 0;
	h->crc32c = hash_crc32c(0, img, size);
}

/* The image's section of kind k. */
static void *
section(uint8_t *img, uint32_t k)
{
	struct snap_header *h = (struct snap_header *)img;
	struct snap_section *t = (struct snap_section *)(img + h->section_table_off);
	uint32_t i;

	for (i = 0; i < h->nsections; i++)
		if (t[i].kind == k)
			return img + t[i].offset;
	ck_abort_msg("no section %u", k);
	return NULL;
}

/* One damage of the fixture image and the reason the reader must give. */
static void
damaged(int which, const char *want)
{
	struct snapb_input in;
	struct snap_prefix *p, tmp;
	struct snap_route *r;
	char err[256] = "";
	uint8_t *img;
	size_t size;

	input(&in, fx_routes, 6);
	img = image(&in, &size);
	p = section(img, SNAP_SEC_PREFIXES);
	r = section(img, SNAP_SEC_ROUTES);
	switch (which) {
	case 0: tmp = p[0]; p[0] = p[1]; p[1] = tmp; break;
	case 1: r[0].pfx_count = 4; break;
	case 2: r[0].pfx_count = PATHPREFIX_PER_ROUTE_MAX + 1; break;
	case 3: p[1].parent = 5; break;
	case 4: p[1].route = 0; break;
	case 5: p[2].path.len += 1; break;
	case 6: r[5].pfx_first = 1; break;
	case 7: r[1].pfx_first = 0; r[1].pfx_count = 1; break;
	case 8: p[0].path.off -= 1; p[0].path.len += 1; break;	/* "m/api/v2" */
	}
	fix_crc(img, size);
	ck_assert_int_eq(snap_validate(img, size, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want) != NULL, "damage %d: '%s' lacks '%s'", which, err, want);
	free(img);
}

START_TEST(reader_refuses_damage)
{
	damaged(0, "prefix 1: not longest first");
	damaged(1, "route 0: prefixes 0+4 out of range");
	damaged(2, "route 0: prefixes 0+65 out of range");
	damaged(3, "prefix 1: route");
	damaged(4, "prefix 1: route 0 or parent 0 wrong");
	damaged(5, "prefix 2: bad path");
	damaged(6, "route 5: prefixes 1+0 out of range");
	/* A prefix route with prefixes of its own: nesting is refused. */
	damaged(7, "prefix 2: bad path or nested prefix route");
	damaged(8, "prefix 0: bad path");
}
END_TEST

Suite *
suite_snapprefix(void)
{
	Suite *s = suite_create("snapprefix");
	TCase *tc = tcase_create("prefixes");

	tcase_add_test(tc, longest_prefix_wins);
	tcase_add_test(tc, prefix_entries);
	tcase_add_test(tc, plan_order_and_bound);
	tcase_add_test(tc, plan_parents_sorted_or_not);
	tcase_add_test(tc, builder_refuses_bad_names);
	tcase_add_test(tc, reader_refuses_damage);
	suite_add_tcase(s, tc);
	return s;
}
