/*
 * The route snapshot: its on-memory format, defined once for the master's
 * builder (master/snapbuild.c) and the workers' reader (share/snap.c).
 *
 * The image lives in a sealed memfd that workers map PROT_READ. Everything
 * is little-endian with fixed widths; references are offsets or indexes,
 * never pointers. Layout: a 128-byte header, a section table at
 * header.section_table_off, then sections at 8-byte aligned offsets.
 * The reader validates every offset, index and probe length once, at map
 * time; after that lookups do no bounds checks.
 */
#ifndef HALOYD_SNAP_H
#define HALOYD_SNAP_H

#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC "HLYDSNAP"	/* 8 bytes, no NUL in the image */
#define SNAP_MAJOR 5
#define SNAP_MINOR 0
#define SNAP_NONE 0xffffffffu	/* "no index" in any u32 index field */
#define SNAP_MAX_SIZE (1ull << 32)

/*
 * Since major 5 a daemon's snapshot is a set of SNAP_SHARDS images, one per
 * route shard: a host name lives in the image snap_shard_of(name) picks, a
 * route (and its path-prefix routes, backends and strings) in the image of
 * its canonical name, so a change rebuilds and re-sends only the images of
 * the names it touches. An alias whose shard is not its route's is a host
 * entry with no route and the route's name as target: the lookup goes on in
 * the target's image. Image 0 also carries the ACME challenges. A set of
 * one image (nshards 1) holds everything (the unit tests' and the tools').
 */
#define SNAP_SHARDS 64
/*
 * A string's offset carries its image's shard in the bits above
 * SNAP_STR_LOCAL_BITS, so snap_string() finds it from the set alone;
 * an image's STRTAB is at most SNAP_STR_LOCAL_MAX bytes.
 */
#define SNAP_STR_LOCAL_BITS 26
#define SNAP_STR_LOCAL_MAX (1u << SNAP_STR_LOCAL_BITS)
#define SNAP_STR_LOCAL(off) ((off) & (SNAP_STR_LOCAL_MAX - 1))
#define SNAP_STR_SHARD(off) ((off) >> SNAP_STR_LOCAL_BITS)

/* A string: offset and length into STRTAB; a NUL follows it there. */
struct snap_str {
	uint32_t off;
	uint32_t len;
};

struct snap_header {
	char magic[8];
	uint16_t major;
	uint16_t minor;
	uint32_t header_size;	/* sizeof(struct snap_header) = 128 */
	uint64_t generation;
	uint64_t file_size;	/* equals the memfd's size */
	uint64_t built_at;	/* unix time in ns */
	uint32_t flags;		/* reserved, 0 */
	uint32_t nsections;
	uint32_t section_table_off;
	uint32_t crc32c;	/* over the whole image with this field zero */
	uint8_t hash_key[16];	/* SipHash key for the host indexes, per generation */
	uint32_t default_route;	/* index into ROUTES or SNAP_NONE */
	uint32_t max_probe;	/* longest probe sequence in any index */
	uint16_t shard;		/* this image's shard, < nshards */
	uint16_t nshards;	/* images in its set: a power of two, 1..SNAP_SHARDS */
	uint8_t reserved[44];	/* 0 */
};

enum snap_section_kind {
	SNAP_SEC_STRTAB = 1,	/* bytes */
	SNAP_SEC_HOSTS,		/* struct snap_host[] */
	SNAP_SEC_HOST_INDEX,	/* struct snap_slot[], keyed by the full name */
	SNAP_SEC_WILD_INDEX,	/* struct snap_slot[], keyed by the suffix after "*." */
	SNAP_SEC_ROUTES,	/* struct snap_route[] */
	SNAP_SEC_BACKENDS,	/* struct snap_backend[] */
	SNAP_SEC_CHALLENGES,	/* struct snap_chal[]: ACME HTTP-01 answers, few, scanned */
	SNAP_SEC_PREFIXES,	/* struct snap_prefix[]: path-prefix routes, by host route */
	SNAP_SEC__MAX
};

struct snap_section {
	uint32_t kind;		/* enum snap_section_kind */
	uint32_t flags;		/* reserved, 0 */
	uint32_t entry_size;	/* sizeof the entry struct, 1 for bytes */
	uint32_t count;
	uint64_t offset;	/* from the start of the image, 8-aligned */
	uint64_t size;		/* >= count * entry_size */
};

enum snap_host_kind {
	SNAP_HOST_EXACT = 1,	/* a route's canonical name */
	SNAP_HOST_ALIAS,	/* another name of the route */
	SNAP_HOST_WILDCARD,	/* "*.example.com": exactly one more label */
};

struct snap_host {
	struct snap_str name;	/* as configured, "*.example.com" for wildcards */
	uint32_t route;		/* index into ROUTES; SNAP_NONE for an alias or wildcard
				 * whose route lives in another image: see target */
	uint32_t cert;		/* store id of the certificate that covers it (keyring_cert.id,
				 * share/keyring.h), or SNAP_NONE: only the default */
	uint16_t kind;		/* enum snap_host_kind */
	uint16_t flags;		/* reserved, 0 */
	uint32_t id;		/* store id of the host row */
	struct snap_str target;	/* route SNAP_NONE: its route's canonical name (not a
				 * prefix route's), in another image; else empty */
};

/* Open addressing, power-of-two slot count, linear probing; host_plus1 0 = empty. */
struct snap_slot {
	uint32_t hash;		/* low 32 bits of SipHash-2-4(hash_key, key) */
	uint32_t host_plus1;	/* index into HOSTS + 1 */
};

enum snap_route_flags {
	SNAP_ROUTE_NONE = 0,
	SNAP_ROUTE_NO_HTTPS_REDIRECT = 1 << 0,	/* port 80 serves instead of redirecting */
	SNAP_ROUTE_HSTS = 1 << 1,		/* Strict-Transport-Security on HTTPS answers */
	SNAP_ROUTE_BACKEND_NO_VERIFY = 1 << 2,	/* TLS to backends skips certificate checks */
	SNAP_ROUTE_COMPRESS = 1 << 3,		/* responses compressed on the fly (worker/compress.c) */
	SNAP_ROUTE_BALANCE_RR = 1 << 4,		/* round-robin among the agents of a tunnel
						 * (the tunnel process's choice); clear:
						 * least-in-flight */
	SNAP_ROUTE_RATE_NODELAY = 1 << 5,	/* its rate limit passes the burst at once */
	SNAP_ROUTE_CACHE = 1 << 6,		/* responses cached (worker/cache.c) */
	SNAP_ROUTE_CACHE_DEBUG = 1 << 7,	/* answers carry X-Cache: HIT, MISS... */
	SNAP_ROUTE_STRIP_PREFIX = 1 << 8,	/* a prefix route: the backend gets the path
						 * without the prefix (share/pathprefix.h) */
	SNAP_ROUTE_BALANCE_LIF = 1 << 9,	/* address and unix backends: least-in-flight
						 * (worker/balance.c); clear: round-robin */
	SNAP_ROUTE_FLAGS_ALL = (1 << 10) - 1,
};

/* How a route's backends are spoken to. */
enum snap_proto {
	SNAP_PROTO_HTTP1 = 0,	/* HTTP/1.1 over TCP */
	SNAP_PROTO_H2C,		/* HTTP/2 with prior knowledge over TCP */
	SNAP_PROTO_HTTPS,	/* HTTP/1.1 over TLS */
	SNAP_PROTO_H2,		/* HTTP/2 over TLS, ALPN h2 */
	SNAP_PROTO__MAX
};

/* "http1", "h2c", "https", "h2" (the store's and haloyd-ctl's words); NULL when out of range. */
const char *snap_proto_name(unsigned proto);
/* The enum snap_proto a word names, or -1. */
int snap_proto_parse(const char *word);
/* 1 for the protocols that speak TLS to backends (https, h2). */
int snap_proto_tls(unsigned proto);

struct snap_route {
	uint32_t id;		/* store id: keys logs, stats and upstream pools */
	struct snap_str name;	/* canonical name */
	uint32_t be_first;	/* index into BACKENDS */
	uint32_t be_count;
	uint16_t policy;	/* 0 = round-robin */
	uint16_t flags;		/* enum snap_route_flags */
	uint32_t connect_ms;	/* per-route timeouts, 0 = the global default */
	uint32_t response_ms;
	uint32_t idle_ms;
	uint32_t upgrade_ms;	/* idle timeout of an upgraded connection */
	uint64_t max_body;	/* 0 = the global default */
	uint16_t proto;		/* enum snap_proto */
	uint16_t backend_pp;	/* PROXY header toward backends: 0 none, 1 v1, 2 v2 */
	uint32_t pfx_first;	/* its prefix routes: PREFIXES[pfx_first..+pfx_count), */
	struct snap_str backend_sni;	/* TLS server name toward backends; empty: none */
	struct snap_str backend_ca;	/* PEM trust anchors for backends; empty: system roots */
	uint32_t rate_rpm;	/* requests a minute per client, 0 = the global default,
				 * SNAP_RATE_OFF = none (worker/ratelimit.c) */
	uint32_t rate_burst;	/* with rate_rpm: its burst */
	uint64_t cache_max_object;	/* SNAP_ROUTE_CACHE: larger responses are not stored;
					 * 0 = CACHE_OBJECT_DEFAULT (10 MiB) */
	uint16_t pfx_count;	/* longest first; 0 and 0 without (a prefix route has none) */
	uint16_t health_rise;	/* with health_path, each nonzero (SNAP_HEALTH_*) */
	uint16_t health_fall;
	uint16_t reserved2;	/* 0 */
	struct snap_str health_path;	/* active checks GET it (worker/probe.c); empty: none */
	uint32_t health_interval_ms;
	uint32_t health_timeout_ms;
};

#define SNAP_HEALTH_PATH_MAX 255
#define SNAP_HEALTH_MS_MIN 100
#define SNAP_HEALTH_MS_MAX 3600000u
#define SNAP_HEALTH_COUNT_MAX 100

#define SNAP_RATE_OFF 0xffffffffu
#define SNAP_RATE_RPM_MAX 60000000u	/* 1 000 000 r/s */
#define SNAP_RATE_BURST_MAX 1000000u

enum snap_backend_flags {
	SNAP_BACKEND_TUNNEL = 1 << 0,	/* a reverse tunnel's name (family AF_UNSPEC): reached
					 * over the local hop to the tunnel process */
	SNAP_BACKEND_NAME = 1 << 1,	/* one address of a DNS name the master resolved
					 * (AF_INET/AF_INET6, name the host name), or with
					 * AF_UNSPEC the name not resolved yet: never dialled */
	SNAP_BACKEND_FLAGS_ALL = (1 << 2) - 1,
};

/*
 * Three kinds: an IP address (AF_INET/AF_INET6, port, addr; name empty),
 * a unix socket (AF_UNIX; name its absolute path, < 108 bytes; port and
 * addr 0) and a tunnel (AF_UNSPEC with SNAP_BACKEND_TUNNEL; name the
 * tunnel's, the rule of share/beaddr.h; port and addr 0). Since major 4
 * a DNS name's backend (SNAP_BACKEND_NAME, master/dnsname.c): one entry per
 * address (AF_INET/AF_INET6, port, addr, name the host name, id a key the
 * master keeps while that address stays), or while the name has no answer
 * yet one AF_UNSPEC entry (name, port; addr 0) that the worker never dials.
 */
struct snap_backend {
	uint32_t id;		/* store id: keys upstream pools and health */
	uint16_t family;	/* AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC (a tunnel) */
	uint16_t port;		/* host byte order */
	uint8_t addr[16];	/* 4 bytes used for AF_INET */
	uint32_t route;		/* index of the owning route */
	uint32_t flags;		/* enum snap_backend_flags */
	struct snap_str name;	/* unix: the path; tunnel: its name; DNS: the host; else empty */
};

/*
 * A path-prefix route ("example.com/api") under its host's route: the
 * entries of one host route are contiguous, longest prefix first, so the
 * first that matches on a segment boundary is the longest. At most
 * PATHPREFIX_PER_ROUTE_MAX (share/pathprefix.h) per host route.
 */
struct snap_prefix {
	struct snap_str path;	/* "/api": the tail of the prefix route's name */
	uint32_t route;		/* the prefix route, index into ROUTES */
	uint32_t parent;	/* the host route it hangs from, index into ROUTES */
};

/*
 * An ACME HTTP-01 answer: GET /.well-known/acme-challenge/TOKEN on port 80
 * answers KEYAUTH. Only challenges of orders in flight are published, so
 * there are at most SNAP_CHAL_MAX and a scan is as fast as an index.
 */
#define SNAP_CHAL_MAX 256
#define SNAP_CHAL_TOKEN_MAX 128
#define SNAP_CHAL_KEYAUTH_MAX 256

struct snap_chal {
	struct snap_str token;		/* base64url, 1..SNAP_CHAL_TOKEN_MAX */
	struct snap_str keyauth;	/* token "." thumbprint, 1..SNAP_CHAL_KEYAUTH_MAX */
};

_Static_assert(sizeof(struct snap_header) == 128, "snapshot header is 128 bytes");
_Static_assert(sizeof(struct snap_section) == 32, "section entry is 32 bytes");
_Static_assert(sizeof(struct snap_host) == 32, "host entry is 32 bytes");
_Static_assert(sizeof(struct snap_slot) == 8, "slot is 8 bytes");
_Static_assert(sizeof(struct snap_route) == 112, "route entry is 112 bytes");
_Static_assert(sizeof(struct snap_backend) == 40, "backend entry is 40 bytes");
_Static_assert(sizeof(struct snap_chal) == 16, "challenge entry is 16 bytes");
_Static_assert(sizeof(struct snap_prefix) == 16, "prefix entry is 16 bytes");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the image is read in place");

/* --- the reader */

struct snap;	/* a set of mapped, validated images with a reference count */

/*
 * The shard of a name in a set of nshards images: a host name as
 * configured ("*.example.com" for a wildcard), or a route name, whose
 * part before '/' counts (a prefix route lives with its host route).
 */
uint32_t snap_shard_of(const char *name, size_t len, uint32_t nshards);

/*
 * Checks the memfd's seals (WRITE, SHRINK, GROW, SEAL) and size, maps it
 * PROT_READ and validates it as a whole set (nshards 1). The caller keeps
 * and closes fd. Returns 0 with *out holding one reference, or -1 with a
 * reason in err.
 */
int snap_map(int fd, struct snap **out, char *err, size_t errlen);

/*
 * A set made in steps: a new one holding prev's images (prev may be NULL),
 * each changed image mapped in (replacing the image of its shard; an image
 * of another nshards drops every image held), then finished: every shard
 * present, the set's generation gen. NULL / -1 with a reason in err; an
 * unfinished set is only unref'd.
 */
struct snap *snap_set_new(const struct snap *prev, char *err, size_t errlen);
int snap_set_add(struct snap *s, int fd, char *err, size_t errlen);
int snap_set_finish(struct snap *s, uint64_t gen, char *err, size_t errlen);

/*
 * Validates an image in memory: magic, version, sizes, CRC, section bounds,
 * alignment and overlap, every string and index, index sizes, and that every
 * host is found by lookup within max_probe. 0 or -1 with a reason.
 */
int snap_validate(const void *base, size_t size, char *err, size_t errlen);

struct snap *snap_ref(struct snap *s);
/* Drops a reference; an image is unmapped when no set holds it any more. */
void snap_unref(struct snap *s);

/*
 * Routes and backends are numbered densely across the set's images (in
 * shard order) for the walks over all of them; a route's own backends are
 * snap_route_backend(s, r, 0 .. r->be_count - 1).
 */
uint64_t snap_generation(const struct snap *s);
uint32_t snap_route_count(const struct snap *s);
uint32_t snap_backend_count(const struct snap *s);
const struct snap_route *snap_route_at(const struct snap *s, uint32_t i);
const struct snap_backend *snap_backend_at(const struct snap *s, uint32_t i);
const struct snap_backend *snap_route_backend(const struct snap *s, const struct snap_route *r,
    uint32_t j);
/*
 * The images of a set, for what a worker derives per image and keeps while
 * the image stays (a generation changes a few): image k's identity (its map
 * and the generation that built it: both equal, the same image), and its
 * routes, snap_route_at(s, first .. first + count - 1).
 */
uint32_t snap_image_count(const struct snap *s);
const void *snap_image_id(const struct snap *s, uint32_t k, uint64_t *built);
uint32_t snap_image_first_route(const struct snap *s, uint32_t k, uint32_t *count);
/* be's dense index (as snap_backend_at's), be one of s's backends. */
uint32_t snap_backend_index(const struct snap *s, const struct snap_backend *be);
/* The NUL-terminated string r refers to; "" when r is empty, whatever its offset. */
const char *snap_string(const struct snap *s, struct snap_str r);

/*
 * Finds the route for a normalised host name (share/hostname.h): exact or
 * alias, then the one-label wildcard, then the default route. NULL if none.
 */
const struct snap_route *snap_lookup(const struct snap *s, const char *host, size_t len);
/*
 * The host entry (exact or alias, then wildcard) for a normalised name, or
 * NULL. Its route may live in another image: snap_lookup follows it.
 */
const struct snap_host *snap_lookup_host(const struct snap *s, const char *host, size_t len);

/*
 * The prefix route of host route r that matches a normalised request path
 * (share/pathprefix.h: pathprefix_normalize) on a segment boundary, the
 * longest; NULL when none does (r itself serves). *plen gets the prefix's
 * length. Cost: at most r->pfx_count compares of up to PATHPREFIX_MAX bytes.
 */
const struct snap_route *snap_lookup_prefix(const struct snap *s, const struct snap_route *r,
    const char *npath, size_t nlen, size_t *plen);

/* The key authorisation published for an HTTP-01 token, or NULL. */
const char *snap_challenge(const struct snap *s, const char *token, size_t len);

#endif
