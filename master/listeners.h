/*
 * The listening sockets, kept by the master: one SO_REUSEPORT socket per
 * worker per address, so each worker has its own accept queue, and a
 * respawned worker gets back the very socket (and queue) its predecessor had.
 */
#ifndef HALOYD_LISTENERS_H
#define HALOYD_LISTENERS_H

#include <stddef.h>
#include <stdint.h>

struct inherit;

struct listeners {
	int *fds;		/* naddrs x nworkers, fd of (addr a, worker w) at a * nworkers + w */
	size_t naddrs;
	size_t nworkers;
};

/* Binds every address once per worker; on error logs and returns -1. */
int listeners_open(struct listeners *l, char *const *addrs, size_t naddrs, size_t nworkers);
/* The same, taking first the sockets of kind that h holds for these addresses (h may be NULL). */
int listeners_adopt(struct listeners *l, char *const *addrs, size_t naddrs, size_t nworkers,
    uint32_t kind, struct inherit *h);
int listeners_fd(const struct listeners *l, size_t addr, size_t worker);
void listeners_close(struct listeners *l);

#endif
