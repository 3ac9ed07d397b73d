/*
 * Dialing a backend (see dial.h): the address, path or hop from the
 * snapshot's entry, one non-blocking connect.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "share/snap.h"
#include "worker/dial.h"

/* A unix socket address for path; -1 (ENAMETOOLONG) when it does not fit sun_path. */
static int
dial_unix(const char *path, struct dial_target *t)
{
	struct sockaddr_un *su = (struct sockaddr_un *)&t->ss;
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(su->sun_path)) {
		errno = len == 0 ? ENOENT : ENAMETOOLONG;
		return -1;
	}
	su->sun_family = AF_UNIX;
	memcpy(su->sun_path, path, len + 1);
	t->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

int
dial_target_of(const struct snap *s, const struct snap_backend *b, const char *hop,
    struct dial_target *t)
{
	memset(t, 0, sizeof(*t));
	if (b->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(b->port);
		memcpy(&s6->sin6_addr, b->addr, 16);
		t->len = sizeof(*s6);
		return 0;
	}
	if (b->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(b->port);
		memcpy(&s4->sin_addr, b->addr, 4);
		t->len = sizeof(*s4);
		return 0;
	}
	if (b->family == AF_UNIX)
		return dial_unix(snap_string(s, b->name), t);
	if (b->flags & SNAP_BACKEND_TUNNEL)
		return dial_unix(hop != NULL ? hop : "", t);
	errno = EINVAL;
	return -1;
}

int
dial_connect(const struct dial_target *t, int *pending)
{
	int fd, one = 1, saved;

	*pending = 0;
	fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (t->ss.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&t->ss, t->len) == -1) {
		if (errno != EINPROGRESS) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		*pending = 1;
	}
	return fd;
}

int
dial_backend(const struct snap *s, const struct snap_backend *b, const char *hop, int *pending)
{
	struct dial_target t;

	*pending = 0;
	if (dial_target_of(s, b, hop, &t) == -1)
		return -1;
	return dial_connect(&t, pending);
}
