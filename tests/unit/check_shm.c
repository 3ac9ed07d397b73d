/*
 * Unit tests of the shared region (share/shm.c): its layout and sizes, the
 * refusal of regions whose header or sections lie about their sizes, the
 * per-route table (insertion, lookup, "other" once full) and the counting
 * of one request.
 */
#include "config.h"

#include <sys/mman.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "share/shm.h"
#include "tests/unit/suites.h"

#define REGION (2u << 20)

START_TEST(test_create_and_map)
{
	struct shm a, b;
	char err[256];
	int fd = shm_create(REGION, 4, &a, err, sizeof(err));

	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_uint_eq(a.nslots, 4);
	ck_assert_uint_eq((uintptr_t)a.slots % SHM_ALIGN, 0);
	ck_assert_int_eq(shm_map(fd, &b, err, sizeof(err)), 0);
	/* Two mappings of one memfd: what one writes, the other reads. */
	shm_add(&a.slots[3].retries, 5);
	ck_assert_uint_eq(shm_get(&b.slots[3].retries), 5);
	ck_assert_int_eq((char *)b.master - (char *)b.base, (char *)a.master - (char *)a.base);
	ck_assert_uint_le(shm_needed(4), REGION);
	ck_assert_uint_le(((struct shm_header *)(void *)a.base)->free_off, REGION);
	shm_unmap(&a);
	shm_unmap(&b);
	close(fd);
}
END_TEST

START_TEST(test_create_bounds)
{
	struct shm a;
	char err[256];

	ck_assert_int_eq(shm_create(SHM_SIZE_MIN - 1, 1, &a, err, sizeof(err)), -1);
	ck_assert_int_eq(shm_create(REGION, 0, &a, err, sizeof(err)), -1);
	ck_assert_int_eq(shm_create(REGION, SHM_WORKERS_MAX + 1, &a, err, sizeof(err)), -1);
	/* 256 workers' slots do not fit 1 MiB: refused, not overflowed. */
	ck_assert_int_eq(shm_create(SHM_SIZE_MIN, SHM_WORKERS_MAX, &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot hold"));
	/* The default holds the most workers conf.c allows. */
	ck_assert_uint_le(shm_needed(SHM_WORKERS_MAX), SHM_SIZE_DEFAULT);
}
END_TEST

/* Each damage to a good image must be refused by shm_validate. */
START_TEST(test_validate_refuses)
{
	struct shm a;
	char err[256];
	int fd = shm_create(REGION, 2, &a, err, sizeof(err));
	uint8_t *copy = malloc(REGION);
	struct shm_header *h = (struct shm_header *)(void *)copy;
	struct shm_section *t = (struct shm_section *)(void *)(copy + 128);
	int i;

	ck_assert_int_ge(fd, 0);
	ck_assert_ptr_nonnull(copy);
	for (i = 0; i < 14; i++) {
		memcpy(copy, a.base, REGION);
		ck_assert_int_eq(shm_validate(copy, REGION, err, sizeof(err)), 0);
		switch (i) {
		case 0: h->magic[0] ^= 1; break;
		case 1: h->major++; break;
		case 2: h->size = REGION * 2; break;
		case 3: h->nworkers = 100000; break;		/* slots past the end */
		case 4: h->nsections = SHM_SECTIONS_MAX + 1; break;
		case 5: t[1].count = 3; break;			/* more slots than workers */
		case 6: t[1].entry_size = 64; break;
		case 7: t[0].offset += 64; break;
		case 8: t[1].kind = 99; break;			/* the slots missing */
		case 9: t[2].count++; break;			/* clients past the end */
		case 10: t[2].entry_size = 24; break;		/* no room for the counts */
		case 11: t[2].kind = 99; break;			/* the client table missing */
		case 12: t[3].kind = 99; break;			/* the backend table missing */
		case 13: t[3].count++; break;			/* more backends than the layout */
		}
		ck_assert_int_eq(shm_validate(copy, REGION, err, sizeof(err)), -1);
	}
	/* A smaller buffer than the header claims. */
	ck_assert_int_eq(shm_validate(a.base, REGION - 4096, err, sizeof(err)), -1);
	/* An unknown section kind is skipped: room for later minors. */
	memcpy(copy, a.base, REGION);
	t[4] = (struct shm_section){ 7, 0, 1, 1, 1 << 20, 4096 };
	h->nsections = 5;
	ck_assert_int_eq(shm_validate(copy, REGION, err, sizeof(err)), 0);
	free(copy);
	shm_unmap(&a);
	close(fd);
}
END_TEST

START_TEST(test_map_refuses_small_fd)
{
	struct shm a;
	char err[256];
	int fd = memfd_create("not-a-region", MFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	ck_assert_int_eq(shm_map(fd, &a, err, sizeof(err)), -1);
	ck_assert_int_eq(ftruncate(fd, REGION), 0);	/* right size, all zeros */
	ck_assert_int_eq(shm_map(fd, &a, err, sizeof(err)), -1);
	close(fd);
}
END_TEST

START_TEST(test_route_table)
{
	struct shm_wslot *s = aligned_alloc(SHM_ALIGN, sizeof(*s));
	uint32_t id;

	ck_assert_ptr_nonnull(s);
	memset(s, 0, sizeof(*s));
	for (id = 1; id <= SHM_ROUTES_MAX; id++)
		shm_add(&shm_route(s, id)->requests[SHM_HTTP11][2], id);
	for (id = 1; id <= SHM_ROUTES_MAX; id++) {
		struct shm_route_ctr *r = shm_route(s, id);
		ck_assert_uint_eq(r->route_id, id);
		ck_assert_uint_eq(r->requests[SHM_HTTP11][2], id);
	}
	/* Full: a new route counts under "other", the known ones stay found. */
	ck_assert_ptr_eq(shm_route(s, 1000), &s->other);
	ck_assert_uint_eq(shm_route(s, 77)->route_id, 77);
	free(s);
}
END_TEST

/* The cache's own smaller table: route 0 apart, full goes to "other". */
START_TEST(test_cache_table)
{
	struct shm_wslot *s = aligned_alloc(SHM_ALIGN, sizeof(*s));
	uint32_t id;

	ck_assert_ptr_nonnull(s);
	memset(s, 0, sizeof(*s));
	ck_assert_ptr_eq(shm_cache_route(s, 0), &s->cache_noroute);
	for (id = 1; id <= SHM_CACHE_ROUTES; id++)
		shm_add(&shm_cache_route(s, id * 7)->n[SHM_CACHE_HIT], id);
	for (id = 1; id <= SHM_CACHE_ROUTES; id++) {
		struct shm_cache_ctr *c = shm_cache_route(s, id * 7);
		ck_assert_uint_eq(c->route_id, id * 7);
		ck_assert_uint_eq(c->n[SHM_CACHE_HIT], id);
	}
	ck_assert_ptr_eq(shm_cache_route(s, 1000), &s->cache_other);
	ck_assert_uint_eq(shm_cache_route(s, 35)->route_id, 35);
	free(s);
}
END_TEST

START_TEST(test_count_request)
{
	struct shm_wslot *s = aligned_alloc(SHM_ALIGN, sizeof(*s));

	ck_assert_ptr_nonnull(s);
	memset(s, 0, sizeof(*s));
	shm_count_request(s, 7, SHM_HTTP2, 204, 3000, 10, 20);	/* 3 ms: first bucket */
	shm_count_request(s, 7, SHM_HTTP2, 503, 7000000, 0, 5);	/* 7 s: the 10 s bucket */
	shm_count_request(s, 0, SHM_HTTP10, 404, 20000000, 0, 0);	/* past every bound */
	shm_count_request(s, 7, SHM_HTTP11, 99, 5000, 0, 0);	/* exactly 5 ms: le 0.005 */
	ck_assert_uint_eq(s->requests[SHM_HTTP2][2], 1);
	ck_assert_uint_eq(s->requests[SHM_HTTP2][5], 1);
	ck_assert_uint_eq(s->requests[SHM_HTTP10][4], 1);
	ck_assert_uint_eq(s->requests[SHM_HTTP11][0], 1);
	ck_assert_uint_eq(shm_route(s, 7)->requests[SHM_HTTP2][2], 1);
	ck_assert_uint_eq(s->noroute.requests[SHM_HTTP10][4], 1);
	ck_assert_uint_eq(s->duration[0], 2);
	ck_assert_uint_eq(s->duration[SHM_DURATION_BUCKETS - 1], 1);
	ck_assert_uint_eq(s->duration[SHM_DURATION_BUCKETS], 1);
	ck_assert_uint_eq(s->duration_us, 27008000);
	ck_assert_uint_eq(s->bytes_in, 10);
	ck_assert_uint_eq(s->bytes_out, 25);
	ck_assert_uint_eq(shm_status_class(600), 0);
	ck_assert_uint_eq(shm_status_class(100), 1);
	free(s);
}
END_TEST

Suite *
suite_shm(void)
{
	Suite *s = suite_create("shm");
	TCase *tc = tcase_create("shm");

	tcase_add_test(tc, test_create_and_map);
	tcase_add_test(tc, test_create_bounds);
	tcase_add_test(tc, test_validate_refuses);
	tcase_add_test(tc, test_map_refuses_small_fd);
	tcase_add_test(tc, test_cache_table);
	tcase_add_test(tc, test_route_table);
	tcase_add_test(tc, test_count_request);
	suite_add_tcase(s, tc);
	return s;
}
