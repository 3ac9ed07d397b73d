/* Unit tests for agent/bytequeue.c: the agent's capped byte queues. */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/bytequeue.h"
#include "tests/unit/suites.h"

START_TEST(add_consume_cap)
{
	struct bytequeue q = { 0 };
	char big[10000];

	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(bytequeue_add(&q, "hello", 5, 16), 0);
	ck_assert_int_eq(bytequeue_add(&q, big, 12, 16), -1);	/* over the cap: nothing added */
	ck_assert_uint_eq(q.len, 5);
	bytequeue_consume(&q, 2);
	ck_assert_int_eq(memcmp(bytequeue_head(&q), "llo", 3), 0);
	ck_assert_int_eq(bytequeue_add(&q, big, sizeof(big), 1 << 20), 0);
	ck_assert_uint_eq(q.len, 3 + sizeof(big));
	ck_assert_int_eq(memcmp(bytequeue_head(&q), "llox", 4), 0);
	bytequeue_consume(&q, q.len + 10);
	ck_assert_uint_eq(q.len, 0);
	ck_assert_int_eq(bytequeue_add(&q, NULL, 0, 0), 0);
	bytequeue_free(&q);
	ck_assert_ptr_null(q.p);
}
END_TEST

START_TEST(write_fd)
{
	struct bytequeue q = { 0 };
	int sv[2];
	char b[16];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(bytequeue_add(&q, "abcdef", 6, 64), 0);
	ck_assert_int_eq(bytequeue_write_fd(&q, sv[0]), 6);
	ck_assert_uint_eq(q.len, 0);
	ck_assert_int_eq(read(sv[1], b, sizeof(b)), 6);
	ck_assert_int_eq(memcmp(b, "abcdef", 6), 0);
	close(sv[1]);
	ck_assert_int_eq(bytequeue_add(&q, "x", 1, 64), 0);
	ck_assert_int_eq(bytequeue_write_fd(&q, sv[0]), -1);	/* EPIPE, no signal */
	close(sv[0]);
	bytequeue_free(&q);
}
END_TEST

Suite *
suite_bytequeue(void)
{
	Suite *s = suite_create("bytequeue");
	TCase *tc = tcase_create("bytequeue");

	tcase_add_test(tc, add_consume_cap);
	tcase_add_test(tc, write_fd);
	suite_add_tcase(s, tc);
	return s;
}
