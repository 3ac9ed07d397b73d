/*
 * The keyring's certificates as a worker keeps them (see tlscert.h): DER
 * bytes per certificate (PEM only base64-decoded at install), parsed
 * objects only for the ones in use, in a least-recently-used list of
 * bounded length.
 *
 * Why not the parsed objects for all: an ECDSA leaf and its key parsed by
 * OpenSSL 3 cost several KiB (the X509's cached extensions, the key's
 * provider data), an SSL_CTX each about 20 KiB; 10 000 customer names
 * would cost 40 to 200 MB per worker, and parsing them all (keys go
 * through OpenSSL's decoders) takes seconds, past the master's ack grace.
 * The DER bytes cost about 1 KiB. Why 256 parsed: about 8 KiB each, so
 * 2 MiB at most, and a busy name stays parsed. A cold one costs one parse
 * in its handshake, about 0.3 ms of CPU on the test machine (OpenSSL 3.0's
 * d2i_X509 decodes the public key through its decoders, ~0.18 ms; the
 * private key with its type known ~0.12 ms, without ~0.45 ms).
 */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "share/log.h"
#include "worker/tlscert.h"

struct tlscert {
	unsigned refs;
	uint32_t id;			/* the store id, for the one warning a bad one costs */
	unsigned checked : 1;		/* parsed once, the key matching */
	unsigned bad : 1;		/* did not parse or match: never used */
	int keytype;			/* EVP_PKEY_EC, EVP_PKEY_RSA, or 0: unknown (see tlscert_keytype) */
	struct tlscert *prev, *next;	/* the cache's list while parsed; head: last used */
	X509 *leaf;			/* NULL while not parsed */
	STACK_OF(X509) *chain;		/* the certificates after the leaf */
	EVP_PKEY *key;
	size_t chain_len, key_len;
	unsigned char der[];		/* chain (leaf first), then the key */
};

#define TLSCERT_CHAIN_MAX 16	/* certificates read from a PEM chain; the rest are ignored */

struct tlscert_cache {
	struct tlscert *head, *tail;
	size_t n, max;
};

struct tlscert_cache *
tlscert_cache_new(size_t max)
{
	struct tlscert_cache *cc = calloc(1, sizeof(*cc));

	if (cc != NULL)
		cc->max = max > 0 ? max : 1;
	return cc;
}

void
tlscert_cache_free(struct tlscert_cache *cc)
{
	free(cc);
}

size_t
tlscert_cache_parsed(const struct tlscert_cache *cc)
{
	return cc->n;
}

/* --- the list of parsed certificates */

static void
tlscert_unlink(struct tlscert_cache *cc, struct tlscert *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		cc->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		cc->tail = c->prev;
	c->prev = c->next = NULL;
}

static void
tlscert_drop_parsed(struct tlscert_cache *cc, struct tlscert *c)
{
	if (c->leaf == NULL)
		return;
	tlscert_unlink(cc, c);
	cc->n--;
	X509_free(c->leaf);
	sk_X509_pop_free(c->chain, X509_free);
	EVP_PKEY_free(c->key);
	c->leaf = NULL;
	c->chain = NULL;
	c->key = NULL;
}

/* c becomes the most recently used; the least recently used beyond the bound are dropped. */
static void
tlscert_touch(struct tlscert_cache *cc, struct tlscert *c)
{
	if (cc->head == c)
		return;
	if (c->prev != NULL || c->next != NULL || cc->tail == c)
		tlscert_unlink(cc, c);
	else
		cc->n++;
	c->next = cc->head;
	if (cc->head != NULL)
		cc->head->prev = c;
	cc->head = c;
	if (cc->tail == NULL)
		cc->tail = c;
	while (cc->n > cc->max && cc->tail != c)
		tlscert_drop_parsed(cc, cc->tail);
}

/* --- parsing */

static void
tlscert_reason(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_error();	/* the first error names the cause */

	snprintf(err, errlen, "%s%s%s", what, e != 0 ? ": " : "",
	    e != 0 ? ERR_reason_error_string(e) : "");
	ERR_clear_error();
}

static int
tlscert_is_pem(const void *p, size_t len)
{
	return len >= 10 && memcmp(p, "-----BEGIN", 10) == 0;
}

/* The next certificate of a chain, PEM (from bio) or DER (from *pp); NULL at the end. */
static X509 *
tlscert_next(BIO *bio, const unsigned char **pp, const unsigned char *end)
{
	if (bio != NULL)
		return PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (*pp >= end)
		return NULL;
	return d2i_X509(NULL, pp, end - *pp);
}

/* Leaf and the rest of a chain into c; 0, or -1 when it is not a whole chain. */
static int
tlscert_parse_chain(struct tlscert *c, const void *chain, size_t len)
{
	const unsigned char *p = chain, *end = p + len;
	BIO *bio = NULL;
	X509 *x;
	int rc = -1;

	if (len > INT_MAX || (c->chain = sk_X509_new_null()) == NULL ||
	    (tlscert_is_pem(p, len) && (bio = BIO_new_mem_buf(p, (int)len)) == NULL))
		goto out;
	while ((x = tlscert_next(bio, &p, end)) != NULL) {
		if (c->leaf == NULL)
			c->leaf = x;
		else if (sk_X509_push(c->chain, x) == 0) {
			X509_free(x);
			goto out;
		}
	}
	/* A PEM chain ends with a "no start line" error; a DER chain must be consumed whole. */
	if (c->leaf != NULL && (bio != NULL || p == end)) {
		ERR_clear_error();
		rc = 0;
	}
out:
	BIO_free(bio);
	return rc;
}

static int
tlscert_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;	/* an encrypted key is refused, never prompted for */
}

static EVP_PKEY *
tlscert_parse_key(const void *key, size_t len, int type)
{
	const unsigned char *p = key;
	EVP_PKEY *pk;
	BIO *bio;

	if (len > INT_MAX)
		return NULL;
	/* A known type tries one decoder; "auto" tries them all, several times slower. */
	if (!tlscert_is_pem(p, len) && type != 0)
		return d2i_PrivateKey(type, NULL, &p, (long)len);
	if (!tlscert_is_pem(p, len))
		return d2i_AutoPrivateKey(NULL, &p, (long)len);
	if ((bio = BIO_new_mem_buf(p, (int)len)) == NULL)
		return NULL;
	pk = PEM_read_bio_PrivateKey(bio, NULL, tlscert_no_password, NULL);
	BIO_free(bio);
	return pk;
}

/* The parsed objects from the DER bytes (checked the first time): 0, or -1. */
static int
tlscert_parse(struct tlscert_cache *cc, struct tlscert *c)
{
	const char *what = "bad certificate chain";
	char why[160];
	int oom;

	if (c->leaf != NULL) {
		tlscert_touch(cc, c);
		return 0;
	}
	if (c->bad)
		return -1;
	ERR_clear_error();
	if (tlscert_parse_chain(c, c->der, c->chain_len) == -1)
		goto fail;
	what = "bad private key";
	if ((c->key = tlscert_parse_key(c->der + c->chain_len, c->key_len, c->keytype)) == NULL)
		goto fail;
	if (!c->checked && X509_check_private_key(c->leaf, c->key) != 1) {
		ERR_clear_error();
		ERR_raise_data(ERR_LIB_SSL, SSL_R_PRIVATE_KEY_MISMATCH, NULL);
		goto fail;
	}
	c->checked = 1;
	tlscert_touch(cc, c);
	return 0;
fail:
	oom = ERR_GET_REASON(ERR_peek_last_error()) == ERR_R_MALLOC_FAILURE;
	tlscert_reason(why, sizeof(why), what);
	X509_free(c->leaf);
	sk_X509_pop_free(c->chain, X509_free);
	EVP_PKEY_free(c->key);
	c->leaf = NULL;
	c->chain = NULL;
	c->key = NULL;
	/* Out of memory is not the certificate's fault: tried again next time. */
	if (!oom && !c->checked) {
		c->bad = 1;
		log_warnx("certificate %u left out: %s", c->id, why);
	}
	return -1;
}

/* --- certificates */

/*
 * The DER inside PEM: base64 decoded, nothing parsed. Each block's label
 * must be one of labels (NULL-terminated); a block with headers (an
 * encrypted key) is refused. Appends to *out (grown with realloc); the
 * number of blocks, or -1.
 */
static int
tlscert_unpem(const void *pem, size_t len, const char *const *labels, int most,
    unsigned char **out, size_t *outlen)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	char *name = NULL, *hdr = NULL;
	unsigned char *data = NULL, *grown;
	long n;
	int blocks = 0, ok;
	size_t i;

	if (bio == NULL)
		return -1;
	while (blocks >= 0 && blocks < most && PEM_read_bio(bio, &name, &hdr, &data, &n) == 1) {
		/* Other blocks (EC PARAMETERS before a key) are skipped, as OpenSSL's readers do. */
		for (i = 0, ok = 0; labels[i] != NULL; i++)
			ok |= strcmp(name, labels[i]) == 0;
		grown = NULL;
		if (ok && (hdr[0] != '\0' || n <= 0 ||
		    (grown = realloc(*out, *outlen + (size_t)n)) == NULL))
			blocks = -1;
		else if (ok) {
			memcpy(grown + *outlen, data, (size_t)n);
			*out = grown;
			*outlen += (size_t)n;
			blocks++;
		}
		OPENSSL_free(name);
		OPENSSL_free(hdr);
		OPENSSL_clear_free(data, n > 0 ? (size_t)n : 0);
	}
	ERR_clear_error();	/* the end of the PEM reads as "no start line" */
	BIO_free(bio);
	return blocks;
}

static const char *const tlscert_cert_labels[] = { "CERTIFICATE", NULL };
static const char *const tlscert_key_labels[] = {
	"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", NULL
};

/* The DER of chain or key: PEM decoded, DER copied. 0 or -1. */
static int
tlscert_der(const void *in, size_t len, const char *const *labels, int most, unsigned char **out,
    size_t *outlen)
{
	if (len == 0 || len > INT_MAX)
		return -1;
	if (tlscert_is_pem(in, len))
		return tlscert_unpem(in, len, labels, most, out, outlen) > 0 ? 0 : -1;
	if ((*out = malloc(len)) == NULL)
		return -1;
	memcpy(*out, in, len);
	*outlen = len;
	return 0;
}

/*
 * The key's type from its bytes, without parsing: a PEM label, else the
 * algorithm OID of a PKCS#8 key (id-ecPublicKey, rsaEncryption). 0 when
 * neither says (the slower automatic decoding is used then).
 */
static int
tlscert_keytype(const void *key, size_t len, const unsigned char *der, size_t derlen)
{
	static const unsigned char ec_oid[] = { 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
	static const unsigned char rsa_oid[] = {
		0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01
	};
	size_t head = derlen < 32 ? derlen : 32;	/* the AlgorithmIdentifier comes first */

	if (tlscert_is_pem(key, len) && len >= 15 && memcmp(key, "-----BEGIN EC ", 14) == 0)
		return EVP_PKEY_EC;
	if (tlscert_is_pem(key, len) && len >= 15 && memcmp(key, "-----BEGIN RSA ", 15) == 0)
		return EVP_PKEY_RSA;
	if (memmem(der, head, ec_oid, sizeof(ec_oid)) != NULL)
		return EVP_PKEY_EC;
	if (memmem(der, head, rsa_oid, sizeof(rsa_oid)) != NULL)
		return EVP_PKEY_RSA;
	return 0;
}

struct tlscert *
tlscert_new(struct tlscert_cache *cc, uint32_t id, const void *chain, size_t chain_len,
    const void *key, size_t key_len, char *err, size_t errlen)
{
	unsigned char *cd = NULL, *kd = NULL;
	size_t cn = 0, kn = 0;
	struct tlscert *c = NULL;

	(void)cc;
	if (tlscert_der(chain, chain_len, tlscert_cert_labels, TLSCERT_CHAIN_MAX, &cd, &cn) == -1)
		snprintf(err, errlen, "bad certificate chain");
	else if (tlscert_der(key, key_len, tlscert_key_labels, 1, &kd, &kn) == -1)
		snprintf(err, errlen, "bad private key");
	else if ((c = calloc(1, sizeof(*c) + cn + kn)) == NULL)
		snprintf(err, errlen, "out of memory");
	else {
		c->refs = 1;
		c->id = id;
		c->chain_len = cn;
		c->key_len = kn;
		c->keytype = tlscert_keytype(key, key_len, kd, kn);
		memcpy(c->der, cd, cn);
		memcpy(c->der + cn, kd, kn);
	}
	free(cd);
	if (kd != NULL)
		OPENSSL_clear_free(kd, kn);
	return c;
}

int
tlscert_check(struct tlscert_cache *cc, struct tlscert *c)
{
	return tlscert_parse(cc, c);
}

int
tlscert_is_bad(const struct tlscert *c)
{
	return c->bad;
}

struct tlscert *
tlscert_ref(struct tlscert *c)
{
	c->refs++;
	return c;
}

void
tlscert_unref(struct tlscert_cache *cc, struct tlscert *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	tlscert_drop_parsed(cc, c);
	OPENSSL_cleanse(c->der + c->chain_len, c->key_len);
	free(c);
}

X509 *
tlscert_leaf(struct tlscert_cache *cc, struct tlscert *c)
{
	return tlscert_parse(cc, c) == 0 ? c->leaf : NULL;
}

int
tlscert_use(struct tlscert_cache *cc, struct tlscert *c, SSL *ssl)
{
	if (tlscert_parse(cc, c) == -1)
		return -1;
	/* Whatever an earlier call put there (another key type would stay in its own slot). */
	SSL_certs_clear(ssl);
	if (SSL_use_cert_and_key(ssl, c->leaf, c->key, c->chain, 1) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}
