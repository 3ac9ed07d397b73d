/*
 * One node at a time per piece of ACME work on a shared store (issue 20):
 * the lease an order holds while it runs, renewed by its holder, released
 * at its end, taken over by another node once a dead holder's expires; and
 * the fenced save of the order's certificate. See master/store_lease.c for
 * the table. With SQLite (one node) every take succeeds.
 */
#ifndef HALOYD_ACMELEASE_H
#define HALOYD_ACMELEASE_H

#include <stdint.h>

#include "master/store.h"

/*
 * A holder that stops renewing loses the lease after ACMELEASE_TTL_S: long
 * enough that a loaded node renewing every ACMELEASE_RENEW_S never loses
 * it by lateness, short enough that a dead node's order is taken over
 * within minutes (an order takes seconds to a minute).
 */
#define ACMELEASE_TTL_S 120
#define ACMELEASE_RENEW_S 30

struct acmelease {
	char name[STORE_LEASE_NAME_MAX + 1];	/* "" when none is held */
	char holder[STORE_NODE_NAME_MAX + 1];	/* this node */
	int64_t token;
};

/* l holds nothing yet; holder is this node's name (store_node_name). */
void acmelease_init(struct acmelease *l, const char *holder);
/*
 * Takes the lease of the order for name (its first name): 1 taken, 0
 * another node holds it until *until (unix s), -1 store failure (logged).
 */
int acmelease_take(struct store *st, struct acmelease *l, const char *name, int64_t now,
    int64_t *until);
/* Keeps the held lease ACMELEASE_TTL_S more: 0, or -1 when it was lost (logged, cleared). */
int acmelease_renew(struct store *st, struct acmelease *l, int64_t now);
/* Frees the held lease, if any, for the next node at once. */
void acmelease_release(struct store *st, struct acmelease *l);
/*
 * Stores the order's certificate only while the lease is still ours
 * (fencing): STORE_OK, STORE_ENOENT when another node took it over (logged,
 * nothing written), else the store's failure.
 */
int acmelease_cert_put(struct store *st, const struct acmelease *l, const struct store_cert *c);

#endif
