/* The hop's request step (see hop.h). */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "share/util.h"
#include "tunnel/hop.h"
#include "tunnel/tunname.h"
#include "worker/accesslog.h"
#include "worker/context.h"
#include "worker/exchange.h"
#include "worker/request.h"
#include "worker/upstream.h"

#define HOP_FIELD "haloyd-tunnel"
#define HOP_FIELD_LEN (sizeof(HOP_FIELD) - 1)

/* Every haloyd-tunnel* field goes: the agent sees the request as the client sent it. */
static void
hop_strip(struct msg_head *h)
{
	uint32_t i;

	for (i = msg_nheaders(h); i-- > 0;)
		if (h->f[i].name.len >= HOP_FIELD_LEN &&
		    strncasecmp(msg_name(h, &h->f[i]), HOP_FIELD, HOP_FIELD_LEN) == 0)
			msg_del(h, i);
}

/* The tunnel the request names and its balance; -1 without a valid name. */
static int
hop_target(const struct msg_head *h, struct upstream_tunnel *to)
{
	const struct msg_field *f = msg_find(h, HOP_FIELD), *b;

	memset(to, 0, sizeof(*to));
	if (f == NULL || !tunname_valid(msg_value(h, f), f->value.len))
		return -1;
	memcpy(to->name, msg_value(h, f), f->value.len);
	b = msg_find(h, HOP_FIELD "-balance");
	to->round_robin = b != NULL && strcasecmp(msg_value(h, b), "round-robin") == 0;
	return 0;
}

int
hop_step(struct worker *w, const struct request_peer *peer, struct msg_head *h,
    uint64_t start_us, const struct sink_ops *sink, void *arg, struct request *r)
{
	struct upstream_tunnel to;
	unsigned status;

	_Static_assert(sizeof(to.name) > TUNNAME_MAX, "a tunnel name fits");
	memset(r->host, 0, sizeof(r->host));
	r->hsts = 0;
	r->route_id = 0;
	r->ex = NULL;
	if (h->authority.len > 0)
		util_strlcpy(r->host, msg_s(h, h->authority), h->authority.len + 1 < sizeof(r->host) ?
		    h->authority.len + 1 : sizeof(r->host));
	if (hop_target(h, &to) == -1) {
		/* Only a worker speaks here, and it always names one: a bug, not a client. */
		accesslog_local(w, h, r->host, 0, 400, start_us, NULL);
		return request_error(w, 400, ERRPAGE_STATUS, h, 0, &r->ans);
	}
	hop_strip(h);
	r->ex = exchange_start_pinned(w, &(struct exchange_req){ .head = h, .host = r->host,
	    .client_ip = peer->client_ip, .proto = "http", .start_us = start_us }, &to, NULL, sink,
	    arg, &status);
	if (r->ex != NULL)
		return 0;
	return request_error(w, status, ERRPAGE_STATUS, h, 0, &r->ans);
}
