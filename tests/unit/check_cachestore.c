/*
 * Unit tests for worker/cachestore.c on a real LMDB environment in a
 * temporary folder: put/get/replace, the byte budget evicting the least
 * recently used first (a touch keeps an entry), delete of one key and of
 * a prefix, the totals, reopening keeps everything, a second environment
 * handle (another worker) sees the first one's writes, and the fill lock
 * (held, refused, expired and taken over, released).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/suites.h"
#include "worker/cachestore.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check-cachestore-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", dir);
	unlink(p);
	rmdir(dir);
}

static int
has(struct cachestore *cs, const char *key, const char *want)
{
	char *v = NULL;
	size_t n = 0;
	int64_t at;
	int rc = cachestore_get(cs, key, strlen(key), &v, &n, &at), ok;

	if (rc != 1)
		return 0;
	ok = want == NULL || (n == strlen(want) && memcmp(v, want, n) == 0);
	free(v);
	return ok;
}

START_TEST(put_get_replace_reopen)
{
	struct cachestore *cs = cachestore_open(dir, CACHESTORE_MIN_SIZE), *other;
	uint64_t n, bytes;

	ck_assert_ptr_nonnull(cs);
	ck_assert(!has(cs, "http://a/x", NULL));
	ck_assert_int_eq(cachestore_put(cs, "http://a/x", 10, "one", 3, 100), 0);
	ck_assert(has(cs, "http://a/x", "one"));
	ck_assert_int_eq(cachestore_put(cs, "http://a/x", 10, "three", 5, 101), 0);
	ck_assert(has(cs, "http://a/x", "three"));
	ck_assert_int_eq(cachestore_stats(cs, &n, &bytes), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(bytes, 5);
	/* Another worker's handle on the same folder. */
	other = cachestore_open(dir, CACHESTORE_MIN_SIZE);
	ck_assert_ptr_nonnull(other);
	ck_assert(has(other, "http://a/x", "three"));
	ck_assert_int_eq(cachestore_put(other, "http://a/y", 10, "why", 3, 102), 0);
	ck_assert(has(cs, "http://a/y", "why"));
	cachestore_close(other);
	cachestore_close(cs);
	cs = cachestore_open(dir, CACHESTORE_MIN_SIZE);
	ck_assert(has(cs, "http://a/x", "three") && has(cs, "http://a/y", "why"));
	/* A value over the budget is refused. */
	ck_assert_int_eq(cachestore_put(cs, "k", 1, "x", CACHESTORE_MIN_SIZE + 1, 1), -1);
	cachestore_close(cs);
}
END_TEST

START_TEST(lru_eviction)
{
	struct cachestore *cs = cachestore_open(dir, CACHESTORE_MIN_SIZE);
	size_t sz = CACHESTORE_MIN_SIZE / 4;
	char *v = calloc(1, sz), key[8];
	uint64_t n, bytes;
	int i;

	ck_assert_ptr_nonnull(cs);
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_int_eq(cachestore_put(cs, key, 2, v, sz, 1000 + i), 0);
	}
	/* k0 was used late: k1 is the oldest now. */
	ck_assert_int_eq(cachestore_touch(cs, "k0", 2, 1000, 1000 + CACHESTORE_TOUCH_S + 5), 0);
	ck_assert_int_eq(cachestore_put(cs, "k3", 2, v, sz, 1010), 0);
	ck_assert_int_eq(cachestore_put(cs, "k4", 2, v, sz, 1011), 0);
	ck_assert(has(cs, "k0", NULL));
	ck_assert(!has(cs, "k1", NULL));
	ck_assert(has(cs, "k3", NULL) && has(cs, "k4", NULL));
	ck_assert_int_eq(cachestore_stats(cs, &n, &bytes), 0);
	ck_assert_uint_le(bytes, CACHESTORE_MIN_SIZE);
	ck_assert_uint_eq(bytes, n * sz);
	free(v);
	cachestore_close(cs);
}
END_TEST

struct evicted {
	int n, nulls;
	char first[CACHESTORE_EVICT_HEAD + 1];
};

static void
on_evict(void *arg, const void *head, size_t len)
{
	struct evicted *e = arg;

	if (head == NULL)
		e->nulls++;
	else if (e->n == 0)
		memcpy(e->first, head, len);
	e->n++;
}

/* Evictions are told after the store's commit, with each value's head, once. */
START_TEST(eviction_reported)
{
	struct cachestore *cs = cachestore_open(dir, CACHESTORE_MIN_SIZE);
	size_t sz = CACHESTORE_MIN_SIZE / 4;
	char *v = calloc(1, 2 * sz), key[8];
	struct evicted e = { 0, 0, "" };
	int i;

	ck_assert_ptr_nonnull(cs);
	cachestore_on_evict(cs, on_evict, &e);
	for (i = 0; i < 4; i++) {	/* the budget, exactly */
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(v, sz, "value of k%d", i);
		ck_assert_int_eq(cachestore_put(cs, key, 2, v, sz, 1000 + i), 0);
	}
	ck_assert_int_eq(e.n, 0);
	ck_assert_int_eq(cachestore_put(cs, "k4", 2, v, sz, 1010), 0);
	ck_assert_int_eq(e.n, 1);
	ck_assert_int_eq(e.nulls, 0);
	ck_assert_str_eq(e.first, "value of k0");
	/* A value larger than half the budget evicts two more. */
	ck_assert_int_eq(cachestore_put(cs, "big", 3, v, sz * 2, 1011), 0);
	ck_assert_int_eq(e.n, 3);
	/* A replacement evicts nothing of its own key. */
	ck_assert_int_eq(cachestore_put(cs, "big", 3, v, sz * 2, 1012), 0);
	ck_assert_int_eq(e.n, 3);
	free(v);
	cachestore_close(cs);
}
END_TEST

/* A value in place: readable until released, also after it is replaced; the checked memo. */
START_TEST(get_ref_and_checked)
{
	struct cachestore *cs = cachestore_open(dir, CACHESTORE_MIN_SIZE);
	struct cachestore_ref *ref, *ref2;
	const char *v, *v2;
	size_t n, n2;
	int64_t at;

	ck_assert_ptr_nonnull(cs);
	ck_assert_int_eq(cachestore_get_ref(cs, "nope", 4, &v, &n, &at, &ref), 0);
	ck_assert_ptr_null(ref);
	ck_assert_int_eq(cachestore_put(cs, "k", 1, "first value", 11, 1000), 0);
	ck_assert_int_eq(cachestore_get_ref(cs, "k", 1, &v, &n, &at, &ref), 1);
	ck_assert_int_eq(at, 1000);
	/* Replaced while held: the holder still reads its snapshot, a new reader the new one. */
	ck_assert_int_eq(cachestore_put(cs, "k", 1, "second value", 12, 1001), 0);
	ck_assert_int_eq(cachestore_get_ref(cs, "k", 1, &v2, &n2, &at, &ref2), 1);
	ck_assert_int_eq((int)n, 11);
	ck_assert_int_eq(memcmp(v, "first value", 11), 0);
	ck_assert_int_eq((int)n2, 12);
	ck_assert_int_eq(memcmp(v2, "second value", 12), 0);
	ck_assert(!cachestore_checked(cs, v2, n2, 7));
	cachestore_set_checked(cs, v2, n2, 7);
	ck_assert(cachestore_checked(cs, v2, n2, 7));
	ck_assert(!cachestore_checked(cs, v2, n2, 8));	/* another checksum: checked again */
	ck_assert(!cachestore_checked(cs, v2, n2 - 1, 7));
	cachestore_release(ref);
	cachestore_release(ref2);
	cachestore_release(NULL);
	cachestore_close(cs);
}
END_TEST

START_TEST(delete_key_and_prefix)
{
	struct cachestore *cs = cachestore_open(dir, CACHESTORE_MIN_SIZE);
	uint64_t n, bytes;

	ck_assert_ptr_nonnull(cs);
	cachestore_put(cs, "http://a/p", 10, "1", 1, 1);
	cachestore_put(cs, "http://a/p\nx", 12, "2", 1, 1);
	cachestore_put(cs, "http://a/p\ny", 12, "3", 1, 1);
	cachestore_put(cs, "http://a/pq", 11, "4", 1, 1);
	ck_assert_int_eq(cachestore_del(cs, "http://a/p\n", 11, 1), 2);
	ck_assert(has(cs, "http://a/p", "1") && has(cs, "http://a/pq", "4"));
	ck_assert_int_eq(cachestore_del(cs, "http://a/p", 10, 0), 1);
	ck_assert_int_eq(cachestore_del(cs, "http://a/p", 10, 0), 0);
	ck_assert(!has(cs, "http://a/p", NULL) && has(cs, "http://a/pq", "4"));
	ck_assert_int_eq(cachestore_stats(cs, &n, &bytes), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(bytes, 1);
	cachestore_close(cs);
}
END_TEST

START_TEST(fill_lock)
{
	struct cachestore *cs = cachestore_open(dir, CACHESTORE_MIN_SIZE);
	struct cachestore *other = cachestore_open(dir, CACHESTORE_MIN_SIZE);

	ck_assert_ptr_nonnull(cs);
	ck_assert_ptr_nonnull(other);
	ck_assert_int_eq(cachestore_locked(other, "k", 1, 1000), 0);
	ck_assert_int_eq(cachestore_lock(cs, "k", 1, 1000, 500), 1);
	ck_assert_int_eq(cachestore_locked(other, "k", 1, 1200), 1);
	ck_assert_int_eq(cachestore_lock(other, "k", 1, 1200, 500), 0);
	/* Expired (its holder died): taken over. */
	ck_assert_int_eq(cachestore_locked(other, "k", 1, 1600), 0);
	ck_assert_int_eq(cachestore_lock(other, "k", 1, 1600, 500), 1);
	cachestore_unlock(other, "k", 1);
	ck_assert_int_eq(cachestore_locked(cs, "k", 1, 1700), 0);
	/* A lock is no entry. */
	ck_assert(!has(cs, "k", NULL));
	cachestore_close(other);
	cachestore_close(cs);
}
END_TEST

Suite *
suite_cachestore(void)
{
	Suite *s = suite_create("cachestore");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, put_get_replace_reopen);
	tcase_add_test(tc, lru_eviction);
	tcase_add_test(tc, eviction_reported);
	tcase_add_test(tc, get_ref_and_checked);
	tcase_add_test(tc, delete_key_and_prefix);
	tcase_add_test(tc, fill_lock);
	suite_add_tcase(s, tc);
	return s;
}
