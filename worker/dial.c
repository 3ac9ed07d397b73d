/*
 * Dialing a backend (see dial.h): the address from the snapshot's entry,
 * one non-blocking connect.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "share/snap.h"
#include "worker/dial.h"

static void
dial_sockaddr(const struct snap_backend *b, struct sockaddr_storage *ss, socklen_t *sl)
{
	memset(ss, 0, sizeof(*ss));
	if (b->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(b->port);
		memcpy(&s6->sin6_addr, b->addr, 16);
		*sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(b->port);
		memcpy(&s4->sin_addr, b->addr, 4);
		*sl = sizeof(*s4);
	}
}

int
dial_backend(const struct snap_backend *b, int *pending)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, saved;

	*pending = 0;
	dial_sockaddr(b, &ss, &sl);
	fd = socket(b->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) == -1) {
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
