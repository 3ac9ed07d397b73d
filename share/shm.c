/* The shared region: creation, mapping with validation, the worker's counting (see shm.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share/shm.h"
#include "share/util.h"

#define ROUND_UP(n, a) (((n) + (a) - 1) / (a) * (a))
#define TABLE_OFF 128
#define MASTER_OFF ROUND_UP(TABLE_OFF + SHM_SECTIONS_MAX * sizeof(struct shm_section), SHM_ALIGN)
#define SLOTS_OFF (MASTER_OFF + sizeof(struct shm_master))
#define BACKENDS_OFF(n) (SLOTS_OFF + (size_t)(n) * sizeof(struct shm_wslot))
#define BACKENDS_BYTES(n) ((size_t)SHM_BACKENDS_MAX * SHM_BACKEND_SIZE(n))
#define CLIENTS_OFF(n) (BACKENDS_OFF(n) + BACKENDS_BYTES(n))

size_t
shm_needed(uint32_t nworkers)
{
	return CLIENTS_OFF(nworkers) + sizeof(struct shm_clients);
}

uint32_t
shm_client_capacity(size_t size, uint32_t nworkers)
{
	size_t n;

	if (shm_needed(nworkers) > size)
		return 0;
	n = (size - shm_needed(nworkers)) / SHM_CLIENT_SIZE(nworkers);
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static void
shm_layout(uint8_t *base, size_t size, uint32_t nworkers)
{
	struct shm_header *h = (struct shm_header *)(void *)base;
	struct shm_section *t = (struct shm_section *)(void *)(base + TABLE_OFF);
	struct shm_clients *cl = (struct shm_clients *)(void *)(base + CLIENTS_OFF(nworkers));
	uint32_t cap = shm_client_capacity(size, nworkers);
	size_t csize = SHM_CLIENT_SIZE(nworkers);

	memcpy(h->magic, SHM_MAGIC, sizeof(h->magic));
	h->major = SHM_MAJOR;
	h->minor = SHM_MINOR;
	h->header_size = sizeof(*h);
	h->size = size;
	h->nsections = 4;
	h->section_table_off = TABLE_OFF;
	h->nworkers = nworkers;
	h->free_off = shm_needed(nworkers) + (uint64_t)cap * csize;
	t[0] = (struct shm_section){ SHM_SEC_MASTER, 0, sizeof(struct shm_master), 1, MASTER_OFF,
	    sizeof(struct shm_master) };
	t[1] = (struct shm_section){ SHM_SEC_WORKERS, 0, sizeof(struct shm_wslot), nworkers,
	    SLOTS_OFF, (uint64_t)nworkers * sizeof(struct shm_wslot) };
	t[2] = (struct shm_section){ SHM_SEC_CLIENTS, 0, (uint32_t)csize, cap,
	    CLIENTS_OFF(nworkers), sizeof(*cl) + (uint64_t)cap * csize };
	t[3] = (struct shm_section){ SHM_SEC_BACKENDS, 0, (uint32_t)SHM_BACKEND_SIZE(nworkers),
	    SHM_BACKENDS_MAX, BACKENDS_OFF(nworkers), BACKENDS_BYTES(nworkers) };
	cl->probe = SHM_CLIENT_PROBE;
}

static int
shm_mmap(int fd, size_t size, struct shm *out, char *err, size_t errlen)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		return -1;
	}
	if (shm_validate(p, size, err, errlen) == -1) {
		munmap(p, size);
		return -1;
	}
	out->base = p;
	out->size = size;
	out->master = (struct shm_master *)(void *)((uint8_t *)p + MASTER_OFF);
	out->slots = (struct shm_wslot *)(void *)((uint8_t *)p + SLOTS_OFF);
	out->nslots = ((struct shm_header *)p)->nworkers;
	out->clients = (struct shm_clients *)(void *)((uint8_t *)p + CLIENTS_OFF(out->nslots));
	out->client_base = (uint8_t *)out->clients + sizeof(struct shm_clients);
	out->nclients = shm_client_capacity(size, out->nslots);
	out->client_size = (uint32_t)SHM_CLIENT_SIZE(out->nslots);
	out->backend_base = (uint8_t *)p + BACKENDS_OFF(out->nslots);
	out->nbackends = SHM_BACKENDS_MAX;
	out->backend_size = (uint32_t)SHM_BACKEND_SIZE(out->nslots);
	return 0;
}

int
shm_create(size_t size, uint32_t nworkers, struct shm *out, char *err, size_t errlen)
{
	void *p;
	int fd;

	if (size < SHM_SIZE_MIN || size > SHM_SIZE_MAX || nworkers == 0 ||
	    nworkers > SHM_WORKERS_MAX || shm_needed(nworkers) > size) {
		snprintf(err, errlen, "shared_memory_size %zu cannot hold %u workers (%zu bytes)",
		    size, nworkers, shm_needed(nworkers));
		return -1;
	}
	if ((fd = memfd_create("haloyd-shared", MFD_CLOEXEC)) == -1 ||
	    ftruncate(fd, (off_t)size) == -1) {
		snprintf(err, errlen, "shared region: %s", strerror(errno));
		goto fail;
	}
	if ((p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		goto fail;
	}
	shm_layout(p, size, nworkers);
	/* Keyed, so nobody can choose addresses that share one probe window. */
	if (util_random(((uint8_t *)p + CLIENTS_OFF(nworkers)), 16) == -1) {
		snprintf(err, errlen, "shared region: no random bytes");
		munmap(p, size);
		goto fail;
	}
	munmap(p, size);
	if (shm_mmap(fd, size, out, err, errlen) == -1)
		goto fail;
	return fd;
fail:
	if (fd != -1)
		close(fd);
	return -1;
}

int
shm_map(int fd, struct shm *out, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		return -1;
	}
	if (st.st_size < (off_t)SHM_SIZE_MIN || (uint64_t)st.st_size > SHM_SIZE_MAX) {
		snprintf(err, errlen, "size %lld out of bounds", (long long)st.st_size);
		return -1;
	}
	return shm_mmap(fd, (size_t)st.st_size, out, err, errlen);
}

static int
shm_check_section(const struct shm_section *s, uint64_t size, uint32_t nworkers)
{
	uint32_t want_size = s->kind == SHM_SEC_MASTER ? sizeof(struct shm_master) :
	    s->kind == SHM_SEC_WORKERS ? sizeof(struct shm_wslot) :
	    s->kind == SHM_SEC_BACKENDS ? (uint32_t)SHM_BACKEND_SIZE(nworkers) :
	    (uint32_t)SHM_CLIENT_SIZE(nworkers);
	uint32_t want_count = s->kind == SHM_SEC_MASTER ? 1 : s->kind == SHM_SEC_WORKERS ?
	    nworkers : s->kind == SHM_SEC_BACKENDS ? SHM_BACKENDS_MAX :
	    shm_client_capacity(size, nworkers);
	uint64_t want_off = s->kind == SHM_SEC_MASTER ? MASTER_OFF :
	    s->kind == SHM_SEC_WORKERS ? SLOTS_OFF : s->kind == SHM_SEC_BACKENDS ?
	    BACKENDS_OFF(nworkers) : CLIENTS_OFF(nworkers);

	/* The offsets are fixed in this version: the reader checks them rather than trusting them. */
	return s->entry_size == want_size && s->count == want_count && s->offset == want_off &&
	    s->size >= (uint64_t)s->count * s->entry_size && s->offset + s->size <= size ? 0 : -1;
}

int
shm_validate(const void *base, size_t size, char *err, size_t errlen)
{
	const struct shm_header *h = base;
	const struct shm_section *t;
	uint32_t i, seen = 0;

	if (size < SHM_SIZE_MIN || memcmp(h->magic, SHM_MAGIC, sizeof(h->magic)) != 0 ||
	    h->major != SHM_MAJOR || h->header_size != sizeof(*h) || h->size != size) {
		snprintf(err, errlen, "not a shared region of this version and size");
		return -1;
	}
	if (h->nsections > SHM_SECTIONS_MAX || h->section_table_off != TABLE_OFF ||
	    h->nworkers == 0 || h->nworkers > SHM_WORKERS_MAX || shm_needed(h->nworkers) > size ||
	    h->free_off > size) {
		snprintf(err, errlen, "bad shared region header");
		return -1;
	}
	t = (const struct shm_section *)(const void *)((const uint8_t *)base + TABLE_OFF);
	for (i = 0; i < h->nsections; i++) {
		/* Unknown kinds (a newer minor) are skipped; known ones must be exact. */
		if (t[i].kind == 0 || t[i].kind >= SHM_SEC__MAX)
			continue;
		if ((seen & (1u << t[i].kind)) || shm_check_section(&t[i], size, h->nworkers) == -1) {
			snprintf(err, errlen, "bad shared region section %u", i);
			return -1;
		}
		seen |= 1u << t[i].kind;
	}
	if (seen != ((1u << SHM_SEC_MASTER) | (1u << SHM_SEC_WORKERS) | (1u << SHM_SEC_CLIENTS) |
	    (1u << SHM_SEC_BACKENDS))) {
		snprintf(err, errlen, "shared region lacks a section");
		return -1;
	}
	return 0;
}

void
shm_unmap(struct shm *s)
{
	if (s->base != NULL)
		munmap(s->base, s->size);
	memset(s, 0, sizeof(*s));
}

unsigned
shm_status_class(unsigned status)
{
	return status >= 100 && status < 600 ? status / 100 : 0;
}

struct shm_route_ctr *
shm_route(struct shm_wslot *s, uint32_t route_id)
{
	/* Fibonacci hashing: store ids are small and consecutive. */
	uint32_t i = (uint32_t)(route_id * 2654435769u) >> 25, n;

	_Static_assert(SHM_ROUTES_MAX == 1u << 7, "the hash keeps 7 bits");
	for (n = 0; n < SHM_ROUTES_MAX; n++, i = (i + 1) & (SHM_ROUTES_MAX - 1)) {
		struct shm_route_ctr *r = &s->routes[i];
		uint32_t id = __atomic_load_n(&r->route_id, __ATOMIC_ACQUIRE);

		if (id == route_id)
			return r;
		if (id == 0) {
			/* Only this slot's worker inserts; the master sees zero counters first. */
			__atomic_store_n(&r->route_id, route_id, __ATOMIC_RELEASE);
			return r;
		}
	}
	return &s->other;
}

struct shm_cache_ctr *
shm_cache_route(struct shm_wslot *s, uint32_t route_id)
{
	uint32_t i = (uint32_t)(route_id * 2654435769u) >> 28, n;

	_Static_assert(SHM_CACHE_ROUTES == 1u << 4, "the hash keeps 4 bits");
	if (route_id == 0)
		return &s->cache_noroute;
	for (n = 0; n < SHM_CACHE_ROUTES; n++, i = (i + 1) & (SHM_CACHE_ROUTES - 1)) {
		struct shm_cache_ctr *c = &s->cache[i];
		uint32_t id = __atomic_load_n(&c->route_id, __ATOMIC_ACQUIRE);

		if (id == route_id)
			return c;
		if (id == 0) {
			__atomic_store_n(&c->route_id, route_id, __ATOMIC_RELEASE);
			return c;
		}
	}
	return &s->cache_other;
}

void
shm_count_request(struct shm_wslot *s, uint32_t route_id, enum shm_proto proto,
    unsigned status, uint64_t duration_us, uint64_t bytes_in, uint64_t bytes_out)
{
	static const uint64_t bounds[SHM_DURATION_BUCKETS] = SHM_DURATION_BOUNDS_US;
	struct shm_route_ctr *r = route_id == 0 ? &s->noroute : shm_route(s, route_id);
	unsigned c = shm_status_class(status), b;

	shm_add(&s->requests[proto][c], 1);
	shm_add(&r->requests[proto][c], 1);
	for (b = 0; b < SHM_DURATION_BUCKETS && duration_us > bounds[b]; b++)
		;
	shm_add(&s->duration[b], 1);
	shm_add(&s->duration_us, duration_us);
	shm_add(&s->bytes_in, bytes_in);
	shm_add(&s->bytes_out, bytes_out);
}
