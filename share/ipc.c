/* IPC framing over SOCK_SEQPACKET with at most one fd per message. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "share/ipc.h"

int
ipc_send(int sock, uint16_t type, uint32_t seq, uint32_t gen,
    const void *payload, size_t len, int fd)
{
	struct ipc_hdr h = { type, fd >= 0 ? IPC_F_FD : 0, (uint32_t)len, seq, gen };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)(uintptr_t)payload, len } };
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1 };
	ssize_t n;

	if (len > IPC_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		u.c.cmsg_level = SOL_SOCKET;
		u.c.cmsg_type = SCM_RIGHTS;
		u.c.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&u.c), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != sizeof(h) + len) {
		/* SEQPACKET sends whole records; anything else is a broken socket. */
		errno = EPROTO;
		return -1;
	}
	return 0;
}

/* Collects the fds of a message; returns how many there were (0..many). */
static int
take_fds(struct msghdr *mh, int *fd)
{
	struct cmsghdr *c;
	int count = 0;

	*fd = -1;
	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		size_t i, nfd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (count++ == 0)
				*fd = f;
			else
				close(f);
		}
	}
	return count;
}

int
ipc_recv(int sock, struct ipc_msg *m)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} u;
	struct iovec iov[2] = { { &m->h, sizeof(m->h) }, { m->data, sizeof(m->data) } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2,
	    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n;
	int nfd;

	m->fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	/* The peer closed; an empty record that carries fds is a malformed one, refused below. */
	if (n == 0 && mh.msg_controllen == 0 && !(mh.msg_flags & MSG_CTRUNC))
		return 0;
	nfd = take_fds(&mh, &m->fd);
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || nfd > 1 ||
	    (size_t)n < sizeof(m->h) || (size_t)n - sizeof(m->h) != m->h.len ||
	    (m->h.flags & ~IPC_F_FD) != 0 ||
	    ((m->h.flags & IPC_F_FD) != 0) != (nfd == 1)) {
		ipc_msg_close_fd(m);
		errno = EBADMSG;
		return -1;
	}
	return 1;
}

void
ipc_msg_close_fd(struct ipc_msg *m)
{
	if (m->fd >= 0) {
		close(m->fd);
		m->fd = -1;
	}
}

int
ipc_dispatch(const struct ipc_handler *tab, size_t n, void *ctx, struct ipc_msg *m)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct ipc_handler *h = &tab[i];

		if (h->type != m->h.type)
			continue;
		if (m->h.len < h->min_len || m->h.len > h->max_len ||
		    (h->fd_rule == IPC_FD_NONE && m->fd >= 0) ||
		    (h->fd_rule == IPC_FD_REQUIRED && m->fd < 0))
			break;
		return h->fn(ctx, m);
	}
	ipc_msg_close_fd(m);
	errno = EBADMSG;
	return -1;
}
