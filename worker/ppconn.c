/*
 * The PROXY protocol on client connections (see ppconn.h). The header is
 * peeked, then exactly its bytes are read: what follows belongs to TLS or
 * HTTP. A piece without the end is read too (it is all header), so a
 * level-triggered epoll never reports the same bytes twice.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "share/log.h"
#include "share/util.h"
#include "worker/conn.h"
#include "worker/context.h"
#include "worker/ppconn.h"

#define PPCONN_LOG_MS 1000	/* refusals are logged at most once a second: a scan must not flood */

/* Logs a refusal, or counts it when one was logged within the last second. */
static void
ppconn_log(struct worker *w, const char *ip, const char *why)
{
	uint64_t now = util_now_ms();

	if (w->pp_log_ms != 0 && now - w->pp_log_ms < PPCONN_LOG_MS) {
		w->pp_log_dropped++;
		return;
	}
	if (w->pp_log_dropped != 0)
		log_notice("client %s: PROXY protocol: %s: closed (%u more not logged)", ip, why,
		    w->pp_log_dropped);
	else
		log_notice("client %s: PROXY protocol: %s: closed", ip, why);
	w->pp_log_ms = now;
	w->pp_log_dropped = 0;
}

int
ppconn_admit(struct worker *w, const struct sockaddr *peer)
{
	char ip[ADDR_STR_MAX];
	uint32_t i;

	for (i = 0; i < w->cfg.ntrusted; i++)
		if (addr_cidr_match(&w->trusted[i], peer))
			return 0;
	if (addr_format_ip(peer, ip, sizeof(ip)) == -1)
		util_strlcpy(ip, "unknown", sizeof(ip));
	ppconn_log(w, ip, "peer not in trusted_proxies on a proxy listener");
	return -1;
}

/* Reads n bytes the peek saw into dst (NULL: dropped); they are in the socket already. */
static int
ppconn_take(int fd, uint8_t *dst, size_t n)
{
	uint8_t sink[PROXYPROTO_MAX];
	ssize_t got = recv(fd, dst != NULL ? dst : sink, n, 0);

	return got == (ssize_t)n ? 0 : -1;
}

int
ppconn_read(struct conn *c, struct proxyproto_hdr *h)
{
	uint8_t tmp[PROXYPROTO_MAX];
	size_t have = c->pp_len, take;
	const char *why = "read failed";
	ssize_t n;
	int rc;

	if (have > 0)
		memcpy(tmp, c->pp, have);
	n = recv(c->fd, tmp + have, sizeof(tmp) - have, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		if (n == 0)
			why = "closed before the header ended";
		goto fail;
	}
	if ((rc = proxyproto_parse(tmp, have + (size_t)n, h, &why)) == -1)
		goto fail;
	take = rc == 0 ? (size_t)n : (size_t)rc - have;
	if (rc == 0 && c->pp == NULL && (c->pp = malloc(PROXYPROTO_MAX)) == NULL) {
		why = "out of memory";
		goto fail;
	}
	if (ppconn_take(c->fd, rc == 0 ? c->pp + have : NULL, take) == -1) {
		why = "read failed";
		goto fail;
	}
	if (rc == 0) {
		c->pp_len = (uint16_t)(have + take);
		return 0;
	}
	ppconn_free(c);
	return 1;
fail:
	ppconn_log(c->w, c->ip, why);
	return -1;
}

void
ppconn_timed_out(struct conn *c)
{
	ppconn_log(c->w, c->ip, "no complete header within header_timeout");
}

void
ppconn_free(struct conn *c)
{
	free(c->pp);
	c->pp = NULL;
	c->pp_len = 0;
}
