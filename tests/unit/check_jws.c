/* The ACME child's JOSE code (acme/jws.c): base64url, JWK, thumbprint, ES256 JWS, CSR. */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/acmechild.h"
#include "tests/unit/suites.h"

static const struct {
	const char *in, *out;
} b64_vectors[] = {
	/* RFC 4648 section 10, without padding */
	{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
	/* the two characters base64url changes: 62 '-' and 63 '_' */
	{ "\xfb\xff\xbf", "-_-_" },
};

START_TEST(b64u_vectors)
{
	size_t i, n;
	uint8_t *dec;
	char *enc;

	for (i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
		enc = jws_b64u(b64_vectors[i].in, strlen(b64_vectors[i].in));
		ck_assert_ptr_nonnull(enc);
		ck_assert_str_eq(enc, b64_vectors[i].out);
		ck_assert_int_eq(jws_b64u_decode(enc, &dec, &n), 0);
		ck_assert_uint_eq(n, strlen(b64_vectors[i].in));
		ck_assert(memcmp(dec, b64_vectors[i].in, n) == 0);
		free(dec);
		free(enc);
	}
}
END_TEST

START_TEST(b64u_rejects)
{
	static const char *bad[] = { "Zm9v=", "Z", "Zh", "Zm+v", "Zm/v", "Zm9 " };
	size_t i, n;
	uint8_t *dec;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(jws_b64u_decode(bad[i], &dec, &n) == -1, "accepted '%s'", bad[i]);
}
END_TEST

/* RFC 7638 section 3.1: the example RSA key and its thumbprint. */
static const char rfc7638_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvzq"
    "Y368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0"
    "fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

static EVP_PKEY *
rsa_from_b64u(const char *n64, const char *e64)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;
	BIGNUM *n, *e;
	uint8_t *nb, *eb;
	size_t nl, el;

	ck_assert_int_eq(jws_b64u_decode(n64, &nb, &nl), 0);
	ck_assert_int_eq(jws_b64u_decode(e64, &eb, &el), 0);
	n = BN_bin2bn(nb, (int)nl, NULL);
	e = BN_bin2bn(eb, (int)el, NULL);
	ck_assert(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1);
	ck_assert(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1);
	params = OSSL_PARAM_BLD_to_param(bld);
	ck_assert(EVP_PKEY_fromdata_init(ctx) == 1);
	ck_assert(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) == 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	free(nb);
	free(eb);
	return k;
}

START_TEST(thumbprint_rfc7638)
{
	EVP_PKEY *k = rsa_from_b64u(rfc7638_n, "AQAB");
	char *jwk = jws_jwk(k), *tp = jws_thumbprint(k), *want;

	ck_assert_int_ne(asprintf(&want, "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}", rfc7638_n), -1);
	ck_assert_str_eq(jwk, want);
	ck_assert_str_eq(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	free(want);
	free(jwk);
	free(tp);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(jwk_ec_canonical)
{
	EVP_PKEY *k = jws_key_new();
	char *jwk = jws_jwk(k), *tp = jws_thumbprint(k);
	json_t *j = json_loads(jwk, 0, NULL);

	ck_assert_ptr_nonnull(j);
	ck_assert(strncmp(jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"",
	    strlen("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"")) == 0);
	/* 32-byte coordinates, so always 43 characters, leading zeroes kept */
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "x"))), 43);
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "y"))), 43);
	ck_assert_uint_eq(strlen(tp), 43);
	json_decref(j);
	free(jwk);
	free(tp);
	EVP_PKEY_free(k);
}
END_TEST

static char *
b64u_field_str(json_t *o, const char *key)
{
	uint8_t *d;
	size_t n;
	char *s;

	ck_assert_int_eq(jws_b64u_decode(json_string_value(json_object_get(o, key)), &d, &n), 0);
	s = malloc(n + 1);
	memcpy(s, d, n);
	s[n] = '\0';
	free(d);
	return s;
}

/* Checks the ES256 signature of a flattened JWS with key. */
static void
verify_jws(const char *jws, EVP_PKEY *key)
{
	json_t *j = json_loads(jws, 0, NULL);
	const char *ph = json_string_value(json_object_get(j, "protected"));
	const char *pl = json_string_value(json_object_get(j, "payload"));
	uint8_t *raw, *der = NULL;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *input;
	size_t n;
	int dl;

	ck_assert_ptr_nonnull(ph);
	ck_assert_ptr_nonnull(pl);
	ck_assert_int_eq(jws_b64u_decode(json_string_value(json_object_get(j, "signature")),
	    &raw, &n), 0);
	ck_assert_uint_eq(n, 64);
	ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
	dl = i2d_ECDSA_SIG(sig, &der);
	ck_assert_int_gt(dl, 0);
	ck_assert_int_ne(asprintf(&input, "%s.%s", ph, pl), -1);
	ck_assert(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1);
	ck_assert_int_eq(EVP_DigestVerify(ctx, der, (size_t)dl, (uint8_t *)input, strlen(input)), 1);
	/* one changed byte of the signed input and it must fail */
	input[0] ^= 1;
	ck_assert(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1);
	ck_assert_int_ne(EVP_DigestVerify(ctx, der, (size_t)dl, (uint8_t *)input, strlen(input)), 1);
	free(input);
	OPENSSL_free(der);
	free(raw);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(ctx);
	json_decref(j);
}

START_TEST(jws_jwk_then_kid)
{
	EVP_PKEY *k = jws_key_new();
	char *jws, *hdr, *jwk = jws_jwk(k), *pl;
	json_t *j, *h, *pub = json_loads(jwk, 0, NULL);

	/* before registration: the public key itself in the header */
	jws = jws_sign(k, NULL, "nonce-1", "https://ca/new-acct", "{\"termsOfServiceAgreed\":true}");
	ck_assert_ptr_nonnull(jws);
	verify_jws(jws, k);
	j = json_loads(jws, 0, NULL);
	hdr = b64u_field_str(j, "protected");
	h = json_loads(hdr, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(h, "alg")), "ES256");
	ck_assert_str_eq(json_string_value(json_object_get(h, "nonce")), "nonce-1");
	ck_assert_str_eq(json_string_value(json_object_get(h, "url")), "https://ca/new-acct");
	ck_assert_ptr_null(json_object_get(h, "kid"));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(h, "jwk"), "x")),
	    json_string_value(json_object_get(pub, "x")));
	json_decref(pub);
	pl = b64u_field_str(j, "payload");
	ck_assert_str_eq(pl, "{\"termsOfServiceAgreed\":true}");
	free(pl);
	free(hdr);
	json_decref(h);
	json_decref(j);
	free(jws);

	/* after: kid, no jwk; POST-as-GET has an empty payload */
	jws = jws_sign(k, "https://ca/acct/1", "nonce-2", "https://ca/order/1", "");
	verify_jws(jws, k);
	j = json_loads(jws, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "payload")), "");
	hdr = b64u_field_str(j, "protected");
	h = json_loads(hdr, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(h, "kid")), "https://ca/acct/1");
	ck_assert_ptr_null(json_object_get(h, "jwk"));
	free(hdr);
	json_decref(h);
	json_decref(j);
	free(jws);
	free(jwk);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(csr_names)
{
	char *names[] = { (char *)(uintptr_t)"app.example.com", (char *)(uintptr_t)"www.app.example.com" };
	EVP_PKEY *k = jws_key_new();
	char *csr = jws_csr(k, names, 2);
	const uint8_t *p;
	uint8_t *der;
	size_t n;
	X509_REQ *req;
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *gens;
	int i;

	ck_assert_ptr_nonnull(csr);
	ck_assert_int_eq(jws_b64u_decode(csr, &der, &n), 0);
	p = der;
	req = d2i_X509_REQ(NULL, &p, (long)n);
	ck_assert_ptr_nonnull(req);
	ck_assert_int_eq(X509_REQ_verify(req, k), 1);
	exts = X509_REQ_get_extensions(req);
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	ck_assert_int_eq(sk_GENERAL_NAME_num(gens), 2);
	for (i = 0; i < 2; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		ck_assert_int_eq(g->type, GEN_DNS);
		ck_assert_str_eq((const char *)ASN1_STRING_get0_data(g->d.dNSName), names[i]);
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	free(der);
	free(csr);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(account_key_file)
{
	char dir[] = "/tmp/check_jws.XXXXXX";
	EVP_PKEY *a, *b;
	struct stat st;
	int dfd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	a = jws_key_load(dfd, "account.key");
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(fstatat(dfd, "account.key", &st, 0), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	b = jws_key_load(dfd, "account.key");	/* read back, not made again */
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(EVP_PKEY_eq(a, b), 1);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	unlinkat(dfd, "account.key", 0);
	close(dfd);
	rmdir(dir);
}
END_TEST

START_TEST(retry_after_values)
{
	time_t now = 1700000000;	/* Tue, 14 Nov 2023 22:13:20 GMT */

	ck_assert_uint_eq(acme_retry_after("120", now), 120);
	ck_assert_uint_eq(acme_retry_after("0", now), 0);
	ck_assert_uint_eq(acme_retry_after("99999999", now), 86400);	/* capped at a day */
	ck_assert_uint_eq(acme_retry_after("Tue, 14 Nov 2023 22:14:20 GMT", now), 60);
	ck_assert_uint_eq(acme_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now), 0);	/* past */
	ck_assert_uint_eq(acme_retry_after("soon", now), 0);
	ck_assert_uint_eq(acme_retry_after("-5", now), 0);
}
END_TEST

Suite *
suite_jws(void)
{
	Suite *s = suite_create("jws");
	TCase *tc = tcase_create("jws");

	tcase_add_test(tc, b64u_vectors);
	tcase_add_test(tc, b64u_rejects);
	tcase_add_test(tc, thumbprint_rfc7638);
	tcase_add_test(tc, jwk_ec_canonical);
	tcase_add_test(tc, jws_jwk_then_kid);
	tcase_add_test(tc, csr_names);
	tcase_add_test(tc, account_key_file);
	tcase_add_test(tc, retry_after_values);
	suite_add_tcase(s, tc);
	return s;
}
