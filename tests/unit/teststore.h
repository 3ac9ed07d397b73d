/*
 * The store fixture of the store suites: a fresh SQLite store in a temp
 * folder of its own, removed with it.
 */
#ifndef HALOYD_TESTSTORE_H
#define HALOYD_TESTSTORE_H

#include "master/store.h"

/* Opens a store in a new temp folder; the test fails when it cannot. */
struct store *teststore_open(void);
/* Closes it and removes its folder. */
void teststore_close(struct store *st);

#endif
