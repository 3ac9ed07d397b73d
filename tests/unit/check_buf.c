/*
 * Data-path buffers (worker/buf.c): the free list's bounds and trimming,
 * and the bounded appends the HTTP/1.1 encoder is written with.
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "tests/unit/suites.h"
#include "worker/buf.h"

START_TEST(pool_keeps_at_most_keep_and_trims_by_halves)
{
	struct buf_pool p = { .size = 64 };
	void *blocks[BUF_POOL_KEEP + 10];
	size_t i;

	for (i = 0; i < BUF_POOL_KEEP + 10; i++)
		ck_assert_ptr_nonnull(blocks[i] = pool_alloc(&p));
	for (i = 0; i < BUF_POOL_KEEP + 10; i++)
		pool_free(&p, blocks[i]);
	ck_assert_uint_eq(p.nfree, BUF_POOL_KEEP);
	buf_pool_trim(&p);
	ck_assert_uint_eq(p.nfree, BUF_POOL_KEEP / 2);
	for (i = 0; i < 10; i++)
		buf_pool_trim(&p);
	ck_assert_uint_eq(p.nfree, BUF_POOL_IDLE);
	/* What is kept is still handed out. */
	ck_assert_ptr_nonnull(blocks[0] = pool_alloc(&p));
	ck_assert_uint_eq(p.nfree, BUF_POOL_IDLE - 1);
	pool_free(&p, blocks[0]);
	buf_pool_clear(&p);
	ck_assert_uint_eq(p.nfree, 0);
}
END_TEST

START_TEST(add_is_bounded_and_numbers_are_exact)
{
	struct buf_pool p = { .size = BUF_SIZE };
	struct buf b = { 0 };

	ck_assert_int_eq(buf_get(&p, &b), 0);
	ck_assert_int_eq(buf_add_num(&b, 0, 10), 0);
	ck_assert_int_eq(buf_add(&b, " ", 1), 0);
	ck_assert_int_eq(buf_add_num(&b, 18446744073709551615ull, 10), 0);
	ck_assert_int_eq(buf_add(&b, " ", 1), 0);
	ck_assert_int_eq(buf_add_num(&b, 0x1f40, 16), 0);
	ck_assert_uint_eq(b.len, strlen("0 18446744073709551615 1f40"));
	ck_assert_int_eq(memcmp(buf_head(&b), "0 18446744073709551615 1f40", b.len), 0);
	/* Three bytes of room: a four-digit number is refused whole. */
	b.len = BUF_SIZE - 3;
	ck_assert_int_eq(buf_add_num(&b, 1234, 10), -1);
	ck_assert_uint_eq(b.len, BUF_SIZE - 3);
	ck_assert_int_eq(buf_add(&b, "abcd", 4), -1);
	ck_assert_int_eq(buf_add(&b, "abc", 3), 0);
	ck_assert_uint_eq(buf_room(&b), 0);
	buf_put(&p, &b);
	buf_pool_clear(&p);
}
END_TEST

Suite *
suite_buf(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("buf");

	tcase_add_test(tc, pool_keeps_at_most_keep_and_trims_by_halves);
	tcase_add_test(tc, add_is_bounded_and_numbers_are_exact);
	suite_add_tcase(s, tc);
	return s;
}
