/*
 * The HTTP/2 sessions' allocator: page-aligned large blocks whose pages an
 * idle session gives back (see h2mem.h for why).
 */
#include "config.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "worker/h2mem.h"

#define H2MEM_FRAME_MIN 16384	/* nghttp2's frame buffer holds a whole 16 KiB payload */

static size_t
h2mem_page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static void
h2mem_track(struct h2mem *m, void *p, size_t n)
{
	size_t i;

	if (m->creating && n >= H2MEM_FRAME_MIN && m->frame == NULL)
		m->frame = p;
	for (i = 0; i < H2MEM_BLOCKS; i++)
		if (m->block[i] == NULL) {
			m->block[i] = p;
			return;
		}
	/* Untracked: still a valid block, only never trimmed. */
}

static void
h2mem_untrack(struct h2mem *m, void *p)
{
	size_t i;

	if (p == m->frame)
		m->frame = NULL;
	for (i = 0; i < H2MEM_BLOCKS; i++)
		if (m->block[i] == p)
			m->block[i] = NULL;
}

static void *
h2mem_malloc(size_t n, void *arg)
{
	struct h2mem *m = arg;
	void *p;

	if (n < h2mem_page())
		return malloc(n);
	if (posix_memalign(&p, h2mem_page(), n) != 0)
		return NULL;
	h2mem_track(m, p, n);
	return p;
}

static void
h2mem_free(void *p, void *arg)
{
	if (p != NULL)
		h2mem_untrack(arg, p);
	free(p);
}

static void *
h2mem_calloc(size_t nmemb, size_t size, void *arg)
{
	void *p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		return NULL;
	if (nmemb * size < h2mem_page())
		return calloc(nmemb, size);
	if ((p = h2mem_malloc(nmemb * size, arg)) != NULL)
		memset(p, 0, nmemb * size);
	return p;
}

static int
h2mem_tracked(const struct h2mem *m, const void *p)
{
	size_t i;

	for (i = 0; i < H2MEM_BLOCKS; i++)
		if (m->block[i] == p)
			return 1;
	return 0;
}

static void *
h2mem_realloc(void *p, size_t n, void *arg)
{
	struct h2mem *m = arg;
	int was_frame = p != NULL && p == m->frame;
	size_t old;
	void *q;

	if (p == NULL)
		return h2mem_malloc(n, m);
	if (n < h2mem_page() && !h2mem_tracked(m, p))
		return realloc(p, n);
	/* A large block stays page aligned: a new one, the bytes copied over. */
	if ((q = h2mem_malloc(n, m)) == NULL)
		return NULL;
	old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	h2mem_free(p, m);
	if (was_frame && n >= h2mem_page())
		m->frame = q;
	return q;
}

void
h2mem_init(struct h2mem *m)
{
	memset(m, 0, sizeof(*m));
	m->mem = (nghttp2_mem){ m, h2mem_malloc, h2mem_free, h2mem_calloc, h2mem_realloc };
}

void
h2mem_creating(struct h2mem *m, int on)
{
	m->creating = on;
}

static int
h2mem_zero(const unsigned char *p, size_t n)
{
	const uint64_t *q = (const uint64_t *)(const void *)p;
	size_t i;

	for (i = 0; i < n / sizeof(*q); i++)
		if (q[i] != 0)
			return 0;
	return 1;
}

void
h2mem_trim(struct h2mem *m)
{
	size_t page = h2mem_page(), i, n;
	unsigned char *p, *at;

	for (i = 0; i < H2MEM_BLOCKS; i++) {
		if ((p = m->block[i]) == NULL)
			continue;
		/* Pages wholly inside the block: the allocator's next header lies beyond. */
		n = malloc_usable_size(p) / page * page;
		if (p == m->frame) {
			(void)madvise(p, n, MADV_DONTNEED);
			continue;
		}
		for (at = p; at < p + n; at += page)
			if (h2mem_zero(at, page))
				(void)madvise(at, page, MADV_DONTNEED);
	}
}
