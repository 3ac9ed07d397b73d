/*
 * The snapshot builder (format in share/snap.h): checks the master's
 * routes, hosts and backends, lays them out in one buffer whose size is
 * known up front, indexes the hosts, CRCs the image and hands it over in a
 * sealed memfd.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/snapbuild.h"
#include "master/snapprefix.h"
#include "share/beaddr.h"
#include "share/hash.h"
#include "share/hostname.h"
#include "share/snap.h"
#include "share/util.h"
#include "share/sealed.h"

#define SB_NSECTIONS (SNAP_SEC__MAX - 1)
#define SB_ALIGN(x) (((x) + 7) & ~(uint64_t)7)

/* One build: the input, the image being filled and where each part lives. */
struct sb {
	const struct snapb_input *in;
	char *err;
	size_t errlen;
	uint32_t *route_host;	/* scratch: host index + 1 whose string a route reuses */
	uint64_t strtab_size;
	uint32_t nwild;
	uint32_t hslots, wslots;
	uint64_t off[SNAP_SEC__MAX];
	uint64_t len[SNAP_SEC__MAX];
	uint64_t size;
	uint8_t *img;
	struct snap_header *hdr;
	char *strtab;
	uint32_t strnext;
	struct snap_host *hosts;
	struct snap_slot *hidx, *widx;
	struct snap_route *routes;
	struct snap_backend *backends;
	struct snap_chal *chals;
	struct snapprefix_plan pfx;	/* the prefix routes, grouped by host route */
	struct snap_prefix *prefixes;
};

static int sb_fail(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the reason into the caller's err; always returns -1. */
static int
sb_fail(struct sb *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	util_verrf(b->err, b->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* 1 when name is already in the form share/hostname.c gives it. */
static int
sb_name_ok(const char *name)
{
	char norm[HOSTNAME_MAX + 1];
	int n;

	if (name == NULL || strnlen(name, HOSTNAME_MAX + 1) > HOSTNAME_MAX)
		return 0;
	n = hostname_normalize_name(name, norm);
	return n > 0 && strcmp(norm, name) == 0;
}

/* The backend protocol and TLS strings of route i; reserves their STRTAB space. */
static int
sb_check_backend_tls(struct sb *b, uint32_t i, const struct snapb_route *r)
{
	if (r->proto >= SNAP_PROTO__MAX)
		return sb_fail(b, "route %u (%s): unknown backend protocol %u", i, r->name, r->proto);
	if (r->backend_sni != NULL && r->backend_sni[0] != '\0') {
		if (!sb_name_ok(r->backend_sni) || hostname_is_wildcard(r->backend_sni))
			return sb_fail(b, "route %u (%s): bad backend server name '%.80s'", i,
			    r->name, r->backend_sni);
		b->strtab_size += strlen(r->backend_sni) + 1;
	}
	if (r->backend_ca != NULL && r->backend_ca[0] != '\0')
		b->strtab_size += strlen(r->backend_ca) + 1;
	if (r->health_path != NULL && r->health_path[0] != '\0') {
		if (r->health_path[0] != '/' || strlen(r->health_path) > SNAP_HEALTH_PATH_MAX)
			return sb_fail(b, "route %u (%s): bad health check path", i, r->name);
		b->strtab_size += strlen(r->health_path) + 1;
	}
	return 0;
}

static int
sb_check_routes(struct sb *b)
{
	const struct snapb_input *in = b->in;
	const struct snapb_route *r;
	uint32_t i;

	for (i = 0; i < in->nroutes; i++) {
		r = &in->routes[i];
		if (!snapprefix_name_ok(r->name))
			return sb_fail(b, "route %u: bad or too long name '%.80s'", i,
			    r->name != NULL ? r->name : "(null)");
		if ((uint64_t)r->be_first + r->be_count > in->nbackends)
			return sb_fail(b, "route %u (%s): backends %u+%u out of range (%u)", i,
			    r->name, r->be_first, r->be_count, in->nbackends);
		b->strtab_size += strlen(r->name) + 1;
		if (sb_check_backend_tls(b, i, r) == -1)
			return -1;
	}
	if (in->default_route != SNAP_NONE && in->default_route >= in->nroutes)
		return sb_fail(b, "default route %u out of range (%u routes)", in->default_route,
		    in->nroutes);
	return 0;
}

/*
 * Hosts: names, kinds and route indexes. A route whose canonical name is
 * also its EXACT host row shares that row's string.
 */
static int
sb_check_hosts(struct sb *b)
{
	const struct snapb_input *in = b->in;
	const struct snapb_host *h;
	uint32_t i;
	int wild;

	for (i = 0; i < in->nhosts; i++) {
		h = &in->hosts[i];
		if (!sb_name_ok(h->name))
			return sb_fail(b, "host %u: bad or too long name '%.80s'", i,
			    h->name != NULL ? h->name : "(null)");
		wild = hostname_is_wildcard(h->name);
		if (h->kind < SNAP_HOST_EXACT || h->kind > SNAP_HOST_WILDCARD ||
		    wild != (h->kind == SNAP_HOST_WILDCARD))
			return sb_fail(b, "host %u (%s): kind %u does not fit the name", i,
			    h->name, h->kind);
		if (h->route == SNAP_NONE ? h->kind == SNAP_HOST_EXACT || h->target == NULL ||
		    !sb_name_ok(h->target) : h->route >= in->nroutes || h->target != NULL)
			return sb_fail(b, "host %u (%s): route %u out of range (%u) or bad target",
			    i, h->name, h->route, in->nroutes);
		b->nwild += (uint32_t)wild;
		b->strtab_size += strlen(h->name) + 1;
		if (h->target != NULL)
			b->strtab_size += strlen(h->target) + 1;
		if (h->kind == SNAP_HOST_EXACT && b->route_host[h->route] == 0 &&
		    strcmp(h->name, in->routes[h->route].name) == 0) {
			b->route_host[h->route] = i + 1;
			b->strtab_size -= strlen(h->name) + 1;
		}
	}
	return 0;
}

/* Backends: one of the three kinds of share/snap.h, with the string the reader will check. */
static int
sb_check_backends(struct sb *b)
{
	const struct snapb_backend *be;
	size_t len;
	uint32_t i;

	for (i = 0; i < b->in->nbackends; i++) {
		be = &b->in->backends[i];
		len = be->name != NULL ? strlen(be->name) : 0;
		if ((be->family == AF_INET || be->family == AF_INET6) && be->flags == 0 &&
		    len == 0)
			continue;
		if (be->flags == SNAP_BACKEND_NAME && (be->family == AF_INET ||
		    be->family == AF_INET6 || be->family == AF_UNSPEC) && be->port != 0 &&
		    beaddr_dns_name_ok(be->name, len)) {
			b->strtab_size += len + 1;
			continue;
		}
		if (be->family == AF_UNIX && be->flags == 0 && beaddr_unix_path_ok(be->name, len)) {
			b->strtab_size += len + 1;
			continue;
		}
		if (be->family == AF_UNSPEC && be->flags == SNAP_BACKEND_TUNNEL &&
		    beaddr_tunnel_name_ok(be->name, len)) {
			b->strtab_size += len + 1;
			continue;
		}
		return sb_fail(b, "backend %u: bad kind (family %u, flags %#x) or name", i,
		    be->family, be->flags);
	}
	return 0;
}

/* ACME challenges: the master checked them; the reader's limits hold here too. */
static int
sb_check_chals(struct sb *b)
{
	const struct snapb_chal *c;
	size_t tl, kl;
	uint32_t i;

	if (b->in->nchals > SNAP_CHAL_MAX)
		return sb_fail(b, "%u challenges, more than %u", b->in->nchals, SNAP_CHAL_MAX);
	for (i = 0; i < b->in->nchals; i++) {
		c = &b->in->chals[i];
		tl = strlen(c->token);
		kl = strlen(c->keyauth);
		if (tl < 1 || tl > SNAP_CHAL_TOKEN_MAX || kl < 1 || kl > SNAP_CHAL_KEYAUTH_MAX)
			return sb_fail(b, "challenge %u: bad token or answer length", i);
		b->strtab_size += tl + 1 + kl + 1;
	}
	return 0;
}

/* Open addressing at load <= 0.5: the next power of two >= 2n, at least 8. */
static uint64_t
sb_slots(uint64_t n)
{
	uint64_t s = 8;

	while (s < 2 * n)
		s <<= 1;
	return s;
}

/* Section offsets and sizes, and the image size, before anything is written. */
static int
sb_layout(struct sb *b)
{
	static const int order[SB_NSECTIONS] = { SNAP_SEC_ROUTES, SNAP_SEC_BACKENDS,
	    SNAP_SEC_HOSTS, SNAP_SEC_HOST_INDEX, SNAP_SEC_WILD_INDEX, SNAP_SEC_CHALLENGES,
	    SNAP_SEC_PREFIXES, SNAP_SEC_STRTAB };
	uint64_t at, hslots = sb_slots(b->in->nhosts - b->nwild), wslots = sb_slots(b->nwild);
	size_t i;

	b->len[SNAP_SEC_ROUTES] = (uint64_t)b->in->nroutes * sizeof(struct snap_route);
	b->len[SNAP_SEC_BACKENDS] = (uint64_t)b->in->nbackends * sizeof(struct snap_backend);
	b->len[SNAP_SEC_HOSTS] = (uint64_t)b->in->nhosts * sizeof(struct snap_host);
	b->len[SNAP_SEC_HOST_INDEX] = hslots * sizeof(struct snap_slot);
	b->len[SNAP_SEC_WILD_INDEX] = wslots * sizeof(struct snap_slot);
	b->len[SNAP_SEC_CHALLENGES] = (uint64_t)b->in->nchals * sizeof(struct snap_chal);
	b->len[SNAP_SEC_PREFIXES] = (uint64_t)b->pfx.n * sizeof(struct snap_prefix);
	b->len[SNAP_SEC_STRTAB] = b->strtab_size;
	at = sizeof(struct snap_header) + SB_NSECTIONS * sizeof(struct snap_section);
	for (i = 0; i < SB_NSECTIONS; i++) {
		at = SB_ALIGN(at);
		b->off[order[i]] = at;
		at += b->len[order[i]];
	}
	if (at > SNAP_MAX_SIZE || b->strtab_size > SNAP_STR_LOCAL_MAX)
		return sb_fail(b, "snapshot would take %llu bytes, more than the format allows",
		    (unsigned long long)at);
	b->size = at;
	b->hslots = (uint32_t)hslots;
	b->wslots = (uint32_t)wslots;
	return 0;
}

/* Points the typed views at the buffer and fills the header and section table. */
static void
sb_frame(struct sb *b, const uint8_t key[16])
{
	static const uint32_t esize[SNAP_SEC__MAX] = { 0, 1, sizeof(struct snap_host),
	    sizeof(struct snap_slot), sizeof(struct snap_slot), sizeof(struct snap_route),
	    sizeof(struct snap_backend), sizeof(struct snap_chal), sizeof(struct snap_prefix) };
	struct snap_section *tab;
	uint32_t k;

	b->hdr = (struct snap_header *)b->img;
	tab = (struct snap_section *)(b->img + sizeof(struct snap_header));
	b->strtab = (char *)(b->img + b->off[SNAP_SEC_STRTAB]);
	b->hosts = (struct snap_host *)(b->img + b->off[SNAP_SEC_HOSTS]);
	b->hidx = (struct snap_slot *)(b->img + b->off[SNAP_SEC_HOST_INDEX]);
	b->widx = (struct snap_slot *)(b->img + b->off[SNAP_SEC_WILD_INDEX]);
	b->routes = (struct snap_route *)(b->img + b->off[SNAP_SEC_ROUTES]);
	b->backends = (struct snap_backend *)(b->img + b->off[SNAP_SEC_BACKENDS]);
	b->chals = (struct snap_chal *)(b->img + b->off[SNAP_SEC_CHALLENGES]);
	b->prefixes = (struct snap_prefix *)(b->img + b->off[SNAP_SEC_PREFIXES]);
	memcpy(b->hdr->magic, SNAP_MAGIC, sizeof(b->hdr->magic));
	b->hdr->major = SNAP_MAJOR;
	b->hdr->minor = SNAP_MINOR;
	b->hdr->header_size = sizeof(struct snap_header);
	b->hdr->generation = b->in->generation;
	b->hdr->file_size = b->size;
	b->hdr->built_at = b->in->built_at;
	b->hdr->nsections = SB_NSECTIONS;
	b->hdr->section_table_off = sizeof(struct snap_header);
	memcpy(b->hdr->hash_key, key, sizeof(b->hdr->hash_key));
	b->hdr->default_route = b->in->default_route;
	b->hdr->shard = b->in->shard;
	b->hdr->nshards = b->in->nshards != 0 ? b->in->nshards : 1;
	for (k = SNAP_SEC_STRTAB; k < SNAP_SEC__MAX; k++) {
		tab[k - 1].kind = k;
		tab[k - 1].entry_size = esize[k];
		tab[k - 1].offset = b->off[k];
		tab[k - 1].size = b->len[k];
		tab[k - 1].count = (uint32_t)(b->len[k] / esize[k]);
	}
}

/*
 * Copies s and its NUL into STRTAB; the size was reserved by the checks.
 * The offset carries the image's shard (share/snap.h).
 */
static struct snap_str
sb_string(struct sb *b, const char *s)
{
	struct snap_str r = { b->strnext | (uint32_t)b->in->shard << SNAP_STR_LOCAL_BITS,
	    (uint32_t)strlen(s) };

	memcpy(b->strtab + b->strnext, s, (size_t)r.len + 1);
	b->strnext += r.len + 1;
	return r;
}

static void
sb_fill_chals(struct sb *b)
{
	uint32_t i;

	for (i = 0; i < b->in->nchals; i++) {
		b->chals[i].token = sb_string(b, b->in->chals[i].token);
		b->chals[i].keyauth = sb_string(b, b->in->chals[i].keyauth);
	}
}

static void
sb_fill_hosts(struct sb *b)
{
	const struct snapb_host *in;
	struct snap_host *h;
	uint32_t i;

	for (i = 0; i < b->in->nhosts; i++) {
		in = &b->in->hosts[i];
		h = &b->hosts[i];
		h->name = sb_string(b, in->name);
		h->route = in->route;
		if (in->target != NULL)
			h->target = sb_string(b, in->target);
		h->cert = b->in->host_certs != NULL && b->in->host_certs[i] != 0 ?
		    b->in->host_certs[i] : SNAP_NONE;
		h->kind = in->kind;
		h->id = in->id;
	}
}

/* Routes, then backends; each backend must belong to exactly one route. */
static int
sb_fill_routes(struct sb *b)
{
	const struct snapb_route *in;
	struct snap_route *r;
	uint32_t i, j;

	for (i = 0; i < b->in->nbackends; i++) {
		const struct snapb_backend *be = &b->in->backends[i];

		b->backends[i] = (struct snap_backend){ .id = be->id, .family = be->family,
		    .route = SNAP_NONE, .flags = be->flags };
		if (be->family == AF_INET || be->family == AF_INET6 || be->flags == SNAP_BACKEND_NAME) {
			b->backends[i].port = be->port;
			memcpy(b->backends[i].addr, be->addr, sizeof(be->addr));
		}
		if (be->family == AF_UNIX || be->family == AF_UNSPEC || be->flags == SNAP_BACKEND_NAME)
			b->backends[i].name = sb_string(b, be->name);
	}
	for (i = 0; i < b->in->nroutes; i++) {
		in = &b->in->routes[i];
		r = &b->routes[i];
		r->id = in->id;
		r->name = b->route_host[i] != 0 ? b->hosts[b->route_host[i] - 1].name :
		    sb_string(b, in->name);
		r->be_first = in->be_first;
		r->be_count = in->be_count;
		r->flags = in->flags;
		r->connect_ms = in->connect_ms;
		r->response_ms = in->response_ms;
		r->idle_ms = in->idle_ms;
		r->upgrade_ms = in->upgrade_ms;
		r->max_body = in->max_body;
		r->proto = in->proto;
		r->rate_rpm = in->rate_rpm;
		r->rate_burst = in->rate_burst;
		r->backend_pp = in->backend_pp;
		r->cache_max_object = in->cache_max_object;
		if (in->backend_sni != NULL && in->backend_sni[0] != '\0')
			r->backend_sni = sb_string(b, in->backend_sni);
		if (in->backend_ca != NULL && in->backend_ca[0] != '\0')
			r->backend_ca = sb_string(b, in->backend_ca);
		if (in->health_path != NULL && in->health_path[0] != '\0') {
			r->health_path = sb_string(b, in->health_path);
			r->health_interval_ms = in->health_interval_ms;
			r->health_timeout_ms = in->health_timeout_ms;
			r->health_rise = in->health_rise;
			r->health_fall = in->health_fall;
		}
		for (j = in->be_first; j < in->be_first + in->be_count; j++) {
			if (b->backends[j].route != SNAP_NONE)
				return sb_fail(b, "backend %u is shared by routes %u and %u", j,
				    b->backends[j].route, i);
			b->backends[j].route = i;
		}
	}
	for (i = 0; i < b->in->nbackends; i++)
		if (b->backends[i].route == SNAP_NONE)
			return sb_fail(b, "backend %u belongs to no route", i);
	return 0;
}

/* Each prefix route's entry (its string is the tail of its name) and its host route's range. */
static void
sb_fill_prefixes(struct sb *b)
{
	const struct snapprefix_entry *e;
	struct snap_route *parent;
	uint32_t k;

	for (k = 0; k < b->pfx.n; k++) {
		e = &b->pfx.v[k];
		parent = &b->routes[e->parent];
		b->prefixes[k].path = (struct snap_str){ b->routes[e->route].name.off + e->hostlen,
		    b->routes[e->route].name.len - e->hostlen };
		b->prefixes[k].route = e->route;
		b->prefixes[k].parent = e->parent;
		if (parent->pfx_count++ == 0)
			parent->pfx_first = k;
	}
}

/* Inserts host hi into its index by linear probing; refuses a duplicate name. */
static int
sb_index_host(struct sb *b, uint32_t hi)
{
	const struct snap_host *h = &b->hosts[hi], *o;
	int wild = h->kind == SNAP_HOST_WILDCARD;
	struct snap_slot *idx = wild ? b->widx : b->hidx, *sl;
	uint32_t mask = (wild ? b->wslots : b->hslots) - 1, skip = wild ? 2 : 0, hash, i;
	const char *name = b->strtab + SNAP_STR_LOCAL(h->name.off);

	hash = (uint32_t)hash_siphash24(b->hdr->hash_key, name + skip, h->name.len - skip);
	/* The load stays at or under one half, so an empty slot always comes. */
	for (i = 0;; i++) {
		sl = &idx[(hash + i) & mask];
		if (sl->host_plus1 == 0)
			break;
		o = &b->hosts[sl->host_plus1 - 1];
		if (sl->hash == hash && o->name.len == h->name.len &&
		    memcmp(b->strtab + SNAP_STR_LOCAL(o->name.off), name, h->name.len) == 0)
			return sb_fail(b, "duplicate host name '%s' (hosts %u and %u)", name,
			    sl->host_plus1 - 1, hi);
	}
	sl->hash = hash;
	sl->host_plus1 = hi + 1;
	if (i + 1 > b->hdr->max_probe)
		b->hdr->max_probe = i + 1;
	return 0;
}

/* The CRC covers the whole image with its own field zero, as it is now. */
static void
sb_seal_crc(struct sb *b)
{
	b->hdr->crc32c = 0;
	b->hdr->crc32c = hash_crc32c(0, b->img, b->size);
}

/* Copies the image into a new memfd and seals it against any change. */
static int
sb_publish(struct sb *b, int *out)
{
	char err[256];

	if ((*out = sealed_create("haloyd-snapshot", b->img, b->size, err, sizeof(err))) == -1)
		return sb_fail(b, "%s", err);
	return 0;
}

/* Checks, lays out, fills and indexes; the image is left in b->img. */
static int
sb_make(struct sb *b, const uint8_t key[16])
{
	uint32_t i;

	if (sb_check_routes(b) == -1 || sb_check_hosts(b) == -1 || sb_check_backends(b) == -1 ||
	    sb_check_chals(b) == -1 ||
	    snapprefix_plan(b->in, &b->pfx, b->err, b->errlen) == -1 || sb_layout(b) == -1)
		return -1;
	/* One buffer for the whole image: nothing is allocated per route. */
	if ((b->img = calloc(1, b->size)) == NULL)
		return sb_fail(b, "out of memory for a %llu-byte snapshot",
		    (unsigned long long)b->size);
	sb_frame(b, key);
	sb_fill_hosts(b);
	sb_fill_chals(b);
	if (sb_fill_routes(b) == -1)
		return -1;
	sb_fill_prefixes(b);
	for (i = 0; i < b->in->nhosts; i++)
		if (sb_index_host(b, i) == -1)
			return -1;
	sb_seal_crc(b);
	return 0;
}

int
snapb_build(const struct snapb_input *in, int *fd, char *err, size_t errlen)
{
	struct sb b;
	uint8_t key[16];
	int rc = -1;

	memset(&b, 0, sizeof(b));
	b.in = in;
	b.err = err;
	b.errlen = errlen;
	*fd = -1;
	if ((in->nshards > 1 && (in->nshards > SNAP_SHARDS || (in->nshards & (in->nshards - 1)))) ||
	    in->shard >= (in->nshards != 0 ? in->nshards : 1))
		return sb_fail(&b, "shard %u of %u", in->shard, in->nshards);
	if (in->hash_key != NULL)
		memcpy(key, in->hash_key, sizeof(key));
	else if (util_random(key, sizeof(key)) == -1) {
		sb_fail(&b, "getrandom: %s", strerror(errno));
		goto out;
	}
	if ((b.route_host = calloc((size_t)in->nroutes + 1, sizeof(*b.route_host))) == NULL) {
		sb_fail(&b, "out of memory");
		goto out;
	}
	if (sb_make(&b, key) == -1 || sb_publish(&b, fd) == -1)
		goto out;
	rc = 0;
out:
	free(b.route_host);
	snapprefix_free(&b.pfx);
	free(b.img);
	return rc;
}
