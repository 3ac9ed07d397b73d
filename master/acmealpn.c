/*
 * The master's check of a TLS-ALPN-01 challenge certificate (RFC 8737
 * section 3) before any worker serves it: what a compromised ACME child
 * could abuse is a certificate for another name, one that proves something
 * else than the running order's key authorisation, or one that carries
 * the account key to every worker.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acme/acmechild.h"
#include "master/acmeint.h"

/* Exactly one subjectAltName, the dNSName host. */
static int
alpn_san_is(X509 *x, const char *host)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	const GENERAL_NAME *n;
	int ok = 0;

	if (g != NULL && sk_GENERAL_NAME_num(g) == 1 && (n = sk_GENERAL_NAME_value(g, 0))->type ==
	    GEN_DNS && (size_t)ASN1_STRING_length(n->d.dNSName) == strlen(host) &&
	    memcmp(ASN1_STRING_get0_data(n->d.dNSName), host, strlen(host)) == 0)
		ok = 1;
	GENERAL_NAMES_free(g);
	return ok;
}

/* The acmeIdentifier extension: present once, critical, SHA-256(keyauth) as an OCTET STRING. */
static int
alpn_ext_is(X509 *x, const char *keyauth)
{
	uint8_t want[ALPNCERT_EXT_LEN];
	ASN1_OBJECT *obj = OBJ_txt2obj(ALPNCERT_OID, 1);
	const ASN1_OCTET_STRING *d;
	X509_EXTENSION *e;
	int i, ok = 0;

	want[0] = 0x04;
	want[1] = 32;
	if (obj == NULL || (i = X509_get_ext_by_OBJ(x, obj, -1)) < 0 ||
	    X509_get_ext_by_OBJ(x, obj, i) >= 0 || (e = X509_get_ext(x, i)) == NULL ||
	    !X509_EXTENSION_get_critical(e) || (d = X509_EXTENSION_get_data(e)) == NULL ||
	    EVP_Digest(keyauth, strlen(keyauth), want + 2, NULL, EVP_sha256(), NULL) != 1)
		goto out;
	ok = ASN1_STRING_length(d) == (int)sizeof(want) &&
	    memcmp(ASN1_STRING_get0_data(d), want, sizeof(want)) == 0;
out:
	ASN1_OBJECT_free(obj);
	return ok;
}

int
acmealpn_check(const char *host, const char *keyauth, const char *cert, const char *key,
    const char *account_thumbprint, char *err, size_t errlen)
{
	BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
	X509 *x = NULL, *extra = NULL;
	EVP_PKEY *pk = NULL, *pub;
	char *tp = NULL;
	const char *why = NULL;

	if (cb == NULL || kb == NULL || (x = PEM_read_bio_X509(cb, NULL, NULL, NULL)) == NULL ||
	    (pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)) == NULL)
		why = "unreadable certificate or key";
	else if ((extra = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL)
		why = "more than one certificate";
	else if (X509_check_private_key(x, pk) != 1)
		why = "the key is not the certificate's";
	else if ((pub = X509_get0_pubkey(x)) == NULL || X509_verify(x, pub) != 1)
		why = "not self-signed";
	else if (!alpn_san_is(x, host))
		why = "its only name is not the identifier";
	else if (!alpn_ext_is(x, keyauth))
		why = "no critical acmeIdentifier extension of the key authorisation";
	else if ((tp = jws_thumbprint(pk)) == NULL || strcmp(tp, account_thumbprint) == 0)
		why = "it uses the account key";
	if (why != NULL)
		snprintf(err, errlen, "challenge certificate for %s refused: %s", host, why);
	ERR_clear_error();
	free(tp);
	EVP_PKEY_free(pk);
	X509_free(extra);
	X509_free(x);
	BIO_free(kb);
	BIO_free(cb);
	return why == NULL ? 0 : -1;
}
