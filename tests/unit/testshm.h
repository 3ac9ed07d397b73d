/*
 * Fixtures for the suites of the shared region's tables (check_clients,
 * check_health): a region of its own per test, and writers killed in the
 * middle of their updates, as a worker killed with SIGKILL would be.
 */
#ifndef HALOYD_TESTSHM_H
#define HALOYD_TESTSHM_H

#include <stdint.h>
#include <sys/types.h>

#include "share/shm.h"

#define TESTSHM_REGION (2u << 20)	/* room for 4 workers and a few thousand entries */
#define TESTSHM_WRITERS 3		/* worker slots 1..3 */

/* A new region of TESTSHM_REGION bytes for 4 workers, mapped in *s; its fd. Fails the test. */
int testshm_open(struct shm *s);
void testshm_close(struct shm *s, int fd);

/*
 * Forks TESTSHM_WRITERS writers (writer(wi) for wi = 1..3: a child that
 * updates the table for ever and counts each update in
 * s->slots[wi].retries), waits until each has made 20 000 updates, kills
 * them with SIGKILL, reaps them, and calls forget(s, wi) for each, as the
 * master does when it reaps a worker.
 */
void testshm_kill_writers(struct shm *s, pid_t (*writer)(uint32_t wi),
    void (*forget)(const struct shm *s, uint32_t wi));

#endif
