/*
 * Several nodes on one PostgreSQL store (issue 20): the change channel
 * (LISTEN/NOTIFY on the store's connection, watched by the master's loop),
 * each node's heartbeat row, the wait of `haloyd-ctl` until every live node
 * serves a change, and reconnecting with back-off when the database goes
 * away. Everything here is a no-op with the SQLite store.
 */
#ifndef HALOYD_CLUSTER_H
#define HALOYD_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "master/store.h"

struct master;

#define CLUSTER_BEAT_MS 1000		/* heartbeat row written, node table re-read */
#define CLUSTER_LIVE_S 5		/* a node silent this long is not waited for */
#define CLUSTER_NODES_MAX 64		/* nodes remembered; later ones are not waited for */
#define CLUSTER_RETRY_MIN_MS 250	/* reconnect back-off, doubling up to the max */
#define CLUSTER_RETRY_MAX_MS 4000
#define CLUSTER_CONNECT_MS 3000		/* an attempt that takes longer is given up */

/* What this node knows of one node of the store (its row, updated by notices). */
struct cluster_node {
	char name[STORE_NODE_NAME_MAX + 1];
	char addr[STORE_NODE_ADDR_MAX + 1];
	int64_t served;		/* change number its workers serve */
	int64_t seen;		/* unix seconds of its last heartbeat; 0: stopped */
};

/* After the store opened: 0 (also without a shared store) or -1 (logged). */
int cluster_init(struct master *m);
void cluster_free(struct master *m);
/* A change of ours committed (publish_changed): number it and tell the other nodes. */
void cluster_changed(struct master *m);
/* The number of our last change: what `haloyd-ctl` waits for (0: nothing to wait for). */
int64_t cluster_want(const struct master *m);
/* Around publish_build: the change number read before the store is. */
void cluster_build_begin(struct master *m);
void cluster_build_done(struct master *m);
/* From publish_check: reports a generation our workers now serve, reads notifications. */
void cluster_check(struct master *m);
/* 1 when every other live node serves change n. */
int cluster_served(const struct master *m, int64_t n);
/* The live nodes that do not serve change n, ", "-separated, into buf. */
void cluster_lagging(const struct master *m, int64_t n, char *buf, size_t len);
/*
 * The nodes known (re-read from the store first when it is reachable), this
 * node's name in *self, and whether the store is reachable; NULL without a
 * shared store.
 */
const struct cluster_node *cluster_nodes(struct master *m, size_t *n, const char **self,
    int *up);

#endif
