/*
 * ACME HTTP-01 answers from the snapshot (see acmechallenge.h). The master
 * published the key authorisation before it told the ACME child to ask
 * the CA, so the answer is here whichever worker the CA reaches.
 */
#include "config.h"

#include <string.h>

#include "share/snap.h"
#include "worker/acmechallenge.h"
#include "worker/buf.h"
#include "worker/context.h"
#include "worker/http1.h"

#define CHAL_PREFIX "/.well-known/acme-challenge/"

int
acmechal_answer(struct worker *w, const struct http_head *h, struct buf *out, int keepalive)
{
	const char *target = h->raw + h->target_off, *ka = NULL;
	size_t plen = strlen(CHAL_PREFIX), tlen;
	const char *conn = keepalive ? "keep-alive" : "close";

	if ((h->method != HTTP_GET && h->method != HTTP_HEAD) || h->target_len <= plen ||
	    memcmp(target, CHAL_PREFIX, plen) != 0)
		return 0;
	tlen = h->target_len - plen;
	if (w->snap != NULL && tlen <= SNAP_CHAL_TOKEN_MAX)
		ka = snap_challenge(w->snap, target + plen, tlen);
	if (ka == NULL)
		return buf_printf(out, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
		    "Content-Length: 0\r\nConnection: %s\r\n\r\n", conn) == -1 ? -1 : 404;
	if (buf_printf(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s", strlen(ka), conn,
	    h->method == HTTP_HEAD ? "" : ka) == -1)
		return -1;
	return 200;
}
