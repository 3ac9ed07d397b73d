/*
 * A master context for the unit suites of the master's modules: a store
 * in a temp folder, the keyring, an event loop, and this very test program
 * as the executable children are started from (fork + fexecve), where
 * testmaster_child_main plays the child that CHECK_CHILD names.
 */
#ifndef HALOYD_TESTMASTER_H
#define HALOYD_TESTMASTER_H

#include "master/master.h"

/*
 * CHECK_CHILD modes: "ack" (HELLO, acks every snapshot, answers status),
 * "lag" (never acks), "die" (exits 3 at once), "badhello" (a wrong role),
 * "garbage" (an unknown message after HELLO), "acme" (the ACME child:
 * fails every order with CHECK_RETRY_AFTER seconds), "acmechal" (the ACME
 * child: says its account's thumbprint CHECK_THUMBPRINT, then answers an
 * order with a challenge whose key authorisation ends in CHECK_KEYAUTH_THUMB).
 */
void testmaster_init(struct master *m, size_t nworkers);
void testmaster_free(struct master *m);
/* Runs the loop (reaping children) until cond holds or timeout_ms; 1 when it held. */
int testmaster_run_until(struct master *m, int (*cond)(struct master *m, void *arg), void *arg,
    int timeout_ms);
/* Runs the loop (reaping children) for ms. */
void testmaster_run_for(struct master *m, int ms);
/* The child side, when the program is started as `-R ROLE ...`. */
int testmaster_child_main(int argc, char **argv);

#endif
