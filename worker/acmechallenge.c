/*
 * ACME HTTP-01 answers from the snapshot (see acmechallenge.h). The master
 * published the key authorisation before it told the ACME child to ask
 * the CA, so the answer is here whichever worker the CA reaches.
 */
#include "config.h"

#include <string.h>

#include "share/snap.h"
#include "worker/acmechallenge.h"
#include "worker/message.h"

int
acmechal_wanted(const struct msg_head *h)
{
	size_t plen = strlen(ACMECHAL_PREFIX);

	return (h->method == MSG_M_GET || h->method == MSG_M_HEAD) && h->path.len > plen &&
	    memcmp(msg_s(h, h->path), ACMECHAL_PREFIX, plen) == 0;
}

const char *
acmechal_lookup(const struct snap *s, const struct msg_head *h)
{
	size_t plen = strlen(ACMECHAL_PREFIX), tlen = h->path.len - plen;

	if (s == NULL || tlen > SNAP_CHAL_TOKEN_MAX)
		return NULL;
	return snap_challenge(s, msg_s(h, h->path) + plen, tlen);
}
