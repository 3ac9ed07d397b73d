/*
 * The TLS-ALPN-01 challenge certificate (RFC 8737 section 3): a throwaway
 * P-256 key (never the account key: the certificate and its key go to the
 * master and on to every worker) and a self-signed certificate whose only
 * name (subjectAltName) is the identifier and whose critical id-pe-acmeIdentifier extension
 * holds SHA-256 of the key authorisation.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "acme/acmechild.h"

#define ALPN_CERT_DAYS 7	/* a validation takes minutes; the CA does not check dates */

int
alpncert_ext_value(const char *keyauth, uint8_t out[ALPNCERT_EXT_LEN])
{
	/* extnValue's content: the DER of Authorization ::= OCTET STRING (SIZE (32)). */
	out[0] = 0x04;
	out[1] = 32;
	return EVP_Digest(keyauth, strlen(keyauth), out + 2, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static int
alpncert_add_ext(X509 *x, const char *host, const char *keyauth)
{
	uint8_t val[ALPNCERT_EXT_LEN];
	ASN1_OBJECT *obj = OBJ_txt2obj(ALPNCERT_OID, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	int rc = -1;

	if (obj == NULL || os == NULL || gens == NULL || gen == NULL || ia5 == NULL ||
	    alpncert_ext_value(keyauth, val) == -1 || ASN1_OCTET_STRING_set(os, val, sizeof(val)) != 1 ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, os)) == NULL ||
	    X509_add_ext(x, ext, -1) != 1 || ASN1_STRING_set(ia5, host, (int)strlen(host)) != 1)
		goto out;
	GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
	ia5 = NULL;
	if (sk_GENERAL_NAME_push(gens, gen) <= 0)
		goto out;
	gen = NULL;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		goto out;
	rc = 0;
out:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return rc;
}

/* PEM of x or of key into a malloc'd NUL-terminated string. */
static char *
alpncert_pem(X509 *x, EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *s = NULL;
	long n;

	if (bio == NULL)
		return NULL;
	if ((x != NULL ? PEM_write_bio_X509(bio, x) :
	    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) == 1 &&
	    (n = BIO_get_mem_data(bio, &p)) > 0 && (s = malloc((size_t)n + 1)) != NULL) {
		memcpy(s, p, (size_t)n);
		s[n] = '\0';
		OPENSSL_cleanse(p, (size_t)n);
	}
	BIO_free(bio);
	return s;
}

int
alpncert_make(const char *host, const char *keyauth, char **cert_pem, char **key_pem)
{
	EVP_PKEY *key = jws_key_new();
	X509 *x = X509_new();
	X509_NAME *name;
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	int rc = -1;

	*cert_pem = *key_pem = NULL;
	if (key == NULL || x == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;	/* a positive serial */
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * ALPN_CERT_DAYS) == NULL ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"haloyd tls-alpn-01", -1, -1, 0) != 1 || X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, key) != 1 ||
	    alpncert_add_ext(x, host, keyauth) == -1 || X509_sign(x, key, EVP_sha256()) <= 0)
		goto out;
	if ((*cert_pem = alpncert_pem(x, NULL)) == NULL || (*key_pem = alpncert_pem(NULL, key)) == NULL)
		goto out;
	rc = 0;
out:
	if (rc == -1) {
		free(*cert_pem);
		if (*key_pem != NULL)
			OPENSSL_cleanse(*key_pem, strlen(*key_pem));
		free(*key_pem);
		*cert_pem = *key_pem = NULL;
	}
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}
