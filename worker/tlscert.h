/*
 * The certificates of a worker's keyring (worker/tls.c): each one kept as
 * DER bytes (chain and key, about 1 KiB for an ECDSA leaf), parsed into
 * OpenSSL objects on first use and held in a cache of bounded size, least
 * recently used first out. One SSL_CTX serves every certificate: the
 * ClientHello callback puts the chosen one on the connection
 * (tlscert_use), which takes its own references, so evicting a parsed
 * certificate never touches a connection in flight.
 */
#ifndef HALOYD_WORKER_TLSCERT_H
#define HALOYD_WORKER_TLSCERT_H

#include <stddef.h>
#include <stdint.h>

struct ssl_st;
struct x509_st;
struct tlscert;
struct tlscert_cache;

/* Parsed certificates kept at most by default: see tlscert.c for the figure's why. */
#define TLSCERT_PARSED_MAX 256

/* NULL when out of memory. max: parsed certificates kept (at least 1). */
struct tlscert_cache *tlscert_cache_new(size_t max);
/* Every certificate made with cc must have been released first. */
void tlscert_cache_free(struct tlscert_cache *cc);
/* How many certificates are parsed right now (for tests and the bench). */
size_t tlscert_cache_parsed(const struct tlscert_cache *cc);

/*
 * Keeps chain (leaf first; PEM or concatenated DER) and key (PEM, or DER
 * PKCS#8 or traditional; never an encrypted one) as DER: PEM is only
 * base64-decoded, nothing is parsed, so a keyring of 10 000 installs in
 * milliseconds. Parsing, and the check that the key matches, happen at
 * first use; one that fails makes the certificate bad for good (one
 * warning naming id). NULL with a reason in err (not PEM, out of memory).
 */
struct tlscert *tlscert_new(struct tlscert_cache *cc, uint32_t id, const void *chain,
    size_t chain_len, const void *key, size_t key_len, char *err, size_t errlen);
/* Parses (and checks) c now: 0, or -1 when it is bad (or memory ran out). */
int tlscert_check(struct tlscert_cache *cc, struct tlscert *c);
/* 1 once a use found c unusable: selection then passes it by. */
int tlscert_is_bad(const struct tlscert *c);
/* One more owner (a keyring set that carries the certificate over). */
struct tlscert *tlscert_ref(struct tlscert *c);
/* Drops one owner; the last one wipes the key bytes and frees everything. */
void tlscert_unref(struct tlscert_cache *cc, struct tlscert *c);

/* The leaf, parsed on demand and owned by the cache (valid until the next call). NULL: out of memory. */
struct x509_st *tlscert_leaf(struct tlscert_cache *cc, struct tlscert *c);
/* Puts leaf, chain and key on ssl (which takes its own references). 0 or -1. */
int tlscert_use(struct tlscert_cache *cc, struct tlscert *c, struct ssl_st *ssl);

#endif
