/*
 * Unit tests for share/snapset.c: sets of shard images put together from a
 * previous set and the images a generation changed, lookups that follow a
 * host to its route in another image, dense walks and backend indexes, and
 * the reader's check that a string belongs to its image's shard.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/snapbuild.h"
#include "share/hash.h"
#include "share/snap.h"
#include "tests/unit/suites.h"

#define NS 4

/* A name "PREFIX-N.test" that falls in shard k of NS. */
static void
name_in(char *buf, size_t len, const char *prefix, uint32_t k)
{
	unsigned n;

	for (n = 0;; n++) {
		snprintf(buf, len, "%s-%u.test", prefix, n);
		if (snap_shard_of(buf, strlen(buf), NS) == k)
			return;
	}
}

/*
 * Image k of NS: route "r-N.test" of k (id 100 + k + 10 * version) with one
 * backend of port 1000 + k, and, when alias_to is set, alias "al-N.test" of
 * shard k whose route is alias_to, another image's.
 */
static int
image(uint32_t k, uint32_t version, const char *alias_to)
{
	char rname[64], aname[64], err[256];
	struct snapb_route r = { .id = 100 + k + 10 * version, .name = rname, .be_count = 1 };
	struct snapb_backend be = { .id = 500 + k, .family = AF_INET, .port = (uint16_t)(1000 + k),
	    .addr = { 127, 0, 0, 1 } };
	struct snapb_host h[2] = {
		{ 1 + k, rname, 0, SNAP_HOST_EXACT, NULL },
		{ 50 + k, aname, SNAP_NONE, SNAP_HOST_ALIAS, alias_to },
	};
	struct snapb_input in = { .routes = &r, .nroutes = 1, .hosts = h,
	    .nhosts = alias_to != NULL ? 2 : 1, .backends = &be, .nbackends = 1,
	    .default_route = SNAP_NONE, .generation = 1 + version, .shard = (uint16_t)k,
	    .nshards = NS };
	int fd;

	name_in(rname, sizeof(rname), "r", k);
	name_in(aname, sizeof(aname), "al", k);
	ck_assert_msg(snapb_build(&in, &fd, err, sizeof(err)) == 0, "%s", err);
	return fd;
}

static struct snap *
set_of(const struct snap *prev, const uint32_t *shards, size_t n, uint32_t version,
    const char *alias_to, uint64_t gen)
{
	char err[256];
	struct snap *s = snap_set_new(prev, err, sizeof(err));
	size_t i;
	int fd;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < n; i++) {
		fd = image(shards[i], version, alias_to);
		ck_assert_msg(snap_set_add(s, fd, err, sizeof(err)) == 0, "%s", err);
		close(fd);
	}
	ck_assert_msg(snap_set_finish(s, gen, err, sizeof(err)) == 0, "%s", err);
	return s;
}

static uint32_t
route_id(const struct snap *s, const char *name)
{
	const struct snap_route *r = snap_lookup(s, name, strlen(name));

	return r != NULL ? r->id : 0;
}

START_TEST(set_needs_every_shard)
{
	char err[256];
	struct snap *s = snap_set_new(NULL, err, sizeof(err));
	uint32_t k;
	int fd;

	ck_assert_int_eq(snap_set_finish(s, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "no image");
	for (k = 0; k + 1 < NS; k++) {
		fd = image(k, 0, NULL);
		ck_assert_int_eq(snap_set_add(s, fd, err, sizeof(err)), 0);
		close(fd);
	}
	ck_assert_int_eq(snap_set_finish(s, 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "shard 3 of 4 missing") != NULL, "%s", err);
	snap_unref(s);
	/* An image of several shards is not a whole set on its own. */
	fd = image(1, 0, NULL);
	ck_assert_int_eq(snap_map(fd, &s, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "4 shards alone") != NULL, "%s", err);
	close(fd);
}
END_TEST

START_TEST(changed_images_replace_the_others_stay)
{
	static const uint32_t all[NS] = { 0, 1, 2, 3 }, two[1] = { 2 };
	struct snap *a = set_of(NULL, all, NS, 0, NULL, 1), *b;
	char name[64];
	uint32_t k;

	b = set_of(a, two, 1, 1, NULL, 2);
	ck_assert_uint_eq(snap_generation(a), 1);
	ck_assert_uint_eq(snap_generation(b), 2);
	for (k = 0; k < NS; k++) {
		name_in(name, sizeof(name), "r", k);
		ck_assert_uint_eq(route_id(a, name), 100 + k);
		ck_assert_uint_eq(route_id(b, name), k == 2 ? 112 : 100 + k);
	}
	/* The old set keeps its own image of shard 2 while a request holds it. */
	snap_unref(b);
	name_in(name, sizeof(name), "r", 2);
	ck_assert_uint_eq(route_id(a, name), 102);
	snap_unref(a);
}
END_TEST

START_TEST(hosts_of_another_image_lead_to_their_route)
{
	static const uint32_t all[NS] = { 0, 1, 2, 3 };
	char target[64], alias[64];
	struct snap *s;

	name_in(target, sizeof(target), "r", 3);
	s = set_of(NULL, all, NS, 0, target, 1);
	name_in(alias, sizeof(alias), "al", 1);
	ck_assert_uint_eq(route_id(s, alias), 103);
	ck_assert_uint_eq(snap_lookup_host(s, alias, strlen(alias))->id, 51);
	ck_assert_uint_eq(snap_route_backend(s, snap_lookup(s, alias, strlen(alias)), 0)->port,
	    1003);
	snap_unref(s);
	/* A target no image has (never built so): no route, not a crash. */
	s = set_of(NULL, all, NS, 0, "nowhere.test", 1);
	ck_assert_ptr_nonnull(snap_lookup_host(s, alias, strlen(alias)));
	ck_assert_ptr_null(snap_lookup(s, alias, strlen(alias)));
	snap_unref(s);
}
END_TEST

START_TEST(walks_and_backend_indexes_are_dense)
{
	static const uint32_t all[NS] = { 0, 1, 2, 3 };
	struct snap *s = set_of(NULL, all, NS, 0, NULL, 1);
	uint32_t i, seen = 0;

	ck_assert_uint_eq(snap_route_count(s), NS);
	ck_assert_uint_eq(snap_backend_count(s), NS);
	for (i = 0; i < NS; i++) {
		seen |= 1u << (snap_route_at(s, i)->id - 100);
		ck_assert_uint_eq(snap_backend_index(s, snap_backend_at(s, i)), i);
		ck_assert_str_eq(snap_string(s, snap_route_at(s, i)->name),
		    snap_string(s, snap_route_at(s, i)->name));
	}
	ck_assert_uint_eq(seen, (1u << NS) - 1);
	snap_unref(s);
}
END_TEST

/* Each string offset names its image's shard: an image that claims another shard is refused. */
START_TEST(strings_belong_to_their_shard)
{
	struct snap_header h;
	char err[256];
	uint8_t *p;
	off_t size;
	int fd = image(1, 0, NULL);

	size = lseek(fd, 0, SEEK_END);
	ck_assert_ptr_nonnull(p = aligned_alloc(8, ((size_t)size + 7) & ~(size_t)7));
	ck_assert_int_eq(pread(fd, p, (size_t)size, 0), size);
	ck_assert_int_eq(snap_validate(p, (size_t)size, err, sizeof(err)), 0);
	memcpy(&h, p, sizeof(h));
	h.shard = 2;
	h.crc32c = 0;
	memcpy(p, &h, sizeof(h));
	h.crc32c = hash_crc32c(0, p, (size_t)size);
	memcpy(p, &h, sizeof(h));
	ck_assert_int_eq(snap_validate(p, (size_t)size, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "string") != NULL, "%s", err);
	free(p);
	close(fd);
}
END_TEST

Suite *
suite_snapset(void)
{
	Suite *s = suite_create("snapset");
	TCase *tc = tcase_create("sets");

	tcase_add_test(tc, set_needs_every_shard);
	tcase_add_test(tc, changed_images_replace_the_others_stay);
	tcase_add_test(tc, hosts_of_another_image_lead_to_their_route);
	tcase_add_test(tc, walks_and_backend_indexes_are_dense);
	tcase_add_test(tc, strings_belong_to_their_shard);
	suite_add_tcase(s, tc);
	return s;
}
