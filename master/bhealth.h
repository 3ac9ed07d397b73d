/*
 * The master's reads of the shared backend table (share/health.h): the
 * health line route show prints per backend, and a walk over the backends
 * of a snapshot for the metrics (haloyd_backend_up, health check counts).
 */
#ifndef HALOYD_MASTER_BHEALTH_H
#define HALOYD_MASTER_BHEALTH_H

#include <stddef.h>
#include <stdint.h>

struct shm;
struct shm_backend;
struct snap;

/*
 * "NAME: up|down, last check 2s ago: 200, 10 passed, 1 failed, 3 in
 * flight" for the backend with store id id ("NAME: no state yet" when no
 * worker has used it; a DNS name may have several entries: the first).
 */
void bhealth_line(const struct shm *s, uint32_t id, const char *name, uint64_t now_ms,
    char *buf, size_t len);

/* route and backend are the names the metrics label them with. */
typedef void bhealth_fn(void *arg, const char *route, const char *backend,
    const struct shm_backend *e, int up);
/* Every address or unix backend of snapshot s that has an entry, in snapshot order. */
void bhealth_foreach(const struct shm *shm, const struct snap *s, uint64_t now_ms,
    bhealth_fn *fn, void *arg);

#endif
