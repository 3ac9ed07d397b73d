/*
 * The keyring reader (format in share/keyring.h): maps a sealed memfd,
 * validates every offset, length, index and name once, then hands out
 * pointers into the mapping until keyring_unmap.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "share/hostname.h"
#include "share/keyring.h"
#include "share/sealed.h"
#include "share/util.h"

#define KEYRING_CRC_OFF offsetof(struct keyring_header, crc32c)
#define KEYRING_NREGIONS 4

/* A mapped image and where its regions start; immutable once validated. */
struct keyring {
	const uint8_t *kr_base;
	size_t kr_size;
	int kr_mapped;		/* kr_base is our mapping (keyring_map), not the caller's */
	const struct keyring_header *kr_hdr;
	const struct keyring_ticket_key *kr_keys;
	const struct keyring_cert *kr_certs;
	const struct keyring_blob *kr_names;
	const char *kr_data;
};

SEALED_PREFIX_OF(struct keyring_header);

static const struct sealed_form kr_form = {
	.magic = KEYRING_MAGIC, .major = KEYRING_MAJOR,
	.header_size = sizeof(struct keyring_header), .max_size = KEYRING_MAX_SIZE,
	.crc_off = KEYRING_CRC_OFF, .reserved_off = offsetof(struct keyring_header, reserved),
	.reserved_len = sizeof(((struct keyring_header *)0)->reserved),
};

/*
 * The four regions: counts within their limits, 8-aligned, after the
 * header, inside the image, and not overlapping each other.
 */
static int
kr_check_regions(struct keyring *v, char *err, size_t errlen)
{
	const struct keyring_header *h = v->kr_hdr;
	static const char *const what[KEYRING_NREGIONS] = { "keys", "certs", "names", "data" };
	uint64_t off[KEYRING_NREGIONS] = { h->keys_off, h->certs_off, h->names_off, h->data_off };
	uint64_t len[KEYRING_NREGIONS] = {
		(uint64_t)h->nkeys * sizeof(struct keyring_ticket_key),
		(uint64_t)h->ncerts * sizeof(struct keyring_cert),
		(uint64_t)h->nnames * sizeof(struct keyring_blob),
		h->data_size,
	};
	int i, j;

	if (h->nkeys > KEYRING_MAX_KEYS)
		return util_errf(err, errlen, "%u ticket keys, at most %u", h->nkeys,
		    KEYRING_MAX_KEYS);
	if (h->ncerts > KEYRING_MAX_CERTS)
		return util_errf(err, errlen, "%u certificates, at most %u", h->ncerts,
		    KEYRING_MAX_CERTS);
	for (i = 0; i < KEYRING_NREGIONS; i++) {
		if (off[i] % 8 != 0 || off[i] < sizeof(*h) || off[i] > v->kr_size ||
		    len[i] > v->kr_size - off[i])
			return util_errf(err, errlen, "%s region (offset %llu, %llu bytes) out of bounds",
			    what[i], (unsigned long long)off[i], (unsigned long long)len[i]);
		for (j = 0; j < i; j++)
			if (sealed_overlap(off[i], len[i], off[j], len[j]))
				return util_errf(err, errlen, "%s region overlaps %s region",
				    what[i], what[j]);
	}
	v->kr_keys = (const void *)(v->kr_base + h->keys_off);
	v->kr_certs = (const void *)(v->kr_base + h->certs_off);
	v->kr_names = (const void *)(v->kr_base + h->names_off);
	v->kr_data = (const char *)(v->kr_base + h->data_off);
	return 0;
}

/* Inside DATA, 1..max bytes, NUL-terminated there, no NUL inside. */
static int
kr_blob_ok(const struct keyring *v, struct keyring_blob b, size_t max)
{
	return b.len >= 1 && b.len <= max && (uint64_t)b.off + b.len < v->kr_hdr->data_size &&
	    v->kr_data[b.off + b.len] == '\0' && memchr(v->kr_data + b.off, '\0', b.len) == NULL;
}

static int
kr_check_keys(const struct keyring *v, char *err, size_t errlen)
{
	const struct keyring_ticket_key *k = v->kr_keys;
	uint32_t i;

	for (i = 0; i < v->kr_hdr->nkeys; i++)
		if (k[i].flags != 0 || k[i].reserved != 0)
			return util_errf(err, errlen, "ticket key %u: reserved field set", i);
	/* A worker picks the decryption key by name: two keys must not share one. */
	if (v->kr_hdr->nkeys == 2 && memcmp(k[0].name, k[1].name, sizeof(k[0].name)) == 0)
		return util_errf(err, errlen, "ticket keys 0 and 1 have the same name");
	return 0;
}

/* Every name of NAMES: a valid string that hostname_normalize_name leaves unchanged. */
static int
kr_check_names(const struct keyring *v, char *err, size_t errlen)
{
	char norm[HOSTNAME_MAX + 1];
	const char *s;
	uint32_t i;

	for (i = 0; i < v->kr_hdr->nnames; i++) {
		if (!kr_blob_ok(v, v->kr_names[i], HOSTNAME_MAX))
			return util_errf(err, errlen, "name %u: string (%u, %u) invalid", i,
			    v->kr_names[i].off, v->kr_names[i].len);
		s = v->kr_data + v->kr_names[i].off;
		if (hostname_normalize_name(s, norm) != (int)v->kr_names[i].len ||
		    memcmp(norm, s, v->kr_names[i].len) != 0)
			return util_errf(err, errlen, "name %u: '%s' is not a normalised host name",
			    i, s);
	}
	return 0;
}

static int
kr_check_cert(const struct keyring *v, uint32_t i, char *err, size_t errlen)
{
	const struct keyring_cert *c = &v->kr_certs[i];

	if (c->id == 0 || (i > 0 && c->id <= v->kr_certs[i - 1].id))
		return util_errf(err, errlen, "cert %u: id %u not ascending", i, c->id);
	if (c->source < KEYRING_SRC_IMPORTED || c->source > KEYRING_SRC_ACME_CHAL)
		return util_errf(err, errlen, "cert %u: bad source %u", i, c->source);
	if (c->flags != 0)
		return util_errf(err, errlen, "cert %u: reserved flags set", i);
	if (c->not_before > c->not_after)
		return util_errf(err, errlen, "cert %u: not before is after not after", i);
	if (!kr_blob_ok(v, c->chain, KEYRING_PEM_MAX))
		return util_errf(err, errlen, "cert %u: chain string (%u, %u) invalid", i,
		    c->chain.off, c->chain.len);
	if (!kr_blob_ok(v, c->key, KEYRING_PEM_MAX))
		return util_errf(err, errlen, "cert %u: key string (%u, %u) invalid", i,
		    c->key.off, c->key.len);
	if (c->name_count > KEYRING_MAX_NAMES ||
	    (uint64_t)c->name_first + c->name_count > v->kr_hdr->nnames)
		return util_errf(err, errlen, "cert %u: names %u+%u out of range", i,
		    c->name_first, c->name_count);
	if (c->name_count == 0 && c->source != KEYRING_SRC_DEFAULT)
		return util_errf(err, errlen, "cert %u: covers no name", i);
	if (c->source == KEYRING_SRC_ACME_CHAL && (c->name_count != 1 || c->id < KEYRING_CHAL_ID_BASE))
		return util_errf(err, errlen, "cert %u: a challenge certificate has one name and "
		    "an id from %u", i, KEYRING_CHAL_ID_BASE);
	return 0;
}

static int
kr_check_certs(const struct keyring *v, char *err, size_t errlen)
{
	uint32_t i, d = v->kr_hdr->default_cert;

	for (i = 0; i < v->kr_hdr->ncerts; i++)
		if (kr_check_cert(v, i, err, errlen) == -1)
			return -1;
	if (d != KEYRING_NONE &&
	    (d >= v->kr_hdr->ncerts || v->kr_certs[d].source != KEYRING_SRC_DEFAULT))
		return util_errf(err, errlen, "default cert %u out of range or not a default", d);
	return 0;
}

/* Validates base and fills v's region pointers; v does not own the memory. */
static int
kr_parse(const void *base, size_t size, struct keyring *v, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->kr_base = base;
	v->kr_size = size;
	v->kr_hdr = base;
	if (sealed_check_header(base, size, &kr_form, err, errlen) == -1 ||
	    kr_check_regions(v, err, errlen) == -1 ||
	    kr_check_keys(v, err, errlen) == -1 ||
	    kr_check_names(v, err, errlen) == -1 ||
	    kr_check_certs(v, err, errlen) == -1)
		return -1;
	return 0;
}

int
keyring_validate(const void *base, size_t size, char *err, size_t errlen)
{
	struct keyring v;

	return kr_parse(base, size, &v, err, errlen);
}

int
keyring_map(int fd, struct keyring **out, char *err, size_t errlen)
{
	struct keyring *kr = NULL;
	const void *p = NULL;
	size_t size = 0;

	*out = NULL;
	if (sealed_map(fd, sizeof(struct keyring_header), KEYRING_MAX_SIZE, &p, &size, err,
	    errlen) == -1)
		return -1;
	if ((kr = malloc(sizeof(*kr))) == NULL) {
		util_errf(err, errlen, "out of memory");
		goto fail;
	}
	if (kr_parse(p, size, kr, err, errlen) == -1)
		goto fail;
	kr->kr_mapped = 1;
	*out = kr;
	return 0;
fail:
	munmap((void *)(uintptr_t)p, size);
	free(kr);
	return -1;
}

void
keyring_unmap(struct keyring *kr)
{
	if (kr == NULL)
		return;
	if (kr->kr_mapped)
		munmap((void *)(uintptr_t)kr->kr_base, kr->kr_size);
	free(kr);
}

uint64_t
keyring_generation(const struct keyring *kr)
{
	return kr->kr_hdr->generation;
}

uint32_t
keyring_ticket_key_count(const struct keyring *kr)
{
	return kr->kr_hdr->nkeys;
}

const struct keyring_ticket_key *
keyring_ticket_key_at(const struct keyring *kr, uint32_t i)
{
	assert(i < kr->kr_hdr->nkeys);
	return &kr->kr_keys[i];
}

uint32_t
keyring_cert_count(const struct keyring *kr)
{
	return kr->kr_hdr->ncerts;
}

const struct keyring_cert *
keyring_cert_at(const struct keyring *kr, uint32_t i)
{
	assert(i < kr->kr_hdr->ncerts);
	return &kr->kr_certs[i];
}

/* Binary search: validation proved the ids strictly ascending. */
uint32_t
keyring_cert_by_id(const struct keyring *kr, uint32_t id)
{
	uint32_t lo = 0, hi = kr->kr_hdr->ncerts, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (kr->kr_certs[mid].id == id)
			return mid;
		if (kr->kr_certs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return KEYRING_NONE;
}

uint32_t
keyring_default_cert(const struct keyring *kr)
{
	return kr->kr_hdr->default_cert;
}

const char *
keyring_string(const struct keyring *kr, struct keyring_blob b)
{
	return kr->kr_data + b.off;
}

const char *
keyring_cert_name(const struct keyring *kr, const struct keyring_cert *c, uint32_t j,
    size_t *len)
{
	struct keyring_blob b;

	assert(j < c->name_count);
	b = kr->kr_names[c->name_first + j];
	if (len != NULL)
		*len = b.len;
	return kr->kr_data + b.off;
}
