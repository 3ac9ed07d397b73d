/*
 * The allocator each HTTP/2 session hands libnghttp2 (nghttp2_mem), so that
 * an idle session gives most of its memory back to the kernel.
 *
 * nghttp2 allocates its outbound frame buffer (16 KiB and a frame header)
 * once per session and keeps it for the session's life, though its content
 * is dead whenever nothing waits to be sent; its stream map (4 KiB) is all
 * zero whenever no stream is open. Blocks of a page or more are mappings of
 * their own (mmap, whole pages), so their pages belong to them alone:
 * h2mem_trim() drops the frame buffer's pages and every all-zero page of the
 * others (MADV_DONTNEED: the next touch maps a zero page). An idle
 * connection then costs its TLS state and nghttp2's small objects, not
 * ~20 KiB of buffers. Not from the heap: page-aligned heap blocks left the
 * rest of the page before each resident and unused (~2 KiB a session).
 */
#ifndef HALOYD_WORKER_H2MEM_H
#define HALOYD_WORKER_H2MEM_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#define H2MEM_BLOCKS 4	/* large blocks mapped; nghttp2 keeps two per idle session */

struct h2mem {
	nghttp2_mem mem;		/* what nghttp2_session_server_new3 takes */
	void *block[H2MEM_BLOCKS];	/* mappings for blocks of a page or more */
	uint32_t pages[H2MEM_BLOCKS];	/* each one's length */
	void *frame;			/* the outbound frame buffer, once allocated */
	int creating;			/* the session is being made: its frame buffer comes now */
	size_t page;			/* sysconf's, once: nghttp2 allocates a few times a stream */
};

/* Points m->mem at the allocator, with m as its user data. */
void h2mem_init(struct h2mem *m);
/* Brackets nghttp2_session_*_new3: the frame buffer is recognised then. */
void h2mem_creating(struct h2mem *m, int on);
/* The session is idle (no stream, nothing queued): gives pages back. */
void h2mem_trim(struct h2mem *m);

#endif
