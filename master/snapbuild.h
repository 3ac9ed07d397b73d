/*
 * Builds a route snapshot (share/snap.h) from an in-memory description into
 * a sealed memfd. Deterministic for a given input and hash key.
 */
#ifndef HALOYD_SNAPBUILD_H
#define HALOYD_SNAPBUILD_H

#include <stddef.h>
#include <stdint.h>

struct snapb_route {
	uint32_t id;		/* store id */
	const char *name;	/* normalised canonical name */
	uint32_t be_first;	/* index into snapb_input.backends */
	uint32_t be_count;
	uint16_t flags;
	uint32_t connect_ms, response_ms, idle_ms, upgrade_ms;
	uint64_t max_body;
	uint16_t proto;		/* enum snap_proto */
	const char *backend_sni;	/* normalised host name, or NULL */
	const char *backend_ca;		/* PEM, or NULL: the system roots */
	uint32_t rate_rpm, rate_burst;	/* as struct snap_route's */
	uint16_t backend_pp;		/* as struct snap_route's */
	uint64_t cache_max_object;	/* as struct snap_route's */
	const char *health_path;	/* NULL or "": no active checks */
	uint32_t health_interval_ms, health_timeout_ms;	/* as struct snap_route's */
	uint16_t health_rise, health_fall;
};

struct snapb_host {
	uint32_t id;		/* store id */
	const char *name;	/* normalised; "*.example.com" for a wildcard */
	uint32_t route;		/* index into snapb_input.routes, or SNAP_NONE with target */
	uint16_t kind;		/* enum snap_host_kind */
	const char *target;	/* route SNAP_NONE: the canonical name of its route, which
				 * another image of the set holds (share/snap.h); else NULL */
};

struct snapb_backend {
	uint32_t id;		/* store id */
	uint16_t family;	/* AF_INET / AF_INET6, AF_UNIX, AF_UNSPEC for a tunnel */
	uint16_t port;		/* host byte order */
	uint8_t addr[16];
	uint32_t flags;		/* enum snap_backend_flags: SNAP_BACKEND_TUNNEL or _NAME */
	const char *name;	/* AF_UNIX: the path; a tunnel or DNS name: the name; else NULL */
};

struct snapb_chal {
	const char *token;	/* base64url */
	const char *keyauth;
};

struct snapb_input {
	const struct snapb_route *routes;
	uint32_t nroutes;
	const struct snapb_host *hosts;
	uint32_t nhosts;
	const struct snapb_backend *backends;
	uint32_t nbackends;
	const struct snapb_chal *chals;	/* ACME HTTP-01 answers in flight */
	uint32_t nchals;
	uint32_t default_route;		/* index or SNAP_NONE */
	uint64_t generation;
	uint64_t built_at;		/* unix ns */
	const uint8_t *hash_key;	/* 16 bytes, or NULL for a random key */
	/*
	 * nhosts certificate store ids (keyring_cert.id), host_certs[i] for
	 * hosts[i]; 0 = only the default. NULL: every host has only the default.
	 */
	const uint32_t *host_certs;
	uint16_t shard, nshards;	/* this image of a set; nshards 0 is 1 (a whole set) */
};

/*
 * Builds the image into a new memfd, seals it (F_SEAL_SHRINK | GROW | WRITE
 * | SEAL) and returns it in *fd (O_CLOEXEC). 0, or -1 with a reason in err
 * (duplicate host name, index out of range, ...).
 */
int snapb_build(const struct snapb_input *in, int *fd, char *err, size_t errlen);

#endif
