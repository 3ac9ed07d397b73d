/* Data-path buffers and their per-worker free list (see buf.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "share/util.h"
#include "worker/buf.h"

void *
pool_alloc(struct buf_pool *p)
{
	void *b = p->free;

	if (b == NULL)
		return malloc(p->size);
	memcpy(&p->free, b, sizeof(void *));
	p->nfree--;
	return b;
}

void
pool_free(struct buf_pool *p, void *block)
{
	if (block == NULL)
		return;
	if (p->nfree >= BUF_POOL_KEEP) {
		free(block);
		return;
	}
	memcpy(block, &p->free, sizeof(void *));
	p->free = block;
	p->nfree++;
}

int
buf_get(struct buf_pool *p, struct buf *b)
{
	if (b->data != NULL)
		return 0;
	if ((b->data = pool_alloc(p)) == NULL)
		return -1;
	b->off = b->len = 0;
	return 0;
}

void
buf_put(struct buf_pool *p, struct buf *b)
{
	pool_free(p, b->data);
	b->data = NULL;
	b->off = b->len = 0;
}

void
buf_pool_clear(struct buf_pool *p)
{
	void *next;

	while (p->free != NULL) {
		memcpy(&next, p->free, sizeof(void *));
		free(p->free);
		p->free = next;
	}
	p->nfree = 0;
}

void
buf_pool_trim(struct buf_pool *p)
{
	size_t keep = p->nfree / 2 > BUF_POOL_IDLE ? p->nfree / 2 : BUF_POOL_IDLE;
	void *next;

	while (p->nfree > keep) {
		memcpy(&next, p->free, sizeof(void *));
		free(p->free);
		p->free = next;
		p->nfree--;
	}
}

size_t
buf_room(struct buf *b)
{
	if (b->data == NULL)
		return 0;
	if (b->len == 0)
		b->off = 0;
	else if (b->off > 0 && b->off + b->len > BUF_SIZE / 2) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	return BUF_SIZE - b->off - b->len;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	memcpy(buf_tail(b), p, n);
	b->len += n;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (n > buf_room(b))
		return -1;
	buf_append(b, p, n);
	return 0;
}

int
buf_add_num(struct buf *b, uint64_t v, unsigned base)
{
	char tmp[64], *at = util_digits(tmp + sizeof(tmp), v, base);

	return buf_add(b, at, (size_t)(tmp + sizeof(tmp) - at));
}

void
buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

ssize_t
buf_read_fd(struct buf *b, int fd)
{
	size_t room = buf_room(b);
	ssize_t n;

	if (room == 0) {
		errno = ENOBUFS;
		return -1;
	}
	do
		n = read(fd, buf_tail(b), room);
	while (n == -1 && errno == EINTR);
	if (n > 0)
		b->len += (size_t)n;
	return n;
}

ssize_t
buf_write_fd(struct buf *b, int fd)
{
	ssize_t n;

	do
		n = send(fd, buf_head(b), b->len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n > 0)
		buf_consume(b, (size_t)n);
	return n;
}

ssize_t
buf_writev_fd(struct buf *b, int fd, const void *p, size_t n)
{
	struct iovec iov[2];
	struct msghdr mh;
	size_t had = b->len;
	ssize_t w;
	int i = 0;

	if (had > 0) {
		iov[i].iov_base = (void *)(uintptr_t)buf_head(b);
		iov[i++].iov_len = had;
	}
	iov[i].iov_base = (void *)(uintptr_t)p;
	iov[i++].iov_len = n;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = (size_t)i;
	do
		w = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (w == -1 && errno == EINTR);
	if (w <= 0)
		return w;
	if ((size_t)w <= had) {
		buf_consume(b, (size_t)w);
		return 0;
	}
	buf_consume(b, had);
	return w - (ssize_t)had;
}
