/*
 * Sealed memfds: how the master hands read-only images (the route snapshot,
 * the keyring) to the workers. Once sealed, nobody, the master included, can
 * change, grow or shrink the image, so a reader validates it once.
 */
#ifndef HALOYD_SEALED_H
#define HALOYD_SEALED_H

#include <stddef.h>

/* A new memfd holding a copy of p[0..len), sealed; the fd, or -1 with err set. */
int sealed_create(const char *name, const void *p, size_t len, char *err, size_t errlen);

/*
 * Maps a sealed memfd read-only after checking its seals and that its size
 * is within [min, max]; 0 with *pp and *lenp set, or -1 with err set.
 */
int sealed_map(int fd, size_t min, size_t max, const void **pp, size_t *lenp, char *err,
    size_t errlen);

#endif
