/*
 * haloyd-ctl's cache commands: cache purge URL | --route NAME, cache stats.
 * The master opens the workers' LMDB environment for each command (LMDB
 * is safe across processes), so nothing goes through the workers.
 */
#ifndef HALOYD_MASTER_CACHECMDS_H
#define HALOYD_MASTER_CACHECMDS_H

struct master;
struct cclient;
struct cur;

int cachecmds_purge(struct master *m, struct cclient *cl, struct cur *c);
int cachecmds_stats(struct master *m, struct cclient *cl, struct cur *c);

#endif
