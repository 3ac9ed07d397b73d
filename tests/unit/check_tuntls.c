/*
 * Unit tests for tunnel/tuntls.c: the tunnel listener's context from PEM
 * texts and what an agent's certificate says, with real handshakes between
 * an OpenSSL client and tuntls_ssl_new over a socketpair (self-signed
 * certificates from testworker.c; the CA bundle is the agents' own).
 *
 * Covered: a verified client with CN app1 (name, subject, expiry), no client
 * certificate and an unknown one refused at the handshake, a CN that is no
 * tunnel name refused by tuntls_peer, ALPN (h2 chosen, http/1.1 alone
 * refused, none allowed), and bad material refused with a reason.
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "tunnel/tuntls.h"

struct id {
	EVP_PKEY *key;
	X509 *x;
};

static struct id server, app1, bad, stranger;
static char *ca_pem, *srv_pem, *srv_key_pem;
static size_t ca_len, srv_len, srv_key_len;
static SSL_CTX *ctx;

static void
mkid(struct id *i, const char *cn)
{
	ck_assert_ptr_nonnull(i->key = EVP_EC_gen("P-256"));
	i->x = tw_x509(i->key, cn, "DNS:example.test", 2);
}

static char *
pem_of(X509 *x, EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());

	ck_assert_ptr_nonnull(b);
	if (x != NULL)
		ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
	if (k != NULL)
		ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	return tw_bio_take(b, len);
}

static void
setup(void)
{
	char err[256];
	size_t l1, l2;
	char *p1, *p2;

	mkid(&server, "proxy.test");
	mkid(&app1, "app1");
	mkid(&bad, "Bad_Name");
	mkid(&stranger, "app1");
	p1 = pem_of(app1.x, NULL, &l1);
	p2 = pem_of(bad.x, NULL, &l2);
	ck_assert_ptr_nonnull(ca_pem = malloc(l1 + l2));
	memcpy(ca_pem, p1, l1);
	memcpy(ca_pem + l1, p2, l2);
	ca_len = l1 + l2;
	free(p1);
	free(p2);
	srv_pem = pem_of(server.x, NULL, &srv_len);
	srv_key_pem = pem_of(NULL, server.key, &srv_key_len);
	ctx = tuntls_ctx_new(&(struct tuntls_in){ ca_pem, ca_len, srv_pem, srv_len, srv_key_pem,
	    srv_key_len, NULL }, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
}

static void
freeid(struct id *i)
{
	X509_free(i->x);
	EVP_PKEY_free(i->key);
}

static void
teardown(void)
{
	SSL_CTX_free(ctx);
	freeid(&server);
	freeid(&app1);
	freeid(&bad);
	freeid(&stranger);
	free(ca_pem);
	free(srv_pem);
	free(srv_key_pem);
}

/* A handshake of a client as id offering alpn (NULL: none); 1 when both ends finished. */
static int
handshake(const struct id *id, const char *alpn, SSL **srvp)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *c, *s;
	int sv[2], i, cd = 0, sd = 0, failed = 0;

	ck_assert_ptr_nonnull(cctx);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	if (id != NULL) {
		ck_assert_int_eq(SSL_CTX_use_certificate(cctx, id->x), 1);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey(cctx, id->key), 1);
	}
	if (alpn != NULL) {
		unsigned char wire[32];

		wire[0] = (unsigned char)strlen(alpn);
		memcpy(wire + 1, alpn, wire[0]);
		ck_assert_int_eq(SSL_CTX_set_alpn_protos(cctx, wire, wire[0] + 1u), 0);
	}
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ck_assert_ptr_nonnull(c = SSL_new(cctx));
	SSL_set_fd(c, sv[0]);
	SSL_set_connect_state(c);
	ck_assert_ptr_nonnull(s = tuntls_ssl_new(ctx, sv[1]));
	for (i = 0; i < 200 && !failed && !(cd && sd); i++) {
		int r;

		if (!cd && (r = SSL_do_handshake(c)) != 1)
			failed |= SSL_get_error(c, r) != SSL_ERROR_WANT_READ;
		else
			cd = 1;
		if (!sd && (r = SSL_do_handshake(s)) != 1)
			failed |= SSL_get_error(s, r) != SSL_ERROR_WANT_READ;
		else
			sd = 1;
		/* TLS 1.3: the client is done before the server judged its certificate. */
		if (cd && sd)
			break;
	}
	ERR_clear_error();
	SSL_free(c);
	SSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
	if (srvp != NULL && sd && !failed)
		*srvp = s;
	else
		SSL_free(s);
	return sd && !failed;
}

START_TEST(tuntls_verified_agent)
{
	struct tuntls_peer p;
	char err[160];
	SSL *s = NULL;
	const unsigned char *proto;
	unsigned int plen;

	ck_assert(handshake(&app1, "h2", &s));
	SSL_get0_alpn_selected(s, &proto, &plen);
	ck_assert_uint_eq(plen, 2);
	ck_assert_int_eq(memcmp(proto, "h2", 2), 0);
	ck_assert_int_eq(tuntls_peer(s, &p, err, sizeof(err)), 0);
	ck_assert_str_eq(p.name, "app1");
	ck_assert_str_eq(p.subject, "CN=app1");
	ck_assert_int_gt(p.not_after, (int64_t)time(NULL));
	SSL_free(s);
}
END_TEST

START_TEST(tuntls_refuses_without_or_unknown_cert)
{
	ck_assert(!handshake(NULL, "h2", NULL));
	ck_assert(!handshake(&stranger, "h2", NULL));
}
END_TEST

START_TEST(tuntls_bad_cn)
{
	struct tuntls_peer p;
	char err[160];
	SSL *s = NULL;

	ck_assert(handshake(&bad, "h2", &s));
	ck_assert_int_eq(tuntls_peer(s, &p, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a tunnel name"));
	SSL_free(s);
}
END_TEST

START_TEST(tuntls_alpn)
{
	SSL *s = NULL;
	const unsigned char *proto;
	unsigned int plen;

	ck_assert(!handshake(&app1, "http/1.1", NULL));
	ck_assert(handshake(&app1, "h2-reverse", &s));
	SSL_get0_alpn_selected(s, &proto, &plen);
	ck_assert_uint_eq(plen, 10);
	SSL_free(s);
	s = NULL;
	ck_assert(handshake(&app1, NULL, &s));	/* no ALPN: the magic decides */
	SSL_free(s);
}
END_TEST

START_TEST(tuntls_bad_material)
{
	char err[256];
	SSL_CTX *c;

	c = tuntls_ctx_new(&(struct tuntls_in){ "junk", 4, NULL, 0, NULL, 0, NULL }, err,
	    sizeof(err));
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(err, "tunnel_ca_file"));
	/* A key that is not the certificate's. */
	c = tuntls_ctx_new(&(struct tuntls_in){ ca_pem, ca_len, srv_pem, srv_len, ca_pem, ca_len,
	    NULL }, err, sizeof(err));
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(err, "tunnel_cert"));
}
END_TEST

Suite *
suite_tuntls(void)
{
	Suite *s = suite_create("tuntls");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, tuntls_verified_agent);
	tcase_add_test(tc, tuntls_refuses_without_or_unknown_cert);
	tcase_add_test(tc, tuntls_bad_cn);
	tcase_add_test(tc, tuntls_alpn);
	tcase_add_test(tc, tuntls_bad_material);
	suite_add_tcase(s, tc);
	return s;
}
