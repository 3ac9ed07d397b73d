/*
 * Active health checks: every worker looks, a few times a second, at the
 * backends of the routes with a health check (route set --health-check)
 * in its newest snapshot; for a backend whose probe is due, the worker
 * that wins the probe lease (share/health.h) sends GET PATH over the
 * route's backend protocol (the upstream of worker/upstream.h, so http1,
 * https, h2c and h2 alike) and reports 2xx/3xx within the timeout as a
 * pass, anything else as a failure, to the shared state machine. Nothing
 * blocks: a probe is a stream on the worker's loop with its own timer.
 */
#ifndef HALOYD_WORKER_PROBE_H
#define HALOYD_WORKER_PROBE_H

struct worker;

#define PROBE_TICK_MS 100	/* how late a due probe may start; no tick without a check */
#define PROBE_MAX 256		/* probes in flight in one worker; later ones wait a tick */

/* The probes of a worker (not the tunnel process); 0 or -1. */
int probe_init(struct worker *w);
/* A new snapshot: the tick runs while one of its routes has a check. */
void probe_snapshot(struct worker *w);
/* Ends every probe in flight and the tick. */
void probe_free(struct worker *w);

#endif
