/*
 * The response cache's folder (cache_path): made by the master at start,
 * owned by the workers' user, who open the LMDB environment in it.
 */
#ifndef HALOYD_MASTER_CACHEDIR_H
#define HALOYD_MASTER_CACHEDIR_H

struct master;

/* 0, or -1 logged: the workers then serve without a cache. */
int cachedir_prepare(struct master *m);

#endif
