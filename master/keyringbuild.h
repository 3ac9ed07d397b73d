/*
 * The master's side of the keyring (format in share/keyring.h): the TLS
 * session-ticket keys (made with RAND_bytes, rotated every
 * ticket_key_lifetime, current + previous), an index of the store's
 * certificates that answers "which certificate covers this host" for the
 * snapshot builder, and the builder of the sealed keyring memfd that goes
 * to the workers as MSG_W_KEYRING before the snapshot of its generation.
 */
#ifndef HALOYD_MASTER_KEYRING_H
#define HALOYD_MASTER_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "share/keyring.h"

struct master;
struct mworker;
struct mkeyring;

/* --- the image builder (pure: no store, no master) */

struct mkeyring_cert_in {
	uint32_t id;			/* store id; ascending over the input */
	uint16_t source;		/* enum keyring_source */
	uint8_t fingerprint[KEYRING_FP_LEN];
	int64_t not_before, not_after;
	const char *chain;		/* PEM, chain_len bytes, no NUL inside */
	size_t chain_len;
	const char *key;		/* PEM */
	size_t key_len;
	const char *const *names;	/* normalised names */
	uint32_t nnames;
};

struct mkeyring_input {
	const struct keyring_ticket_key *keys;	/* keys[0] current */
	uint32_t nkeys;
	const struct mkeyring_cert_in *certs;
	uint32_t ncerts;
	uint32_t default_cert;		/* index into certs, or KEYRING_NONE */
	uint64_t generation;
	uint64_t built_at;		/* unix ns */
};

/*
 * Lays the input out (share/keyring.h), checks it with keyring_validate,
 * copies it into a new memfd sealed against any change and returns it in
 * *fd (O_CLOEXEC). The scratch copy of the keys is wiped. 0, or -1 with a
 * reason in err.
 */
int mkeyring_build(const struct mkeyring_input *in, int *fd, char *err, size_t errlen);

/* --- the master's keyring state (m->keyring) */

/*
 * At start-up, after the store is open: makes the first ticket key, makes
 * and stores the self-signed default certificate if the store has none,
 * loads the certificate index and arms the rotation timer. 0 or -1 (logged).
 */
int mkeyring_init(struct master *m);
void mkeyring_free(struct master *m);

/* Something else the keyring carries changed (a TLS-ALPN-01 certificate): the next build ships it. */
void mkeyring_changed(struct master *m);

/* The store's certificates changed: reload the index; the next build ships them. */
int mkeyring_reload(struct master *m);
/* The session-ticket keys, current first (master/ticketshare.c shares them). */
const struct keyring_ticket_key *mkeyring_ticket_keys(const struct master *m, uint32_t *n);
/* Installs n keys (current first): 1 when they differ from the keyring's, else 0. */
int mkeyring_ticket_keys_set(struct master *m, const struct keyring_ticket_key *k, uint32_t n);
/* A new current key, the current one becoming the previous: 0 or -1 (logged). */
int mkeyring_ticket_key_new(struct master *m);

/*
 * Called by publish_build for generation gen, after the snapshot was built
 * and before it is sent: when certificates or ticket keys changed since the
 * last keyring, builds a new one for gen. 0, or -1 (logged: the generation
 * must not go out without it).
 */
int mkeyring_prepare(struct master *m, uint64_t gen);

/*
 * Before a snapshot goes to c: sends the current keyring if c has not got
 * it yet (a fresh or respawned worker, or a new keyring). 0 or -1.
 */
int mkeyring_send(struct master *m, struct mworker *w);
/* The current keyring image and its generation; -1 before the first. */
int mkeyring_current(const struct master *m, uint32_t *gen);

/*
 * The store id of the certificate to serve for host (normalised, may be a
 * "*.x" wildcard) of the route whose canonical name is route: a
 * certificate naming host exactly, else the route's own certificate if it
 * covers host, else a one-label wildcard certificate covering host; among
 * several, one valid now, then the latest to expire. 0 when only the
 * self-signed default is left.
 */
uint32_t mkeyring_cert_for(const struct master *m, const char *host, const char *route);

/*
 * The first time after now at which a certificate of the index becomes
 * valid or expires: mkeyring_cert_for's answers may change then. 0: never.
 */
int64_t mkeyring_next_change(const struct master *m, int64_t now);

/* Numbers for status: certificates in the index, generation of the current keyring. */
uint32_t mkeyring_cert_count(const struct master *m);
/* Changes whenever the certificates were read again: mkeyring_cert_for's answers may differ. */
uint32_t mkeyring_index_generation(const struct master *m);
uint32_t mkeyring_generation(const struct master *m);

#endif
