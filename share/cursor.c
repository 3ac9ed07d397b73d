/* Bounds-checked payload reader and writer (see cursor.h for the encoding). */
#include "config.h"

#include <string.h>

#include "share/cursor.h"

void
cur_init(struct cur *c, const void *buf, size_t len)
{
	c->p = buf;
	c->left = len;
	c->bad = 0;
}

const void *
cur_blob(struct cur *c, size_t n)
{
	const uint8_t *r;

	if (c->bad || n > c->left) {
		c->bad = 1;
		return NULL;
	}
	r = c->p;
	c->p += n;
	c->left -= n;
	return r;
}

static uint64_t
cur_le(struct cur *c, size_t n)
{
	const uint8_t *b = cur_blob(c, n);
	uint64_t v = 0;
	size_t i;

	if (b == NULL)
		return 0;
	for (i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

uint8_t cur_u8(struct cur *c) { return (uint8_t)cur_le(c, 1); }
uint16_t cur_u16(struct cur *c) { return (uint16_t)cur_le(c, 2); }
uint32_t cur_u32(struct cur *c) { return (uint32_t)cur_le(c, 4); }
uint64_t cur_u64(struct cur *c) { return cur_le(c, 8); }

int
cur_str(struct cur *c, char *dst, size_t dstsize)
{
	uint16_t n = cur_u16(c);
	const uint8_t *b;

	if (dstsize > 0)
		dst[0] = '\0';
	if (c->bad || (size_t)n >= dstsize) {
		c->bad = 1;
		return -1;
	}
	if ((b = cur_blob(c, n)) == NULL)
		return -1;
	if (memchr(b, '\0', n) != NULL) {
		c->bad = 1;
		return -1;
	}
	memcpy(dst, b, n);
	dst[n] = '\0';
	return 0;
}

int
cur_end(const struct cur *c)
{
	return (c->bad || c->left != 0) ? -1 : 0;
}

void
wb_init(struct wbuf *w, void *buf, size_t cap)
{
	w->p = buf;
	w->len = 0;
	w->cap = cap;
	w->bad = 0;
}

void
wb_blob(struct wbuf *w, const void *p, size_t n)
{
	if (w->bad || n > w->cap - w->len) {
		w->bad = 1;
		return;
	}
	if (n > 0)
		memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void
wb_le(struct wbuf *w, uint64_t v, size_t n)
{
	uint8_t b[8];
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	wb_blob(w, b, n);
}

void wb_u8(struct wbuf *w, uint8_t v) { wb_le(w, v, 1); }
void wb_u16(struct wbuf *w, uint16_t v) { wb_le(w, v, 2); }
void wb_u32(struct wbuf *w, uint32_t v) { wb_le(w, v, 4); }
void wb_u64(struct wbuf *w, uint64_t v) { wb_le(w, v, 8); }

void
wb_str(struct wbuf *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > UINT16_MAX) {
		w->bad = 1;
		return;
	}
	wb_u16(w, (uint16_t)n);
	wb_blob(w, s, n);
}
