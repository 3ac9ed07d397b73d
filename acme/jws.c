/*
 * JOSE for ACME with OpenSSL 3: base64url, the account key file, the public
 * JWK and its RFC 7638 thumbprint, ES256 flattened JWS (RFC 7515, RFC 8555
 * section 6.2) and the PKCS#10 CSR of a certificate order.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/acmechild.h"
#include "share/log.h"

#define ES256_HALF 32	/* r and s of a P-256 signature, each */

static const char b64u_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
jws_b64u(const void *p, size_t n)
{
	const uint8_t *in = p;
	char *out, *o;
	size_t i;
	uint32_t v;

	if (n > (SIZE_MAX - 4) / 4 * 3 || (out = malloc(n / 3 * 4 + 5)) == NULL)
		return NULL;
	o = out;
	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = b64u_alphabet[v >> 18 & 63];
		*o++ = b64u_alphabet[v >> 12 & 63];
		*o++ = b64u_alphabet[v >> 6 & 63];
		*o++ = b64u_alphabet[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		*o++ = b64u_alphabet[v >> 18 & 63];
		*o++ = b64u_alphabet[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*o++ = b64u_alphabet[v >> 18 & 63];
		*o++ = b64u_alphabet[v >> 12 & 63];
		*o++ = b64u_alphabet[v >> 6 & 63];
	}
	*o = '\0';
	return out;
}

static int
b64u_value(char ch)
{
	const char *p;

	if (ch == '\0' || (p = strchr(b64u_alphabet, ch)) == NULL)
		return -1;
	return (int)(p - b64u_alphabet);
}

int
jws_b64u_decode(const char *s, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(s), i, o = 0;
	uint32_t acc = 0;
	uint8_t *buf;
	int bits = 0, v;

	if (n % 4 == 1 || (buf = malloc(n / 4 * 3 + 3)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if ((v = b64u_value(s[i])) < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero, so every input has one decoding. */
	if ((acc & ((1u << bits) - 1)) != 0)
		goto bad;
	*out = buf;
	*outlen = o;
	return 0;
bad:
	free(buf);
	return -1;
}

EVP_PKEY *
jws_key_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (k == NULL)
		log_warnx("cannot make a P-256 key");
	return k;
}

static EVP_PKEY *
key_create(int dirfd, const char *name)
{
	EVP_PKEY *k;
	FILE *f = NULL;
	int fd;

	if ((k = jws_key_new()) == NULL)
		return NULL;
	if ((fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1 ||
	    (f = fdopen(fd, "w")) == NULL) {
		log_warn("creating %s", name);
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	if (PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0 ||
	    fsync(fileno(f)) == -1) {
		log_warnx("cannot write %s", name);
		fclose(f);
		unlinkat(dirfd, name, 0);
		goto fail;
	}
	fclose(f);
	log_info("created the ACME account key %s", name);
	return k;
fail:
	EVP_PKEY_free(k);
	return NULL;
}

EVP_PKEY *
jws_key_load(int dirfd, const char *name)
{
	EVP_PKEY *k = NULL;
	FILE *f;
	int fd;

	if ((fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return key_create(dirfd, name);
		log_warn("opening %s", name);
		return NULL;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		log_warn("opening %s", name);
		close(fd);
		return NULL;
	}
	if ((k = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		log_warnx("%s is not a PEM private key", name);
	else if (!EVP_PKEY_is_a(k, "EC")) {
		log_warnx("%s is not an EC key", name);
		EVP_PKEY_free(k);
		k = NULL;
	}
	fclose(f);
	return k;
}

/* base64url of a key parameter, left-padded to pad bytes (0: minimal). */
static char *
param_b64u(EVP_PKEY *key, const char *param, int pad)
{
	uint8_t buf[1024];
	BIGNUM *bn = NULL;
	char *s = NULL;
	int n;

	if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
		return NULL;
	n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_num_bytes(bn) <= (int)sizeof(buf) ?
	    BN_bn2bin(bn, buf) : -1;
	if (n >= 0)
		s = jws_b64u(buf, (size_t)n);
	BN_free(bn);
	return s;
}

char *
jws_jwk(EVP_PKEY *key)
{
	char *a = NULL, *b = NULL, *out = NULL;
	int rsa = EVP_PKEY_is_a(key, "RSA");

	if (rsa) {
		a = param_b64u(key, OSSL_PKEY_PARAM_RSA_E, 0);
		b = param_b64u(key, OSSL_PKEY_PARAM_RSA_N, 0);
	} else if (EVP_PKEY_is_a(key, "EC")) {
		a = param_b64u(key, OSSL_PKEY_PARAM_EC_PUB_X, ES256_HALF);
		b = param_b64u(key, OSSL_PKEY_PARAM_EC_PUB_Y, ES256_HALF);
	}
	if (a == NULL || b == NULL)
		goto out;
	if (rsa ? asprintf(&out, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b) == -1 :
	    asprintf(&out, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", a, b) == -1)
		out = NULL;
out:
	free(a);
	free(b);
	return out;
}

char *
jws_thumbprint(EVP_PKEY *key)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char *jwk, *tp = NULL;

	if ((jwk = jws_jwk(key)) == NULL)
		return NULL;
	if (EVP_Digest(jwk, strlen(jwk), md, &mdlen, EVP_sha256(), NULL) == 1)
		tp = jws_b64u(md, mdlen);
	free(jwk);
	return tp;
}

/* ES256 over in: the JWS form is r || s, 32 bytes each, not DER. */
static char *
es256(EVP_PKEY *key, const char *in)
{
	uint8_t der[128], raw[2 * ES256_HALF];
	const uint8_t *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *sig = NULL;
	EVP_MD_CTX *ctx;
	size_t len = sizeof(der);
	char *out = NULL;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return NULL;
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, der, &len, (const uint8_t *)in, strlen(in)) != 1 ||
	    (sig = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, ES256_HALF) != ES256_HALF ||
	    BN_bn2binpad(s, raw + ES256_HALF, ES256_HALF) != ES256_HALF)
		goto out;
	out = jws_b64u(raw, sizeof(raw));
out:
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(ctx);
	return out;
}

static char *
protected_header(EVP_PKEY *key, const char *kid, const char *nonce, const char *url)
{
	json_t *h, *jwk = NULL;
	char *s, *jwks = NULL;

	if (kid == NULL) {
		if ((jwks = jws_jwk(key)) == NULL ||
		    (jwk = json_loads(jwks, 0, NULL)) == NULL) {
			free(jwks);
			return NULL;
		}
		free(jwks);
		h = json_pack("{s:s, s:o, s:s, s:s}", "alg", "ES256", "jwk", jwk,
		    "nonce", nonce, "url", url);
	} else
		h = json_pack("{s:s, s:s, s:s, s:s}", "alg", "ES256", "kid", kid,
		    "nonce", nonce, "url", url);
	if (h == NULL)
		return NULL;
	s = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	return s;
}

char *
jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload)
{
	char *hdr, *ph = NULL, *pl = NULL, *input = NULL, *sig = NULL, *out = NULL;
	json_t *j;

	if ((hdr = protected_header(key, kid, nonce, url)) == NULL)
		return NULL;
	if ((ph = jws_b64u(hdr, strlen(hdr))) == NULL ||
	    (pl = jws_b64u(payload, strlen(payload))) == NULL ||
	    asprintf(&input, "%s.%s", ph, pl) == -1) {
		input = NULL;
		goto out;
	}
	if ((sig = es256(key, input)) == NULL)
		goto out;
	if ((j = json_pack("{s:s, s:s, s:s}", "protected", ph, "payload", pl,
	    "signature", sig)) != NULL) {
		out = json_dumps(j, JSON_COMPACT);
		json_decref(j);
	}
out:
	free(hdr);
	free(ph);
	free(pl);
	free(input);
	free(sig);
	return out;
}

static int
csr_add_names(X509_REQ *req, char *const *names, size_t n)
{
	STACK_OF(X509_EXTENSION) *exts;
	X509_EXTENSION *ext;
	char san[8192];
	size_t i, off = 0;
	int rc = -1;

	for (i = 0; i < n; i++) {
		int w = snprintf(san + off, sizeof(san) - off, "%sDNS:%s", i ? "," : "", names[i]);
		if (w < 0 || (size_t)w >= sizeof(san) - off)
			return -1;
		off += (size_t)w;
	}
	if ((exts = sk_X509_EXTENSION_new_null()) == NULL)
		return -1;
	if ((ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san)) != NULL &&
	    sk_X509_EXTENSION_push(exts, ext) > 0 && X509_REQ_add_extensions(req, exts) == 1)
		rc = 0;
	else
		X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

char *
jws_csr(EVP_PKEY *key, char *const *names, size_t n)
{
	X509_REQ *req;
	X509_NAME *subj;
	uint8_t *der = NULL;
	char *out = NULL;
	int len;

	if (n == 0 || (req = X509_REQ_new()) == NULL)
		return NULL;
	subj = X509_REQ_get_subject_name(req);
	/* The SANs carry the names; a CN is at most 64 characters. */
	if (X509_REQ_set_version(req, 0) != 1 || (strlen(names[0]) <= 64 &&
	    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const uint8_t *)names[0],
	    -1, -1, 0) != 1) ||
	    csr_add_names(req, names, n) == -1 || X509_REQ_set_pubkey(req, key) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0 || (len = i2d_X509_REQ(req, &der)) <= 0)
		goto out;
	out = jws_b64u(der, (size_t)len);
out:
	OPENSSL_free(der);
	X509_REQ_free(req);
	return out;
}
