/*
 * The snapshot image reader (format in share/snap.h): maps a sealed memfd,
 * validates every offset, index and probe length once, so that lookups
 * (share/snapset.c, over a set of images) need no bounds checks.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "share/beaddr.h"
#include "share/hash.h"
#include "share/hostname.h"
#include "share/pathprefix.h"
#include "share/snap.h"
#include "share/snapimage.h"
#include "share/sealed.h"
#include "share/util.h"

#define SNAP_MAX_SECTIONS 64
#define SNAP_CRC_OFF offsetof(struct snap_header, crc32c)

/* The entry size each known section kind must declare. */
static const uint32_t snap_entry_size[SNAP_SEC__MAX] = {
	[SNAP_SEC_STRTAB] = 1,
	[SNAP_SEC_HOSTS] = sizeof(struct snap_host),
	[SNAP_SEC_HOST_INDEX] = sizeof(struct snap_slot),
	[SNAP_SEC_WILD_INDEX] = sizeof(struct snap_slot),
	[SNAP_SEC_ROUTES] = sizeof(struct snap_route),
	[SNAP_SEC_BACKENDS] = sizeof(struct snap_backend),
	[SNAP_SEC_CHALLENGES] = sizeof(struct snap_chal),
	[SNAP_SEC_PREFIXES] = sizeof(struct snap_prefix),
};

SEALED_PREFIX_OF(struct snap_header);

/* The header's own field: which shard of how many. */
static int
snap_check_shard(const uint8_t *base, char *err, size_t errlen)
{
	const struct snap_header *h = (const struct snap_header *)base;

	if (h->nshards == 0 || h->nshards > SNAP_SHARDS || (h->nshards & (h->nshards - 1)) != 0 ||
	    h->shard >= h->nshards)
		return util_errf(err, errlen, "shard %u of %u", h->shard, h->nshards);
	return 0;
}

static const struct sealed_form snap_form = {
	.magic = SNAP_MAGIC, .major = SNAP_MAJOR, .header_size = sizeof(struct snap_header),
	.max_size = SNAP_MAX_SIZE, .crc_off = SNAP_CRC_OFF,
	.reserved_off = offsetof(struct snap_header, reserved),
	.reserved_len = sizeof(((struct snap_header *)0)->reserved), .own = snap_check_shard,
};

/* One section entry on its own: flags, alignment, bounds, entry size, count. */
static int
snap_check_section(const struct snap_section *sec, uint32_t i, size_t size, char *err,
    size_t errlen)
{
	uint32_t want = sec->kind < SNAP_SEC__MAX ? snap_entry_size[sec->kind] : 0;

	if (sec->flags != 0)
		return util_errf(err, errlen, "section %u: reserved flags set", i);
	if (sec->offset % 8 != 0)
		return util_errf(err, errlen, "section %u: offset %llu not 8-aligned", i,
		    (unsigned long long)sec->offset);
	if (sec->offset > size || sec->size > size - sec->offset)
		return util_errf(err, errlen, "section %u: offset %llu size %llu out of bounds",
		    i, (unsigned long long)sec->offset, (unsigned long long)sec->size);
	if (want != 0 && sec->entry_size != want)
		return util_errf(err, errlen, "section %u: entry size %u, expected %u", i,
		    sec->entry_size, want);
	if ((uint64_t)sec->count * sec->entry_size > sec->size)
		return util_errf(err, errlen, "section %u: %u entries do not fit its size", i,
		    sec->count);
	return 0;
}

/* Sections must not overlap each other, the header or the section table. */
static int
snap_check_overlaps(const struct snap_section *tab, uint32_t n, uint64_t taboff, char *err,
    size_t errlen)
{
	uint32_t i, j;

	for (i = 0; i < n; i++) {
		if (sealed_overlap(tab[i].offset, tab[i].size, 0, sizeof(struct snap_header)) ||
		    sealed_overlap(tab[i].offset, tab[i].size, taboff, (uint64_t)n * sizeof(*tab)))
			return util_errf(err, errlen, "section %u overlaps the header", i);
		for (j = i + 1; j < n; j++)
			if (sealed_overlap(tab[i].offset, tab[i].size, tab[j].offset, tab[j].size))
				return util_errf(err, errlen, "section %u overlaps section %u",
				    i, j);
	}
	return 0;
}

/* Records where each known section lives in v. */
static void
snap_bind(struct snap_image *v, const struct snap_section *sec)
{
	const void *p = v->sn_base + sec->offset;

	switch (sec->kind) {
	case SNAP_SEC_STRTAB:
		v->sn_strtab = p;
		v->sn_strtab_size = sec->count;
		break;
	case SNAP_SEC_HOSTS:
		v->sn_hosts = p;
		v->sn_nhosts = sec->count;
		break;
	case SNAP_SEC_HOST_INDEX:
		v->sn_hidx = p;
		v->sn_hslots = sec->count;
		break;
	case SNAP_SEC_WILD_INDEX:
		v->sn_widx = p;
		v->sn_wslots = sec->count;
		break;
	case SNAP_SEC_ROUTES:
		v->sn_routes = p;
		v->sn_nroutes = sec->count;
		break;
	case SNAP_SEC_BACKENDS:
		v->sn_backends = p;
		v->sn_nbackends = sec->count;
		break;
	case SNAP_SEC_CHALLENGES:
		v->sn_chals = p;
		v->sn_nchals = sec->count;
		break;
	case SNAP_SEC_PREFIXES:
		v->sn_prefixes = p;
		v->sn_nprefixes = sec->count;
		break;
	}
}

/*
 * The section table: in bounds, every entry sane, no overlap, one of each
 * known kind. Kinds this version does not know are bounds-checked and
 * otherwise ignored, so a minor version may append sections.
 */
static int
snap_check_sections(struct snap_image *v, char *err, size_t errlen)
{
	const struct snap_header *h = v->sn_hdr;
	const struct snap_section *tab;
	uint32_t i, seen = 0;

	if (h->nsections > SNAP_MAX_SECTIONS || h->section_table_off % 8 != 0 ||
	    h->section_table_off < sizeof(*h) ||
	    (uint64_t)h->section_table_off + (uint64_t)h->nsections * sizeof(*tab) > v->sn_size)
		return util_errf(err, errlen, "section table (%u entries at %u) out of bounds",
		    h->nsections, h->section_table_off);
	tab = (const struct snap_section *)(v->sn_base + h->section_table_off);
	for (i = 0; i < h->nsections; i++) {
		if (snap_check_section(&tab[i], i, v->sn_size, err, errlen) == -1)
			return -1;
		if (tab[i].kind == 0 || tab[i].kind >= SNAP_SEC__MAX)
			continue;
		if (seen & (1u << tab[i].kind))
			return util_errf(err, errlen, "section %u: kind %u repeated", i,
			    tab[i].kind);
		seen |= 1u << tab[i].kind;
		snap_bind(v, &tab[i]);
	}
	if (snap_check_overlaps(tab, h->nsections, h->section_table_off, err, errlen) == -1)
		return -1;
	for (i = SNAP_SEC_STRTAB; i < SNAP_SEC__MAX; i++)
		if ((seen & (1u << i)) == 0)
			return util_errf(err, errlen, "section kind %u missing", i);
	return 0;
}

/* Offsets keep SNAP_STR_LOCAL_BITS for the place in STRTAB. */
static int
snap_check_strtab(const struct snap_image *v, char *err, size_t errlen)
{
	if (v->sn_strtab_size > SNAP_STR_LOCAL_MAX)
		return util_errf(err, errlen, "string table of %llu bytes, more than %u",
		    (unsigned long long)v->sn_strtab_size, SNAP_STR_LOCAL_MAX);
	return 0;
}

/* Inside STRTAB, NUL-terminated there, no NUL inside, in this image's shard. */
static int
snap_str_ok(const struct snap_image *v, struct snap_str s)
{
	uint32_t off = SNAP_STR_LOCAL(s.off);

	return SNAP_STR_SHARD(s.off) == v->sn_hdr->shard &&
	    (uint64_t)off + s.len < v->sn_strtab_size && v->sn_strtab[off + s.len] == '\0' &&
	    memchr(v->sn_strtab + off, '\0', s.len) == NULL;
}

/* A name usable as a host or route name: a valid string of 1..253 bytes. */
static int
snap_name_ok(const struct snap_image *v, struct snap_str s)
{
	return s.len >= 1 && s.len <= HOSTNAME_MAX && snap_str_ok(v, s);
}

static int
snap_check_hosts(const struct snap_image *v, char *err, size_t errlen)
{
	const struct snap_host *h;
	uint32_t i;
	int wild;

	for (i = 0; i < v->sn_nhosts; i++) {
		h = &v->sn_hosts[i];
		if (!snap_name_ok(v, h->name))
			return util_errf(err, errlen, "host %u: name string (%u, %u) invalid", i,
			    h->name.off, h->name.len);
		wild = h->name.len > 2 && hostname_is_wildcard(snapimg_str(v, h->name));
		if (h->kind < SNAP_HOST_EXACT || h->kind > SNAP_HOST_WILDCARD ||
		    wild != (h->kind == SNAP_HOST_WILDCARD))
			return util_errf(err, errlen, "host %u: bad kind %u", i, h->kind);
		/* Only an alias or wildcard may be another image's: a route's own name is here. */
		if (h->route == SNAP_NONE ? h->kind == SNAP_HOST_EXACT ||
		    !snap_name_ok(v, h->target) || strchr(snapimg_str(v, h->target), '/') != NULL :
		    h->route >= v->sn_nroutes || h->target.len != 0)
			return util_errf(err, errlen, "host %u: route %u out of range or bad target",
			    i, h->route);
		/* A store id, checked against the keyring by the worker; ids start at 1. */
		if (h->cert == 0)
			return util_errf(err, errlen, "host %u: cert %u out of range", i,
			    h->cert);
		if (h->flags != 0)
			return util_errf(err, errlen, "host %u: reserved flags set", i);
	}
	return 0;
}

static int
snap_check_routes(const struct snap_image *v, char *err, size_t errlen)
{
	const struct snap_route *r;
	uint32_t i, b;

	for (i = 0; i < v->sn_nroutes; i++) {
		r = &v->sn_routes[i];
		if (!snap_name_ok(v, r->name))
			return util_errf(err, errlen, "route %u: name string (%u, %u) invalid", i,
			    r->name.off, r->name.len);
		if ((uint64_t)r->be_first + r->be_count > v->sn_nbackends)
			return util_errf(err, errlen, "route %u: backends %u+%u out of range", i,
			    r->be_first, r->be_count);
		if (r->flags & ~SNAP_ROUTE_FLAGS_ALL)
			return util_errf(err, errlen, "route %u: unknown flags %#x", i, r->flags);
		if (r->proto >= SNAP_PROTO__MAX || r->backend_pp > 2 || r->reserved2 != 0)
			return util_errf(err, errlen, "route %u: bad protocol %u, PROXY version %u or "
			    "reserved fields set", i, r->proto, r->backend_pp);
		if ((r->rate_rpm > SNAP_RATE_RPM_MAX && r->rate_rpm != SNAP_RATE_OFF) ||
		    r->rate_burst > SNAP_RATE_BURST_MAX)
			return util_errf(err, errlen, "route %u: rate %u or burst %u out of range", i,
			    r->rate_rpm, r->rate_burst);
		if (r->health_path.len != 0 && (!snap_str_ok(v, r->health_path) ||
		    r->health_path.len > SNAP_HEALTH_PATH_MAX ||
		    r->health_interval_ms < SNAP_HEALTH_MS_MIN ||
		    r->health_interval_ms > SNAP_HEALTH_MS_MAX ||
		    r->health_timeout_ms < SNAP_HEALTH_MS_MIN ||
		    r->health_timeout_ms > SNAP_HEALTH_MS_MAX || r->health_rise == 0 ||
		    r->health_rise > SNAP_HEALTH_COUNT_MAX || r->health_fall == 0 ||
		    r->health_fall > SNAP_HEALTH_COUNT_MAX))
			return util_errf(err, errlen, "route %u: bad health check settings", i);
		if ((r->backend_sni.len != 0 && !snap_name_ok(v, r->backend_sni)) ||
		    (r->backend_ca.len != 0 && !snap_str_ok(v, r->backend_ca)))
			return util_errf(err, errlen, "route %u: backend TLS strings invalid", i);
		for (b = r->be_first; b < r->be_first + r->be_count; b++)
			if (v->sn_backends[b].route != i)
				return util_errf(err, errlen,
				    "route %u: backend %u belongs to route %u", i, b,
				    v->sn_backends[b].route);
	}
	if (v->sn_hdr->default_route != SNAP_NONE && v->sn_hdr->default_route >= v->sn_nroutes)
		return util_errf(err, errlen, "default route %u out of range",
		    v->sn_hdr->default_route);
	return 0;
}

/*
 * An IP backend has no name; a unix one a path, a tunnel a name, and neither
 * an address; a DNS name's entry an address (or none yet), a port and the name.
 */
static int
snap_check_backend_kind(const struct snap_image *v, const struct snap_backend *b)
{
	const char *name;

	if (b->flags == SNAP_BACKEND_NAME) {
		if ((b->family != AF_INET && b->family != AF_INET6 &&
		    (b->family != AF_UNSPEC || !util_all_zero(b->addr, sizeof(b->addr)))) ||
		    b->port == 0 || !snap_str_ok(v, b->name))
			return -1;
		return beaddr_dns_name_ok(snapimg_str(v, b->name), b->name.len) ? 0 : -1;
	}
	if (b->family == AF_INET || b->family == AF_INET6)
		return b->flags == 0 && b->name.len == 0 ? 0 : -1;
	if (b->port != 0 || !util_all_zero(b->addr, sizeof(b->addr)) || !snap_str_ok(v, b->name))
		return -1;
	name = snapimg_str(v, b->name);
	if (b->family == AF_UNIX && b->flags == 0)
		return beaddr_unix_path_ok(name, b->name.len) ? 0 : -1;
	if (b->family == AF_UNSPEC && b->flags == SNAP_BACKEND_TUNNEL)
		return beaddr_tunnel_name_ok(name, b->name.len) ? 0 : -1;
	return -1;
}

static int
snap_check_backends(const struct snap_image *v, char *err, size_t errlen)
{
	const struct snap_backend *b;
	uint32_t i;

	for (i = 0; i < v->sn_nbackends; i++) {
		b = &v->sn_backends[i];
		if (b->route >= v->sn_nroutes)
			return util_errf(err, errlen, "backend %u: route %u out of range", i,
			    b->route);
		if (b->flags & ~(uint32_t)SNAP_BACKEND_FLAGS_ALL)
			return util_errf(err, errlen, "backend %u: unknown flags %#x", i, b->flags);
		if (snap_check_backend_kind(v, b) == -1)
			return util_errf(err, errlen, "backend %u: bad kind (family %u, flags %#x) "
			    "or name string (%u, %u)", i, b->family, b->flags, b->name.off,
			    b->name.len);
	}
	return 0;
}

/* Challenges: few, tokens base64url, answers printable, tokens unique. */
static int
snap_check_chals(const struct snap_image *v, char *err, size_t errlen)
{
	const struct snap_chal *c;
	const char *t;
	uint32_t i, j;

	if (v->sn_nchals > SNAP_CHAL_MAX)
		return util_errf(err, errlen, "%u challenges, more than %u", v->sn_nchals,
		    SNAP_CHAL_MAX);
	for (i = 0; i < v->sn_nchals; i++) {
		c = &v->sn_chals[i];
		if (c->token.len < 1 || c->token.len > SNAP_CHAL_TOKEN_MAX ||
		    !snap_str_ok(v, c->token) || c->keyauth.len < 1 ||
		    c->keyauth.len > SNAP_CHAL_KEYAUTH_MAX || !snap_str_ok(v, c->keyauth))
			return util_errf(err, errlen, "challenge %u: bad string", i);
		t = snapimg_str(v, c->token);
		if (strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
		    c->token.len)
			return util_errf(err, errlen, "challenge %u: token is not base64url", i);
		for (j = 0; j < i; j++)
			if (strcmp(t, snapimg_str(v, v->sn_chals[j].token)) == 0)
				return util_errf(err, errlen, "challenge %u: token repeated", i);
	}
	return 0;
}

/*
 * Probes one index for key. A wildcard row's key is its name after "*.".
 * Returns the host, or NULL after an empty slot or max_probe slots.
 */
static const struct snap_host *
snapimg_find_in(const struct snap_image *s, const struct snap_slot *idx, uint32_t nslots,
    const char *key, size_t len, int wild)
{
	const struct snap_header *hdr = s->sn_hdr;
	const struct snap_host *h;
	uint32_t hash, i, mask = nslots - 1, skip = wild ? 2 : 0;
	const struct snap_slot *sl;

	hash = (uint32_t)hash_siphash24(hdr->hash_key, key, len);
	for (i = 0; i < hdr->max_probe; i++) {
		sl = &idx[(hash + i) & mask];
		if (sl->host_plus1 == 0)
			break;
		if (sl->hash != hash)
			continue;
		h = &s->sn_hosts[sl->host_plus1 - 1];
		if (h->name.len == len + skip &&
		    memcmp(snapimg_str(s, h->name) + skip, key, len) == 0)
			return h;
	}
	return NULL;
}

/* Occupied slots point at hosts of the index's kind; returns how many, or -1. */
static int64_t
snap_count_slots(const struct snap_image *v, const struct snap_slot *idx, uint32_t nslots, int wild,
    char *err, size_t errlen)
{
	const char *what = wild ? "wildcard index" : "host index";
	uint32_t i, hi;
	int64_t used = 0;

	if (nslots == 0 || (nslots & (nslots - 1)) != 0)
		return util_errf(err, errlen, "%s: %u slots, not a power of two", what, nslots);
	for (i = 0; i < nslots; i++) {
		if (idx[i].host_plus1 == 0)
			continue;
		hi = idx[i].host_plus1 - 1;
		if (hi >= v->sn_nhosts)
			return util_errf(err, errlen, "%s: slot %u points past HOSTS (%u)",
			    what, i, idx[i].host_plus1);
		if ((v->sn_hosts[hi].kind == SNAP_HOST_WILDCARD) != wild)
			return util_errf(err, errlen, "%s: slot %u holds a host of kind %u",
			    what, i, v->sn_hosts[hi].kind);
		used++;
	}
	return used;
}

/*
 * Every host is found, by its own name, within max_probe, at a slot that
 * names it. With as many occupied slots as hosts this also proves every
 * occupied slot holds the right hash, and catches duplicate names and a
 * hash key that does not match the builder's.
 */
static int
snap_check_indexes(const struct snap_image *v, char *err, size_t errlen)
{
	const struct snap_host *h, *found;
	int64_t hused, wused, nwild = 0;
	uint32_t i, most = v->sn_hslots > v->sn_wslots ? v->sn_hslots : v->sn_wslots;
	int wild;

	if ((hused = snap_count_slots(v, v->sn_hidx, v->sn_hslots, 0, err, errlen)) == -1 ||
	    (wused = snap_count_slots(v, v->sn_widx, v->sn_wslots, 1, err, errlen)) == -1)
		return -1;
	if (v->sn_hdr->max_probe > most)
		return util_errf(err, errlen, "max probe %u exceeds the index size",
		    v->sn_hdr->max_probe);
	for (i = 0; i < v->sn_nhosts; i++) {
		h = &v->sn_hosts[i];
		wild = h->kind == SNAP_HOST_WILDCARD;
		nwild += wild;
		found = wild ?
		    snapimg_find_in(v, v->sn_widx, v->sn_wslots, snapimg_str(v, h->name) + 2,
		    h->name.len - 2, 1) :
		    snapimg_find_in(v, v->sn_hidx, v->sn_hslots, snapimg_str(v, h->name),
		    h->name.len, 0);
		if (found != h)
			return util_errf(err, errlen, "host %u (%s) not found within %u probes",
			    i, snapimg_str(v, h->name), v->sn_hdr->max_probe);
	}
	if (wused != nwild || hused != (int64_t)v->sn_nhosts - nwild)
		return util_errf(err, errlen,
		    "indexes hold %lld and %lld slots for %lld and %lld hosts", (long long)hused, (long long)wused, (long long)v->sn_nhosts - nwild,
		    (long long)nwild);
	return 0;
}

/* One prefix entry of host route parent: its string, its route, the order. */
static int
snap_check_prefix(const struct snap_image *v, uint32_t parent, uint32_t k, char *err, size_t errlen)
{
	const struct snap_prefix *p = &v->sn_prefixes[k];
	const struct snap_route *pr;

	if (p->parent != parent || p->route >= v->sn_nroutes || p->route == parent)
		return util_errf(err, errlen, "prefix %u: route %u or parent %u wrong", k,
		    p->route, p->parent);
	pr = &v->sn_routes[p->route];
	if (!snap_str_ok(v, p->path) ||
	    pathprefix_check(snapimg_str(v, p->path), p->path.len) != NULL ||
	    pr->pfx_count != 0 || pr->pfx_first != 0)
		return util_errf(err, errlen, "prefix %u: bad path or nested prefix route", k);
	if (k > v->sn_routes[parent].pfx_first && p->path.len > v->sn_prefixes[k - 1].path.len)
		return util_errf(err, errlen, "prefix %u: not longest first", k);
	return 0;
}

/* Each host route's prefixes: in range, bounded, its own, longest first. */
static int
snap_check_prefixes(const struct snap_image *v, char *err, size_t errlen)
{
	const struct snap_route *r;
	uint32_t i, k;

	for (i = 0; i < v->sn_nroutes; i++) {
		r = &v->sn_routes[i];
		if (r->pfx_count > PATHPREFIX_PER_ROUTE_MAX ||
		    (r->pfx_count == 0 && r->pfx_first != 0) ||
		    (uint64_t)r->pfx_first + r->pfx_count > v->sn_nprefixes)
			return util_errf(err, errlen, "route %u: prefixes %u+%u out of range", i,
			    r->pfx_first, r->pfx_count);
		for (k = r->pfx_first; k < r->pfx_first + r->pfx_count; k++)
			if (snap_check_prefix(v, i, k, err, errlen) == -1)
				return -1;
	}
	return 0;
}

/* Validates base and fills v's section pointers; v does not own the memory. */
static int
snap_parse(const void *base, size_t size, struct snap_image *v, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->sn_base = base;
	v->sn_size = size;
	v->sn_hdr = base;
	if (sealed_check_header(base, size, &snap_form, err, errlen) == -1 ||
	    snap_check_sections(v, err, errlen) == -1 ||
	    snap_check_strtab(v, err, errlen) == -1 ||
	    snap_check_hosts(v, err, errlen) == -1 ||
	    snap_check_backends(v, err, errlen) == -1 ||
	    snap_check_routes(v, err, errlen) == -1 ||
	    snap_check_chals(v, err, errlen) == -1 ||
	    snap_check_prefixes(v, err, errlen) == -1 ||
	    snap_check_indexes(v, err, errlen) == -1)
		return -1;
	return 0;
}

int
snap_validate(const void *base, size_t size, char *err, size_t errlen)
{
	struct snap_image v;

	return snap_parse(base, size, &v, err, errlen);
}

const struct snap_host *
snapimg_find(const struct snap_image *v, const char *key, size_t len, int wild)
{
	return wild ? snapimg_find_in(v, v->sn_widx, v->sn_wslots, key, len, 1) :
	    snapimg_find_in(v, v->sn_hidx, v->sn_hslots, key, len, 0);
}

int
snapimg_map(int fd, struct snap_image **out, char *err, size_t errlen)
{
	struct snap_image *s = NULL;
	const void *p = NULL;
	size_t size = 0;

	*out = NULL;
	if (sealed_map(fd, sizeof(struct snap_header), SNAP_MAX_SIZE, &p, &size, err, errlen) == -1)
		return -1;
	if ((s = malloc(sizeof(*s))) == NULL) {
		util_errf(err, errlen, "out of memory");
		goto fail;
	}
	if (snap_parse(p, size, s, err, errlen) == -1)
		goto fail;
	s->sn_refs = 1;
	*out = s;
	return 0;
fail:
	munmap((void *)(uintptr_t)p, size);
	free(s);
	return -1;
}

struct snap_image *
snapimg_ref(struct snap_image *s)
{
	s->sn_refs++;
	return s;
}

void
snapimg_unref(struct snap_image *s)
{
	if (s == NULL)
		return;
	assert(s->sn_refs > 0);
	if (--s->sn_refs > 0)
		return;
	munmap((void *)(uintptr_t)s->sn_base, s->sn_size);
	free(s);
}

static const char *const snap_proto_names[SNAP_PROTO__MAX] = {
	[SNAP_PROTO_HTTP1] = "http1",
	[SNAP_PROTO_H2C] = "h2c",
	[SNAP_PROTO_HTTPS] = "https",
	[SNAP_PROTO_H2] = "h2",
};

const char *
snap_proto_name(unsigned proto)
{
	return proto < SNAP_PROTO__MAX ? snap_proto_names[proto] : NULL;
}

int
snap_proto_parse(const char *word)
{
	int i;

	for (i = 0; i < SNAP_PROTO__MAX; i++)
		if (strcmp(word, snap_proto_names[i]) == 0)
			return i;
	return -1;
}

int
snap_proto_tls(unsigned proto)
{
	return proto == SNAP_PROTO_HTTPS || proto == SNAP_PROTO_H2;
}
