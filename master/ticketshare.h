/*
 * Session-ticket keys shared by the nodes of a PostgreSQL store (issue
 * 20), so a TLS session ticket issued by one node resumes on another. The
 * holder of the store's "ticketkeys" lease rotates them every
 * ticket_key_lifetime and writes them to the store (fenced by the lease's
 * token); every node loads them at start, at each change notice and at its
 * own looks. With SQLite the keyring keeps its own keys (master/keyringbuild.c).
 */
#ifndef HALOYD_TICKETSHARE_H
#define HALOYD_TICKETSHARE_H

#include <stdint.h>

#include "master/store.h"
#include "share/evloop.h"
#include "share/keyring.h"

struct master;

struct ticketshare {
	struct master *m;
	struct ev_timer look;	/* the next take of the lease, load, maybe rotation */
	char holder[STORE_NODE_NAME_MAX + 1];
	int64_t token;		/* of the lease while held, else 0 */
};

/* Starts on a shared store: takes or follows the keys now and looks again periodically. */
int ticketshare_start(struct master *m, struct ticketshare *ts);
void ticketshare_stop(struct ticketshare *ts);
/* Puts the store's keys, when it has any, into the keyring: 0, or -1 (logged). */
int ticketshare_load(struct master *m);

/* The hex text of a key's name, HMAC and AES keys, and back (0, or -1 when malformed). */
void ticketshare_encode(const struct keyring_ticket_key *k, struct store_ticket_key *out);
int ticketshare_decode(const struct store_ticket_key *in, struct keyring_ticket_key *k);
/* Whether the current key, made lifetime_s before its use ends, is due for rotation at now. */
int ticketshare_due(const struct keyring_ticket_key *cur, int64_t lifetime_s, int64_t now);

#endif
