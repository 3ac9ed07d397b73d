/*
 * Publishing generations: compile the store into a snapshot, push it to
 * every worker, and know when every live worker serves it (the barrier that
 * lets `haloyd-ctl route add` return only once the route is live).
 */
#ifndef HALOYD_PUBLISH_H
#define HALOYD_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "share/snap.h"

struct master;
struct snap;

#define PUBLISH_ALL_SHARDS (~0ull >> (64 - SNAP_SHARDS))

#define PUBLISH_ACK_GRACE_MS 3000	/* a worker slower than this to ack is respawned */

/* Builds and sends a new generation now; 0 or -1 (the old one stays). */
int publish_build(struct master *m);
/*
 * The store changed: build now, or once every worker acked the generation
 * in flight (changes made meanwhile share that build). Returns the
 * generation that will contain the change.
 */
uint32_t publish_changed(struct master *m);
/*
 * Another node changed the shared store (master/cluster.c), or we reconnected
 * to it: every route is read again (master/rtable.h), then as publish_changed.
 */
void publish_remote_changed(struct master *m);
/* Something every image may depend on changed (DNS answers): the next build makes them all. */
void publish_invalidate(struct master *m);
/* The current set, mapped (metrics, cache stats): 0 with *out (NULL before any build), or -1. */
int publish_map(const struct master *m, struct snap **out, char *err, size_t errlen);
/* Closes the current images (exit). */
void publish_close(struct master *m);
/* 1 when every live, ready worker serves generation >= gen. */
int publish_served(const struct master *m, uint32_t gen);
/* A generation went out to a worker: its ack is now awaited (and policed). */
void publish_sent(struct master *m);
/* Re-evaluates waiters after an ack, a death or a timer. */
void publish_check(struct master *m);
void publish_init(struct master *m);

#endif
