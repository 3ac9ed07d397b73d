/*
 * libFuzzer harness: the route snapshot reader (share/snap.c). Every input
 * is validated as it came (most fail the CRC), then again with its CRC and
 * file size made right, so the fuzzer reaches the checks of sections,
 * strings, indexes and probe lengths; an image that validates is put in a
 * sealed memfd (share/sealed.c), mapped as a worker maps it, and read the
 * way the worker reads it: every route, its backends and strings, lookups
 * of every route's name, an alias and wildcard form of it, and ACME tokens.
 * An image of a set of several shards is read in a set whose other shards
 * are empty images (so its hosts whose route is another image's are
 * followed there and not found).
 * Seeds: images built by master/snapbuild.c (tests/fuzz/seedgen.c).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/snapbuild.h"
#include "share/hash.h"
#include "share/log.h"
#include "share/sealed.h"
#include "share/snap.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keeps the compiler from dropping reads whose value nothing uses. */
static volatile uint64_t sink;

static void
snap_fix_crc(uint8_t *p, size_t size)
{
	struct snap_header h;
	uint32_t crc;

	memcpy(&h, p, sizeof(h));
	h.file_size = size;
	h.crc32c = 0;
	memcpy(p, &h, sizeof(h));
	crc = hash_crc32c(0, p, size);
	memcpy(p + offsetof(struct snap_header, crc32c), &crc, sizeof(crc));
}

static void
snap_look(const struct snap *s, const char *name)
{
	char alt[600];
	size_t n = strlen(name);
	const struct snap_route *r = snap_lookup(s, name, n);

	sink += r != NULL ? r->id : 0;
	sink += snap_lookup_host(s, name, n) != NULL;
	if (n + 3 < sizeof(alt)) {
		alt[0] = 'x';
		alt[1] = '.';
		memcpy(alt + 2, name[0] == '*' && name[1] == '.' ? name + 2 : name, n + 1);
		sink += snap_lookup(s, alt, strlen(alt)) != NULL;
	}
}

static void
snap_read_all(struct snap *s)
{
	static const char *const names[] = { "", "a", "app.example.com", "x.wild.example.com",
	    "www.app.example.com", "example.com", "localhost" };
	uint32_t i, j;

	sink += snap_generation(s) + snap_backend_count(s);
	for (i = 0; i < snap_route_count(s); i++) {
		const struct snap_route *r = snap_route_at(s, i);

		snap_look(s, snap_string(s, r->name));
		sink += strlen(snap_string(s, r->backend_sni)) + strlen(snap_string(s, r->backend_ca));
		for (j = 0; j < r->be_count; j++)
			sink += snap_route_backend(s, r, j)->port;
	}
	for (i = 0; i < snap_backend_count(s); i++)
		sink += snap_backend_at(s, i)->route;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		snap_look(s, names[i]);
	sink += snap_challenge(s, "tok-EN_1", 8) != NULL;
	sink += snap_challenge(s, "", 0) != NULL;
}

/* Empty image k of a set of n (a power of two up to SNAP_SHARDS), built once; -1 on failure. */
static int
empty_image(uint32_t n, uint32_t k)
{
	static int fds[7][SNAP_SHARDS];
	static int made;
	struct snapb_input in = { .default_route = SNAP_NONE, .generation = 1 };
	uint32_t lg = (uint32_t)__builtin_ctz(n);
	char err[256];
	int fd;

	if (!made) {
		memset(fds, 0xff, sizeof(fds));
		made = 1;
	}
	if (fds[lg][k] < 0) {
		in.shard = (uint16_t)k;
		in.nshards = (uint16_t)n;
		if (snapb_build(&in, &fd, err, sizeof(err)) == -1)
			return -1;
		fds[lg][k] = fd;
	}
	return fds[lg][k];
}

/* The image in fd as a set: alone when it is one, else with empty images for the others. */
static int
map_set(int fd, const struct snap_header *h, struct snap **out)
{
	struct snap *s;
	char err[256];
	uint32_t k;

	if (h->nshards == 1)
		return snap_map(fd, out, err, sizeof(err));
	if ((s = snap_set_new(NULL, err, sizeof(err))) == NULL)
		return -1;
	for (k = 0; k < h->nshards; k++)
		if (snap_set_add(s, k == h->shard ? fd : empty_image(h->nshards, k), err,
		    sizeof(err)) == -1) {
			snap_unref(s);
			return -1;
		}
	if (snap_set_finish(s, h->generation, err, sizeof(err)) == -1) {
		snap_unref(s);
		return -1;
	}
	*out = s;
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct snap *s = NULL;
	uint8_t *p;
	int fd;

	(void)snap_validate(data, size, err, sizeof(err));
	if (size < sizeof(struct snap_header) || (p = malloc(size)) == NULL)
		return 0;
	memcpy(p, data, size);
	snap_fix_crc(p, size);
	if (snap_validate(p, size, err, sizeof(err)) == 0 &&
	    (fd = sealed_create("fuzz-snap", p, size, err, sizeof(err))) >= 0) {
		if (map_set(fd, (const struct snap_header *)(const void *)p, &s) == 0) {
			snap_read_all(s);
			snap_unref(s);
		}
		close(fd);
	}
	free(p);
	return 0;
}
