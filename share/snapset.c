/*
 * Snapshot sets (share/snap.h): one validated image per route shard, put
 * together from the images a generation changed and the previous set's
 * others, and the lookups over them. Immutable once finished; requests
 * hold the set they were routed with.
 */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "share/hostname.h"
#include "share/pathprefix.h"
#include "share/snap.h"
#include "share/snapimage.h"
#include "share/util.h"

struct snap {
	int refs;		/* workers are single-threaded: a plain count */
	int finished;
	uint64_t gen;
	uint32_t nshards;	/* 0 until the first image */
	struct snap_image *img[SNAP_SHARDS];
	uint32_t rfirst[SNAP_SHARDS + 1];	/* dense index of each image's first route */
	uint32_t bfirst[SNAP_SHARDS + 1];	/* and backend */
	uint8_t bysite[SNAP_SHARDS];	/* the images by the address of their backends */
};

/* FNV-1a: stable across runs and images, streamed over "*." and a suffix. */
#define SNAPSET_FNV_INIT 2166136261u

static uint32_t
snapset_fnv(uint32_t h, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

static uint32_t
snapset_shard(uint32_t h, uint32_t nshards)
{
	return (h ^ (h >> 16)) & (nshards - 1);
}

uint32_t
snap_shard_of(const char *name, size_t len, uint32_t nshards)
{
	const char *slash = memchr(name, '/', len);

	if (slash != NULL)
		len = (size_t)(slash - name);
	return snapset_shard(snapset_fnv(SNAPSET_FNV_INIT, name, len), nshards);
}

struct snap *
snap_set_new(const struct snap *prev, char *err, size_t errlen)
{
	struct snap *s;
	uint32_t k;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		util_errf(err, errlen, "out of memory");
		return NULL;
	}
	s->refs = 1;
	if (prev != NULL) {
		s->nshards = prev->nshards;
		for (k = 0; k < prev->nshards; k++)
			s->img[k] = prev->img[k] != NULL ? snapimg_ref(prev->img[k]) : NULL;
	}
	return s;
}

/* Drops every image: an image of another shard count starts the set again. */
static void
snapset_clear(struct snap *s)
{
	uint32_t k;

	for (k = 0; k < SNAP_SHARDS; k++) {
		snapimg_unref(s->img[k]);
		s->img[k] = NULL;
	}
	s->nshards = 0;
}

int
snap_set_add(struct snap *s, int fd, char *err, size_t errlen)
{
	struct snap_image *v;
	uint32_t k;

	assert(!s->finished);
	if (snapimg_map(fd, &v, err, errlen) == -1)
		return -1;
	if (s->nshards != v->sn_hdr->nshards) {
		snapset_clear(s);
		s->nshards = v->sn_hdr->nshards;
	}
	k = v->sn_hdr->shard;
	snapimg_unref(s->img[k]);
	s->img[k] = v;
	return 0;
}

/* Insertion sort of at most 64: snap_backend_index then bisects instead of trying each. */
static void
snapset_sort_sites(struct snap *s)
{
	uint32_t i, j;
	uint8_t k;

	for (i = 0; i < s->nshards; i++) {
		k = (uint8_t)i;
		for (j = i; j > 0 && (uintptr_t)s->img[s->bysite[j - 1]]->sn_backends >
		    (uintptr_t)s->img[k]->sn_backends; j--)
			s->bysite[j] = s->bysite[j - 1];
		s->bysite[j] = k;
	}
}

int
snap_set_finish(struct snap *s, uint64_t gen, char *err, size_t errlen)
{
	uint32_t k;

	if (s->nshards == 0)
		return util_errf(err, errlen, "no image");
	for (k = 0; k < s->nshards; k++) {
		if (s->img[k] == NULL)
			return util_errf(err, errlen, "image of shard %u of %u missing", k,
			    s->nshards);
		s->rfirst[k + 1] = s->rfirst[k] + s->img[k]->sn_nroutes;
		s->bfirst[k + 1] = s->bfirst[k] + s->img[k]->sn_nbackends;
	}
	if ((uint64_t)s->rfirst[s->nshards] + s->bfirst[s->nshards] > UINT32_MAX)
		return util_errf(err, errlen, "too many routes in the set");
	snapset_sort_sites(s);
	s->gen = gen;
	s->finished = 1;
	return 0;
}

int
snap_map(int fd, struct snap **out, char *err, size_t errlen)
{
	struct snap *s;

	*out = NULL;
	if ((s = snap_set_new(NULL, err, errlen)) == NULL)
		return -1;
	if (snap_set_add(s, fd, err, errlen) == -1)
		goto fail;
	if (s->nshards != 1) {
		util_errf(err, errlen, "an image of %u shards alone", s->nshards);
		goto fail;
	}
	if (snap_set_finish(s, s->img[0]->sn_hdr->generation, err, errlen) == -1)
		goto fail;
	*out = s;
	return 0;
fail:
	snap_unref(s);
	return -1;
}

struct snap *
snap_ref(struct snap *s)
{
	s->refs++;
	return s;
}

void
snap_unref(struct snap *s)
{
	if (s == NULL)
		return;
	assert(s->refs > 0);
	if (--s->refs > 0)
		return;
	snapset_clear(s);
	free(s);
}

uint64_t
snap_generation(const struct snap *s)
{
	return s->gen;
}

uint32_t
snap_route_count(const struct snap *s)
{
	return s->rfirst[s->nshards];
}

uint32_t
snap_backend_count(const struct snap *s)
{
	return s->bfirst[s->nshards];
}

/* The image whose dense range first[k]..first[k+1] holds i. */
static uint32_t
snapset_image_of(const struct snap *s, const uint32_t *first, uint32_t i)
{
	uint32_t lo = 0, hi = s->nshards - 1, mid;

	while (lo < hi) {
		mid = (lo + hi + 1) / 2;
		if (first[mid] <= i)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

const struct snap_route *
snap_route_at(const struct snap *s, uint32_t i)
{
	uint32_t k;

	assert(i < snap_route_count(s));
	k = snapset_image_of(s, s->rfirst, i);
	return &s->img[k]->sn_routes[i - s->rfirst[k]];
}

const struct snap_backend *
snap_backend_at(const struct snap *s, uint32_t i)
{
	uint32_t k;

	assert(i < snap_backend_count(s));
	k = snapset_image_of(s, s->bfirst, i);
	return &s->img[k]->sn_backends[i - s->bfirst[k]];
}

uint32_t
snap_image_count(const struct snap *s)
{
	return s->nshards;
}

const void *
snap_image_id(const struct snap *s, uint32_t k, uint64_t *built)
{
	assert(k < s->nshards);
	*built = s->img[k]->sn_hdr->generation;
	return s->img[k];
}

uint32_t
snap_image_first_route(const struct snap *s, uint32_t k, uint32_t *count)
{
	assert(k < s->nshards);
	*count = s->img[k]->sn_nroutes;
	return s->rfirst[k];
}

/* A route's image: its name's offset carries it. */
static const struct snap_image *
snapset_route_image(const struct snap *s, const struct snap_route *r)
{
	return s->img[SNAP_STR_SHARD(r->name.off)];
}

const struct snap_backend *
snap_route_backend(const struct snap *s, const struct snap_route *r, uint32_t j)
{
	assert(j < r->be_count);
	return &snapset_route_image(s, r)->sn_backends[r->be_first + j];
}

uint32_t
snap_backend_index(const struct snap *s, const struct snap_backend *be)
{
	const struct snap_image *v;
	uint32_t lo = 0, hi = s->nshards - 1, mid, k;

	/* The last image whose backends start at or before be (per request: no scan of 64). */
	while (lo < hi) {
		mid = (lo + hi + 1) / 2;
		if ((uintptr_t)s->img[s->bysite[mid]]->sn_backends <= (uintptr_t)be)
			lo = mid;
		else
			hi = mid - 1;
	}
	k = s->bysite[lo];
	v = s->img[k];
	assert(be >= v->sn_backends && be < v->sn_backends + v->sn_nbackends);
	return s->bfirst[k] + (uint32_t)(be - v->sn_backends);
}

const char *
snap_string(const struct snap *s, struct snap_str r)
{
	/* An empty string's offset is not validated (the builder leaves it 0): never read there. */
	return r.len == 0 ? "" : snapimg_str(s->img[SNAP_STR_SHARD(r.off)], r);
}

/* Exact or alias, then "*.suffix" for exactly one more label, each in its shard's image. */
const struct snap_host *
snap_lookup_host(const struct snap *s, const char *host, size_t len)
{
	const struct snap_host *h = NULL;
	const char *dot;
	uint32_t hash;
	size_t first;

	if (len > 0 && len <= HOSTNAME_MAX) {
		h = snapimg_find(s->img[snap_shard_of(host, len, s->nshards)], host, len, 0);
		if (h == NULL && (dot = memchr(host, '.', len)) != NULL) {
			first = (size_t)(dot - host);
			if (first > 0 && first + 1 < len) {
				hash = snapset_fnv(snapset_fnv(SNAPSET_FNV_INIT, "*.", 2), dot + 1,
				    len - first - 1);
				h = snapimg_find(s->img[snapset_shard(hash, s->nshards)], dot + 1,
				    len - first - 1, 1);
			}
		}
	}
	return h;
}

/* The route of host h: in h's image, or the target's in the target's image. */
static const struct snap_route *
snapset_host_route(const struct snap *s, const struct snap_host *h)
{
	const struct snap_image *v;
	const struct snap_host *t;
	const char *name;
	uint32_t len;

	if (h->route != SNAP_NONE)
		return &s->img[SNAP_STR_SHARD(h->name.off)]->sn_routes[h->route];
	name = snap_string(s, h->target);
	len = h->target.len;
	v = s->img[snap_shard_of(name, len, s->nshards)];
	t = hostname_is_wildcard(name) ? snapimg_find(v, name + 2, len - 2, 1) :
	    snapimg_find(v, name, len, 0);
	/* The master builds both images in one generation; a set that lacks it has no route. */
	if (t == NULL || t->route == SNAP_NONE)
		return NULL;
	return &v->sn_routes[t->route];
}

/* The host's route, else the default route. */
const struct snap_route *
snap_lookup(const struct snap *s, const char *host, size_t len)
{
	const struct snap_host *h = snap_lookup_host(s, host, len);
	const struct snap_image *v = s->img[0];
	const struct snap_route *r;

	if (h != NULL && (r = snapset_host_route(s, h)) != NULL)
		return r;
	if (v->sn_hdr->default_route != SNAP_NONE)
		return &v->sn_routes[v->sn_hdr->default_route];
	return NULL;
}

const char *
snap_challenge(const struct snap *s, const char *token, size_t len)
{
	const struct snap_image *v = s->img[0];
	const struct snap_chal *c;
	uint32_t i;

	for (i = 0; i < v->sn_nchals; i++) {
		c = &v->sn_chals[i];
		if (c->token.len == len && memcmp(snapimg_str(v, c->token), token, len) == 0)
			return snapimg_str(v, c->keyauth);
	}
	return NULL;
}

const struct snap_route *
snap_lookup_prefix(const struct snap *s, const struct snap_route *r, const char *npath,
    size_t nlen, size_t *plen)
{
	const struct snap_image *v = snapset_route_image(s, r);
	const struct snap_prefix *p;
	uint32_t k;

	for (k = r->pfx_first; k < r->pfx_first + (uint32_t)r->pfx_count; k++) {
		p = &v->sn_prefixes[k];
		if (pathprefix_match(npath, nlen, snapimg_str(v, p->path), p->path.len)) {
			*plen = p->path.len;
			return &v->sn_routes[p->route];
		}
	}
	return NULL;
}
