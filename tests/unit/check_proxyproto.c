/*
 * Unit tests for worker/proxyproto.c and worker/ppconn.c: PROXY protocol
 * v1 and v2 headers parsed whole, byte by byte and with what follows them;
 * every malformed form refused; the bounds (107 bytes, 536 bytes); the
 * writer read back by the parser; and the connection reader over a
 * socketpair, which must leave the bytes after the header in the socket.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/conn.h"
#include "worker/context.h"
#include "worker/ppconn.h"
#include "worker/proxyproto.h"
#include "tests/unit/suites.h"

static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
    0x54, 0x0A };

/* Parses p[0..n) whole and checks every shorter prefix says "more". */
static int
parse_all_ways(const uint8_t *p, size_t n, struct proxyproto_hdr *h)
{
	const char *why;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = proxyproto_parse(p, i, h, &why);
		if (rc != 0)
			return rc == -1 ? -1 : -2;	/* a prefix was taken as complete: wrong */
	}
	return proxyproto_parse(p, n, h, &why);
}

static int
parse_str(const char *s, struct proxyproto_hdr *h)
{
	return parse_all_ways((const uint8_t *)s, strlen(s), h);
}

static void
v1_bad(const char *s)
{
	struct proxyproto_hdr h;
	const char *why = NULL;

	ck_assert_msg(proxyproto_parse((const uint8_t *)s, strlen(s), &h, &why) == -1,
	    "accepted '%s'", s);
	ck_assert_ptr_nonnull(why);
}

START_TEST(v1_tcp4_tcp6_unknown)
{
	const char *t4 = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\nGET /";
	const char *t6 = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
	struct proxyproto_hdr h;
	char ip[INET6_ADDRSTRLEN];

	ck_assert_int_eq(proxyproto_parse((const uint8_t *)t4, strlen(t4), &h, &(const char *){ 0 }),
	    (int)strlen(t4) - 5);
	ck_assert_int_eq(h.version, 1);
	ck_assert_int_eq(h.local, 0);
	ck_assert_int_eq(h.a.family, AF_INET);
	ck_assert_str_eq(inet_ntop(AF_INET, h.a.src, ip, sizeof(ip)), "192.0.2.10");
	ck_assert_str_eq(inet_ntop(AF_INET, h.a.dst, ip, sizeof(ip)), "198.51.100.1");
	ck_assert_uint_eq(h.a.sport, 56324);
	ck_assert_uint_eq(h.a.dport, 443);
	ck_assert_int_eq(parse_str(t6, &h), (int)strlen(t6));
	ck_assert_int_eq(h.a.family, AF_INET6);
	ck_assert_str_eq(inet_ntop(AF_INET6, h.a.src, ip, sizeof(ip)), "2001:db8::1");
	ck_assert_uint_eq(h.a.sport, 65535);
	ck_assert_uint_eq(h.a.dport, 0);
	ck_assert_int_eq(parse_str("PROXY UNKNOWN\r\n", &h), 15);
	ck_assert_int_eq(h.local, 1);
	ck_assert_int_eq(parse_str("PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n", &h), 35);
	ck_assert_int_eq(h.local, 1);
}
END_TEST

START_TEST(v1_malformed)
{
	char big[200];

	v1_bad("GET / HTTP/1.1\r\n");
	v1_bad("PROXX TCP4");
	v1_bad("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n");		/* LF alone */
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX");		/* CR without LF */
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n");		/* a field missing */
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n");	/* one too many */
	v1_bad("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n");	/* two spaces */
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n");	/* trailing space */
	v1_bad("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n");
	v1_bad("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n");
	v1_bad("PROXY TCP4 ::1 5.6.7.8 1 2\r\n");		/* IPv6 in TCP4 */
	v1_bad("PROXY TCP6 1.2.3.4 ::1 1 2\r\n");		/* IPv4 in TCP6 */
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n");
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n");	/* a leading zero */
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n");
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n");
	v1_bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n");
	v1_bad("PROXY \r\n");
	ck_assert_int_eq(proxyproto_parse((const uint8_t *)"PROXY TCP4 1.2\0.3.4", 19, &(struct
	    proxyproto_hdr){ 0 }, &(const char *){ 0 }), -1);	/* NUL inside */
	/* 107 bytes without CRLF: over the bound, whatever follows. */
	memset(big, 'A', sizeof(big));
	memcpy(big, "PROXY UNKNOWN ", 14);
	ck_assert_int_eq(proxyproto_parse((const uint8_t *)big, 106, &(struct proxyproto_hdr){ 0 },
	    &(const char *){ 0 }), 0);
	ck_assert_int_eq(proxyproto_parse((const uint8_t *)big, 107, &(struct proxyproto_hdr){ 0 },
	    &(const char *){ 0 }), -1);
	/* Exactly 107 with its CRLF: taken; 108: refused. */
	memcpy(big + 105, "\r\n", 2);
	ck_assert_int_eq(proxyproto_parse((const uint8_t *)big, 107, &(struct proxyproto_hdr){ 0 },
	    &(const char *){ 0 }), 107);
	memset(big, 'A', sizeof(big));
	memcpy(big, "PROXY UNKNOWN ", 14);
	memcpy(big + 106, "\r\n", 2);
	ck_assert_int_eq(proxyproto_parse((const uint8_t *)big, 108, &(struct proxyproto_hdr){ 0 },
	    &(const char *){ 0 }), -1);
}
END_TEST

/* A v2 header: cmd byte, family byte, then len bytes of body. */
static size_t
v2(uint8_t *out, uint8_t cmd, uint8_t fam, const uint8_t *body, size_t len)
{
	memcpy(out, sig, 12);
	out[12] = cmd;
	out[13] = fam;
	out[14] = (uint8_t)(len >> 8);
	out[15] = (uint8_t)len;
	if (len > 0)
		memcpy(out + 16, body, len);
	return 16 + len;
}

static const uint8_t body4[12] = { 192, 0, 2, 10, 198, 51, 100, 1, 0xDC, 0x04, 0x01, 0xBB };

START_TEST(v2_families)
{
	uint8_t buf[700], body[600];
	struct proxyproto_hdr h;
	char ip[INET6_ADDRSTRLEN];
	size_t n;

	n = v2(buf, 0x21, 0x11, body4, sizeof(body4));
	buf[n] = 'G';	/* what follows is not the header's */
	ck_assert_int_eq(parse_all_ways(buf, n, &h), (int)n);
	ck_assert_int_eq(proxyproto_parse(buf, n + 1, &h, &(const char *){ 0 }), (int)n);
	ck_assert_int_eq(h.version, 2);
	ck_assert_int_eq(h.a.family, AF_INET);
	ck_assert_str_eq(inet_ntop(AF_INET, h.a.src, ip, sizeof(ip)), "192.0.2.10");
	ck_assert_uint_eq(h.a.sport, 56324);
	ck_assert_uint_eq(h.a.dport, 443);
	/* IPv6 with TLVs after the addresses (ALPN "h2", then a NOOP). */
	memset(body, 0, sizeof(body));
	inet_pton(AF_INET6, "2001:db8::7", body);
	inet_pton(AF_INET6, "2001:db8::8", body + 16);
	body[32] = 0x12;
	body[33] = 0x34;
	body[35] = 80;
	memcpy(body + 36, "\x01\x00\x02h2\x04\x00\x00", 8);
	n = v2(buf, 0x21, 0x21, body, 44);
	ck_assert_int_eq(parse_all_ways(buf, n, &h), (int)n);
	ck_assert_int_eq(h.a.family, AF_INET6);
	ck_assert_str_eq(inet_ntop(AF_INET6, h.a.src, ip, sizeof(ip)), "2001:db8::7");
	ck_assert_uint_eq(h.a.sport, 0x1234);
	/* LOCAL (a health check): any family, the peer stays. */
	n = v2(buf, 0x20, 0x11, body4, sizeof(body4));
	ck_assert_int_eq(parse_all_ways(buf, n, &h), (int)n);
	ck_assert_int_eq(h.local, 1);
	n = v2(buf, 0x20, 0x00, NULL, 0);
	ck_assert_int_eq(parse_all_ways(buf, n, &h), 16);
	ck_assert_int_eq(h.local, 1);
	/* PROXY with UNSPEC, AF_UNIX or datagrams: nothing to use, the peer stays. */
	n = v2(buf, 0x21, 0x00, NULL, 0);
	ck_assert_int_eq(parse_all_ways(buf, n, &h), 16);
	ck_assert_int_eq(h.local, 1);
	n = v2(buf, 0x21, 0x31, body, 216);
	ck_assert_int_eq(parse_all_ways(buf, n, &h), (int)n);
	ck_assert_int_eq(h.local, 1);
	n = v2(buf, 0x21, 0x12, body4, sizeof(body4));
	ck_assert_int_eq(parse_all_ways(buf, n, &h), (int)n);
	ck_assert_int_eq(h.local, 1);
}
END_TEST

static void
v2_bad(const uint8_t *p, size_t n)
{
	ck_assert_int_eq(proxyproto_parse(p, n, &(struct proxyproto_hdr){ 0 }, &(const char *){ 0 }),
	    -1);
}

START_TEST(v2_malformed_and_bounds)
{
	uint8_t buf[700], body[600];
	size_t n;

	memset(body, 0, sizeof(body));
	n = v2(buf, 0x21, 0x11, body4, sizeof(body4));
	buf[11] = 0x0B;			/* the signature's last byte */
	v2_bad(buf, 12);
	v2_bad(buf, n);
	v2_bad((const uint8_t *)"\x0D\x0A\x0D\x0A\x01", 5);	/* differs early */
	n = v2(buf, 0x11, 0x11, body4, sizeof(body4));	/* version 1 in the binary form */
	v2_bad(buf, n);
	n = v2(buf, 0x22, 0x11, body4, sizeof(body4));	/* command 2 */
	v2_bad(buf, n);
	n = v2(buf, 0x21, 0x41, body4, sizeof(body4));	/* family 4 */
	v2_bad(buf, n);
	n = v2(buf, 0x21, 0x13, body4, sizeof(body4));	/* transport 3 */
	v2_bad(buf, n);
	n = v2(buf, 0x21, 0x11, body4, 11);		/* IPv4 block cut short */
	v2_bad(buf, n);
	n = v2(buf, 0x21, 0x21, body, 35);		/* IPv6 block cut short */
	v2_bad(buf, n);
	n = v2(buf, 0x21, 0x31, body, 215);		/* unix block cut short */
	v2_bad(buf, n);
	/* TLVs: one longer than what is left, one whose own header is cut. */
	memcpy(body, body4, 12);
	memcpy(body + 12, "\x04\x00\x05xx", 5);
	n = v2(buf, 0x21, 0x11, body, 17);
	v2_bad(buf, n);
	memcpy(body + 12, "\x04\x00", 2);
	n = v2(buf, 0x21, 0x11, body, 14);
	v2_bad(buf, n);
	/* The bound: 520 bytes after the fixed part is taken, 521 refused at once. */
	memcpy(body + 12, "\x04\x01\xF9", 3);		/* NOOP of 505: 12 + 3 + 505 = 520 */
	n = v2(buf, 0x21, 0x11, body, 520);
	ck_assert_int_eq(n, PROXYPROTO_V2_MAX);
	ck_assert_int_eq(parse_all_ways(buf, n, &(struct proxyproto_hdr){ 0 }), (int)n);
	n = v2(buf, 0x21, 0x11, body, 521);
	v2_bad(buf, 16);	/* known from the length field alone */
	n = v2(buf, 0x21, 0x11, body, 0);
	buf[14] = 0xFF;
	buf[15] = 0xFF;
	v2_bad(buf, 16);
}
END_TEST

static void
roundtrip(int v, int af, const char *src, const char *dst, uint16_t sp, uint16_t dp)
{
	struct proxyproto_addrs a = { 0 };
	struct proxyproto_hdr h;
	uint8_t out[PROXYPROTO_OUT_MAX];
	size_t n;

	a.family = (uint8_t)af;
	if (af != AF_UNSPEC) {
		inet_pton(af, src, a.src);
		inet_pton(af, dst, a.dst);
	}
	a.sport = sp;
	a.dport = dp;
	n = proxyproto_write(v, &a, out);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(n, PROXYPROTO_OUT_MAX);
	ck_assert_int_eq(parse_all_ways(out, n, &h), (int)n);
	ck_assert_int_eq(h.version, v);
	if (af == AF_UNSPEC) {
		ck_assert_int_eq(h.local, 1);
		return;
	}
	ck_assert_int_eq(h.local, 0);
	ck_assert_mem_eq(&h.a, &a, sizeof(a));
}

START_TEST(writer_roundtrips)
{
	struct proxyproto_addrs a = { 0 };
	uint8_t out[PROXYPROTO_OUT_MAX];

	roundtrip(1, AF_INET, "192.0.2.1", "198.51.100.2", 1, 80);
	roundtrip(2, AF_INET, "192.0.2.1", "198.51.100.2", 65535, 443);
	roundtrip(1, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535, 65535);	/* the longest v1 */
	roundtrip(2, AF_INET6, "2001:db8::1", "::1", 40000, 8443);
	roundtrip(1, AF_UNSPEC, NULL, NULL, 0, 0);
	roundtrip(2, AF_UNSPEC, NULL, NULL, 0, 0);
	ck_assert_uint_eq(proxyproto_write(PROXYPROTO_OFF, &a, out), 0);
	ck_assert_uint_eq(proxyproto_write(1, &a, out), 15);
	ck_assert_mem_eq(out, "PROXY UNKNOWN\r\n", 15);
	ck_assert_uint_eq(proxyproto_write(2, &a, out), 16);
	ck_assert_uint_eq(out[12], 0x20);	/* LOCAL */
}
END_TEST

START_TEST(addrs_from_sockaddrs)
{
	struct sockaddr_in6 s = { 0 }, d = { 0 };
	struct sockaddr_in s4 = { 0 };
	struct sockaddr_storage ss;
	struct proxyproto_addrs a;

	s.sin6_family = d.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::5", &s.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::6", &d.sin6_addr);
	s.sin6_port = htons(1234);
	d.sin6_port = htons(443);
	proxyproto_addrs_set(&a, (struct sockaddr *)&s, (struct sockaddr *)&d);
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_uint_eq(a.sport, 1234);
	ck_assert_uint_eq(a.dport, 443);
	ck_assert_int_eq(proxyproto_src_sockaddr(&a, &ss), 0);
	ck_assert_mem_eq(&((struct sockaddr_in6 *)&ss)->sin6_addr, &s.sin6_addr, 16);
	/* Families that disagree, or no local end: unknown. */
	s4.sin_family = AF_INET;
	proxyproto_addrs_set(&a, (struct sockaddr *)&s4, (struct sockaddr *)&d);
	ck_assert_int_eq(a.family, AF_UNSPEC);
	proxyproto_addrs_set(&a, (struct sockaddr *)&s, NULL);
	ck_assert_int_eq(a.family, AF_UNSPEC);
	ck_assert_int_eq(proxyproto_src_sockaddr(&a, &ss), -1);
}
END_TEST

/* --- ppconn over a socketpair: the connection side */

struct ppfix {
	struct worker w;
	struct conn c;
	int peer;
};

static void
ppfix_init(struct ppfix *f)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	f->c.w = &f->w;
	f->c.fd = sv[0];
	f->peer = sv[1];
	strcpy(f->c.ip, "192.0.2.99");
}

static void
ppfix_free(struct ppfix *f)
{
	ppconn_free(&f->c);
	close(f->c.fd);
	close(f->peer);
}

START_TEST(conn_reads_in_pieces_and_no_further)
{
	const char *hdr = "PROXY TCP4 203.0.113.5 192.0.2.1 4000 80\r\n";
	size_t len = strlen(hdr), i;
	struct proxyproto_hdr h;
	struct ppfix f;
	char rest[16];

	ppfix_init(&f);
	ck_assert_int_eq(ppconn_read(&f.c, &h), 0);	/* nothing yet */
	for (i = 0; i + 1 < len; i++) {	/* one byte at a time */
		ck_assert_int_eq(write(f.peer, hdr + i, 1), 1);
		ck_assert_int_eq(ppconn_read(&f.c, &h), 0);
	}
	ck_assert_uint_eq(f.c.pp_len, len - 1);
	ck_assert_int_eq(write(f.peer, hdr + len - 1, 1), 1);
	ck_assert_int_eq(write(f.peer, "GET / HTTP/1.1\r\n", 16), 16);
	ck_assert_int_eq(ppconn_read(&f.c, &h), 1);
	ck_assert_ptr_null(f.c.pp);
	ck_assert_uint_eq(h.a.sport, 4000);
	/* The request is still in the socket, whole. */
	ck_assert_int_eq(read(f.c.fd, rest, sizeof(rest)), 16);
	ck_assert_mem_eq(rest, "GET / HTTP/1.1\r\n", 16);
	ppfix_free(&f);
}
END_TEST

START_TEST(conn_refuses_garbage_eof_and_strangers)
{
	struct sockaddr_in peer = { 0 };
	struct proxyproto_hdr h;
	struct ppfix f;

	ppfix_init(&f);
	ck_assert_int_eq(write(f.peer, "GET / HTTP/1.1\r\n", 16), 16);
	ck_assert_int_eq(ppconn_read(&f.c, &h), -1);
	ck_assert_uint_gt(f.w.pp_log_ms, 0);
	ppfix_free(&f);
	ppfix_init(&f);
	ck_assert_int_eq(write(f.peer, "PROXY TCP4 ", 11), 11);
	ck_assert_int_eq(ppconn_read(&f.c, &h), 0);
	ck_assert_ptr_nonnull(f.c.pp);
	shutdown(f.peer, SHUT_WR);
	ck_assert_int_eq(ppconn_read(&f.c, &h), -1);	/* EOF inside the header */
	ppfix_free(&f);
	/* Nobody is trusted: refused; the second refusal within a second is counted, not logged. */
	ppfix_init(&f);
	peer.sin_family = AF_INET;
	peer.sin_addr.s_addr = htonl(0x7f000001);
	ck_assert_int_eq(ppconn_admit(&f.w, (struct sockaddr *)&peer), -1);
	ck_assert_int_eq(ppconn_admit(&f.w, (struct sockaddr *)&peer), -1);
	ck_assert_uint_eq(f.w.pp_log_dropped, 1);
	f.w.cfg.ntrusted = 1;
	ck_assert_int_eq(addr_parse_cidr("127.0.0.0/8", &f.w.trusted[0]), 0);
	ck_assert_int_eq(ppconn_admit(&f.w, (struct sockaddr *)&peer), 0);
	ppfix_free(&f);
}
END_TEST

Suite *
suite_proxyproto(void)
{
	Suite *s = suite_create("proxyproto");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, v1_tcp4_tcp6_unknown);
	tcase_add_test(tc, v1_malformed);
	tcase_add_test(tc, v2_families);
	tcase_add_test(tc, v2_malformed_and_bounds);
	tcase_add_test(tc, writer_roundtrips);
	tcase_add_test(tc, addrs_from_sockaddrs);
	tcase_add_test(tc, conn_reads_in_pieces_and_no_further);
	tcase_add_test(tc, conn_refuses_garbage_eof_and_strangers);
	suite_add_tcase(s, tc);
	return s;
}
