/*
 * DNS-01's wait for every authoritative server of a zone (dnsauth.c): the
 * servers found from the NS set and how each one is polled. The network is
 * behind struct dnsauth_ops, whose fake is in tests/unit/check_dnsauth.c.
 */
#ifndef HALOYD_ACME_DNSAUTH_H
#define HALOYD_ACME_DNSAUTH_H

#include <stdint.h>
#include <sys/socket.h>

#include "acme/dns01.h"
#include "share/addr.h"

#define DNSAUTH_NS_MAX 8	/* NS names of a zone we look at; zones have 2 to 6 */
#define DNSAUTH_ADDR_MAX 4	/* addresses of one NS name */
#define DNSAUTH_SRV_MAX 16	/* addresses polled, the update server's included */
#define DNSAUTH_TIMEOUT_MS 2000	/* one exchange: the child's loop waits through it */
#define DNSAUTH_POLL_MIN_MS 250
#define DNSAUTH_POLL_MAX_MS 4000

struct dnsauth_srv {
	struct sockaddr_storage ss;
	socklen_t sl;
	char name[DNS_NAME_MAX + 2];	/* its NS name, or "update server" */
	char addr[ADDR_STR_MAX];
	int served;			/* answered the TXT: not asked again */
	unsigned polls;
	uint64_t due_ms;
	char why[128];			/* the last poll's outcome, for the log */
};

struct dnsauth_set {
	struct dnsauth_srv srv[DNSAUTH_SRV_MAX];
	size_t n;
};

struct dnsauth_ops {
	/* One exchange (dnsclient_exchange's contract). */
	int (*exchange)(void *ctx, const struct sockaddr_storage *srv, socklen_t srvlen,
	    const struct dns_buf *q, uint8_t *resp, size_t cap, size_t *rlen, int timeout_ms,
	    char *err, size_t errlen);
	/* An out-of-zone NS name's addresses, port set; how many (0: none). */
	int (*resolve)(void *ctx, const char *name, uint16_t port, struct sockaddr_storage *out,
	    size_t max);
	/* 1 when this host has a route to the address. */
	int (*routable)(void *ctx, const struct sockaddr_storage *ss, socklen_t len);
	void *ctx;
};

/* TCP through dnsclient.c, getaddrinfo, and a UDP connect() for the route. */
extern const struct dnsauth_ops dnsauth_net;

/*
 * The servers to wait for: the update server, then with c->ns_port set
 * every address of every NS of zone (read at the update server). An NS
 * without an address, or one this host has no route to, is logged and
 * left out. 0, or -1 with why in err (no NS set could be read).
 */
int dnsauth_find(const struct dns01_conf *c, const struct dnsauth_ops *ops, const char *zone,
    struct dnsauth_set *set, char *err, size_t errlen);
/*
 * Asks every server due at now (and not yet serving) for the TXT record;
 * a server that does not serve it is asked again after its own back-off.
 * 1 when every server serves it, else 0.
 */
int dnsauth_poll(const struct dnsauth_ops *ops, struct dnsauth_set *set, const char *name,
    const char *txt, uint64_t now);
/* When the next server is due (UINT64_MAX: none). */
uint64_t dnsauth_next_due(const struct dnsauth_set *set);
/* "NAME ADDR, ..." of the servers (lagging only: those not serving, with why). */
void dnsauth_list(const struct dnsauth_set *set, int lagging, char *out, size_t outlen);

#endif
