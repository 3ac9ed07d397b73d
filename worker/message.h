/*
 * The neutral message: one request or response head of our own, whatever
 * protocol it came in or goes out on. Sessions decode into it (HTTP/1.1 in
 * worker/http1.c, HTTP/2 next) and encode from it; the forwarding rules
 * (worker/forward.c) transform it in between.
 *
 * Storage is sized to the head it holds: strings live in one growing block
 * (mem), fields in a growing array, both referred to by offset so growing
 * never invalidates them. An idle head holds no storage at all.
 */
#ifndef HALOYD_WORKER_MESSAGE_H
#define HALOYD_WORKER_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define MSG_HEAD_MAX (16 * 1024)	/* request line + fields as received: else 431 */
#define MSG_TARGET_MAX (8 * 1024)	/* request-target: else 414 */
#define MSG_TRAILER_MAX 4096		/* trailer section */
#define MSG_FIELDS_MAX 100		/* fields in a head (and in its trailers) */
/* What forwarding may add on top of a full head (X-Forwarded-*, HSTS...). */
#define MSG_MEM_MAX (MSG_HEAD_MAX + MSG_TRAILER_MAX + 4096)

enum msg_method {
	MSG_M_OTHER = 0,	/* any other token: its name is in method_name */
	MSG_M_GET, MSG_M_HEAD, MSG_M_POST, MSG_M_PUT, MSG_M_DELETE, MSG_M_CONNECT,
	MSG_M_OPTIONS, MSG_M_TRACE, MSG_M_PATCH,
};

/* A string in a head's storage: off into mem, len bytes, NUL-terminated. {0, 0} is "". */
struct msg_str {
	uint32_t off, len;
};

struct msg_field {
	struct msg_str name, value;
};

struct msg_head {
	char *mem;			/* mem[0] is always NUL: the empty string */
	uint32_t len, cap;
	struct msg_field *f;
	uint32_t nf, fcap;
	uint32_t ntrailers;		/* the last ntrailers of f are trailers */
	char *block;			/* one allocation for mem and f, until either outgrows it */

	enum msg_method method;		/* requests */
	struct msg_str method_name;
	struct msg_str scheme;		/* "http" / "https" */
	struct msg_str authority;	/* host[:port] as the client named it */
	struct msg_str path;		/* origin-form target ("/a?b"), "*", or as received */
	unsigned status;		/* responses */
	struct msg_str reason;		/* HTTP/1 reason phrase, may be empty */
	uint8_t major, minor;		/* the version the peer spoke */

	uint8_t has_length;		/* the body is length bytes long */
	uint8_t chunked;		/* a body of unknown length follows (HTTP/1: chunked) */
	uint8_t keepalive;		/* HTTP/1: the connection may carry another message */
	uint8_t upgrade;		/* asks for (request) or agrees to (101) a protocol switch */
	uint8_t complete;		/* nothing follows: HTTP/2 END_STREAM on the head (no body, no trailers) */
	struct msg_str upgrade_proto;	/* the protocol token ("websocket") */
	uint64_t length;
};

/* An empty head with no storage (a zeroed struct is one too). */
void msg_init(struct msg_head *h);
/* Empties h, keeping its storage for the next head. */
void msg_reset(struct msg_head *h);
/* Gives h's storage back; h is empty afterwards. */
void msg_free(struct msg_head *h);

/*
 * Building a string from pieces (one name or value may arrive apart):
 * msg_mark notes where it starts, msg_append adds bytes at the end of mem,
 * msg_close ends it with a NUL and returns it. -1 when mem would pass max
 * bytes (the caller's limit) or malloc fails.
 */
int msg_mark(struct msg_head *h, uint32_t *start);
int msg_append(struct msg_head *h, const char *p, size_t n, size_t max);
int msg_close(struct msg_head *h, struct msg_str *out, uint32_t start, size_t max);
/* n bytes more at the end of mem, for the caller to fill; NULL past max bytes in all. */
char *msg_extend(struct msg_head *h, size_t n, size_t max);
/* A whole string: msg_append + msg_close. 0 or -1. */
int msg_str(struct msg_head *h, const char *p, size_t n, struct msg_str *out);
/* Appends a field (a trailer once ntrailers > 0 or trailer is set). 0 or -1. */
int msg_add(struct msg_head *h, const char *name, const char *value);
int msg_add_n(struct msg_head *h, const char *name, size_t nlen, const char *value, size_t vlen,
    int trailer);
/* Appends a field whose strings are in h already. 0 or -1. */
int msg_push(struct msg_head *h, struct msg_str name, struct msg_str value, int trailer);
/* Removes field i, keeping the order of the rest. */
void msg_del(struct msg_head *h, uint32_t i);

static inline const char *
msg_s(const struct msg_head *h, struct msg_str s)
{
	return h->mem != NULL ? h->mem + s.off : "";
}
static inline const char *
msg_name(const struct msg_head *h, const struct msg_field *f)
{
	return msg_s(h, f->name);
}
static inline const char *
msg_value(const struct msg_head *h, const struct msg_field *f)
{
	return msg_s(h, f->value);
}
/* Fields of the head proper, without the trailers. */
static inline uint32_t
msg_nheaders(const struct msg_head *h)
{
	return h->nf - h->ntrailers;
}

/*
 * 1 when field f is called name (case-insensitive). Inline: with a literal
 * name the length is a constant and most fields are rejected by it alone.
 */
static inline int
msg_field_is_n(const struct msg_head *h, const struct msg_field *f, const char *name, size_t len)
{
	const char *n = msg_name(h, f);

	/* Bytes equal but for case differ in bit 0x20 at most: most same-length names end there. */
	return f->name.len == len && ((n[0] ^ name[0]) & ~0x20) == 0 && strcasecmp(n, name) == 0;
}
static inline int
msg_field_is(const struct msg_head *h, const struct msg_field *f, const char *name)
{
	return msg_field_is_n(h, f, name, strlen(name));
}
/* The first header (not trailer) called name (len bytes), or NULL. */
const struct msg_field *msg_find_n(const struct msg_head *h, const char *name, size_t len);
/* The same for a C string: inline, so that a literal's length is counted by the compiler. */
static inline const struct msg_field *
msg_find(const struct msg_head *h, const char *name)
{
	return msg_find_n(h, name, strlen(name));
}
/* 1 when the comma-separated value of f lists token (case-insensitive). */
int msg_has_token(const struct msg_head *h, const struct msg_field *f, const char *token);
/* 1 when any field called name lists token (a list may be split over several fields). */
int msg_lists(const struct msg_head *h, const char *name, const char *token);
/* The next non-empty element of a comma-separated list in [*v, end), blanks trimmed; 0 at its end. */
int msg_list_next(const char **v, const char *end, const char **tok, size_t *len);

/* The method for a name ("GET" -> MSG_M_GET; unknown -> MSG_M_OTHER). */
enum msg_method msg_method_of(const char *name, size_t len);
/* The request's method name. */
const char *msg_method_str(const struct msg_head *h);
/* GET, HEAD, PUT, DELETE, OPTIONS, TRACE: a retry cannot do harm (RFC 9110 9.2.2). */
int msg_idempotent(const struct msg_head *h);

#endif
