/*
 * The harnesses' master fixture: a master context set up by hand (as the
 * unit suites' testmaster.c does, without check and without children): a
 * store, the keyring and its self-signed default, the publish state, and
 * optionally the control socket, all in a temporary folder removed at exit.
 */
#ifndef HALOYD_FUZZMASTER_H
#define HALOYD_FUZZMASTER_H

#include <stddef.h>

#include "master/master.h"

/* nworkers worker entries in the process table, never started (pid 0). */
void fuzzmaster_init(struct master *m, size_t nworkers, int control);
/* Turns m's loop without waiting, at most max turns. */
void fuzzmaster_settle(struct master *m, int max);

#endif
