/*
 * Certificates in the master (OpenSSL 3): checking an imported chain and
 * key before they reach the store, and making the self-signed default.
 * Every refusal is one line meant for the operator (haloyd-ctl prints it).
 */
#ifndef HALOYD_CERTS_H
#define HALOYD_CERTS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "share/keyring.h"

#define CERTS_DEFAULT_CN "haloyd-default"
#define CERTS_DEFAULT_DAYS 3652		/* ten years */
#define CERTS_RSA_MIN_BITS 2048

/* What the checks learnt; every string is owned (certs_info_free). */
struct certs_info {
	char **names;		/* normalised names it covers (SAN DNS, else the CN), sorted, unique */
	size_t nnames;
	char *chain;		/* the chain re-encoded as PEM, leaf first */
	char *key;		/* the key re-encoded as unencrypted PKCS#8 PEM */
	char issuer[256];	/* RFC 2253, truncated */
	char subject[256];
	char key_type[32];	/* "EC P-256", "RSA 2048", ... */
	uint8_t fingerprint[KEYRING_FP_LEN];	/* SHA-256 of the leaf's DER */
	char fingerprint_hex[2 * KEYRING_FP_LEN + 1];
	int64_t not_before;	/* unix seconds */
	int64_t not_after;
};

/*
 * Parses and checks a PEM chain (leaf first, then intermediates) and a PEM
 * private key (EC P-256 / P-384, or RSA of at least 2048 bits): the key
 * must match the leaf; the leaf must be valid at now unless force; and,
 * when domain is not NULL, the leaf must cover domain (X509_check_host
 * rules: a "*.x" SAN covers exactly one more label; a "*.x" domain needs
 * that very wildcard among the names). 0 with *out filled, or -1 with one
 * line in err.
 */
int certs_check(const char *domain, const char *chain, size_t chain_len, const char *key,
    size_t key_len, int force, time_t now, struct certs_info *out, char *err, size_t errlen);

/*
 * Makes the self-signed default: ECDSA P-256, CN haloyd-default, valid
 * from now for CERTS_DEFAULT_DAYS, no names. 0 or -1 with a reason.
 */
int certs_make_default(time_t now, struct certs_info *out, char *err, size_t errlen);

#define CERTS_CA_MAX 64		/* certificates in a backend CA bundle */
#define CERTS_CA_PEM_MAX 32768	/* its PEM (MSG_PEM_CA_MAX, the store's bound) */

/*
 * Checks a route's backend CA: PEM holding 1..CERTS_CA_MAX certificates
 * that all parse, at most CERTS_CA_PEM_MAX bytes. When out is not NULL,
 * *out is the bundle re-encoded (certificates only; free it); when subject
 * is not NULL, it gets the first one's subject (RFC 2253) and how many
 * follow. 0, or -1 with one line in err.
 */
int certs_check_ca(const char *pem, size_t len, char **out, char *subject, size_t sublen,
    char *err, size_t errlen);

/* Frees out's strings, wiping the key. */
void certs_info_free(struct certs_info *ci);

/*
 * 1 when the certificate name pattern covers host (both normalised): equal,
 * or pattern "*.suffix" and host one label followed by ".suffix".
 */
int certs_covers(const char *pattern, const char *host);

/* "2026-01-31 12:00:00 UTC" into buf. */
void certs_format_time(int64_t t, char *buf, size_t len);

#endif
