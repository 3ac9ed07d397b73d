/*
 * Certificate checks and the self-signed default, with OpenSSL 3. Input is
 * an operator's files, so every failure becomes one readable line; the
 * chain and key are re-encoded from the parsed objects, so what is stored
 * is exactly what was checked (no stray text, no encrypted key).
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "master/certs.h"
#include "share/hostname.h"
#include "share/util.h"

#define CERTS_CHAIN_MAX 10	/* certificates in one chain */

static int certs_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes one line into err, drops OpenSSL's error queue; always -1. */
static int
certs_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	util_verrf(err, errlen, fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return -1;
}

/* The reason of OpenSSL's latest error, for a refusal line. */
static const char *
ssl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());

	return r != NULL ? r : "unreadable";
}

void
certs_format_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "@%lld", (long long)t);
}

int
certs_covers(const char *pattern, const char *host)
{
	const char *dot;

	if (strcmp(pattern, host) == 0)
		return 1;
	if (!hostname_is_wildcard(pattern) || hostname_is_wildcard(host))
		return 0;
	/* "*.x" stands for exactly one label: host must be "label.x". */
	if ((dot = strchr(host, '.')) == NULL || dot == host)
		return 0;
	return strcmp(dot + 1, pattern + 2) == 0;
}

/* Never prompt on the master's terminal for a pass phrase. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Every PEM certificate of text, in order; at least one, at most max. what names it in errors. */
static int
read_chain(const char *text, size_t len, int max, const char *what, STACK_OF(X509) **out,
    char *err, size_t errlen)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	unsigned long e;
	X509 *x;

	*out = NULL;
	if (sk == NULL || bio == NULL) {
		certs_fail(err, errlen, "%s: out of memory", what);
		goto fail;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
		if (sk_X509_num(sk) == max || !sk_X509_push(sk, x)) {
			X509_free(x);
			certs_fail(err, errlen, "%s: more than %d certificates", what, max);
			goto fail;
		}
	}
	/* The loop ends on "no start line" after the last block; anything else is damage. */
	e = ERR_peek_last_error();
	if (sk_X509_num(sk) == 0 || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		certs_fail(err, errlen, "%s: %s", what, sk_X509_num(sk) == 0 ?
		    "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)" :
		    "a PEM block is damaged");
		goto fail;
	}
	ERR_clear_error();
	BIO_free(bio);
	*out = sk;
	return 0;
fail:
	BIO_free(bio);
	sk_X509_pop_free(sk, X509_free);
	return -1;
}

/* Names EC P-256 / P-384 and RSA >= 2048 bits into ci->key_type; refuses the rest. */
static int
check_key_type(EVP_PKEY *pk, struct certs_info *ci, char *err, size_t errlen)
{
	char group[64] = "";

	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (EVP_PKEY_get_bits(pk) < CERTS_RSA_MIN_BITS)
			return certs_fail(err, errlen, "key: RSA key of %d bits; at least %d needed",
			    EVP_PKEY_get_bits(pk), CERTS_RSA_MIN_BITS);
		snprintf(ci->key_type, sizeof(ci->key_type), "RSA %d", EVP_PKEY_get_bits(pk));
		return 0;
	}
	if (EVP_PKEY_is_a(pk, "EC") &&
	    EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	    NULL) == 1) {
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
			snprintf(ci->key_type, sizeof(ci->key_type), "EC P-256");
			return 0;
		}
		if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
			snprintf(ci->key_type, sizeof(ci->key_type), "EC P-384");
			return 0;
		}
	}
	return certs_fail(err, errlen, "key: unsupported key type %s%s%s (use ECDSA P-256 or RSA)",
	    EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "?",
	    group[0] ? " " : "", group);
}

static int
read_key(const char *text, size_t len, EVP_PKEY **out, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);

	*out = NULL;
	if (bio == NULL)
		return certs_fail(err, errlen, "key: out of memory");
	*out = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (*out != NULL)
		return 0;
	if (memmem(text, len, "ENCRYPTED", 9) != NULL)
		return certs_fail(err, errlen, "key: the key is encrypted; give the unencrypted key");
	return certs_fail(err, errlen, "key: no usable PEM private key found (%s)", ssl_reason());
}

static int
asn1_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

static void
name_line(const X509_NAME *n, char *buf, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int got;

	buf[0] = '\0';
	if (bio == NULL)
		return;
	if (X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    (got = BIO_read(bio, buf, (int)len - 1)) > 0)
		buf[got] = '\0';
	BIO_free(bio);
}

/* PEM text of a BIO's contents, NUL-terminated, or NULL. */
static char *
bio_text(BIO *bio)
{
	char *data, *s;
	long n = BIO_get_mem_data(bio, &data);

	if (n <= 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

/* Re-encodes the chain and the key into ci. */
static int
encode(STACK_OF(X509) *sk, EVP_PKEY *pk, struct certs_info *ci, char *err, size_t errlen)
{
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	int i, rc = -1;

	if (cb == NULL || kb == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(sk); i++)
		if (!PEM_write_bio_X509(cb, sk_X509_value(sk, i)))
			goto out;
	if (!PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL))
		goto out;
	if ((ci->chain = bio_text(cb)) != NULL && (ci->key = bio_text(kb)) != NULL)
		rc = 0;
out:
	if (kb != NULL) {
		char *data;
		long n = BIO_get_mem_data(kb, &data);
		if (n > 0)
			OPENSSL_cleanse(data, (size_t)n);
	}
	BIO_free(cb);
	BIO_free(kb);
	if (rc == -1)
		certs_fail(err, errlen, "cannot encode the certificate or key: out of memory");
	return rc;
}

/* Dates, fingerprint, issuer and subject of the leaf. */
static int
describe(X509 *leaf, struct certs_info *ci, char *err, size_t errlen)
{
	unsigned int n = 0;
	size_t i;

	if (asn1_unix(X509_get0_notBefore(leaf), &ci->not_before) == -1 ||
	    asn1_unix(X509_get0_notAfter(leaf), &ci->not_after) == -1)
		return certs_fail(err, errlen, "certificate: unreadable validity dates");
	if (!X509_digest(leaf, EVP_sha256(), ci->fingerprint, &n) || n != KEYRING_FP_LEN)
		return certs_fail(err, errlen, "certificate: cannot compute its fingerprint");
	for (i = 0; i < KEYRING_FP_LEN; i++)
		snprintf(ci->fingerprint_hex + 2 * i, 3, "%02x", ci->fingerprint[i]);
	name_line(X509_get_issuer_name(leaf), ci->issuer, sizeof(ci->issuer));
	name_line(X509_get_subject_name(leaf), ci->subject, sizeof(ci->subject));
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds raw (from the certificate) when it is a valid name; invalid ones are skipped. */
static int
add_name(struct certs_info *ci, const char *raw, size_t len)
{
	char in[HOSTNAME_MAX + 1], norm[HOSTNAME_MAX + 1];
	char **nn;

	if (len == 0 || len > HOSTNAME_MAX || memchr(raw, '\0', len) != NULL)
		return 0;
	memcpy(in, raw, len);
	in[len] = '\0';
	if (hostname_normalize_name(in, norm) == -1)
		return 0;
	if (ci->nnames == KEYRING_MAX_NAMES)
		return -1;
	if ((nn = realloc(ci->names, (ci->nnames + 1) * sizeof(*nn))) == NULL)
		return -1;
	ci->names = nn;
	if ((ci->names[ci->nnames] = strdup(norm)) == NULL)
		return -1;
	ci->nnames++;
	return 0;
}

/* The CN, for a certificate without DNS names (as X509_check_host falls back to it). */
static int
add_cn(X509 *leaf, struct certs_info *ci)
{
	const X509_NAME *subj = X509_get_subject_name(leaf);
	const ASN1_STRING *s;
	int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);

	if (i < 0)
		return 0;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
	return add_name(ci, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
}

/* SAN DNS names, else the CN; sorted and unique. */
static int
collect_names(X509 *leaf, struct certs_info *ci, char *err, size_t errlen)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	const GENERAL_NAME *g;
	size_t i, j;
	int k, rc = 0, ndns = 0;

	for (k = 0; gens != NULL && k < sk_GENERAL_NAME_num(gens) && rc == 0; k++) {
		g = sk_GENERAL_NAME_value(gens, k);
		if (g->type != GEN_DNS)
			continue;
		ndns++;
		rc = add_name(ci, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
		    (size_t)ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(gens);
	if (rc == 0 && ndns == 0)
		rc = add_cn(leaf, ci);
	if (rc == -1)
		return certs_fail(err, errlen, "certificate: more than %d names, or out of memory",
		    KEYRING_MAX_NAMES);
	if (ci->nnames == 0)
		return certs_fail(err, errlen, "certificate: it names no valid host (no DNS name)");
	qsort(ci->names, ci->nnames, sizeof(*ci->names), cmp_str);
	for (i = j = 1; i < ci->nnames; i++) {
		if (strcmp(ci->names[i], ci->names[j - 1]) == 0)
			free(ci->names[i]);
		else
			ci->names[j++] = ci->names[i];
	}
	ci->nnames = j;
	return 0;
}

/* The leaf covers domain: X509_check_host, or a wildcard domain listed as such. */
static int
check_domain(X509 *leaf, const struct certs_info *ci, const char *domain, char *err,
    size_t errlen)
{
	char list[512] = "";
	size_t i, n = 0;

	if (hostname_is_wildcard(domain)) {
		for (i = 0; i < ci->nnames; i++)
			if (strcmp(ci->names[i], domain) == 0)
				return 0;
	} else if (X509_check_host(leaf, domain, strlen(domain),
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1)
		return 0;
	for (i = 0; i < ci->nnames && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
		    ci->names[i]);
	return certs_fail(err, errlen, "the certificate does not cover %s (it covers %s)", domain,
	    list);
}

static int
check_dates(const struct certs_info *ci, time_t now, char *err, size_t errlen)
{
	char when[64];

	if (ci->not_after < (int64_t)now) {
		certs_format_time(ci->not_after, when, sizeof(when));
		return certs_fail(err, errlen,
		    "the certificate expired on %s (--force imports it anyway)", when);
	}
	if (ci->not_before > (int64_t)now) {
		certs_format_time(ci->not_before, when, sizeof(when));
		return certs_fail(err, errlen,
		    "the certificate is not valid before %s (--force imports it anyway)", when);
	}
	return 0;
}

int
certs_check(const char *domain, const char *chain, size_t chain_len, const char *key,
    size_t key_len, int force, time_t now, struct certs_info *out, char *err, size_t errlen)
{
	STACK_OF(X509) *sk = NULL;
	EVP_PKEY *pk = NULL;
	X509 *leaf;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (chain_len > INT32_MAX || key_len > INT32_MAX)
		return certs_fail(err, errlen, "certificate or key too large");
	if (read_chain(chain, chain_len, CERTS_CHAIN_MAX, "certificate", &sk, err, errlen) == -1 ||
	    read_key(key, key_len, &pk, err, errlen) == -1 ||
	    check_key_type(pk, out, err, errlen) == -1)
		goto out;
	leaf = sk_X509_value(sk, 0);
	if (X509_check_private_key(leaf, pk) != 1) {
		certs_fail(err, errlen, "the key does not match the certificate");
		goto out;
	}
	if (describe(leaf, out, err, errlen) == -1 || collect_names(leaf, out, err, errlen) == -1 ||
	    (!force && check_dates(out, now, err, errlen) == -1) ||
	    (domain != NULL && check_domain(leaf, out, domain, err, errlen) == -1) ||
	    encode(sk, pk, out, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	if (rc == -1)
		certs_info_free(out);
	return rc;
}

/* One X.509v3 extension by its config text. */
static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A random positive 128-bit serial. */
static int
set_serial(X509 *x)
{
	unsigned char sn[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(sn, sizeof(sn)) != 1)
		return -1;
	sn[0] &= 0x7f;
	if ((bn = BN_bin2bn(sn, sizeof(sn), NULL)) == NULL)
		return -1;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static X509 *
make_self_signed(EVP_PKEY *pk, time_t now)
{
	X509 *x = X509_new();
	X509_NAME *n;

	if (x == NULL || !X509_set_version(x, X509_VERSION_3) || set_serial(x) == -1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), now) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), now + (time_t)CERTS_DEFAULT_DAYS * 86400) == NULL)
		goto fail;
	n = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)CERTS_DEFAULT_CN, -1, -1, 0) ||
	    !X509_set_issuer_name(x, n) || !X509_set_pubkey(x, pk) ||
	    add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == -1 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") == -1 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") == -1 ||
	    add_ext(x, NID_subject_key_identifier, "hash") == -1 ||
	    X509_sign(x, pk, EVP_sha256()) == 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

int
certs_make_default(time_t now, struct certs_info *out, char *err, size_t errlen)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	EVP_PKEY *pk;
	X509 *x = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((pk = EVP_EC_gen("P-256")) == NULL || sk == NULL ||
	    (x = make_self_signed(pk, now)) == NULL || !sk_X509_push(sk, x)) {
		X509_free(x);
		certs_fail(err, errlen, "cannot make the default certificate: %s", ssl_reason());
		goto out;
	}
	snprintf(out->key_type, sizeof(out->key_type), "EC P-256");
	if (describe(x, out, err, errlen) == -1 || encode(sk, pk, out, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	EVP_PKEY_free(pk);
	if (rc == -1)
		certs_info_free(out);
	return rc;
}

void
certs_info_free(struct certs_info *ci)
{
	size_t i;

	for (i = 0; i < ci->nnames; i++)
		free(ci->names[i]);
	free(ci->names);
	free(ci->chain);
	if (ci->key != NULL) {
		OPENSSL_cleanse(ci->key, strlen(ci->key));
		free(ci->key);
	}
	memset(ci, 0, sizeof(*ci));
}

/* "SUBJECT" of the first certificate, "SUBJECT (+N more)" when there are others. */
static void
ca_subject(STACK_OF(X509) *sk, char *buf, size_t len)
{
	char first[256];
	int n = sk_X509_num(sk);

	name_line(X509_get_subject_name(sk_X509_value(sk, 0)), first, sizeof(first));
	if (first[0] == '\0')
		util_strlcpy(first, "(empty subject)", sizeof(first));
	if (n > 1)
		snprintf(buf, len, "%s (+%d more)", first, n - 1);
	else
		snprintf(buf, len, "%s", first);
}

int
certs_check_ca(const char *pem, size_t len, char **out, char *subject, size_t sublen, char *err,
    size_t errlen)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio = NULL;
	char *text = NULL;
	int i, rc = -1;

	if (out != NULL)
		*out = NULL;
	if (len > CERTS_CA_PEM_MAX || len > INT_MAX) {
		certs_fail(err, errlen, "backend CA: larger than %d bytes", CERTS_CA_PEM_MAX);
		goto out;
	}
	if (read_chain(pem, len, CERTS_CA_MAX, "backend CA", &sk, err, errlen) == -1)
		goto out;
	if (subject != NULL)
		ca_subject(sk, subject, sublen);
	if (out == NULL) {
		rc = 0;
		goto out;
	}
	/* Only the certificates are kept: comments and other blocks go. */
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto nomem;
	for (i = 0; i < sk_X509_num(sk); i++)
		if (!PEM_write_bio_X509(bio, sk_X509_value(sk, i)))
			goto nomem;
	if ((text = bio_text(bio)) == NULL)
		goto nomem;
	if (strlen(text) > CERTS_CA_PEM_MAX) {
		certs_fail(err, errlen, "backend CA: larger than %d bytes once re-encoded",
		    CERTS_CA_PEM_MAX);
		goto out;
	}
	*out = text;
	text = NULL;
	rc = 0;
	goto out;
nomem:
	certs_fail(err, errlen, "backend CA: out of memory");
out:
	free(text);
	BIO_free(bio);
	sk_X509_pop_free(sk, X509_free);
	return rc;
}
