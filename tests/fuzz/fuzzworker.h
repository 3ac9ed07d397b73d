/*
 * The harnesses' worker fixture: a worker context set up by hand around its
 * loop (as the unit suites' testworker.c does, without check) and the route
 * snapshot it serves: routes without backends, so every request ends in a
 * local answer (404, 502, a redirect, an ACME answer) and no exchange ever
 * reaches for a socket. The same description seeds the snapshot corpus.
 */
#ifndef HALOYD_FUZZWORKER_H
#define HALOYD_FUZZWORKER_H

#include "master/snapbuild.h"
#include "worker/context.h"

/* The fixture's snapshot description (static storage). */
const struct snapb_input *fuzzworker_snap_input(void);
/* Zeroes w, gives it a loop, BUF_SIZE buffers, quiet settings and the snapshot. */
void fuzzworker_init(struct worker *w);
/*
 * Gives w a shared region of its own and trusted proxies (10/8, 2001:db8::/32),
 * so the routes' rate limits run: X-Forwarded-For's walk, the client table.
 * Not for the ipc harness, whose input may send the region.
 */
void fuzzworker_shared(struct worker *w);
/* Turns w's loop without waiting until nothing is left to do (at most max turns). */
void fuzzworker_settle(struct worker *w, int max);

#endif
