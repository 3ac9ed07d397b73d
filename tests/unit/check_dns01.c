/*
 * DNS-01 (acme/dnsmsg.c, acme/tsig.c, acme/dns01.c, master/acmedns.c):
 * messages built and parsed back, TSIG against dnspython's bytes, every
 * bound of the parser on hostile input, the TXT value, the key file.
 */
#include "config.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acme/acmechild.h"
#include "acme/dns01.h"
#include "master/acmeint.h"
#include "master/store.h"
#include "tests/unit/suites.h"

/*
 * Made with dnspython 2.3.0 (Debian 12's python3-dnspython) at test-writing time:
 *   secret = base64(bytes(range(32)))
 *   kr = dns.tsigkeyring.from_text({'dns01-test.': ('hmac-sha256', secret)})
 *   u = dns.update.UpdateMessage('example.test.', keyring=kr,
 *                                keyalgorithm=dns.tsig.HMAC_SHA256, id=0x1234)
 *   u.add('_acme-challenge.example.test.', 60, 'TXT', '"abc"')
 *   time.time = lambda: 1700000000; req = u.to_wire()
 *   r = dns.message.make_response(u); r.id = 0x1234; resp = r.to_wire()
 * The request's TSIG RR starts at REQ_TSIG_OFF (its owner "dns01-test."). (An id set
 * after the constructor leaves dnspython's random one as the TSIG's original id, which
 * the MAC covers in place of the header's: tsig_verify is also checked with such an answer
 * by hand; the vector keeps them equal, as our requests do.)
 */
#define VEC_SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define VEC_TIME 1700000000u
#define VEC_REQ "123428000001000000010001076578616d706c65047465737400000600010f5f61636d65" \
	"2d6368616c6c656e6765c00c001000010000003c0004036162630a646e7330312d746573740000fa00" \
	"ff00000000003d0b686d61632d7368613235360000006553f100012c0020bbde3bad97900061ab877e" \
	"a205f3542bcc06e09dedd6c3885dfb77a90d340ea4123400000000"
#define VEC_RESP "1234a8000001000000000001076578616d706c65047465737400000600010a646e733031" \
	"2d746573740000fa00ff00000000003d0b686d61632d7368613235360000006553f100012c00207ad7" \
	"ec250e046c566f5885e21dd0bfde587fe0e7ec36f5de74f98745c867307e123400000000"
#define VEC_MAC "bbde3bad97900061ab877ea205f3542bcc06e09dedd6c3885dfb77a90d340ea4"
#define REQ_TSIG_OFF 62

static size_t
unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2, i;
	unsigned v;

	for (i = 0; i < n; i++) {
		ck_assert_int_eq(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void
vec_key(struct tsig_key *k)
{
	struct dns01_conf c;

	ck_assert_int_eq(dns01_configure(&c, "127.0.0.1:53", "", "dns01-test", VEC_SECRET), 0);
	ck_assert_int_eq(c.on, 1);
	ck_assert_uint_eq(c.key.len, 32);
	*k = c.key;
}

START_TEST(tsig_sign_matches_dnspython)
{
	uint8_t want[512], mac[32], wantmac[32];
	struct dns_buf w;
	struct tsig_key k;
	size_t n = unhex(VEC_REQ, want);

	vec_key(&k);
	unhex(VEC_MAC, wantmac);
	memset(&w, 0, sizeof(w));
	memcpy(w.b, want, REQ_TSIG_OFF);
	w.len = REQ_TSIG_OFF;
	dnsmsg_count(&w, 3, 0);	/* the message before the TSIG RR was added */
	ck_assert_int_eq(tsig_sign(&w, &k, VEC_TIME, mac), 0);
	ck_assert_uint_eq(w.len, n);
	ck_assert_mem_eq(w.b, want, n);
	ck_assert_mem_eq(mac, wantmac, 32);
}
END_TEST

START_TEST(tsig_verify_dnspython_answer)
{
	uint8_t resp[512], mac[32];
	struct tsig_key k;
	struct dns_msg d;
	char err[200];
	size_t n = unhex(VEC_RESP, resp);

	vec_key(&k);
	unhex(VEC_MAC, mac);
	ck_assert_int_eq(dnsmsg_parse(resp, n, &d), 0);
	ck_assert_int_eq(dnsmsg_rcode(&d), 0);
	ck_assert_int_eq(tsig_verify(resp, n, &d, &k, mac, VEC_TIME + 10, err, sizeof(err)), 0);
	/* Outside the fudge (300 s). */
	ck_assert_int_eq(tsig_verify(resp, n, &d, &k, mac, VEC_TIME + 301, err, sizeof(err)), -1);
	/* Another request's MAC. */
	mac[0] ^= 1;
	ck_assert_int_eq(tsig_verify(resp, n, &d, &k, mac, VEC_TIME, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "MAC"));
	mac[0] ^= 1;
	/* A changed header bit. */
	resp[3] ^= 0x80;
	ck_assert_int_eq(dnsmsg_parse(resp, n, &d), 0);
	ck_assert_int_eq(tsig_verify(resp, n, &d, &k, mac, VEC_TIME, err, sizeof(err)), -1);
	resp[3] ^= 0x80;
	/* Another key. */
	k.secret[0] ^= 1;
	ck_assert_int_eq(dnsmsg_parse(resp, n, &d), 0);
	ck_assert_int_eq(tsig_verify(resp, n, &d, &k, mac, VEC_TIME, err, sizeof(err)), -1);
}
END_TEST

START_TEST(tsig_error_and_unsigned_answers)
{
	uint8_t resp[512], mac[32];
	struct tsig_key k;
	struct dns_msg d;
	char err[200];
	size_t n = unhex(VEC_RESP, resp);

	vec_key(&k);
	unhex(VEC_MAC, mac);
	/* The error field (two bytes before other-len at the end) says BADKEY. */
	resp[n - 3] = 17;
	ck_assert_int_eq(dnsmsg_parse(resp, n, &d), 0);
	ck_assert_int_eq(tsig_verify(resp, n, &d, &k, mac, VEC_TIME, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "BADKEY"));
	/* The header alone: no TSIG. */
	resp[11] = 0;
	ck_assert_int_eq(dnsmsg_parse(resp, 30, &d), 0);
	ck_assert_int_eq(tsig_verify(resp, 30, &d, &k, mac, VEC_TIME, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not signed"));
}
END_TEST

START_TEST(update_parses_back)
{
	struct dns_buf w;
	struct dns_msg d;

	ck_assert_int_eq(dnsmsg_update(&w, 7, "Example.TEST", "_acme-challenge.example.test",
	    "v", 60, 1), 0);
	ck_assert_int_eq(dnsmsg_parse(w.b, w.len, &d), 0);
	ck_assert_uint_eq(d.id, 7);
	ck_assert_uint_eq(d.flags >> 11 & 0xf, DNS_OP_UPDATE);
	ck_assert_uint_eq(d.count[0], 1);
	ck_assert_uint_eq(d.count[2], 1);
	ck_assert_uint_eq(d.nrr, 1);
	ck_assert_str_eq(d.rr[0].name, "_acme-challenge.example.test");
	ck_assert_uint_eq(d.rr[0].type, DNS_T_TXT);
	ck_assert_uint_eq(d.rr[0].class, DNS_C_IN);
	ck_assert_uint_eq(d.rr[0].ttl, 60);
	ck_assert_uint_eq(d.rr[0].rdlen, 2);
	/* The delete: class NONE, TTL 0, the same RDATA. */
	ck_assert_int_eq(dnsmsg_update(&w, 8, "example.test", "_acme-challenge.example.test",
	    "v", 60, 0), 0);
	ck_assert_int_eq(dnsmsg_parse(w.b, w.len, &d), 0);
	ck_assert_uint_eq(d.rr[0].class, DNS_C_NONE);
	ck_assert_uint_eq(d.rr[0].ttl, 0);
	/* Names: an empty label, a 64-byte label, a TXT over 255 bytes. */
	ck_assert_int_eq(dnsmsg_query(&w, 1, "a..b", DNS_T_TXT), -1);
	ck_assert_int_eq(dnsmsg_query(&w, 1,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b", DNS_T_TXT), -1);
	{
		char big[300];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		ck_assert_int_eq(dnsmsg_update(&w, 1, "a.b", "c.a.b", big, 60, 1), -1);
	}
}
END_TEST

/* An answer: one question, answers given as wire bytes after it. */
static size_t
answer(uint8_t *m, uint16_t an, const uint8_t *rrs, size_t n)
{
	struct dns_buf w;

	ck_assert_int_eq(dnsmsg_query(&w, 9, "x.test", DNS_T_TXT), 0);
	w.b[2] |= 0x80;
	dnsmsg_count(&w, 1, an);
	dnsmsg_bytes(&w, rrs, n);
	memcpy(m, w.b, w.len);
	return w.len;
}

START_TEST(parse_txt_answer)
{
	/* x.test by a pointer to the question (offset 12), TXT IN, TTL 60, "hi". */
	static const uint8_t rr[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 3, 2, 'h', 'i' };
	uint8_t m[512];
	struct dns_msg d;
	size_t n = answer(m, 1, rr, sizeof(rr)), i;

	ck_assert_int_eq(dnsmsg_parse(m, n, &d), 0);
	ck_assert_int_eq(dnsmsg_has_txt(m, &d, "x.test", "hi"), 1);
	ck_assert_int_eq(dnsmsg_has_txt(m, &d, "X.TEST.", "hi"), 1);
	ck_assert_int_eq(dnsmsg_has_txt(m, &d, "x.test", "h"), 0);
	ck_assert_int_eq(dnsmsg_has_txt(m, &d, "y.test", "hi"), 0);
	/* Every truncation is refused, never read past. */
	for (i = 0; i < n; i++)
		ck_assert_int_eq(dnsmsg_parse(m, i, &d), -1);
	/* A byte too many. */
	ck_assert_int_eq(dnsmsg_parse(m, n + 1, &d), -1);
}
END_TEST

START_TEST(parse_hostile_names_and_counts)
{
	uint8_t m[DNS_MSG_MAX];
	char name[DNS_NAME_MAX + 2];
	struct dns_msg d;
	size_t n, off, i;

	/* A pointer to itself, and one forward. */
	static const uint8_t self[] = { 0xc0, 24 };
	n = answer(m, 1, self, sizeof(self));
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), -1);
	static const uint8_t fwd[] = { 0xc0, 26, 0, 0 };
	n = answer(m, 1, fwd, sizeof(fwd));
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), -1);
	/* The obsolete label types. */
	static const uint8_t ext[] = { 0x41, 0 };
	n = answer(m, 1, ext, sizeof(ext));
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), -1);
	/* RDLENGTH past the end. */
	static const uint8_t rdl[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0xff, 0xff, 2 };
	n = answer(m, 1, rdl, sizeof(rdl));
	ck_assert_int_eq(dnsmsg_parse(m, n, &d), -1);
	/* More RRs than DNS_RR_MAX, each of them well formed. */
	{
		static const uint8_t one[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 0 };
		uint8_t many[sizeof(one) * (DNS_RR_MAX + 1)];
		for (i = 0; i <= DNS_RR_MAX; i++)
			memcpy(many + i * sizeof(one), one, sizeof(one));
		n = answer(m, DNS_RR_MAX, many, sizeof(one) * DNS_RR_MAX);
		ck_assert_int_eq(dnsmsg_parse(m, n, &d), 0);
		n = answer(m, DNS_RR_MAX + 1, many, sizeof(many));
		ck_assert_int_eq(dnsmsg_parse(m, n, &d), -1);
	}
	/* A name longer than 255 bytes through pointers: 5 x 63-byte labels. */
	memset(m, 0, sizeof(m));
	for (i = 0; i < 5; i++) {
		m[i * 64] = 63;
		memset(m + i * 64 + 1, 'a', 63);
	}
	m[320] = 0;
	off = 0;
	ck_assert_int_eq(dnsmsg_read_name(m, 321, &off, name), -1);
	m[256] = 0;	/* 4 labels: 256 bytes of wire name, still one too many */
	off = 0;
	ck_assert_int_eq(dnsmsg_read_name(m, 321, &off, name), -1);
	m[192] = 0;	/* 3 labels: 193 bytes */
	off = 0;
	ck_assert_int_eq(dnsmsg_read_name(m, 321, &off, name), 0);
	ck_assert_uint_eq(strlen(name), 191);
	ck_assert_uint_eq(off, 193);
}
END_TEST

START_TEST(txt_value_and_configure)
{
	char v[44];
	struct dns01_conf c;

	/* base64url(SHA-256(key authorisation)), computed with Python's hashlib. */
	ck_assert_int_eq(dns01_txt_value("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
	    "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI", v), 0);
	ck_assert_str_eq(v, "lCM7cZyQXcVHK2nnW3jjAhNT3Fvm18UN-kWZZknKoYM");
	ck_assert_int_eq(dns01_configure(&c, "", "", "", ""), 0);
	ck_assert_int_eq(c.on, 0);
	ck_assert_int_eq(dns01_configure(&c, "[::1]:5353", "example.test", "k", "AAAA"), 0);
	ck_assert_uint_eq(c.key.len, 3);
	ck_assert_int_eq(dns01_configure(&c, "ns.example:53", "", "k", "AAAA"), -1);
	ck_assert_int_eq(dns01_configure(&c, "127.0.0.1:53", "", "k", "AAA"), -1);
}
END_TEST

START_TEST(key_file_parse)
{
	struct acme_dns d;
	char err[200];

	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(acmedns_parse_key("# tsig-keygen\nkey \"dns01-test\" {\n"
	    "\talgorithm hmac-sha256;\n\tsecret \"" VEC_SECRET "\";\n};\n", &d, err, sizeof(err)), 0);
	ck_assert_str_eq(d.keyname, "dns01-test");
	ck_assert_str_eq(d.secret, VEC_SECRET);
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(acmedns_parse_key("key k { algorithm hmac-md5; secret \"AAAA\"; };",
	    &d, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "hmac-sha256"));
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(acmedns_parse_key("key k { algorithm hmac-sha256; };", &d, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(acmedns_parse_key("key \"k { algorithm", &d, err, sizeof(err)), -1);
	ck_assert_int_eq(acmedns_parse_key("", &d, err, sizeof(err)), -1);
}
END_TEST

/*
 * A one-connection server in a child process: reads the framed query,
 * then writes reply (n bytes, framing included) and waits for the close.
 */
static pid_t
fake_server(struct sockaddr_storage *ss, socklen_t *sl, const uint8_t *reply, size_t n)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	uint8_t buf[DNS_MSG_MAX + 2];
	int l, c;
	pid_t pid;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*sl = sizeof(*sin);
	ck_assert_int_ge(l = socket(AF_INET, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)sin, *sl), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)sin, sl), 0);
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		if ((c = accept(l, NULL, NULL)) >= 0) {
			(void)read(c, buf, sizeof(buf));
			if (n > 0)
				(void)write(c, reply, n);
			(void)read(c, buf, sizeof(buf));	/* until the client closes */
		}
		_exit(0);
	}
	close(l);
	return pid;
}

static int
exchange_with(const uint8_t *reply, size_t n, int timeout_ms, char *err, size_t errlen,
    size_t *rlen)
{
	struct sockaddr_storage ss;
	uint8_t resp[DNS_MSG_MAX];
	struct dns_buf q;
	socklen_t sl;
	pid_t pid = fake_server(&ss, &sl, reply, n);
	int rc;

	ck_assert_int_eq(dnsmsg_query(&q, 1, "x.test", DNS_T_TXT), 0);
	rc = dnsclient_exchange(&ss, sl, &q, resp, sizeof(resp), rlen, timeout_ms, err, errlen);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return rc;
}

START_TEST(exchange_bounds)
{
	uint8_t r[2 + 16];
	char err[200];
	size_t rlen = 0;

	/* A frame of 16 bytes: read whole. */
	memset(r, 0, sizeof(r));
	r[1] = 16;
	ck_assert_int_eq(exchange_with(r, sizeof(r), 2000, err, sizeof(err), &rlen), 0);
	ck_assert_uint_eq(rlen, 16);
	/* Longer than our buffer: refused before reading it. */
	r[0] = 0xff;
	r[1] = 0xff;
	ck_assert_int_eq(exchange_with(r, 2, 2000, err, sizeof(err), &rlen), -1);
	ck_assert_ptr_nonnull(strstr(err, "65535 bytes"));
	/* Shorter than a header. */
	r[0] = 0;
	r[1] = 5;
	ck_assert_int_eq(exchange_with(r, 7, 2000, err, sizeof(err), &rlen), -1);
	/* A frame that promises more than comes, and a silent server: the deadline ends both. */
	r[1] = 16;
	ck_assert_int_eq(exchange_with(r, 10, 300, err, sizeof(err), &rlen), -1);
	ck_assert_int_eq(exchange_with(r, 0, 300, err, sizeof(err), &rlen), -1);
	ck_assert_msg(strstr(err, "timed out") != NULL, "%s", err);
}
END_TEST

START_TEST(wildcards_only_by_dns01)
{
	struct acme_peer a;

	memset(&a, 0, sizeof(a));
	/* Without DNS settings: no wildcard, no dns-01. */
	ck_assert_ptr_nonnull(acmeq_refusal(&a, "*.example.com", STORE_CHAL_AUTO));
	ck_assert_ptr_nonnull(strstr(acmeq_refusal(&a, "www.example.com", STORE_CHAL_DNS01),
	    "dns_update_server"));
	ck_assert_ptr_null(acmeq_refusal(&a, "www.example.com", STORE_CHAL_AUTO));
	ck_assert_ptr_null(acmeq_refusal(NULL, "www.example.com", STORE_CHAL_HTTP01));
	a.dns.on = 1;
	ck_assert_ptr_null(acmeq_refusal(&a, "*.example.com", STORE_CHAL_AUTO));
	ck_assert_ptr_null(acmeq_refusal(&a, "*.example.com", STORE_CHAL_DNS01));
	ck_assert_ptr_null(acmeq_refusal(&a, "www.example.com", STORE_CHAL_DNS01));
	/* A wildcard on a route set to another type, or an alias of such a route. */
	ck_assert_ptr_nonnull(acmeq_refusal(&a, "*.example.com", STORE_CHAL_HTTP01));
	ck_assert_ptr_nonnull(acmeq_refusal(&a, "*.example.com", -1));
	/* The base name must still be a public one. */
	ck_assert_ptr_nonnull(acmeq_refusal(&a, "*.localhost", STORE_CHAL_AUTO));
	ck_assert_ptr_nonnull(acmeq_refusal(&a, "*.local", STORE_CHAL_AUTO));
}
END_TEST

Suite *
suite_dns01(void)
{
	Suite *s = suite_create("dns01");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, tsig_sign_matches_dnspython);
	tcase_add_test(tc, tsig_verify_dnspython_answer);
	tcase_add_test(tc, tsig_error_and_unsigned_answers);
	tcase_add_test(tc, update_parses_back);
	tcase_add_test(tc, parse_txt_answer);
	tcase_add_test(tc, parse_hostile_names_and_counts);
	tcase_add_test(tc, txt_value_and_configure);
	tcase_add_test(tc, key_file_parse);
	tcase_add_test(tc, wildcards_only_by_dns01);
	tcase_add_test(tc, exchange_bounds);
	suite_add_tcase(s, tc);
	return s;
}
