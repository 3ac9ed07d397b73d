/*
 * The cache's request and response sides (see cache.h): keys, the entry
 * format, lookups with Vary, what a request gets, and the fill that
 * stores a response while the exchange streams it.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "share/hash.h"
#include "share/log.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/cache.h"
#include "worker/cachecount.h"
#include "worker/cachestore.h"
#include "worker/compress.h"
#include "worker/context.h"
#include "worker/errpage.h"

#define CACHE_MAGIC 0x31434c48u		/* "HLC1" */
#define CACHE_VERSION 1
enum { CACHE_KIND_RESPONSE = 1, CACHE_KIND_VARY = 2 };
/* AE_CHOICE (a Vary record): Accept-Encoding keys by compress_negotiate's choice. */
enum { CACHE_F_MUST_VALIDATE = 1, CACHE_F_NO_STALE = 2, CACHE_F_AE_CHOICE = 4 };

struct cache_ehdr {
	uint32_t magic;
	uint16_t version, kind;
	uint32_t route_id;
	uint16_t status, nfields;	/* VARY: nfields names, no body */
	uint32_t fields_len;		/* bytes of the name/value pairs */
	uint64_t body_len;
	int64_t response_time;
	uint32_t initial_age, lifetime, swr, sie;
	uint32_t flags;
	uint32_t crc;			/* CRC32C of the entry with this field 0 */
};

struct cache_fill {
	struct worker *w;
	const struct msg_head *req;	/* the exchange's: valid until the fill is freed */
	struct cache_hit *stale;	/* the entry being validated, or NULL */
	uint32_t route_id;
	uint32_t route_flags;
	uint64_t max_object;
	int64_t request_time;
	char key[CACHE_KEY_MAX + 1];	/* the primary key */
	size_t klen;
	char *buf;			/* header, fields, body so far */
	size_t len, cap;
	char vkey[CACHE_KEY_MAX + CACHE_VARY_MAX + 2];	/* the secondary key, with Vary */
	size_t vklen;
	char vnames[CACHE_VARY_MAX];	/* Vary's names, NUL-separated */
	size_t vnlen;
	uint16_t nvary;
	uint64_t wait_until;		/* CACHE_WAIT: wall-clock ms */
	struct cachepol_times times;	/* storing: the entry's */
	unsigned ae_choice : 1;		/* the compression stage's variant (cache_fill_encoded) */
	unsigned locked : 1;		/* this fill holds the key's fill lock */
	unsigned storing : 1;		/* a storable response is being collected */
	unsigned invalidate : 1;	/* an unsafe method: invalidate on success */
};

static int64_t
cache_now(void)
{
	return (int64_t)time(NULL);
}

/* Wall-clock ms: fill locks are compared across processes and restarts. */
static uint64_t
cache_now_ms(void)
{
	return util_wall_ns() / 1000000;
}

/* "scheme://host/path": the primary key; -1 when too long. */
static int
cache_key(const char *scheme, const char *host, const char *path, char *out, size_t *len)
{
	int n = snprintf(out, CACHE_KEY_MAX + 1, "%s://%s%s", scheme, host, path);

	if (n < 0 || n > CACHE_KEY_MAX)
		return -1;
	*len = (size_t)n;
	return 0;
}

/*
 * Appends "\n" name ":" the request's values of name (joined, trimmed).
 * choice: Accept-Encoding is keyed by the coding our compression picks for
 * it, so every client that gets gzip shares one variant. -1: too long.
 */
static int
cache_vary_part(const struct msg_head *req, const char *name, char *out, size_t *len, size_t cap,
    int choice)
{
	const struct compress_codec *cc;
	uint32_t i;
	int n, first = 1;

	if (choice && strcmp(name, "accept-encoding") == 0) {
		cc = compress_codec(compress_negotiate(req));
		n = snprintf(out + *len, cap - *len, "\n%s;choice:%s", name,
		    cc != NULL ? cc->name : "identity");
		if (n < 0 || (size_t)n >= cap - *len)
			return -1;
		*len += (size_t)n;
		return 0;
	}
	n = snprintf(out + *len, cap - *len, "\n%s:", name);
	if (n < 0 || (size_t)n >= cap - *len)
		return -1;
	*len += (size_t)n;
	for (i = 0; i < msg_nheaders(req); i++) {
		if (!msg_field_is(req, &req->f[i], name))
			continue;
		n = snprintf(out + *len, cap - *len, "%s%s", first ? "" : ",",
		    msg_value(req, &req->f[i]));
		if (n < 0 || (size_t)n >= cap - *len)
			return -1;
		*len += (size_t)n;
		first = 0;
	}
	return 0;
}

/* The secondary key: the primary one and the request's values of each name. */
static int
cache_vary_key(const struct msg_head *req, const char *key, size_t klen, const char *names,
    size_t nlen, char *out, size_t *olen, size_t cap, int choice)
{
	const char *p = names, *end = names + nlen;

	memcpy(out, key, klen);
	*olen = klen;
	for (; p < end; p += strlen(p) + 1)
		if (cache_vary_part(req, p, out, olen, cap, choice) == -1)
			return -1;
	return 0;
}

static uint32_t
cache_crc(const char *blob, size_t len)
{
	struct cache_ehdr h;

	memcpy(&h, blob, sizeof(h));
	h.crc = 0;
	return hash_crc32c(hash_crc32c(0, &h, sizeof(h)), blob + sizeof(h), len - sizeof(h));
}

/*
 * Checks an entry's frame; the header in *h. -1: corrupt or not ours. The
 * checksum of the whole is computed once per place in the map and worker
 * (cachestore_checked): a 100 KiB hit would spend a tenth of its time on it.
 */
static int
cache_check(struct cachestore *cs, const char *blob, size_t len, struct cache_ehdr *h)
{
	if (len < sizeof(*h))
		return -1;
	memcpy(h, blob, sizeof(*h));
	if (h->magic != CACHE_MAGIC || h->version != CACHE_VERSION ||
	    (h->kind != CACHE_KIND_RESPONSE && h->kind != CACHE_KIND_VARY) ||
	    h->fields_len > len - sizeof(*h) || h->body_len != len - sizeof(*h) - h->fields_len ||
	    h->nfields > MSG_FIELDS_MAX)
		return -1;
	if (cachestore_checked(cs, blob, len, h->crc))
		return 0;
	if (cache_crc(blob, len) != h->crc)
		return -1;
	cachestore_set_checked(cs, blob, len, h->crc);
	return 0;
}

/* The stored head into hit->head; -1 when the fields do not add up. */
static int
cache_parse_fields(struct cache_hit *hit, const struct cache_ehdr *h)
{
	const char *p = hit->blob + sizeof(*h), *end = p + h->fields_len, *name, *value;
	const char *reason = errpage_reason(h->status);
	uint16_t i;

	msg_init(&hit->head);
	hit->head.status = h->status;
	hit->head.major = 1;
	hit->head.minor = 1;
	hit->head.has_length = 1;
	hit->head.length = h->body_len;
	if (msg_str(&hit->head, reason, strlen(reason), &hit->head.reason) == -1)
		return -1;
	for (i = 0; i < h->nfields; i++) {
		name = p;
		if ((p = memchr(p, '\0', (size_t)(end - p))) == NULL || ++p >= end)
			return -1;
		value = p;
		if ((p = memchr(p, '\0', (size_t)(end - p))) == NULL)
			return -1;
		p++;
		if (msg_add(&hit->head, name, value) == -1)
			return -1;
	}
	return p == end ? 0 : -1;
}

void
cache_hit_free(struct cache_hit *hit)
{
	if (hit == NULL)
		return;
	msg_free(&hit->head);
	cachestore_release(hit->ref);
	free(hit->own);
	free(hit);
}

int
cache_hit_own(struct cache_hit *hit)
{
	char *p;

	if (hit->ref == NULL)
		return 0;
	if ((p = malloc(hit->blob_len)) == NULL)
		return -1;
	memcpy(p, hit->blob, hit->blob_len);
	if (hit->body != NULL)
		hit->body = p + (hit->body - hit->blob);
	hit->blob = hit->own = p;
	cachestore_release(hit->ref);
	hit->ref = NULL;
	return 0;
}

/* A stored response under key, checked and parsed; NULL on a miss. A corrupt one is deleted. */
static struct cache_hit *
cache_get(struct worker *w, const char *key, size_t klen, struct cache_ehdr *h)
{
	struct cache_hit *hit = calloc(1, sizeof(*hit));
	int rc;

	if (hit == NULL)
		return NULL;
	rc = cachestore_get_ref(w->cache, key, klen, &hit->blob, &hit->blob_len, &hit->atime,
	    &hit->ref);
	if (rc != 1)
		goto miss;
	if (cache_check(w->cache, hit->blob, hit->blob_len, h) == -1 ||
	    (h->kind == CACHE_KIND_RESPONSE && cache_parse_fields(hit, h) == -1)) {
		log_info("cache: a corrupt entry for %.*s: deleted (a miss)", (int)klen, key);
		(void)cachestore_del(w->cache, key, klen, 0);
		goto miss;
	}
	memcpy(hit->key, key, klen);
	hit->klen = klen;
	return hit;
miss:
	cache_hit_free(hit);
	return NULL;
}

/* The response stored for req under the primary key, through a Vary record. */
static struct cache_hit *
cache_lookup(struct worker *w, const struct msg_head *req, const char *key, size_t klen)
{
	char vk[CACHE_KEY_MAX + CACHE_VARY_MAX + 2];
	struct cache_hit *hit = cache_get(w, key, klen, &(struct cache_ehdr){ 0 }), *v;
	struct cache_ehdr h;
	size_t vklen;
	int choice = 0;

	if (hit == NULL)
		return NULL;
	memcpy(&h, hit->blob, sizeof(h));
	if (h.kind == CACHE_KIND_VARY) {
		choice = (h.flags & CACHE_F_AE_CHOICE) != 0;
		if (cache_vary_key(req, key, klen, hit->blob + sizeof(h), h.fields_len, vk, &vklen,
		    sizeof(vk), choice) == -1) {
			cache_hit_free(hit);
			return NULL;
		}
		cache_hit_free(hit);
		if ((v = cache_get(w, vk, vklen, &h)) == NULL)
			return NULL;
		if (h.kind != CACHE_KIND_RESPONSE) {
			cache_hit_free(v);
			return NULL;
		}
		hit = v;
	}
	hit->body = hit->blob + sizeof(h) + h.fields_len;
	hit->body_len = h.body_len;
	hit->ae_choice = (unsigned)choice;
	hit->times = (struct cachepol_times){ h.response_time, h.initial_age, h.lifetime, h.swr,
	    h.sie, (h.flags & CACHE_F_MUST_VALIDATE) != 0, (h.flags & CACHE_F_NO_STALE) != 0 };
	return hit;
}

static const char *
cache_field(const struct msg_head *h, const char *name)
{
	const struct msg_field *f = msg_find(h, name);

	return f != NULL ? msg_value(h, f) : NULL;
}

static struct cache_fill *
cache_fill_new(struct worker *w, const struct snap_route *route, const struct msg_head *req,
    const char *key, size_t klen)
{
	struct cache_fill *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->w = w;
	f->req = req;
	f->route_id = route->id;
	f->route_flags = route->flags;
	f->max_object = route->cache_max_object != 0 ? route->cache_max_object :
	    CACHE_OBJECT_DEFAULT;
	f->request_time = cache_now();
	memcpy(f->key, key, klen);
	f->klen = klen;
	return f;
}

/* A stale entry: the backend is asked whether it changed (RFC 9111 4.3.1). */
static int
cache_validators(struct msg_head *req, const struct cache_hit *hit)
{
	const char *etag = cache_field(&hit->head, "etag");
	const char *lm = cache_field(&hit->head, "last-modified");

	/* The client's own conditionals go as they are; its 304 is not ours to store. */
	if (msg_find(req, "if-none-match") != NULL || msg_find(req, "if-modified-since") != NULL)
		return 0;
	if (etag != NULL && msg_add(req, "If-None-Match", etag) == -1)
		return -1;
	if (lm != NULL && msg_add(req, "If-Modified-Since", lm) == -1)
		return -1;
	return etag != NULL || lm != NULL;
}

/*
 * What a stored entry does for req: 1 with *v when it answers; 0 when the
 * backend is asked (*hit kept when stale, freed and *bypass set when the
 * request will not have it).
 */
static int
cache_stored(struct worker *w, const struct msg_head *req, struct cache_hit **hit, int *bypass,
    enum cache_verdict *v)
{
	struct cache_hit *h = *hit;
	int64_t now = cache_now();

	switch (cachepol_use(req, &h->times, now)) {
	case CACHEPOL_FRESH:
		(void)cachestore_touch(w->cache, h->key, h->klen, h->atime, now);
		*v = cachepol_not_modified(req, cache_field(&h->head, "etag"),
		    cache_field(&h->head, "last-modified")) ? CACHE_NOT_MODIFIED : CACHE_HIT;
		return 1;
	case CACHEPOL_STALE:
		/* stale-while-revalidate: served now, refreshed behind the client's back. */
		if (!h->times.must_validate && !h->times.no_stale && h->times.swr > 0 &&
		    (int64_t)cachepol_age(&h->times, now) - h->times.lifetime <=
		    (int64_t)h->times.swr && req->method == MSG_M_GET) {
			*v = CACHE_HIT_REFRESH;
			return 1;
		}
		return 0;
	case CACHEPOL_BYPASS:
	default:
		cache_hit_free(h);
		*hit = NULL;
		*bypass = 1;
		return 0;
	}
}

/* To the backend with a fill: validating the stale hit, or a miss under the fill lock. */
static enum cache_verdict
cache_to_backend(struct worker *w, const struct snap_route *route, struct msg_head *req,
    const char *key, size_t klen, struct cache_hit *hit, int bypass, struct cache_fill **fillp)
{
	struct cache_fill *f;

	if (req->method == MSG_M_HEAD || (f = cache_fill_new(w, route, req, key, klen)) == NULL) {
		cache_hit_free(hit);	/* a HEAD's answer has no body to store */
		cachecount_add(w, route->id, bypass ? SHM_CACHE_BYPASS : SHM_CACHE_MISS);
		return CACHE_PASS;
	}
	/* Without validators of ours a 304 would be about the client's copy, not ours. */
	if (hit != NULL && cache_validators(req, hit) != 1) {
		cache_hit_free(hit);
		hit = NULL;
	}
	/* Held while the backend answers: out of the map, so no reader waits on it. */
	if (hit != NULL && cache_hit_own(hit) == -1) {
		cache_hit_free(hit);
		hit = NULL;
	}
	f->stale = hit;
	*fillp = f;
	if (bypass)
		cachecount_add(w, route->id, SHM_CACHE_BYPASS);
	if (hit != NULL || bypass)
		return CACHE_PASS;	/* a validation is counted by its answer */
	/* A miss: one request fills, the others wait for its entry (counted by its poll). */
	switch (cachestore_lock(w->cache, key, klen, cache_now_ms(), CACHE_LOCK_MS)) {
	case 1:
		f->locked = 1;
		cachecount_add(w, route->id, SHM_CACHE_MISS);
		return CACHE_PASS;
	case 0:
		f->wait_until = cache_now_ms() + CACHE_WAIT_MS;
		return CACHE_WAIT;
	default:
		cachecount_add(w, route->id, SHM_CACHE_MISS);
		return CACHE_PASS;
	}
}

enum cache_verdict
cache_request(struct worker *w, const struct snap_route *route, struct msg_head *req,
    const char *scheme, const char *host, struct cache_hit **hitp, struct cache_fill **fillp)
{
	char key[CACHE_KEY_MAX + 1];
	struct cache_hit *hit;
	enum cache_verdict v;
	size_t klen;
	int bypass = 0;

	*hitp = NULL;
	*fillp = NULL;
	if (w->cache == NULL || !(route->flags & SNAP_ROUTE_CACHE) ||
	    cache_key(scheme, host, msg_s(req, req->path), key, &klen) == -1)
		return CACHE_PASS;
	if (req->method != MSG_M_GET && req->method != MSG_M_HEAD) {
		/* Unsafe: everything but GET, HEAD, OPTIONS and TRACE (RFC 9110 9.2.1). */
		if (req->method != MSG_M_OPTIONS && req->method != MSG_M_TRACE &&
		    (*fillp = cache_fill_new(w, route, req, key, klen)) != NULL)
			(*fillp)->invalidate = 1;
		return CACHE_PASS;
	}
	if ((hit = cache_lookup(w, req, key, klen)) != NULL &&
	    cache_stored(w, req, &hit, &bypass, &v)) {
		*hitp = hit;
		cachecount_add(w, route->id, v == CACHE_HIT_REFRESH ? SHM_CACHE_STALE :
		    SHM_CACHE_HIT);
		return v;
	}
	return cache_to_backend(w, route, req, key, klen, hit, bypass, fillp);
}

struct cache_fill *
cache_refresh_fill(struct worker *w, const struct snap_route *route, const struct msg_head *req,
    const char *scheme, const char *host)
{
	char key[CACHE_KEY_MAX + 1];
	struct cache_fill *f;
	size_t klen;

	if (cache_key(scheme, host, msg_s(req, req->path), key, &klen) == -1 ||
	    cachestore_lock(w->cache, key, klen, cache_now_ms(), CACHE_LOCK_MS) != 1)
		return NULL;
	if ((f = cache_fill_new(w, route, req, key, klen)) == NULL) {
		cachestore_unlock(w->cache, key, klen);
		return NULL;
	}
	f->locked = 1;
	return f;
}

enum cache_poll
cache_fill_poll(struct cache_fill *f, struct cache_hit **hitp)
{
	struct cache_hit *hit = cache_lookup(f->w, f->req, f->key, f->klen);
	int64_t now = cache_now();

	*hitp = NULL;
	if (hit != NULL && cachepol_use(f->req, &hit->times, now) == CACHEPOL_FRESH) {
		*hitp = hit;
		cachecount_add(f->w, f->route_id, SHM_CACHE_HIT);
		return CACHE_POLL_HIT;
	}
	cache_hit_free(hit);
	if (cache_now_ms() < f->wait_until &&
	    cachestore_locked(f->w->cache, f->key, f->klen, cache_now_ms()))
		return CACHE_POLL_WAIT;
	cachecount_add(f->w, f->route_id, SHM_CACHE_MISS);
	return CACHE_POLL_GO;
}

int
cache_not_modified(const struct cache_hit *hit, struct msg_head *out)
{
	static const char *const keep[] = {
		"cache-control", "content-location", "date", "etag", "expires", "vary",
		"last-modified",
	};
	uint32_t i;
	size_t k;

	msg_reset(out);
	out->status = 304;
	out->major = 1;
	out->minor = 1;
	out->has_length = 1;
	out->length = 0;
	if (msg_str(out, "Not Modified", 12, &out->reason) == -1)
		return -1;
	for (i = 0; i < msg_nheaders(&hit->head); i++)
		for (k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
			if (msg_field_is(&hit->head, &hit->head.f[i], keep[k]) &&
			    msg_add(out, msg_name(&hit->head, &hit->head.f[i]),
			    msg_value(&hit->head, &hit->head.f[i])) == -1)
				return -1;
	return 0;
}

/* --- the fill */

static int
cache_grow(struct cache_fill *f, size_t more)
{
	size_t cap = f->cap != 0 ? f->cap : 4096;
	char *p;

	if (f->len + more <= f->cap)
		return 0;
	while (cap < f->len + more)
		cap *= 2;
	if ((p = realloc(f->buf, cap)) == NULL)
		return -1;
	f->buf = p;
	f->cap = cap;
	return 0;
}

static int
cache_append(struct cache_fill *f, const void *p, size_t n)
{
	if (cache_grow(f, n) == -1)
		return -1;
	memcpy(f->buf + f->len, p, n);
	f->len += n;
	return 0;
}

/* A field a stored response does not keep. */
static int
cache_skip_field(const struct cache_fill *f, const struct msg_head *h, const struct msg_field *fl)
{
	return msg_field_is(h, fl, "age") || msg_field_is(h, fl, "x-cache") ||
	    ((f->route_flags & SNAP_ROUTE_HSTS) && msg_field_is(h, fl, "strict-transport-security"));
}

/* Header and fields of resp into f->buf: the entry's start. */
static int
cache_begin_entry(struct cache_fill *f, const struct msg_head *resp, const struct cachepol_times *t)
{
	struct cache_ehdr h = { CACHE_MAGIC, CACHE_VERSION, CACHE_KIND_RESPONSE, f->route_id,
	    (uint16_t)resp->status, 0, 0, 0, t->response_time, t->initial_age, t->lifetime,
	    t->swr, t->sie, (t->must_validate ? CACHE_F_MUST_VALIDATE : 0) |
	    (t->no_stale ? CACHE_F_NO_STALE : 0), 0 };
	uint32_t i;

	f->len = 0;
	if (cache_append(f, &h, sizeof(h)) == -1)
		return -1;
	for (i = 0; i < msg_nheaders(resp); i++) {
		const struct msg_field *fl = &resp->f[i];

		if (cache_skip_field(f, resp, fl))
			continue;
		if (cache_append(f, msg_name(resp, fl), fl->name.len + 1) == -1 ||
		    cache_append(f, msg_value(resp, fl), fl->value.len + 1) == -1)
			return -1;
		h.nfields++;
	}
	h.fields_len = (uint32_t)(f->len - sizeof(h));
	memcpy(f->buf, &h, sizeof(h));
	return 0;
}

/* Vary's names (lower-cased, NUL-separated) and the secondary key. -1: not storable. */
static int
cache_vary(struct cache_fill *f, const struct msg_head *resp)
{
	uint32_t i;

	f->vnlen = 0;
	f->nvary = 0;
	for (i = 0; i < msg_nheaders(resp); i++) {
		const char *v = msg_value(resp, &resp->f[i]);

		if (!msg_field_is(resp, &resp->f[i], "vary"))
			continue;
		while (*v != '\0') {
			size_t n;

			v += strspn(v, " \t,");
			n = strcspn(v, " \t,");
			if (n == 0)
				continue;
			if (f->vnlen + n + 1 > sizeof(f->vnames))
				return -1;
			for (size_t k = 0; k < n; k++)
				f->vnames[f->vnlen + k] = (char)(v[k] >= 'A' && v[k] <= 'Z' ?
				    v[k] + 32 : v[k]);
			f->vnames[f->vnlen + n] = '\0';
			f->vnlen += n + 1;
			f->nvary++;
			v += n;
		}
	}
	if (f->nvary == 0)
		return 0;
	return cache_vary_key(f->req, f->key, f->klen, f->vnames, f->vnlen, f->vkey, &f->vklen,
	    sizeof(f->vkey), f->ae_choice);
}

/* Deletes key and its variants. */
static void
cache_invalidate_key(struct worker *w, const char *key, size_t klen)
{
	char p[CACHE_KEY_MAX + 2];

	(void)cachestore_del(w->cache, key, klen, 0);
	memcpy(p, key, klen);
	p[klen] = '\n';
	(void)cachestore_del(w->cache, p, klen + 1, 1);
}

/* An unsafe method succeeded: its URL, and Location / Content-Location on the same host. */
static void
cache_invalidate(struct cache_fill *f, const struct msg_head *resp)
{
	static const char *const names[] = { "location", "content-location" };
	char key[CACHE_KEY_MAX + 1];
	const char *origin_end = strchr(strstr(f->key, "://") + 3, '/');
	size_t olen = origin_end != NULL ? (size_t)(origin_end - f->key) : f->klen, i, klen;

	cache_invalidate_key(f->w, f->key, f->klen);
	for (i = 0; i < 2; i++) {
		const char *v = cache_field(resp, names[i]);

		if (v == NULL)
			continue;
		if (v[0] == '/' && v[1] != '/' && olen + strlen(v) <= CACHE_KEY_MAX) {
			klen = (size_t)snprintf(key, sizeof(key), "%.*s%s", (int)olen, f->key, v);
			cache_invalidate_key(f->w, key, klen);
		} else if (strncmp(v, f->key, olen) == 0 && (v[olen] == '/' || v[olen] == '\0'))
			cache_invalidate_key(f->w, v, strlen(v));
	}
}

/* A variant we encoded keeps its weakened ETag: the backend's names other bytes. */
static int
cache_keep_etag(const struct cache_hit *hit, const struct msg_head *resp,
    const struct msg_field *n)
{
	return hit->ae_choice && msg_field_is(resp, n, "etag") &&
	    msg_find(&hit->head, "content-encoding") != NULL;
}

/* 304 from the backend: the stored head takes the new fields (RFC 9111 4.3.4). */
static void
cache_freshen(struct cache_fill *f, const struct msg_head *resp, struct cache_hit *hit)
{
	uint32_t i, j;

	for (i = 0; i < msg_nheaders(resp); i++) {
		const struct msg_field *n = &resp->f[i];

		if (cache_skip_field(f, resp, n) || msg_field_is(resp, n, "content-length") ||
		    cache_keep_etag(hit, resp, n))
			continue;
		for (j = msg_nheaders(&hit->head); j > 0; j--)
			if (strcasecmp(msg_name(&hit->head, &hit->head.f[j - 1]),
			    msg_name(resp, n)) == 0)
				msg_del(&hit->head, j - 1);
	}
	for (i = 0; i < msg_nheaders(resp); i++) {
		const struct msg_field *n = &resp->f[i];

		if (!cache_skip_field(f, resp, n) && !msg_field_is(resp, n, "content-length") &&
		    !cache_keep_etag(hit, resp, n))
			(void)msg_add(&hit->head, msg_name(resp, n), msg_value(resp, n));
	}
}

/* Stores the entry in f->buf (its body complete) and, with Vary, the record. */
static void
cache_commit(struct cache_fill *f)
{
	struct cache_ehdr h;
	int64_t now = cache_now();

	memcpy(&h, f->buf, sizeof(h));
	h.body_len = f->len - sizeof(h) - h.fields_len;
	memcpy(f->buf, &h, sizeof(h));
	h.crc = cache_crc(f->buf, f->len);
	memcpy(f->buf, &h, sizeof(h));
	if (f->nvary == 0) {
		cache_invalidate_key(f->w, f->key, f->klen);	/* an old Vary's variants */
		if (cachestore_put(f->w->cache, f->key, f->klen, f->buf, f->len, now) == 0)
			cachecount_add(f->w, f->route_id, SHM_CACHE_STORE);
		return;
	}
	if (cachestore_put(f->w->cache, f->vkey, f->vklen, f->buf, f->len, now) == -1)
		return;
	cachecount_add(f->w, f->route_id, SHM_CACHE_STORE);
	h = (struct cache_ehdr){ CACHE_MAGIC, CACHE_VERSION, CACHE_KIND_VARY, f->route_id, 0,
	    f->nvary, (uint32_t)f->vnlen, 0, now, 0, 0, 0, 0,
	    f->ae_choice ? CACHE_F_AE_CHOICE : 0, 0 };
	f->len = 0;
	if (cache_append(f, &h, sizeof(h)) == -1 || cache_append(f, f->vnames, f->vnlen) == -1)
		return;
	h.crc = cache_crc(f->buf, f->len);
	memcpy(f->buf, &h, sizeof(h));
	(void)cachestore_put(f->w->cache, f->key, f->klen, f->buf, f->len, now);
}


/* The stale entry, its head freshened by resp, stored again; what is served. */
static struct cache_hit *
cache_revalidated(struct cache_fill *f, const struct msg_head *resp)
{
	struct cache_hit *hit = f->stale;
	struct cachepol_times t;

	f->stale = NULL;
	f->ae_choice = hit->ae_choice;
	cache_freshen(f, resp, hit);
	if (cachepol_storable(f->req, &hit->head, f->request_time, cache_now(), &t) &&
	    cache_vary(f, &hit->head) == 0 && cache_begin_entry(f, &hit->head, &t) == 0 &&
	    cache_append(f, hit->body, hit->body_len) == 0) {
		cache_commit(f);
		hit->times = t;
	}
	return hit;
}

int
cache_fill_head(struct cache_fill *f, const struct msg_head *resp, struct cache_hit **hit)
{
	struct cachepol_times t;

	*hit = NULL;
	if (f->invalidate) {
		if (resp->status >= 200 && resp->status < 400)
			cache_invalidate(f, resp);
		return 0;
	}
	if (resp->status == 304 && f->stale != NULL) {
		cachecount_add(f->w, f->route_id, SHM_CACHE_REVALIDATED);
		*hit = cache_revalidated(f, resp);
		return 1;
	}
	if (resp->status >= 500 && f->stale != NULL &&
	    cachepol_stale_if_error(&f->stale->times, cache_now())) {
		cachecount_add(f->w, f->route_id, SHM_CACHE_STALE);
		*hit = f->stale;
		f->stale = NULL;
		return 1;
	}
	if (f->stale != NULL)	/* our validators, and a new response */
		cachecount_add(f->w, f->route_id, SHM_CACHE_REFETCHED);
	if (!cachepol_storable(f->req, resp, f->request_time, cache_now(), &t) ||
	    (resp->has_length && resp->length > f->max_object) ||
	    cache_vary(f, resp) == -1 || cache_begin_entry(f, resp, &t) == -1)
		return 0;
	f->times = t;
	f->storing = 1;
	return 0;
}

void
cache_fill_encoded(struct cache_fill *f, const struct msg_head *resp)
{
	if (!f->storing)
		return;
	f->ae_choice = 1;
	if (cache_vary(f, resp) == -1 || cache_begin_entry(f, resp, &f->times) == -1) {
		f->storing = 0;	/* not storable after all */
		free(f->buf);
		f->buf = NULL;
		f->len = f->cap = 0;
	}
}

void
cache_fill_body(struct cache_fill *f, const char *p, size_t n)
{
	if (!f->storing)
		return;
	/* Larger than the route's limit: it streams on, uncached. */
	if (f->len + n - sizeof(struct cache_ehdr) > f->max_object || cache_append(f, p, n) == -1) {
		f->storing = 0;
		free(f->buf);
		f->buf = NULL;
		f->len = f->cap = 0;
	}
}

int
cache_fill_storing(const struct cache_fill *f)
{
	return f->storing;
}

void
cache_fill_end(struct cache_fill *f)
{
	if (f->storing)
		cache_commit(f);
	f->storing = 0;
	if (f->locked)
		cachestore_unlock(f->w->cache, f->key, f->klen);
	f->locked = 0;
}

struct cache_hit *
cache_fill_failed(struct cache_fill *f)
{
	struct cache_hit *hit = f->stale;

	if (hit == NULL || !cachepol_stale_if_error(&hit->times, cache_now()))
		return NULL;
	cachecount_add(f->w, f->route_id, SHM_CACHE_STALE);
	f->stale = NULL;
	return hit;
}

void
cache_fill_free(struct cache_fill *f)
{
	if (f == NULL)
		return;
	if (f->locked)
		cachestore_unlock(f->w->cache, f->key, f->klen);
	cache_hit_free(f->stale);
	free(f->buf);
	free(f);
}

long
cache_purge_url(struct cachestore *cs, const char *url)
{
	char key[CACHE_KEY_MAX + 2];
	const char *host = strstr(url, "://"), *path;
	size_t klen, i;
	long a, b;

	if (host == NULL || strlen(url) > CACHE_KEY_MAX)
		return 0;
	host += 3;
	path = host + strcspn(host, "/?");
	/* Scheme and host as the keys have them: lower-case; no path is "/". */
	klen = (size_t)snprintf(key, sizeof(key), "%.*s%s%s", (int)(path - url), url,
	    *path == '\0' ? "/" : "", path);
	if (klen > CACHE_KEY_MAX)
		return 0;
	for (i = 0; i < (size_t)(path - url); i++)
		if (key[i] >= 'A' && key[i] <= 'Z')
			key[i] = (char)(key[i] + 32);
	a = cachestore_del(cs, key, klen, 0);
	key[klen] = '\n';
	b = cachestore_del(cs, key, klen + 1, 1);
	return a == -1 || b == -1 ? -1 : a + b;
}

/*
 * The route of an entry from its first len bytes (at least its first 12):
 * 1 a response, 0 a Vary record, -1 not an entry of ours.
 */
static int
entry_route(const void *head, size_t len, uint32_t *route_id)
{
	struct cache_ehdr h;

	if (len < offsetof(struct cache_ehdr, status))
		return -1;
	memcpy(&h, head, offsetof(struct cache_ehdr, status));
	if (h.magic != CACHE_MAGIC || h.version != CACHE_VERSION)
		return -1;
	*route_id = h.route_id;
	return h.kind == CACHE_KIND_RESPONSE ? 1 : 0;
}

/*
 * cachestore_on_evict's function (arg: the worker): an evicted value's head
 * names its route; a value it cannot read counts as "no route". A Vary
 * record is no response: it is not counted as one.
 */
static void
cache_evicted(void *arg, const void *head, size_t len)
{
	uint32_t route_id = 0;

	if (head != NULL && entry_route(head, len, &route_id) == 0)
		return;
	cachecount_add(arg, route_id, SHM_CACHE_EVICT);
}

static int
cache_of_route(void *arg, const void *val, size_t vlen)
{
	struct cache_ehdr h;

	if (vlen < sizeof(h))
		return 1;	/* not ours: it goes too */
	memcpy(&h, val, sizeof(h));
	return h.route_id == *(const uint32_t *)arg;
}

long
cache_purge_route(struct cachestore *cs, uint32_t route_id)
{
	return cachestore_del_if(cs, cache_of_route, &route_id);
}

int
cache_open(struct worker *w)
{
	if (w->cache != NULL || w->cfg.cache_path[0] == '\0')
		return 0;
	w->cache = cachestore_open(w->cfg.cache_path, w->cfg.cache_max_size);
	if (w->cache == NULL)
		return -1;
	cachestore_on_evict(w->cache, cache_evicted, w);
	return 0;
}

void
cache_close(struct worker *w)
{
	cachestore_close(w->cache);
	w->cache = NULL;
}
