/*
 * Sealed memfds: how the master hands read-only images (the route snapshot,
 * the keyring) to the workers. Once sealed, nobody, the master included, can
 * change, grow or shrink the image, so a reader validates it once.
 */
#ifndef HALOYD_SEALED_H
#define HALOYD_SEALED_H

#include <stddef.h>
#include <stdint.h>

/*
 * The fields every sealed image's header starts with: the snapshot's and the
 * keyring's (SEALED_PREFIX_OF checks each at compile time), so one function
 * checks them the same way for both.
 */
struct sealed_prefix {
	char magic[8];
	uint16_t major;
	uint16_t minor;
	uint32_t header_size;
	uint64_t generation;
	uint64_t file_size;
	uint64_t built_at;
	uint32_t flags;		/* reserved, 0 */
};

#define SEALED_SAME(T, m) (offsetof(T, m) == offsetof(struct sealed_prefix, m) && \
	sizeof(((T *)0)->m) == sizeof(((struct sealed_prefix *)0)->m))
#define SEALED_PREFIX_OF(T) _Static_assert(SEALED_SAME(T, magic) && SEALED_SAME(T, major) && \
	SEALED_SAME(T, minor) && SEALED_SAME(T, header_size) && SEALED_SAME(T, generation) && \
	SEALED_SAME(T, file_size) && SEALED_SAME(T, built_at) && SEALED_SAME(T, flags), \
	#T " starts with struct sealed_prefix")

/* What one kind of image must say in its prefix, and where its CRC and reserved bytes are. */
struct sealed_form {
	const char *magic;	/* 8 bytes */
	uint16_t major;
	uint32_t header_size;
	uint64_t max_size;
	size_t crc_off;		/* a uint32_t CRC32C over the image with itself as zero */
	size_t reserved_off, reserved_len;	/* all zero */
	int (*own)(const uint8_t *base, char *err, size_t errlen);	/* or NULL */
};

/* 1 when the regions [a, a+alen) and [b, b+blen) of an image share a byte. */
int sealed_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen);

/*
 * The image base[0..size) against form f: alignment, size, the prefix's fields
 * and the reserved bytes, the kind's own fields (f->own), then the CRC: a
 * damaged header names its field, not only the CRC. 0, or -1 with err set.
 */
int sealed_check_header(const uint8_t *base, size_t size, const struct sealed_form *f,
    char *err, size_t errlen);

/* A new memfd holding a copy of p[0..len), sealed; the fd, or -1 with err set. */
int sealed_create(const char *name, const void *p, size_t len, char *err, size_t errlen);

/*
 * Maps a sealed memfd read-only after checking its seals and that its size
 * is within [min, max]; 0 with *pp and *lenp set, or -1 with err set.
 */
int sealed_map(int fd, size_t min, size_t max, const void **pp, size_t *lenp, char *err,
    size_t errlen);

#endif
