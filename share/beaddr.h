/*
 * Backend addresses of every kind, as haloyd-ctl, the master, the store and
 * the logs write them: "ip:port", "[ip6]:port" (share/addr.h),
 * "unix:/absolute/path", "tunnel:NAME" (a reverse tunnel's name, the
 * rule of its client certificate's CN) and "HOST:PORT" (a DNS name the
 * master resolves, master/dnsname.c). One parser, so the checks of
 * haloyd-ctl, the master and the snapshot reader cannot drift apart.
 */
#ifndef HALOYD_BEADDR_H
#define HALOYD_BEADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "share/hostname.h"

#define BEADDR_UNIX_PATH_MAX 107	/* sun_path holds 108 bytes with the NUL */
#define BEADDR_TUNNEL_NAME_MAX 63
#define BEADDR_STR_MAX 264		/* the longest host name and ":65535", with room */

enum beaddr_kind {
	BEADDR_IP = 0,		/* ss holds the address */
	BEADDR_UNIX,		/* name holds the socket path */
	BEADDR_TUNNEL,		/* name holds the tunnel name */
	BEADDR_NAME,		/* name holds a DNS name (hostname_normalize_sni), port its port */
};

struct beaddr {
	enum beaddr_kind kind;
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint16_t port;		/* BEADDR_NAME only */
	char name[HOSTNAME_MAX + 1];	/* > BEADDR_UNIX_PATH_MAX */
};

/*
 * Parses any backend form; 0, or -1 with a one-line reason in err
 * ("invalid backend '...': ...").
 */
int beaddr_parse(const char *s, struct beaddr *b, char *err, size_t errlen);
/* The canonical text of b (what the store keeps); 0, or -1 when it does not fit. */
int beaddr_format(const struct beaddr *b, char *buf, size_t size);
/* 1 when s[0..len) is a tunnel name: 1..63 of [a-z0-9.-], starting with [a-z0-9]. */
int beaddr_tunnel_name_ok(const char *s, size_t len);
/*
 * 1 when s[0..len) is a backend's DNS name as the store keeps it: what
 * hostname_normalize_sni gives, and a last label that is not all digits
 * (never a TLD; "10.0.0.256" is a mistyped address, not a name).
 */
int beaddr_dns_name_ok(const char *s, size_t len);
/* 1 when s[0..len) is a unix backend path: absolute, < 108 bytes, printable, no NUL. */
int beaddr_unix_path_ok(const char *s, size_t len);

#endif
