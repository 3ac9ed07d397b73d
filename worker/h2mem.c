/*
 * The HTTP/2 sessions' allocator: large blocks in mappings of their own,
 * whose pages an idle session gives back (see h2mem.h for why).
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
#define H2MEM_PAGES_MAX (1u << 20)	/* 4 GiB: beyond that, the heap's (never seen) */

/* The slot of a mapped block, or -1 (a heap block). */
static int
h2mem_slot(const struct h2mem *m, const void *p)
{
	int i;

	for (i = 0; i < H2MEM_BLOCKS; i++)
		if (m->block[i] == p)
			return i;
	return -1;
}

static size_t
h2mem_len(const struct h2mem *m, int i)
{
	return (size_t)m->pages[i] * m->page;
}

/*
 * A mapping when a slot is free (it comes zeroed), else the heap: a block
 * past the slots is valid, only never trimmed.
 */
static void *
h2mem_malloc(size_t n, void *arg)
{
	struct h2mem *m = arg;
	size_t page = m->page, np;
	int i;
	void *p;

	if (n < page)	/* a stream's small objects: the heap, nothing else to decide */
		return malloc(n);
	np = n / page + (n % page != 0);
	if ((i = h2mem_slot(m, NULL)) == -1 || np > H2MEM_PAGES_MAX ||
	    (p = mmap(NULL, np * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0)) == MAP_FAILED)
		return malloc(n);
	m->block[i] = p;
	m->pages[i] = (uint32_t)np;
	if (m->creating && n >= H2MEM_FRAME_MIN && m->frame == NULL)
		m->frame = p;
	return p;
}

static void
h2mem_free(void *p, void *arg)
{
	struct h2mem *m = arg;
	int i;

	if (p == NULL)
		return;
	if (p == m->frame)
		m->frame = NULL;
	if ((i = h2mem_slot(m, p)) == -1) {
		free(p);
		return;
	}
	(void)munmap(p, h2mem_len(m, i));
	m->block[i] = NULL;
	m->pages[i] = 0;
}

static void *
h2mem_calloc(size_t nmemb, size_t size, void *arg)
{
	struct h2mem *m = arg;
	void *p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		return NULL;
	if (nmemb * size < m->page)
		return calloc(nmemb, size);
	if ((p = h2mem_malloc(nmemb * size, m)) != NULL && h2mem_slot(m, p) == -1)
		memset(p, 0, nmemb * size);
	return p;
}

static void *
h2mem_realloc(void *p, size_t n, void *arg)
{
	struct h2mem *m = arg;
	int i, was_frame = p != NULL && p == m->frame;
	size_t old;
	void *q;

	if (p == NULL)
		return h2mem_malloc(n, m);
	i = h2mem_slot(m, p);
	if (i == -1 && n < m->page)
		return realloc(p, n);
	if (i != -1 && n <= h2mem_len(m, i))
		return p;
	/* A new block, the bytes copied over: a large one gets a mapping. */
	old = i != -1 ? h2mem_len(m, i) : malloc_usable_size(p);
	if ((q = h2mem_malloc(n, m)) == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	h2mem_free(p, m);
	if (was_frame)
		m->frame = q;
	return q;
}

void
h2mem_init(struct h2mem *m)
{
	memset(m, 0, sizeof(*m));
	m->mem = (nghttp2_mem){ m, h2mem_malloc, h2mem_free, h2mem_calloc, h2mem_realloc };
	m->page = (size_t)sysconf(_SC_PAGESIZE);
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
	size_t page = m->page, n;
	unsigned char *p, *at;
	int i;

	for (i = 0; i < H2MEM_BLOCKS; i++) {
		if ((p = m->block[i]) == NULL)
			continue;
		n = h2mem_len(m, i);
		if (p == m->frame) {
			(void)madvise(p, n, MADV_DONTNEED);
			continue;
		}
		for (at = p; at < p + n; at += page)
			if (h2mem_zero(at, page))
				(void)madvise(at, page, MADV_DONTNEED);
	}
}
