/*
 * The HTTP/2 sessions' allocator (worker/h2mem.c): large blocks page
 * aligned mappings (the heap past the slots), the frame buffer recognised at session creation, trimming that
 * drops the frame buffer's bytes and only the all-zero pages of the rest,
 * and a real nghttp2 session running on it.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/suites.h"
#include "worker/h2mem.h"

static size_t
page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

START_TEST(large_blocks_aligned_small_ones_not_tracked)
{
	struct h2mem m;
	void *small, *big, *z;

	h2mem_init(&m);
	ck_assert_ptr_eq(m.mem.mem_user_data, &m);
	small = m.mem.malloc(100, &m);
	big = m.mem.malloc(page() * 2, &m);
	z = m.mem.calloc(page(), 1, &m);
	ck_assert_ptr_nonnull(small);
	ck_assert_uint_eq((uintptr_t)big % page(), 0);
	ck_assert_uint_eq((uintptr_t)z % page(), 0);
	ck_assert_uint_eq(((unsigned char *)z)[page() - 1], 0);
	ck_assert_ptr_null(m.frame);	/* not made while a session was being created */
	ck_assert_ptr_null(m.mem.calloc(SIZE_MAX / 2, 4, &m));
	m.mem.free(small, &m);
	m.mem.free(big, &m);
	m.mem.free(z, &m);
	ck_assert_ptr_null(m.block[0]);
	ck_assert_ptr_null(m.block[1]);
}
END_TEST

START_TEST(trim_drops_frame_bytes_and_zero_pages_only)
{
	struct h2mem m;
	unsigned char *frame, *map;

	h2mem_init(&m);
	h2mem_creating(&m, 1);
	frame = m.mem.realloc(NULL, 16394, &m);
	h2mem_creating(&m, 0);
	map = m.mem.calloc(2, page(), &m);
	ck_assert_ptr_eq(m.frame, frame);
	memset(frame, 0xab, 16394);
	map[page() + 7] = 1;	/* the second page is in use, the first is all zero */
	h2mem_trim(&m);
	ck_assert_uint_eq(frame[0], 0);
	ck_assert_uint_eq(frame[16383], 0);
	ck_assert_uint_eq(map[page() + 7], 1);
	ck_assert_uint_eq(map[0], 0);
	/* Still usable after a trim. */
	frame[5] = 9;
	ck_assert_uint_eq(frame[5], 9);
	m.mem.free(map, &m);
	m.mem.free(frame, &m);
	ck_assert_ptr_null(m.frame);
}
END_TEST

START_TEST(realloc_keeps_bytes_alignment_and_frame)
{
	struct h2mem m;
	unsigned char *p, *q;

	h2mem_init(&m);
	h2mem_creating(&m, 1);
	p = m.mem.realloc(NULL, 20000, &m);
	h2mem_creating(&m, 0);
	memset(p, 0x5a, 20000);
	q = m.mem.realloc(p, 40000, &m);
	ck_assert_uint_eq((uintptr_t)q % page(), 0);
	ck_assert_uint_eq(q[19999], 0x5a);
	ck_assert_ptr_eq(m.frame, q);
	/* A small block that grows large becomes a tracked, aligned one. */
	p = m.mem.malloc(64, &m);
	memset(p, 7, 64);
	p = m.mem.realloc(p, page() * 3, &m);
	ck_assert_uint_eq((uintptr_t)p % page(), 0);
	ck_assert_uint_eq(p[63], 7);
	m.mem.free(p, &m);
	m.mem.free(q, &m);
}
END_TEST

/* Blocks past the slots come from the heap: valid, never trimmed; a freed slot is reused. */
START_TEST(blocks_past_the_slots_from_the_heap)
{
	struct h2mem m;
	unsigned char *b[H2MEM_BLOCKS + 1];
	int i;

	h2mem_init(&m);
	for (i = 0; i <= H2MEM_BLOCKS; i++) {
		b[i] = m.mem.calloc(1, page() + 10, &m);
		ck_assert_ptr_nonnull(b[i]);
		ck_assert_uint_eq(b[i][page() + 9], 0);
		memset(b[i], i + 1, page() + 10);
	}
	for (i = 0; i < H2MEM_BLOCKS; i++) {
		ck_assert_ptr_eq(m.block[i], b[i]);
		ck_assert_uint_eq(m.pages[i], 2);	/* whole pages */
	}
	h2mem_trim(&m);		/* nothing all zero: every byte stays */
	for (i = 0; i <= H2MEM_BLOCKS; i++)
		ck_assert_uint_eq(b[i][page() + 9], i + 1);
	m.mem.free(b[1], &m);
	ck_assert_ptr_null(m.block[1]);
	b[1] = m.mem.realloc(b[H2MEM_BLOCKS], page() * 3, &m);	/* the heap block moves into the slot */
	ck_assert_ptr_eq(m.block[1], b[1]);
	ck_assert_uint_eq(b[1][page() + 9], H2MEM_BLOCKS + 1);
	for (i = 0; i < H2MEM_BLOCKS; i++)
		m.mem.free(b[i], &m);
	for (i = 0; i < H2MEM_BLOCKS; i++)
		ck_assert_ptr_null(m.block[i]);
}
END_TEST

static ssize_t
send_nothing(nghttp2_session *s, const uint8_t *d, size_t n, int f, void *u)
{
	(void)s, (void)d, (void)f, (void)u;
	return (ssize_t)n;
}

START_TEST(nghttp2_session_runs_on_it)
{
	static const char preface[] = NGHTTP2_CLIENT_MAGIC "\0\0\0\4\0\0\0\0\0";
	nghttp2_session_callbacks *cb;
	nghttp2_session *ng;
	struct h2mem m;
	const uint8_t *out;

	ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_send_callback(cb, send_nothing);
	h2mem_init(&m);
	h2mem_creating(&m, 1);
	ck_assert_int_eq(nghttp2_session_server_new3(&ng, cb, NULL, NULL, &m.mem), 0);
	h2mem_creating(&m, 0);
	ck_assert_ptr_nonnull(m.frame);
	ck_assert_int_eq(nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, NULL, 0), 0);
	ck_assert_int_eq(nghttp2_session_mem_recv(ng, (const uint8_t *)preface,
	    sizeof(preface) - 1), (ssize_t)sizeof(preface) - 1);
	ck_assert_int_gt(nghttp2_session_mem_send(ng, &out), 0);
	while (nghttp2_session_mem_send(ng, &out) > 0)
		;
	h2mem_trim(&m);
	/* After a trim the session still frames: a PING and its bytes. */
	ck_assert_int_eq(nghttp2_submit_ping(ng, NGHTTP2_FLAG_NONE, NULL), 0);
	ck_assert_int_eq(nghttp2_session_mem_send(ng, &out), 17);
	ck_assert_uint_eq(out[3], NGHTTP2_PING);
	nghttp2_session_del(ng);
	nghttp2_session_callbacks_del(cb);
	ck_assert_ptr_null(m.frame);
}
END_TEST

Suite *
suite_h2mem(void)
{
	Suite *s = suite_create("h2mem");
	TCase *tc = tcase_create("h2mem");

	tcase_add_test(tc, large_blocks_aligned_small_ones_not_tracked);
	tcase_add_test(tc, trim_drops_frame_bytes_and_zero_pages_only);
	tcase_add_test(tc, realloc_keeps_bytes_alignment_and_frame);
	tcase_add_test(tc, nghttp2_session_runs_on_it);
	tcase_add_test(tc, blocks_past_the_slots_from_the_heap);
	suite_add_tcase(s, tc);
	return s;
}
