/*
 * The floor of OpenSSL's memory per idle server connection, without
 * haloyd: N TLS 1.3 handshakes (ECDSA P-256 certificate, X25519, ALPN,
 * one session ticket, SSL_MODE_RELEASE_BUFFERS, as worker/tls.c sets its
 * context) over memory BIOs, each server SSL kept; the heap in use
 * (glibc mallinfo2: chunks with their headers) per connection after
 * SSL_new, after the handshake, and after SSL_free_buffers. The clients are
 * freed and each server SSL gets a socket BIO, as in a worker, before the
 * reading. Not
 * part of `make check`: `make tests/bench/sslfloorbench`, then
 * `tests/bench/sslfloorbench [N]` (N 2000).
 */
#include "config.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static const unsigned char alpn[] = "\x08http/1.1";

static size_t
heap_used(void)
{
	return mallinfo2().uordblks;
}

static int
on_alpn(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned inlen, void *arg)
{
	unsigned i;

	(void)s, (void)arg;
	for (i = 0; i < inlen && i + 1u + in[i] <= inlen; i += 1u + in[i])
		if (in[i] == alpn[0] && memcmp(in + i + 1, alpn + 1, alpn[0]) == 0) {
			*out = in + i + 1;
			*outlen = in[i];
			return SSL_TLSEXT_ERR_OK;
		}
	return SSL_TLSEXT_ERR_NOACK;
}

/* A self-signed P-256 certificate and key on ctx; 0 or -1. */
static int
use_cert(SSL_CTX *ctx)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int rc = -1;

	if (key == NULL || x == NULL)
		goto done;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"bench.local", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_sign(x, key, EVP_sha256()) > 0 && SSL_CTX_use_certificate(ctx, x) == 1 &&
	    SSL_CTX_use_PrivateKey(ctx, key) == 1)
		rc = 0;
done:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* Moves bytes between the two memory BIO pairs until both handshakes are done; 0 or -1. */
static int
handshake(SSL *c, SSL *s)
{
	int i, rc_c = 0, rc_s = 0;

	for (i = 0; i < 100 && (rc_c != 1 || rc_s != 1); i++) {
		if (rc_c != 1)
			rc_c = SSL_do_handshake(c);
		if (rc_s != 1)
			rc_s = SSL_do_handshake(s);
	}
	/* The client reads the ticket (and nothing else comes). */
	{
		char b[1];
		(void)SSL_read(c, b, sizeof(b));
	}
	return rc_c == 1 && rc_s == 1 ? 0 : -1;
}

/* N idle server connections: their SSLs in srv, every client gone; 0 or -1. */
static int
connect_all(SSL_CTX *cctx, SSL **srv, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		SSL *c = SSL_new(cctx);
		BIO *a, *b;
		int ok = c != NULL && srv[i] != NULL && BIO_new_bio_pair(&a, 0, &b, 0) == 1;

		if (ok) {
			SSL_set_bio(c, a, a);
			SSL_set_bio(srv[i], b, b);
			SSL_set_connect_state(c);
			SSL_set_accept_state(srv[i]);
			ok = handshake(c, srv[i]) == 0;
		}
		SSL_free(c);
		/* A socket BIO, as a worker's: the pair's other half and its buffer go. */
		if (ok && (b = BIO_new_socket(-1, BIO_NOCLOSE)) != NULL)
			SSL_set_bio(srv[i], b, b);
		else {
			fprintf(stderr, "sslfloorbench: connection %zu failed\n", i);
			ERR_print_errors_fp(stderr);
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000, i, base, made, shaken, freed;
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
	SSL **srv = n > 0 ? calloc(n, sizeof(*srv)) : NULL;
	int rc = 1;

	if (srv == NULL || sctx == NULL || cctx == NULL || use_cert(sctx) == -1) {
		fprintf(stderr, "sslfloorbench: set-up failed\n");
		goto done;
	}
	SSL_CTX_set_mode(sctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(sctx, 1);
	SSL_CTX_set1_groups_list(sctx, "X25519:P-256:P-384");
	SSL_CTX_set_alpn_select_cb(sctx, on_alpn, NULL);
	SSL_CTX_set_alpn_protos(cctx, alpn, sizeof(alpn) - 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	base = heap_used();
	for (i = 0; i < n; i++)
		srv[i] = SSL_new(sctx);
	made = heap_used();
	if (made == base) {
		fprintf(stderr, "sslfloorbench: mallinfo2 sees no heap (a sanitizer build?): "
		    "use an optimised build\n");
		goto done;
	}
	if (connect_all(cctx, srv, n) == -1)
		goto done;
	shaken = heap_used();
	for (i = 0; i < n; i++)
		(void)SSL_free_buffers(srv[i]);
	freed = heap_used();
	printf("%s, %zu idle server connections, heap in use per connection:\n",
	    OpenSSL_version(OPENSSL_VERSION), n);
	printf("  after SSL_new            %6zu B\n", (made - base) / n);
	printf("  after the handshake      %6zu B (%s)\n", (shaken - base) / n,
	    SSL_get_version(srv[0]));
	printf("  after SSL_free_buffers   %6zu B\n", (freed - base) / n);
	rc = 0;
done:
	for (i = 0; srv != NULL && i < n; i++)
		SSL_free(srv[i]);
	free(srv);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	return rc;
}
