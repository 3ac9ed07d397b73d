/*
 * libFuzzer harness: the route snapshot reader (share/snap.c). Every input
 * is validated as it came (most fail the CRC), then again with its CRC and
 * file size made right, so the fuzzer reaches the checks of sections,
 * strings, indexes and probe lengths; an image that validates is put in a
 * sealed memfd (share/sealed.c), mapped as a worker maps it, and read the
 * way the worker reads it: every route, its backends and strings, lookups
 * of every route's name, an alias and wildcard form of it, and ACME tokens.
 * Seeds: images built by master/snapbuild.c (tests/fuzz/seedgen.c).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
			sink += snap_backend_at(s, r->be_first + j)->port;
	}
	for (i = 0; i < snap_backend_count(s); i++)
		sink += snap_backend_at(s, i)->route;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		snap_look(s, names[i]);
	sink += snap_challenge(s, "tok-EN_1", 8) != NULL;
	sink += snap_challenge(s, "", 0) != NULL;
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
		if (snap_map(fd, &s, err, sizeof(err)) == 0) {
			snap_read_all(s);
			snap_unref(s);
		}
		close(fd);
	}
	free(p);
	return 0;
}
