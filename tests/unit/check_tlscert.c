/*
 * Unit tests for worker/tlscert.c: certificates kept as DER (PEM decoded,
 * nothing parsed), checked at first use, parsed again after eviction, the bound on parsed ones, the
 * least recently used evicted first, and a connection keeping what it was
 * given after its certificate left the cache.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/tlscert.h"

struct pem {
	char *chain, *key;
	size_t chain_len, key_len;
};

static struct pem
pem_gen(const char *cn)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct pem p;
	X509 *x;
	BIO *b;

	ck_assert_ptr_nonnull(k);
	x = tw_x509(k, cn, "DNS:x.test", 30);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
	p.chain = tw_bio_take(b, &p.chain_len);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	p.key = tw_bio_take(b, &p.key_len);
	X509_free(x);
	EVP_PKEY_free(k);
	return p;
}

static void
pem_free(struct pem *p)
{
	free(p->chain);
	free(p->key);
}

static const char *
leaf_cn(struct tlscert_cache *cc, struct tlscert *c)
{
	static char cn[64];
	X509 *x = tlscert_leaf(cc, c);

	ck_assert_ptr_nonnull(x);
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
	    sizeof(cn)), 0);
	return cn;
}

START_TEST(refuses_mismatch_and_garbage)
{
	struct tlscert_cache *cc = tlscert_cache_new(4);
	struct pem a = pem_gen("a"), b = pem_gen("b");
	struct tlscert *c;
	char err[160] = "";

	/* A key that does not match: kept (nothing is parsed at install), bad at first use. */
	c = tlscert_new(cc, 7, a.chain, a.chain_len, b.key, b.key_len, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(tlscert_is_bad(c), 0);
	ck_assert_int_eq(tlscert_check(cc, c), -1);
	ck_assert_int_eq(tlscert_is_bad(c), 1);
	ck_assert_ptr_null(tlscert_leaf(cc, c));
	ck_assert_uint_eq(tlscert_cache_parsed(cc), 0);
	tlscert_unref(cc, c);
	/* PEM that does not decode, an encrypted key: refused at install. */
	ck_assert_ptr_null(tlscert_new(cc, 1, "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
	    57, a.key, a.key_len, err, sizeof(err)));
	ck_assert_str_eq(err, "bad certificate chain");
	ck_assert_ptr_null(tlscert_new(cc, 1, a.chain, a.chain_len, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
	    "-----END ENCRYPTED PRIVATE KEY-----\n", 74, err, sizeof(err)));
	ck_assert_str_eq(err, "bad private key");
	/* DER garbage is only found at first use. */
	c = tlscert_new(cc, 2, "garbage", 7, a.key, a.key_len, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(tlscert_check(cc, c), -1);
	tlscert_unref(cc, c);
	/* The good pair. */
	c = tlscert_new(cc, 3, a.chain, a.chain_len, a.key, a.key_len, err, sizeof(err));
	ck_assert_int_eq(tlscert_check(cc, c), 0);
	ck_assert_uint_eq(tlscert_cache_parsed(cc), 1);
	tlscert_unref(cc, c);
	pem_free(&a);
	pem_free(&b);
	tlscert_cache_free(cc);
}
END_TEST

START_TEST(bound_and_reparse)
{
	struct tlscert_cache *cc = tlscert_cache_new(2);
	struct pem p[3];
	struct tlscert *c[3];
	char err[160], cn[2] = "0";
	int i;

	for (i = 0; i < 3; i++) {
		cn[0] = (char)('0' + i);
		p[i] = pem_gen(cn);
		c[i] = tlscert_new(cc, (uint32_t)i, p[i].chain, p[i].chain_len, p[i].key,
		    p[i].key_len, err, sizeof(err));
		ck_assert_msg(c[i] != NULL, "%s", err);
		ck_assert_uint_eq(tlscert_cache_parsed(cc), i > 1 ? 2 : (size_t)i);	/* parsed at first use */
		ck_assert_str_eq(leaf_cn(cc, c[i]), cn);
		ck_assert_uint_le(tlscert_cache_parsed(cc), 2);
	}
	/* 0 was the least recently used: parsed again from its DER, and 1 goes. */
	ck_assert_str_eq(leaf_cn(cc, c[0]), "0");
	ck_assert_uint_eq(tlscert_cache_parsed(cc), 2);
	ck_assert_str_eq(leaf_cn(cc, c[2]), "2");
	ck_assert_str_eq(leaf_cn(cc, c[1]), "1");
	ck_assert_str_eq(leaf_cn(cc, c[2]), "2");
	/* A second owner: the first release keeps it. */
	tlscert_ref(c[2]);
	tlscert_unref(cc, c[2]);
	ck_assert_str_eq(leaf_cn(cc, c[2]), "2");
	for (i = 0; i < 3; i++) {
		tlscert_unref(cc, c[i]);
		pem_free(&p[i]);
	}
	ck_assert_uint_eq(tlscert_cache_parsed(cc), 0);
	tlscert_cache_free(cc);
}
END_TEST

START_TEST(ssl_keeps_its_references)
{
	struct tlscert_cache *cc = tlscert_cache_new(1);
	struct pem a = pem_gen("a"), b = pem_gen("b");
	struct tlscert *ca, *cb;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL *ssl;
	char err[160];

	ck_assert_ptr_nonnull(ctx);
	ca = tlscert_new(cc, 1, a.chain, a.chain_len, a.key, a.key_len, err, sizeof(err));
	cb = tlscert_new(cc, 2, b.chain, b.chain_len, b.key, b.key_len, err, sizeof(err));
	ck_assert_ptr_nonnull(ca);
	ck_assert_ptr_nonnull(cb);
	ssl = SSL_new(ctx);
	ck_assert_int_eq(tlscert_use(cc, ca, ssl), 0);
	/* a leaves the cache and is released: ssl still holds a working certificate and key. */
	ck_assert_str_eq(leaf_cn(cc, cb), "b");
	tlscert_unref(cc, ca);
	ck_assert_ptr_nonnull(SSL_get_certificate(ssl));
	ck_assert_int_eq(SSL_check_private_key(ssl), 1);
	/* Another certificate replaces it. */
	ck_assert_int_eq(tlscert_use(cc, cb, ssl), 0);
	ck_assert_int_eq(X509_cmp(SSL_get_certificate(ssl), tlscert_leaf(cc, cb)), 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	tlscert_unref(cc, cb);
	pem_free(&a);
	pem_free(&b);
	tlscert_cache_free(cc);
}
END_TEST

Suite *
suite_tlscert(void)
{
	Suite *s = suite_create("tlscert");
	TCase *tc = tcase_create("cache");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, refuses_mismatch_and_garbage);
	tcase_add_test(tc, bound_and_reparse);
	tcase_add_test(tc, ssl_keeps_its_references);
	suite_add_tcase(s, tc);
	return s;
}
