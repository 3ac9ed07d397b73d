/*
 * Backend addresses of every kind, as haloyd-ctl, the master, the store and
 * the logs write them: "ip:port", "[ip6]:port" (share/addr.h),
 * "unix:/absolute/path" and "tunnel:NAME" (a reverse tunnel's name, the
 * rule of its client certificate's CN). One parser, so the checks of
 * haloyd-ctl, the master and the snapshot reader cannot drift apart.
 */
#ifndef HALOYD_BEADDR_H
#define HALOYD_BEADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define BEADDR_UNIX_PATH_MAX 107	/* sun_path holds 108 bytes with the NUL */
#define BEADDR_TUNNEL_NAME_MAX 63
#define BEADDR_STR_MAX 120		/* "unix:" and the longest path, with room */

enum beaddr_kind {
	BEADDR_IP = 0,		/* ss holds the address */
	BEADDR_UNIX,		/* name holds the socket path */
	BEADDR_TUNNEL,		/* name holds the tunnel name */
};

struct beaddr {
	enum beaddr_kind kind;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char name[BEADDR_UNIX_PATH_MAX + 1];
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
/* 1 when s[0..len) is a unix backend path: absolute, < 108 bytes, printable, no NUL. */
int beaddr_unix_path_ok(const char *s, size_t len);

#endif
