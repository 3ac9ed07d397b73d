/*
 * ACME Renewal Information in the child (acme/ari.c): the certificate's
 * ARI id against RFC 9773's example, and the renewalInfo answer's window.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acme/acmechild.h"
#include "tests/unit/suites.h"

/* RFC 9773 section 4.1's example certificate: its keyIdentifier and serial. */
static const uint8_t rfc_kid[] = { 0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
	0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4 };
#define RFC_SERIAL 0x87654321L
#define RFC_ARI_ID "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"

/* A certificate with that AKI and serial (or no AKI), as PEM. */
static char *
make_cert(int with_aki)
{
	EVP_PKEY *key = jws_key_new();
	X509 *x = X509_new();
	AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *pem;
	long n;

	ck_assert(key != NULL && x != NULL && aki != NULL && bio != NULL);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), RFC_SERIAL), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	if (with_aki) {
		aki->keyid = ASN1_OCTET_STRING_new();
		ck_assert_int_eq(ASN1_OCTET_STRING_set(aki->keyid, rfc_kid, sizeof(rfc_kid)), 1);
		ck_assert_int_eq(X509_add1_ext_i2d(x, NID_authority_key_identifier, aki, 0, 0), 1);
	}
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	ck_assert_int_eq(PEM_write_bio_X509(bio, x), 1);
	n = BIO_get_mem_data(bio, &p);
	pem = strndup(p, (size_t)n);
	BIO_free(bio);
	AUTHORITY_KEYID_free(aki);
	X509_free(x);
	EVP_PKEY_free(key);
	return pem;
}

START_TEST(ari_id_rfc_example)
{
	char *pem = make_cert(1), *id = ari_cert_id(pem);

	ck_assert_ptr_nonnull(id);
	/* The serial's DER content keeps its leading zero (0x87 has the high bit set). */
	ck_assert_str_eq(id, RFC_ARI_ID);
	free(id);
	free(pem);
	pem = make_cert(0);
	ck_assert_ptr_null(ari_cert_id(pem));	/* no AKI: no ARI id */
	free(pem);
	ck_assert_ptr_null(ari_cert_id("not a certificate"));
}
END_TEST

START_TEST(ari_window_parse)
{
	int64_t s, e;
	char *url;

	ck_assert_int_eq(ari_parse("{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\","
	    "\"end\":\"2025-01-03T04:00:00Z\"},\"explanationURL\":\"https://ca.example/x\"}",
	    &s, &e, &url), 0);
	ck_assert_int_eq(s, 1735790400);
	ck_assert_int_eq(e, 1735876800);
	ck_assert_str_eq(url, "https://ca.example/x");
	free(url);
	/* Fractions and offsets (RFC 3339); no explanation. */
	ck_assert_int_eq(ari_parse("{\"suggestedWindow\":{\"start\":\"2025-01-02T05:00:00.123+01:00\","
	    "\"end\":\"2025-01-02T04:00:01.5Z\"}}", &s, &e, &url), 0);
	ck_assert_int_eq(s, 1735790400);
	ck_assert_int_eq(e, 1735790401);
	ck_assert_ptr_null(url);
	/* Refused: an end before the start, a missing or unreadable time, not JSON. */
	ck_assert_int_eq(ari_parse("{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\","
	    "\"end\":\"2025-01-02T04:00:00Z\"}}", &s, &e, &url), -1);
	ck_assert_int_eq(ari_parse("{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\"}}",
	    &s, &e, &url), -1);
	ck_assert_int_eq(ari_parse("{\"suggestedWindow\":{\"start\":\"yesterday\","
	    "\"end\":\"2025-01-02T04:00:00Z\"}}", &s, &e, &url), -1);
	ck_assert_int_eq(ari_parse("{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Zjunk\","
	    "\"end\":\"2025-01-02T04:00:00Z\"}}", &s, &e, &url), -1);
	ck_assert_int_eq(ari_parse("[]", &s, &e, &url), -1);
	ck_assert_int_eq(ari_parse("", &s, &e, &url), -1);
}
END_TEST

Suite *
suite_ari(void)
{
	Suite *s = suite_create("ari");
	TCase *tc = tcase_create("ari");

	tcase_add_test(tc, ari_id_rfc_example);
	tcase_add_test(tc, ari_window_parse);
	suite_add_tcase(s, tc);
	return s;
}
