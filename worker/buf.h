/*
 * Fixed-size byte buffers for the data path. A connection holds buffers only
 * while bytes are in flight; an idle keep-alive connection holds none, so
 * thousands of idle clients cost a few hundred bytes each. Freed buffers go
 * back to a per-worker free list instead of malloc.
 */
#ifndef HALOYD_WORKER_BUF_H
#define HALOYD_WORKER_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BUF_SIZE (32 * 1024)
/*
 * Free blocks kept: an HTTP/2 client keeps hundreds of requests in flight,
 * and with fewer kept every request went through malloc and free. A quiet
 * worker halves what it keeps down to BUF_POOL_IDLE (buf_pool_trim).
 */
#define BUF_POOL_KEEP 256
#define BUF_POOL_IDLE 32

struct buf {
	char *data;	/* NULL when not holding a block */
	size_t off;	/* first unconsumed byte */
	size_t len;	/* bytes after off */
};

/* A free list of same-size blocks (buffers, parsed heads). */
struct buf_pool {
	size_t size;	/* block size */
	void *free;	/* singly linked through the blocks */
	size_t nfree;
};

void *pool_alloc(struct buf_pool *p);
void pool_free(struct buf_pool *p, void *block);

/* Gives b a block if it has none; 0 or -1 (out of memory). */
int buf_get(struct buf_pool *p, struct buf *b);
/* Returns b's block to the pool; b is empty afterwards. */
void buf_put(struct buf_pool *p, struct buf *b);
/* Frees every pooled block. */
void buf_pool_clear(struct buf_pool *p);
/* Frees pooled blocks beyond half of them, keeping at least BUF_POOL_IDLE. */
void buf_pool_trim(struct buf_pool *p);

static inline char *
buf_head(const struct buf *b)
{
	return b->data + b->off;
}

/* Free bytes at the tail after moving the data to the front if that helps. */
size_t buf_room(struct buf *b);
static inline char *
buf_tail(const struct buf *b)
{
	return b->data + b->off + b->len;
}

/* Appends n bytes (the caller checked buf_room). */
void buf_append(struct buf *b, const void *p, size_t n);
/* Appends n bytes when they fit; 0, or -1 (nothing appended). The data path's printf. */
int buf_add(struct buf *b, const void *p, size_t n);
/* Appends v in decimal (base 10) or hexadecimal (16) when it fits; 0 or -1. */
int buf_add_num(struct buf *b, uint64_t v, unsigned base);
void buf_consume(struct buf *b, size_t n);

/* read() into the tail: bytes read, 0 at EOF, -1 with errno. */
ssize_t buf_read_fd(struct buf *b, int fd);
/* write() from the head: bytes written or -1 with errno. */
ssize_t buf_write_fd(struct buf *b, int fd);
/*
 * One sendmsg of the buffered bytes then p's n: how many of p's bytes went
 * (the buffer is consumed first, so 0 while it is not empty), or -1 with errno.
 */
ssize_t buf_writev_fd(struct buf *b, int fd, const void *p, size_t n);

#endif
