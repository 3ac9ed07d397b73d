/*
 * Data-path buffers (worker/buf.c): the free list's bounds and trimming,
 * the bounded appends the HTTP/1.1 encoder is written with, and the one
 * sendmsg of buffered bytes plus a caller's (buf_writev_fd).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* Reads what the peer has until n bytes came; their count. */
static size_t
drain(int fd, char *out, size_t n)
{
	size_t got = 0;
	ssize_t k;

	while (got < n && (k = read(fd, out + got, n - got)) > 0)
		got += (size_t)k;
	return got;
}

START_TEST(writev_sends_buffered_bytes_first)
{
	struct buf_pool p = { .size = BUF_SIZE };
	struct buf b = { 0 };
	static char big[1 << 20], back[1 << 20];
	char got[16];
	size_t sent = 0, i;
	ssize_t k;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(buf_get(&p, &b), 0);
	/* Buffered head, then the caller's bytes: one write, in that order. */
	buf_append(&b, "head:", 5);
	ck_assert_int_eq(buf_writev_fd(&b, sv[0], "body", 4), 4);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(drain(sv[1], got, 9), 9);
	ck_assert_int_eq(memcmp(got, "head:body", 9), 0);
	/* A full socket takes part: the count is of the caller's bytes only. */
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	buf_append(&b, "xy", 2);
	k = buf_writev_fd(&b, sv[0], big, sizeof(big));
	ck_assert_int_gt(k, 0);
	ck_assert_int_lt(k, (ssize_t)sizeof(big));
	ck_assert_uint_eq(b.len, 0);
	sent = (size_t)k;
	/* Full: nothing goes, and EAGAIN says why. */
	buf_append(&b, "z", 1);
	ck_assert_int_eq(buf_writev_fd(&b, sv[0], big + sent, sizeof(big) - sent), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(b.len, 1);
	ck_assert_uint_eq(drain(sv[1], back, 2 + sent), 2 + sent);
	ck_assert_int_eq(memcmp(back, "xy", 2), 0);
	ck_assert_int_eq(memcmp(back + 2, big, sent), 0);
	close(sv[0]);
	close(sv[1]);
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
	tcase_add_test(tc, writev_sends_buffered_bytes_first);
	suite_add_tcase(s, tc);
	return s;
}
