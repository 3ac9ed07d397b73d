/*
 * The TLS-ALPN-01 challenge certificate (acme/alpncert.c, RFC 8737
 * section 3) and the master's check of it (master/acmealpn.c): the
 * extension's bytes, what the child makes, what the master refuses.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acme/acmechild.h"
#include "master/acmeint.h"
#include "tests/unit/suites.h"

#define KEYAUTH "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"

/* SHA-256("abc"): FIPS 180-2's first example. */
static const uint8_t sha_abc[32] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
	0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
	0x15, 0xad };

START_TEST(extension_value_bytes)
{
	uint8_t v[ALPNCERT_EXT_LEN];

	/* Authorization ::= OCTET STRING (SIZE (32)): tag 04, length 32, the digest. */
	ck_assert_int_eq(alpncert_ext_value("abc", v), 0);
	ck_assert_uint_eq(v[0], 0x04);
	ck_assert_uint_eq(v[1], 0x20);
	ck_assert_mem_eq(v + 2, sha_abc, sizeof(sha_abc));
}
END_TEST

static X509 *
pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	ck_assert_ptr_nonnull(x);
	return x;
}

START_TEST(challenge_certificate)
{
	uint8_t want[ALPNCERT_EXT_LEN];
	ASN1_OBJECT *obj = OBJ_txt2obj(ALPNCERT_OID, 1);
	const ASN1_OCTET_STRING *d;
	GENERAL_NAMES *g;
	X509_EXTENSION *e;
	char *cert, *key;
	X509 *x;
	int i;

	ck_assert_int_eq(alpncert_make("a.example.com", KEYAUTH, &cert, &key), 0);
	ck_assert_ptr_nonnull(strstr(key, "PRIVATE KEY"));
	x = pem_cert(cert);
	/* id-pe-acmeIdentifier, critical, whose extnValue is the DER OCTET STRING of the digest. */
	ck_assert_int_ge((i = X509_get_ext_by_OBJ(x, obj, -1)), 0);
	e = X509_get_ext(x, i);
	ck_assert(X509_EXTENSION_get_critical(e));
	d = X509_EXTENSION_get_data(e);
	ck_assert_int_eq(alpncert_ext_value(KEYAUTH, want), 0);
	ck_assert_int_eq(ASN1_STRING_length(d), ALPNCERT_EXT_LEN);
	ck_assert_mem_eq(ASN1_STRING_get0_data(d), want, ALPNCERT_EXT_LEN);
	/* The only name is the identifier; self-signed. */
	g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	ck_assert_int_eq(sk_GENERAL_NAME_num(g), 1);
	ck_assert_int_eq(sk_GENERAL_NAME_value(g, 0)->type, GEN_DNS);
	GENERAL_NAMES_free(g);
	ck_assert_int_eq(X509_check_host(x, "a.example.com", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(x)), 1);
	X509_free(x);
	ASN1_OBJECT_free(obj);
	free(cert);
	free(key);
}
END_TEST

START_TEST(master_check)
{
	char *cert, *key, *cert2, *key2, *tp, *both, err[300];
	EVP_PKEY *pk;
	BIO *b;
	const char *acct = "0123456789012345678901234567890123456789abc";

	ck_assert_int_eq(alpncert_make("a.example.com", KEYAUTH, &cert, &key), 0);
	ck_assert_int_eq(alpncert_make("a.example.com", KEYAUTH, &cert2, &key2), 0);
	ck_assert_int_eq(acmealpn_check("a.example.com", KEYAUTH, cert, key, acct, err,
	    sizeof(err)), 0);
	/* Another name, another key authorisation, a key that is not the certificate's. */
	ck_assert_int_eq(acmealpn_check("b.example.com", KEYAUTH, cert, key, acct, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "identifier"));
	ck_assert_int_eq(acmealpn_check("a.example.com", "x.y", cert, key, acct, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "acmeIdentifier"));
	ck_assert_int_eq(acmealpn_check("a.example.com", KEYAUTH, cert, key2, acct, err,
	    sizeof(err)), -1);
	/* Two certificates. */
	ck_assert_int_ne(asprintf(&both, "%s%s", cert, cert2), -1);
	ck_assert_int_eq(acmealpn_check("a.example.com", KEYAUTH, both, key, acct, err,
	    sizeof(err)), -1);
	free(both);
	/* The account's own key (its thumbprint) is refused. */
	b = BIO_new_mem_buf(key, -1);
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	ck_assert_ptr_nonnull((tp = jws_thumbprint(pk)));
	ck_assert_int_eq(acmealpn_check("a.example.com", KEYAUTH, cert, key, tp, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "account key"));
	free(tp);
	EVP_PKEY_free(pk);
	free(cert);
	free(key);
	free(cert2);
	free(key2);
}
END_TEST

Suite *
suite_alpncert(void)
{
	Suite *s = suite_create("alpncert");
	TCase *tc = tcase_create("alpncert");

	tcase_add_test(tc, extension_value_bytes);
	tcase_add_test(tc, challenge_certificate);
	tcase_add_test(tc, master_check);
	suite_add_tcase(s, tc);
	return s;
}
