/*
 * Bounds-checked reading and writing of IPC payloads. A reader never reads
 * past its buffer: any overrun sets `bad` and every later read returns zero,
 * so a handler reads all fields and checks once with cur_end().
 * Encoding: little-endian fixed widths; a string is u16 length + bytes.
 */
#ifndef HALOYD_CURSOR_H
#define HALOYD_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct cur {
	const uint8_t *p;
	size_t left;
	int bad;
};

void cur_init(struct cur *c, const void *buf, size_t len);
uint8_t cur_u8(struct cur *c);
uint16_t cur_u16(struct cur *c);
uint32_t cur_u32(struct cur *c);
uint64_t cur_u64(struct cur *c);
/*
 * Copies a string into dst (size dstsize) and NUL-terminates it. Fails (sets
 * bad, returns -1) when it is longer than dstsize - 1 or contains a NUL.
 */
int cur_str(struct cur *c, char *dst, size_t dstsize);
/* Returns a pointer to the next n bytes in place, or NULL (and bad). */
const void *cur_blob(struct cur *c, size_t n);
/* 0 when every read was in bounds and no byte is left over, else -1. */
int cur_end(const struct cur *c);

struct wbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	int bad;	/* set when a write did not fit */
};

void wb_init(struct wbuf *w, void *buf, size_t cap);
void wb_u8(struct wbuf *w, uint8_t v);
void wb_u16(struct wbuf *w, uint16_t v);
void wb_u32(struct wbuf *w, uint32_t v);
void wb_u64(struct wbuf *w, uint64_t v);
void wb_str(struct wbuf *w, const char *s);	/* NULL writes "" */
void wb_blob(struct wbuf *w, const void *p, size_t n);

#endif
