/*
 * DNS-01's wait for every authoritative server of the zone: the NS set read
 * at the update server, each NS name's addresses (in the zone: its A and
 * AAAA at the update server, the glue; outside it: the system resolver),
 * and the polls of each address, each with its own back-off, until every
 * one serves the TXT record. NS records carry no port: every address is
 * asked on dns_ns_port (53 by default).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "acme/dnsauth.h"
#include "share/log.h"
#include "share/util.h"

static const char *const rcode_names[] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
};

/* One query to ss, its answer parsed into buf/d (any RCODE). 0 or -1 with why. */
static int
ask(const struct dnsauth_ops *ops, const struct sockaddr_storage *ss, socklen_t sl,
    const char *name, uint16_t type, uint8_t *buf, size_t *len, struct dns_msg *d, char *err,
    size_t errlen)
{
	struct dns_buf q;
	uint16_t id = 0;

	(void)util_random(&id, sizeof(id));
	if (dnsmsg_query(&q, id, name, type) == -1) {
		snprintf(err, errlen, "cannot query %s", name);
		return -1;
	}
	if (ops->exchange(ops->ctx, ss, sl, &q, buf, DNS_MSG_MAX, len, DNSAUTH_TIMEOUT_MS, err,
	    errlen) == -1)
		return -1;
	if (dnsmsg_parse(buf, *len, d) == -1 || d->id != id || (d->flags & 0x8000) == 0) {
		snprintf(err, errlen, "malformed answer");
		return -1;
	}
	return 0;
}

static const char *
rcode_name(int rc)
{
	return rc < (int)ARRAY_LEN(rcode_names) ? rcode_names[rc] : "an error";
}

static socklen_t
ss_len(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return sizeof(struct sockaddr_in6);
	return sizeof(struct sockaddr_in);
}

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	    memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
}

static void
add_srv(struct dnsauth_set *set, const char *label, const struct sockaddr_storage *ss)
{
	struct dnsauth_srv *s;
	char addr[ADDR_STR_MAX];
	size_t i;

	for (i = 0; i < set->n; i++)
		if (same_addr(&set->srv[i].ss, ss))
			return;		/* the primary is usually in its own NS set */
	addr_format((const struct sockaddr *)ss, addr, sizeof(addr));
	if (set->n == DNSAUTH_SRV_MAX) {
		log_warnx("dns-01: more than %d server addresses: %s %s is not waited for",
		    DNSAUTH_SRV_MAX, label, addr);
		return;
	}
	s = &set->srv[set->n++];
	memset(s, 0, sizeof(*s));
	s->ss = *ss;
	s->sl = ss_len(ss);
	util_strlcpy(s->name, label, sizeof(s->name));
	util_strlcpy(s->addr, addr, sizeof(s->addr));
	util_strlcpy(s->why, "not asked yet", sizeof(s->why));
}

/* 1 when name is zone or under it (both as dnsmsg_read_name writes them, zone maybe dotted). */
static int
in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	if (z > 0 && zone[z - 1] == '.')
		z--;
	if (z == 0 || n == z)
		return z == 0 || strncasecmp(name, zone, z) == 0;
	return n > z && name[n - z - 1] == '.' && strncasecmp(name + n - z, zone, z) == 0;
}

/* The addresses of in-zone nsname at the update server (A, then AAAA). */
static int
glue(const struct dns01_conf *c, const struct dnsauth_ops *ops, const char *nsname,
    struct sockaddr_storage *out)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA };
	uint8_t buf[DNS_MSG_MAX];
	struct dns_msg d;
	char err[160];
	int n = 0, k;
	size_t i, len;

	for (i = 0; i < ARRAY_LEN(types); i++) {
		if (ask(ops, &c->srv, c->srvlen, nsname, types[i], buf, &len, &d, err,
		    sizeof(err)) == -1) {
			log_warnx("dns-01: addresses of NS %s at %s: %s", nsname, c->server, err);
			continue;
		}
		if (dnsmsg_rcode(&d) != 0)
			continue;
		if ((k = dnsrdata_addrs(buf, &d, nsname, c->ns_port, out + n,
		    DNSAUTH_ADDR_MAX - (size_t)n)) == -1)
			log_warnx("dns-01: a malformed address of NS %s at %s", nsname, c->server);
		else
			n += k;
	}
	return n;
}

static void
add_ns(const struct dns01_conf *c, const struct dnsauth_ops *ops, const char *zone,
    const char *nsname, struct dnsauth_set *set)
{
	struct sockaddr_storage a[DNSAUTH_ADDR_MAX];
	int inz = in_zone(nsname, zone), n, i;

	n = inz ? glue(c, ops, nsname, a) : ops->resolve(ops->ctx, nsname, c->ns_port, a,
	    DNSAUTH_ADDR_MAX);
	if (n <= 0) {
		log_warnx("dns-01: NS %s of %s has no address (%s): not waited for", nsname, zone,
		    inz ? "no A or AAAA at the update server" : "the system resolver found none");
		return;
	}
	for (i = 0; i < n; i++) {
		char addr[ADDR_STR_MAX];
		if (ops->routable(ops->ctx, &a[i], ss_len(&a[i])) == 1) {
			add_srv(set, nsname, &a[i]);
			continue;
		}
		addr_format((const struct sockaddr *)&a[i], addr, sizeof(addr));
		/* Info, not a warning: an IPv4-only host meets dual-stack NS sets every order. */
		log_info("dns-01: NS %s %s: no route from this host, not waited for", nsname,
		    addr);
	}
}

int
dnsauth_find(const struct dns01_conf *c, const struct dnsauth_ops *ops, const char *zone,
    struct dnsauth_set *set, char *err, size_t errlen)
{
	char ns[DNSAUTH_NS_MAX][DNS_NAME_MAX + 2], why[160];
	uint8_t buf[DNS_MSG_MAX];
	struct dns_msg d;
	size_t dropped, len;
	int n, i;

	memset(set, 0, sizeof(*set));
	add_srv(set, "update server", &c->srv);
	if (c->ns_port == 0)
		return 0;	/* dns_ns_port 0: the update server only */
	if (ask(ops, &c->srv, c->srvlen, zone, DNS_T_NS, buf, &len, &d, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "reading the NS set of %s at %s: %s", zone, c->server, why);
		return -1;
	}
	if (dnsmsg_rcode(&d) != 0) {
		snprintf(err, errlen, "reading the NS set of %s at %s: %s", zone, c->server,
		    rcode_name(dnsmsg_rcode(&d)));
		return -1;
	}
	if ((n = dnsrdata_ns(buf, len, &d, zone, ns, DNSAUTH_NS_MAX, &dropped)) <= 0) {
		snprintf(err, errlen, "%s NS set of %s at %s", n == 0 ? "no" : "a malformed", zone,
		    c->server);
		return -1;
	}
	if (dropped > 0)
		log_warnx("dns-01: %s has %zu NS records more than %d: those are not waited for",
		    zone, dropped, DNSAUTH_NS_MAX);
	for (i = 0; i < n; i++)
		add_ns(c, ops, zone, ns[i], set);
	return 0;
}

/* --- the polls */

/* 1 when srv serves the record; else 0 with why in srv->why. */
static int
poll_one(const struct dnsauth_ops *ops, struct dnsauth_srv *srv, const char *name,
    const char *txt)
{
	uint8_t buf[DNS_MSG_MAX];
	struct dns_msg d;
	size_t len;
	int rc;

	if (ask(ops, &srv->ss, srv->sl, name, DNS_T_TXT, buf, &len, &d, srv->why,
	    sizeof(srv->why)) == -1)
		return 0;
	if ((rc = dnsmsg_rcode(&d)) != 0 && rc != 3) {
		snprintf(srv->why, sizeof(srv->why), "answered %s", rcode_name(rc));
		return 0;
	}
	if (rc == 0 && dnsmsg_has_txt(buf, &d, name, txt))
		return 1;
	snprintf(srv->why, sizeof(srv->why), "does not serve the TXT yet");
	return 0;
}

int
dnsauth_poll(const struct dnsauth_ops *ops, struct dnsauth_set *set, const char *name,
    const char *txt, uint64_t now)
{
	struct dnsauth_srv *s;
	unsigned shift;
	size_t i;
	int all = 1;

	for (i = 0; i < set->n; i++) {
		s = &set->srv[i];
		if (s->served)
			continue;
		if (s->due_ms > now) {
			all = 0;
			continue;
		}
		if (poll_one(ops, s, name, txt) == 1) {
			s->served = 1;
			log_info("dns-01: %s is served by %s %s", name, s->name, s->addr);
			continue;
		}
		all = 0;
		s->polls++;
		/* After 4 s and every 8 polls (32 s) after that: who lags, and why. */
		if (s->polls == 5 || (s->polls > 5 && s->polls % 8 == 5))
			log_info("dns-01: %s not served yet by %s %s: %s", name, s->name, s->addr,
			    s->why);
		shift = s->polls - 1 < 4 ? s->polls - 1 : 4;
		s->due_ms = now + ((uint64_t)DNSAUTH_POLL_MIN_MS << shift);
		if (s->due_ms > now + DNSAUTH_POLL_MAX_MS)
			s->due_ms = now + DNSAUTH_POLL_MAX_MS;
	}
	return all;
}

uint64_t
dnsauth_next_due(const struct dnsauth_set *set)
{
	uint64_t due = UINT64_MAX;
	size_t i;

	for (i = 0; i < set->n; i++)
		if (!set->srv[i].served && set->srv[i].due_ms < due)
			due = set->srv[i].due_ms;
	return due;
}

void
dnsauth_list(const struct dnsauth_set *set, int lagging, char *out, size_t outlen)
{
	size_t i, k = 0;
	int w;

	out[0] = '\0';
	for (i = 0; i < set->n && k < outlen; i++) {
		const struct dnsauth_srv *s = &set->srv[i];
		if (lagging && s->served)
			continue;
		w = snprintf(out + k, outlen - k, "%s%s %s%s%s%s", k > 0 ? ", " : "", s->name,
		    s->addr, lagging ? " (" : "", lagging ? s->why : "", lagging ? ")" : "");
		if (w < 0)
			break;
		k += (size_t)w;
	}
}

/* --- the network */

static int
net_exchange(void *ctx, const struct sockaddr_storage *srv, socklen_t srvlen,
    const struct dns_buf *q, uint8_t *resp, size_t cap, size_t *rlen, int timeout_ms,
    char *err, size_t errlen)
{
	(void)ctx;
	return dnsclient_exchange(srv, srvlen, q, resp, cap, rlen, timeout_ms, err, errlen);
}

/*
 * glibc's stub resolver, as libcurl's resolver thread in this child uses
 * for the CA (the filter allows it); its time is resolv.conf's timeout.
 */
static int
net_resolve(void *ctx, const char *name, uint16_t port, struct sockaddr_storage *out,
    size_t max)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res, *ai;
	size_t n = 0;

	(void)ctx;
	if (getaddrinfo(name, NULL, &hints, &res) != 0)
		return 0;
	for (ai = res; ai != NULL && n < max; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(out[n]))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)(void *)&out[n])->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)(void *)&out[n])->sin6_port = htons(port);
		n++;
	}
	freeaddrinfo(res);
	return (int)n;
}

/* A UDP connect() sends nothing: it only looks the route up (no IPv6 here: ENETUNREACH). */
static int
net_routable(void *ctx, const struct sockaddr_storage *ss, socklen_t len)
{
	int fd, rc;

	(void)ctx;
	if ((fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	rc = connect(fd, (const struct sockaddr *)ss, len) == 0;
	close(fd);
	return rc;
}

const struct dnsauth_ops dnsauth_net = {
	.exchange = net_exchange,
	.resolve = net_resolve,
	.routable = net_routable,
};
