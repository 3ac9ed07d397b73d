/*
 * The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): the
 * header a load balancer puts before a connection's first byte to say whom
 * it carries, parsed from bytes that may arrive in pieces, and written for
 * backends that ask for it. Pure functions over buffers: no socket here
 * (worker/ppconn.c reads the header off a client connection).
 */
#ifndef HALOYD_WORKER_PROXYPROTO_H
#define HALOYD_WORKER_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Version 1: "PROXY ... \r\n" is at most 107 bytes, CRLF included (the specification's bound). */
#define PROXYPROTO_V1_MAX 107
/* Version 2: the 16-byte fixed part, then addresses and TLVs. */
#define PROXYPROTO_V2_FIXED 16
/*
 * Our bound on a version 2 header: the fixed part and 520 bytes of
 * addresses (216 for AF_UNIX, the largest) and TLVs. The TLVs we are sent
 * (ALPN, authority, SSL facts, a cloud's connection id) fit easily; a
 * balancer that sends more is refused rather than buffered.
 */
#define PROXYPROTO_V2_MAX (PROXYPROTO_V2_FIXED + 520)
#define PROXYPROTO_MAX PROXYPROTO_V2_MAX	/* the most an inbound header can take */
/* The most proxyproto_write produces: v1 "PROXY TCP6" with two full IPv6 addresses. */
#define PROXYPROTO_OUT_MAX PROXYPROTO_V1_MAX

enum proxyproto_version {
	PROXYPROTO_OFF = 0,
	PROXYPROTO_V1 = 1,
	PROXYPROTO_V2 = 2,
};

/* One connection's two ends, in a compact form an exchange can copy. */
struct proxyproto_addrs {
	uint8_t family;		/* AF_INET, AF_INET6, or AF_UNSPEC: unknown (LOCAL / UNKNOWN) */
	uint8_t src[16], dst[16];	/* network order; 4 bytes used for AF_INET */
	uint16_t sport, dport;	/* host order */
};

/* What a complete inbound header said. */
struct proxyproto_hdr {
	int version;		/* 1 or 2 */
	int local;		/* v2 LOCAL, v1 UNKNOWN, or an address family we do not take:
				 * the peer's own address stays */
	struct proxyproto_addrs a;	/* when !local */
};

/*
 * Parses the header at the start of p[0..n): the number of bytes it takes
 * (<= n; *out filled), 0 when every byte so far belongs to a header that
 * is not complete yet (read more, up to PROXYPROTO_MAX in all), or -1 when
 * it is malformed or too long (why: a static string). Never reads past n.
 */
int proxyproto_parse(const uint8_t *p, size_t n, struct proxyproto_hdr *out, const char **why);

/*
 * Writes the header for a the version v asks for into out
 * (PROXYPROTO_OUT_MAX): its length, or 0 for PROXYPROTO_OFF. AF_UNSPEC is
 * "PROXY UNKNOWN" in version 1 and LOCAL in version 2.
 */
size_t proxyproto_write(int v, const struct proxyproto_addrs *a, uint8_t *out);

/* a's ends from two socket addresses (NULL or not IP: AF_UNSPEC); src and dst must agree. */
void proxyproto_addrs_set(struct proxyproto_addrs *a, const struct sockaddr *src,
    const struct sockaddr *dst);
/* The source as a sockaddr (for the trusted_proxies check); -1 when AF_UNSPEC. */
int proxyproto_src_sockaddr(const struct proxyproto_addrs *a, struct sockaddr_storage *ss);

#endif
