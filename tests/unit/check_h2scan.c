/*
 * Unit tests for worker/h2scan.c: header-block ends found in bytes fed in
 * any split (the preface, HEADERS with and without padding and priority,
 * CONTINUATION, DATA in between, a frame header cut across feeds).
 */
#include "config.h"

#include <string.h>

#include "tests/unit/suites.h"
#include "worker/h2scan.h"

static const uint8_t preface[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* A frame into out at *n: header then payload of len bytes (filled with 'x'). */
static void
frame(uint8_t *out, size_t *n, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	uint8_t *p = out + *n;

	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	p[5] = (uint8_t)(sid >> 24);
	p[6] = (uint8_t)(sid >> 16);
	p[7] = (uint8_t)(sid >> 8);
	p[8] = (uint8_t)sid;
	memset(p + 9, 'x', len);
	*n += 9 + len;
}

/* Feeds buf[0..upto) one byte at a time: block_done after each, as a string of 0 and 1. */
static void
trace(const uint8_t *buf, size_t upto, char *out)
{
	struct h2scan sc;
	size_t i;

	h2scan_init(&sc);
	for (i = 0; i < upto; i++) {
		h2scan_feed(&sc, buf + i, 1);
		out[i] = (char)('0' + h2scan_block_done(&sc));
	}
	out[upto] = '\0';
}

START_TEST(h2scan_headers_end)
{
	uint8_t buf[256];
	size_t n = 0;
	struct h2scan sc;

	memcpy(buf, preface, 24);
	n = 24;
	frame(buf, &n, 0, 0x4, 0, 0);		/* SETTINGS */
	frame(buf, &n, 10, 0x1, 0x4 | 0x1, 1);	/* HEADERS END_HEADERS END_STREAM */
	h2scan_init(&sc);
	h2scan_feed(&sc, buf, 24 + 9 + 9 + 9);
	ck_assert_int_eq(h2scan_block_done(&sc), 0);
	h2scan_feed(&sc, buf + 51, 1);
	ck_assert_int_eq(h2scan_block_done(&sc), 1);
	/* Fed whole: the same. */
	h2scan_init(&sc);
	h2scan_feed(&sc, buf, n);
	ck_assert_int_eq(h2scan_block_done(&sc), 1);
}
END_TEST

START_TEST(h2scan_padded_and_continuation)
{
	uint8_t buf[256];
	char t[256], want[256];
	size_t n = 24, hs, cs;

	memcpy(buf, preface, 24);
	/* HEADERS PADDED (pad 3) without END_HEADERS, then CONTINUATION with it. */
	hs = n;
	frame(buf, &n, 8, 0x1, 0x8, 1);
	buf[hs + 9] = 3;
	cs = n;
	frame(buf, &n, 5, 0x9, 0x4, 1);
	/* DATA, then a padded HEADERS with END_HEADERS: the block ends before its padding. */
	frame(buf, &n, 4, 0x0, 0x1, 1);
	hs = n;
	frame(buf, &n, 12, 0x1, 0x8 | 0x4 | 0x20, 3);	/* PADDED, END_HEADERS, PRIORITY */
	buf[hs + 9] = 2;
	trace(buf, n, t);
	memset(want, '0', n);
	want[n] = '\0';
	want[cs + 9 + 5 - 1] = '1';		/* the CONTINUATION's last byte */
	want[hs + 9 + 12 - 2 - 1] = '1';	/* the last byte before the 2 padding bytes */
	ck_assert_str_eq(t, want);
}
END_TEST

START_TEST(h2scan_no_end_headers)
{
	uint8_t buf[128];
	char t[128];
	size_t n = 24;

	memcpy(buf, preface, 24);
	frame(buf, &n, 6, 0x1, 0x1, 1);		/* HEADERS without END_HEADERS */
	frame(buf, &n, 6, 0x8, 0x4, 1);		/* WINDOW_UPDATE (flags mean nothing here) */
	trace(buf, n, t);
	ck_assert_ptr_null(strchr(t, '1'));
}
END_TEST

Suite *
suite_h2scan(void)
{
	Suite *s = suite_create("h2scan");
	TCase *tc = tcase_create("h2scan");

	tcase_add_test(tc, h2scan_headers_end);
	tcase_add_test(tc, h2scan_padded_and_continuation);
	tcase_add_test(tc, h2scan_no_end_headers);
	suite_add_tcase(s, tc);
	return s;
}
