/*
 * stale-while-revalidate's background refresh (see cache.h): a request of
 * our own for a URL whose stale entry was just served, through a normal
 * exchange and fill, into a sink that drops what it is given. It owns its
 * head, host and client address until the exchange ends it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "share/hostname.h"
#include "share/log.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/cache.h"
#include "worker/exchange.h"
#include "worker/message.h"

/* What a refresh answers to: the sink takes everything and keeps nothing. */
#define REFRESH_ROOM (64 * 1024)

struct cache_refresh {
	struct msg_head head;
	char host[HOSTNAME_MAX + 1];
	char ip[64];
};

static void
rf_free(struct cache_refresh *r)
{
	msg_free(&r->head);
	free(r);
}

static int
rf_head(void *arg, struct msg_head *resp, int nobody)
{
	(void)arg;
	(void)resp;
	(void)nobody;
	return 0;
}

static int
rf_body(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return 0;
}

static void
rf_shut(void *arg)
{
	(void)arg;
}

static void
rf_end(void *arg, struct msg_head *resp)
{
	(void)resp;
	rf_free(arg);
}

static void
rf_fail(void *arg, unsigned status)
{
	(void)status;
	rf_free(arg);
}

static size_t
rf_room(void *arg)
{
	(void)arg;
	return REFRESH_ROOM;
}

static void
rf_more(void *arg)
{
	(void)arg;
}

static const struct sink_ops rf_sink = {
	rf_head, rf_body, rf_shut, rf_end, rf_fail, rf_room, rf_more, NULL,
};

/* A field the refresh does not repeat: it asks for the whole response, for everyone. */
static int
rf_skip(const struct msg_head *h, const struct msg_field *f)
{
	static const char *const skip[] = {
		"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range",
		"range", "cache-control", "pragma", "content-length", "transfer-encoding",
	};
	size_t i;

	for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (msg_field_is(h, f, skip[i]))
			return 1;
	return 0;
}

/* The request's GET, as the client sent it but for the fields above. */
static int
rf_copy(struct msg_head *dst, const struct msg_head *src)
{
	uint32_t i;

	dst->method = MSG_M_GET;
	dst->major = 1;
	dst->minor = 1;
	dst->keepalive = 1;
	if (msg_str(dst, "GET", 3, &dst->method_name) == -1 ||
	    msg_str(dst, msg_s(src, src->path), src->path.len, &dst->path) == -1 ||
	    msg_str(dst, msg_s(src, src->authority), src->authority.len, &dst->authority) == -1 ||
	    msg_str(dst, msg_s(src, src->scheme), src->scheme.len, &dst->scheme) == -1)
		return -1;
	for (i = 0; i < msg_nheaders(src); i++)
		if (!rf_skip(src, &src->f[i]) &&
		    msg_add(dst, msg_name(src, &src->f[i]), msg_value(src, &src->f[i])) == -1)
			return -1;
	return 0;
}

int
cache_refresh_start(struct worker *w, const struct exchange_req *xr,
    const struct upstream_ops *ops)
{
	struct cache_refresh *r = calloc(1, sizeof(*r));
	struct cache_fill *cf;
	struct exchange_req req = *xr;
	struct exchange *ex;
	unsigned status;

	if (r == NULL)
		return -1;
	msg_init(&r->head);
	util_strlcpy(r->host, xr->host, sizeof(r->host));
	util_strlcpy(r->ip, xr->client_ip, sizeof(r->ip));
	if (rf_copy(&r->head, xr->head) == -1 ||
	    (cf = cache_refresh_fill(w, xr->route, &r->head, xr->proto, r->host)) == NULL) {
		rf_free(r);
		return -1;	/* another request refreshes it, or no memory */
	}
	req.head = &r->head;
	req.snap = snap_ref(xr->snap);
	req.host = r->host;
	req.client_ip = r->ip;
	req.delay_ms = 0;
	if ((ex = exchange_start(w, &req, ops, &rf_sink, r, &status)) == NULL) {
		log_info("cache: the background refresh for %s did not start (%u)", r->host, status);
		cache_fill_free(cf);
		rf_free(r);
		return -1;
	}
	exchange_cache(ex, cf, "REFRESH");
	return 0;
}
