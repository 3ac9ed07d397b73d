/*
 * Neutral message heads (see message.h): storage that grows with the head,
 * field lookup, methods.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/message.h"

#define MSG_MEM_FIRST 512
#define MSG_FIELDS_FIRST 16
#define MSG_FIELDS_CAP (2 * MSG_FIELDS_MAX + 16)

void
msg_init(struct msg_head *h)
{
	memset(h, 0, sizeof(*h));
}

void
msg_reset(struct msg_head *h)
{
	char *mem = h->mem, *block = h->block;
	struct msg_field *f = h->f;
	uint32_t cap = h->cap, fcap = h->fcap;

	memset(h, 0, sizeof(*h));
	h->mem = mem;
	h->cap = cap;
	h->f = f;
	h->fcap = fcap;
	h->block = block;
	if (mem != NULL)
		h->len = 1;	/* mem[0], the empty string */
}

/* f still in the block (a later, larger one is not). */
static int
msg_f_in_block(const struct msg_head *h)
{
	return h->block != NULL && (char *)h->f == h->block + MSG_MEM_FIRST;
}

void
msg_free(struct msg_head *h)
{
	if (h->mem != h->block)
		free(h->mem);
	if (!msg_f_in_block(h))
		free(h->f);
	free(h->block);
	memset(h, 0, sizeof(*h));
}

/*
 * A head's first storage: mem and the first fields in one allocation, which
 * is one malloc and one free per head where there were two (each request has
 * two heads).
 */
static int
msg_first_block(struct msg_head *h)
{
	if ((h->block = malloc(MSG_MEM_FIRST + MSG_FIELDS_FIRST * sizeof(struct msg_field))) == NULL)
		return -1;
	h->mem = h->block;
	h->cap = MSG_MEM_FIRST;
	h->mem[0] = '\0';
	h->len = 1;
	h->f = (struct msg_field *)(void *)(h->block + MSG_MEM_FIRST);
	h->fcap = MSG_FIELDS_FIRST;
	return 0;
}

/* p grown to cap bytes from its used n; when in the block, copied out of it, which stays. */
static void *
msg_grow(void *p, int in_block, size_t n, size_t cap)
{
	void *q;

	if (!in_block)
		return realloc(p, cap);
	if ((q = malloc(cap)) != NULL)
		memcpy(q, p, n);
	return q;
}

/* Room for n more bytes in mem, within max in all. */
static int
msg_reserve(struct msg_head *h, size_t n, size_t max)
{
	size_t want, cap;
	char *p;

	if (h->block == NULL && msg_first_block(h) == -1)	/* no block: no storage at all */
		return -1;
	want = (size_t)h->len + n;
	if (want > max)
		return -1;
	if (want <= h->cap)
		return 0;
	for (cap = h->cap; cap < want; cap *= 2)
		;
	if ((p = msg_grow(h->mem, h->mem == h->block, h->len, cap)) == NULL)
		return -1;
	h->mem = p;
	h->cap = (uint32_t)cap;
	return 0;
}

int
msg_append(struct msg_head *h, const char *p, size_t n, size_t max)
{
	if (msg_reserve(h, n, max) == -1)
		return -1;
	memcpy(h->mem + h->len, p, n);
	h->len += (uint32_t)n;
	return 0;
}

char *
msg_extend(struct msg_head *h, size_t n, size_t max)
{
	char *p;

	if (msg_reserve(h, n, max) == -1)
		return NULL;
	p = h->mem + h->len;
	h->len += (uint32_t)n;
	return p;
}

int
msg_close(struct msg_head *h, struct msg_str *out, uint32_t start, size_t max)
{
	if (msg_reserve(h, 1, max) == -1)
		return -1;
	h->mem[h->len++] = '\0';
	out->off = start;
	out->len = h->len - 1 - start;
	return 0;
}

int
msg_mark(struct msg_head *h, uint32_t *start)
{
	if (msg_reserve(h, 0, MSG_MEM_MAX) == -1)
		return -1;
	*start = h->len;
	return 0;
}

int
msg_str(struct msg_head *h, const char *p, size_t n, struct msg_str *out)
{
	uint32_t start;

	if (n == 0) {
		*out = (struct msg_str){ 0, 0 };
		return 0;
	}
	if (msg_mark(h, &start) == -1 || msg_append(h, p, n, MSG_MEM_MAX) == -1)
		return -1;
	return msg_close(h, out, start, MSG_MEM_MAX);
}

/* A new slot at the end of f. */
static struct msg_field *
msg_slot(struct msg_head *h)
{
	struct msg_field *f;

	if (h->block == NULL && msg_first_block(h) == -1)
		return NULL;
	if (h->nf == h->fcap) {
		uint32_t cap = h->fcap * 2;

		/* A head and its trailers, MSG_FIELDS_MAX each, and what forwarding adds. */
		if (cap > MSG_FIELDS_CAP)
			cap = MSG_FIELDS_CAP;
		if (cap <= h->fcap || (f = msg_grow(h->f, msg_f_in_block(h), h->nf * sizeof(*f),
		    cap * sizeof(*f))) == NULL)
			return NULL;
		h->f = f;
		h->fcap = cap;
	}
	return &h->f[h->nf++];
}

int
msg_push(struct msg_head *h, struct msg_str name, struct msg_str value, int trailer)
{
	struct msg_field *f = msg_slot(h);

	if (f == NULL)
		return -1;
	f->name = name;
	f->value = value;
	if (trailer || h->ntrailers > 0)
		h->ntrailers++;
	return 0;
}

/* Both strings in one reservation: forwarding adds several fields per message. */
int
msg_add_n(struct msg_head *h, const char *name, size_t nlen, const char *value, size_t vlen,
    int trailer)
{
	struct msg_str n, v;
	char *p;

	if (nlen > MSG_MEM_MAX || vlen > MSG_MEM_MAX ||
	    (p = msg_extend(h, nlen + vlen + 2, MSG_MEM_MAX)) == NULL)
		return -1;
	n = (struct msg_str){ (uint32_t)(p - h->mem), (uint32_t)nlen };
	v = (struct msg_str){ n.off + (uint32_t)nlen + 1, (uint32_t)vlen };
	memcpy(p, name, nlen);
	p[nlen] = '\0';
	memcpy(p + nlen + 1, value, vlen);
	p[nlen + 1 + vlen] = '\0';
	return msg_push(h, n, v, trailer);
}

int
msg_add(struct msg_head *h, const char *name, const char *value)
{
	return msg_add_n(h, name, strlen(name), value, strlen(value), 0);
}

void
msg_del(struct msg_head *h, uint32_t i)
{
	if (i >= h->nf)
		return;
	if (i >= h->nf - h->ntrailers)
		h->ntrailers--;
	memmove(&h->f[i], &h->f[i + 1], (h->nf - i - 1) * sizeof(h->f[0]));
	h->nf--;
}

const struct msg_field *
msg_find_n(const struct msg_head *h, const char *name, size_t len)
{
	uint32_t i, n = msg_nheaders(h);

	for (i = 0; i < n; i++)
		if (msg_field_is_n(h, &h->f[i], name, len))
			return &h->f[i];
	return NULL;
}

int
msg_list_next(const char **v, const char *end, const char **tok, size_t *len)
{
	while (*v < end) {
		const char *comma = memchr(*v, ',', (size_t)(end - *v));
		const char *s = *v, *e = comma != NULL ? comma : end;

		*v = comma != NULL ? comma + 1 : end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			*tok = s;
			*len = (size_t)(e - s);
			return 1;
		}
	}
	return 0;
}

int
msg_has_token(const struct msg_head *h, const struct msg_field *f, const char *token)
{
	const char *v = msg_value(h, f), *end = v + f->value.len, *t;
	size_t tl = strlen(token), len;

	while (msg_list_next(&v, end, &t, &len))
		if (len == tl && strncasecmp(t, token, tl) == 0)
			return 1;
	return 0;
}

int
msg_lists(const struct msg_head *h, const char *name, const char *token)
{
	uint32_t i;

	for (i = 0; i < msg_nheaders(h); i++)
		if (msg_field_is(h, &h->f[i], name) && msg_has_token(h, &h->f[i], token))
			return 1;
	return 0;
}

static const char *const msg_methods[] = {
	[MSG_M_OTHER] = "", [MSG_M_GET] = "GET", [MSG_M_HEAD] = "HEAD", [MSG_M_POST] = "POST",
	[MSG_M_PUT] = "PUT", [MSG_M_DELETE] = "DELETE", [MSG_M_CONNECT] = "CONNECT",
	[MSG_M_OPTIONS] = "OPTIONS", [MSG_M_TRACE] = "TRACE", [MSG_M_PATCH] = "PATCH",
};

enum msg_method
msg_method_of(const char *name, size_t len)
{
	size_t i;

	/* Methods are case-sensitive (RFC 9110 9.1). */
	for (i = 1; i < sizeof(msg_methods) / sizeof(msg_methods[0]); i++)
		if (strlen(msg_methods[i]) == len && memcmp(msg_methods[i], name, len) == 0)
			return (enum msg_method)i;
	return MSG_M_OTHER;
}

const char *
msg_method_str(const struct msg_head *h)
{
	if (h->method != MSG_M_OTHER)
		return msg_methods[h->method];
	return h->method_name.len > 0 ? msg_s(h, h->method_name) : "-";
}

int
msg_idempotent(const struct msg_head *h)
{
	switch (h->method) {
	case MSG_M_GET: case MSG_M_HEAD: case MSG_M_PUT: case MSG_M_DELETE:
	case MSG_M_OPTIONS: case MSG_M_TRACE:
		return 1;
	default:
		return 0;
	}
}
