/*
 * One DNS exchange with the zone's server over TCP (RFC 7766: a two-byte
 * length before each message), bounded by one deadline for connect, write
 * and read. TCP only: an UPDATE with its TSIG and the TXT answers are
 * small, but TCP needs no truncation fallback and no spoofing guard.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "acme/dns01.h"
#include "share/util.h"

/* Waits for events on fd until deadline (ms, util_now_ms's clock); 0 or -1. */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	uint64_t now;
	int n;

	for (;;) {
		if ((now = util_now_ms()) >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

/* Writes n bytes of w, or reads n bytes into r (the other is NULL), by the deadline. */
static int
io_all(int fd, const uint8_t *w, uint8_t *r, size_t n, uint64_t deadline)
{
	ssize_t k;

	while (n > 0) {
		if (wait_fd(fd, w != NULL ? POLLOUT : POLLIN, deadline) == -1)
			return -1;
		k = w != NULL ? send(fd, w, n, MSG_NOSIGNAL) : recv(fd, r, n, 0);
		if (k == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (k < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -1;
		}
		if (w != NULL)
			w += k;
		else
			r += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
dial(const struct sockaddr_storage *srv, socklen_t len, uint64_t deadline)
{
	int fd, e = 0;
	socklen_t el = sizeof(e);

	if ((fd = socket(srv->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)srv, len) == 0)
		return fd;
	if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
		return fd;
	if (e != 0)
		errno = e;
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
dnsclient_exchange(const struct sockaddr_storage *srv, socklen_t srvlen,
    const struct dns_buf *q, uint8_t *resp, size_t cap, size_t *rlen, int timeout_ms,
    char *err, size_t errlen)
{
	uint64_t deadline = util_now_ms() + (uint64_t)timeout_ms;
	uint8_t hdr[2];
	size_t n;
	int fd, rc = -1;

	if ((fd = dial(srv, srvlen, deadline)) == -1) {
		snprintf(err, errlen, "cannot connect: %s", strerror(errno));
		return -1;
	}
	hdr[0] = (uint8_t)(q->len >> 8);
	hdr[1] = (uint8_t)q->len;
	if (io_all(fd, hdr, NULL, 2, deadline) == -1 || io_all(fd, q->b, NULL, q->len,
	    deadline) == -1 || io_all(fd, NULL, hdr, 2, deadline) == -1) {
		snprintf(err, errlen, "exchange failed: %s", strerror(errno));
		goto out;
	}
	n = (size_t)hdr[0] << 8 | hdr[1];
	if (n < 12 || n > cap) {
		snprintf(err, errlen, "an answer of %zu bytes (at most %zu)", n, cap);
		goto out;
	}
	if (io_all(fd, NULL, resp, n, deadline) == -1) {
		snprintf(err, errlen, "reading the answer: %s", strerror(errno));
		goto out;
	}
	*rlen = n;
	rc = 0;
out:
	close(fd);
	return rc;
}
