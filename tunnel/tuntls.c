/*
 * The tunnel listener's TLS context and what an agent's certificate says
 * (see tuntls.h). Handshakes run through worker/tls.c's connection helpers
 * (tls_conn_wrap), like the contexts toward backends.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "share/hostname.h"
#include "share/util.h"
#include "tunnel/tuntls.h"
#include "worker/tls.h"

/* ALPN: h2 (HAProxy, oktalz) first, then draft-bt's h2-reverse; anything else is refused. */
static int
tuntls_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	static const char *const ours[] = { "h2", "h2-reverse" };
	unsigned int i, j;

	(void)ssl;
	(void)arg;
	for (j = 0; j < 2; j++)
		for (i = 0; i < inlen; i += 1u + in[i])
			if (i + 1u + in[i] <= inlen && in[i] == strlen(ours[j]) &&
			    memcmp(in + i + 1, ours[j], in[i]) == 0) {
				*out = in + i + 1;
				*outlen = in[i];
				return SSL_TLSEXT_ERR_OK;
			}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* No tunnel_cert: the keyring's certificate for the SNI (as the HTTPS listeners choose), else the default. */
static int
tuntls_keyring_cert(SSL *ssl, void *arg)
{
	const struct tls *t = arg;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	char name[HOSTNAME_MAX + 1];
	int n = -1;

	if (sni != NULL)
		n = hostname_from_header(sni, strnlen(sni, HOSTNAME_MAX + 8), name);
	return tls_use_cert(t, tls_select(t, n > 0 ? name : NULL, n > 0 ? (size_t)n : 0),
	    ssl) == 0 ? 1 : 0;
}

static void
tuntls_err(char *err, size_t errlen, const char *what)
{
	char ossl[160] = "";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	snprintf(err, errlen, "%s%s%s", what, ossl[0] != '\0' ? ": " : "", ossl);
	ERR_clear_error();
}

/* Every certificate of the CA bundle trusted (and named to clients as acceptable issuers). */
static int
tuntls_load_ca(SSL_CTX *ctx, const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);
	X509 *x;
	int n = 0;

	if (b == NULL)
		return -1;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(st, x) != 1 || SSL_CTX_add_client_CA(ctx, x) != 1) {
			X509_free(x);
			BIO_free(b);
			return -1;
		}
		X509_free(x);
		n++;
	}
	ERR_clear_error();	/* the end of the bundle reads as an error */
	BIO_free(b);
	return n > 0 ? 0 : -1;
}

/* The leaf, then its chain, then the key that must match it. */
static int
tuntls_load_cert(SSL_CTX *ctx, const struct tuntls_in *in)
{
	BIO *b = BIO_new_mem_buf(in->chain, (int)in->chain_len), *k = NULL;
	EVP_PKEY *key = NULL;
	X509 *x;
	int rc = -1;

	if (b == NULL || (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL)
		goto out;
	if (SSL_CTX_use_certificate(ctx, x) != 1) {
		X509_free(x);
		goto out;
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			goto out;
		}
	ERR_clear_error();
	if ((k = BIO_new_mem_buf(in->key, (int)in->key_len)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(k, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
		goto out;
	rc = 0;
out:
	EVP_PKEY_free(key);
	BIO_free(k);
	BIO_free(b);
	return rc;
}

SSL_CTX *
tuntls_ctx_new(const struct tuntls_in *in, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tuntls_err(err, errlen, "out of memory");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		tuntls_err(err, errlen, "TLS 1.2");
		goto fail;
	}
	/* Agents hold one long connection each: resumption would buy nothing. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (tuntls_load_ca(ctx, in->ca, in->ca_len) == -1) {
		tuntls_err(err, errlen, "tunnel_ca_file: no usable CA certificate");
		goto fail;
	}
	if (in->chain_len > 0 && tuntls_load_cert(ctx, in) == -1) {
		tuntls_err(err, errlen, "tunnel_cert/tunnel_key");
		goto fail;
	}
	if (in->chain_len == 0)
		SSL_CTX_set_cert_cb(ctx, tuntls_keyring_cert, (void *)(uintptr_t)in->keyring);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
		tuntls_err(err, errlen, "purpose");
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(ctx, tuntls_alpn, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL *
tuntls_ssl_new(SSL_CTX *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

/* The one subject CN, checked against the name rule. */
static int
tuntls_cn(X509_NAME *subj, struct tuntls_peer *p, char *err, size_t errlen)
{
	int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	const ASN1_STRING *cn;
	const unsigned char *d;
	int len;

	if (i < 0 || X509_NAME_get_index_by_NID(subj, NID_commonName, i) >= 0) {
		snprintf(err, errlen, i < 0 ? "no subject CN" : "more than one subject CN");
		return -1;
	}
	cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
	d = ASN1_STRING_get0_data(cn);
	len = ASN1_STRING_length(cn);
	if (len <= 0 || !tunname_valid((const char *)d, (size_t)len)) {
		snprintf(err, errlen, "CN is not a tunnel name (1 to 63 of a-z 0-9 . -)");
		return -1;
	}
	memcpy(p->name, d, (size_t)len);
	p->name[len] = '\0';
	return 0;
}

int
tuntls_peer(SSL *ssl, struct tuntls_peer *p, char *err, size_t errlen)
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	BIO *b;
	struct tm tm;
	int n;

	memset(p, 0, sizeof(*p));
	if (x == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
		snprintf(err, errlen, "no verified client certificate");
		return -1;
	}
	if (tuntls_cn(X509_get_subject_name(x), p, err, errlen) == -1)
		return -1;
	if ((b = BIO_new(BIO_s_mem())) != NULL &&
	    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_read(b, p->subject, (int)sizeof(p->subject) - 1)) > 0)
		p->subject[n] = '\0';
	BIO_free(b);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		p->not_after = (int64_t)timegm(&tm);
	return 0;
}
