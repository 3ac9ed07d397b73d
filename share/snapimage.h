/*
 * One snapshot image (format in share/snap.h) as share/snap.c maps and
 * validates it; private to the reader (share/snap.c, share/snapset.c),
 * whose sets (struct snap) hold one image per shard.
 */
#ifndef HALOYD_SNAPIMAGE_H
#define HALOYD_SNAPIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "share/snap.h"

/* A mapped image and where its sections start; immutable once validated. */
struct snap_image {
	const uint8_t *sn_base;
	size_t sn_size;
	int sn_refs;		/* workers are single-threaded: a plain count */
	const struct snap_header *sn_hdr;
	const char *sn_strtab;
	uint64_t sn_strtab_size;
	const struct snap_host *sn_hosts;
	uint32_t sn_nhosts;
	const struct snap_slot *sn_hidx;
	const struct snap_slot *sn_widx;
	uint32_t sn_hslots;
	uint32_t sn_wslots;
	const struct snap_route *sn_routes;
	uint32_t sn_nroutes;
	const struct snap_backend *sn_backends;
	uint32_t sn_nbackends;
	const struct snap_chal *sn_chals;
	uint32_t sn_nchals;
	const struct snap_prefix *sn_prefixes;
	uint32_t sn_nprefixes;
};

/* Maps and validates one image (the caller keeps fd): 0 with one reference, or -1. */
int snapimg_map(int fd, struct snap_image **out, char *err, size_t errlen);
struct snap_image *snapimg_ref(struct snap_image *v);
void snapimg_unref(struct snap_image *v);

/* String r of image v: r's offset carries v's shard (validated at map time). */
static inline const char *
snapimg_str(const struct snap_image *v, struct snap_str r)
{
	return v->sn_strtab + SNAP_STR_LOCAL(r.off);
}

/* The exact (wild 0) or wildcard (wild 1, key the part after "*.") host of v, or NULL. */
const struct snap_host *snapimg_find(const struct snap_image *v, const char *key, size_t len,
    int wild);

#endif
