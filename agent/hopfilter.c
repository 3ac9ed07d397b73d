/* The hop-by-hop field rules of haloyd-tunnel (see hopfilter.h). */
#include "config.h"

#include <strings.h>

#include "agent/hopfilter.h"
#include "share/util.h"

static const char *const hop_names[] = {
	"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
	"http2-settings",
};

int
hopfilter_is_hop(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(hop_names); i++)
		if (strlen(hop_names[i]) == len && strncasecmp(name, hop_names[i], len) == 0)
			return 1;
	return 0;
}

int
hopfilter_drop(const struct msg_head *h, uint32_t i)
{
	const struct msg_field *f = &h->f[i];
	uint32_t j;

	if (hopfilter_is_hop(msg_name(h, f), f->name.len))
		return 1;
	/* TE: HTTP/2 allows only "trailers", and an HTTP/1.1 app has no use for more. */
	if (msg_field_is(h, f, "te"))
		return strcasecmp(msg_value(h, f), "trailers") != 0;
	for (j = 0; j < msg_nheaders(h); j++)
		if (msg_field_is(h, &h->f[j], "connection") &&
		    msg_has_token(h, &h->f[j], msg_name(h, f)))
			return 1;
	return 0;
}
