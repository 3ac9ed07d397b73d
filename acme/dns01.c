/*
 * What a DNS-01 order asks of DNS: the TXT value of a key authorisation,
 * the zone a name is in, TSIG-signed UPDATEs adding and deleting
 * _acme-challenge records at the zone's primary (whether every server of
 * the zone serves them is dnsauth.c's). Each exchange is one bounded TCP
 * round trip.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "acme/acmechild.h"
#include "acme/dns01.h"
#include "share/addr.h"
#include "share/util.h"

#define DNS01_TIMEOUT_MS 5000	/* one exchange; an order waits for a few of them */
#define DNS01_TTL 60		/* the record lives minutes; resolvers should not keep it */

int
dns01_configure(struct dns01_conf *c, const char *server, const char *zone,
    const char *keyname, const char *secret_b64)
{
	uint8_t raw[DNS_TSIG_SECRET_MAX + 3];
	size_t n = strlen(secret_b64);
	int len;

	memset(c, 0, sizeof(*c));
	if (server[0] == '\0')
		return 0;	/* no DNS-01 */
	if (addr_parse(server, &c->srv, &c->srvlen) == -1 || n == 0 || n % 4 != 0 ||
	    n / 4 * 3 > sizeof(raw) || strlen(keyname) > DNS_NAME_MAX ||
	    strlen(zone) > DNS_NAME_MAX)
		return -1;
	if ((len = EVP_DecodeBlock(raw, (const unsigned char *)secret_b64, (int)n)) <= 0)
		return -1;
	len -= (secret_b64[n - 1] == '=') + (secret_b64[n - 2] == '=');
	if (len <= 0 || (size_t)len > DNS_TSIG_SECRET_MAX)
		return -1;
	memcpy(c->key.secret, raw, (size_t)len);
	c->key.len = (size_t)len;
	OPENSSL_cleanse(raw, sizeof(raw));
	util_strlcpy(c->key.name, keyname, sizeof(c->key.name));
	util_strlcpy(c->zone, zone, sizeof(c->zone));
	util_strlcpy(c->server, server, sizeof(c->server));
	c->on = 1;
	return 0;
}

int
dns01_txt_value(const char *keyauth, char out[44])
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	char *s;

	SHA256((const unsigned char *)keyauth, strlen(keyauth), d);
	if ((s = jws_b64u(d, sizeof(d))) == NULL || strlen(s) != 43) {
		free(s);
		return -1;
	}
	memcpy(out, s, 44);
	free(s);
	return 0;
}

static uint16_t
new_id(void)
{
	uint16_t id = 0;

	(void)util_random(&id, sizeof(id));
	return id;
}

/* Sends q (signed when mac is set), reads and parses the answer into buf/d. */
static int
roundtrip(const struct dns01_conf *c, struct dns_buf *q, uint8_t *buf, size_t *len,
    struct dns_msg *d, char *err, size_t errlen)
{
	uint16_t id = (uint16_t)(q->b[0] << 8 | q->b[1]);

	if (dnsclient_exchange(&c->srv, c->srvlen, q, buf, DNS_MSG_MAX, len, DNS01_TIMEOUT_MS,
	    err, errlen) == -1)
		return -1;
	if (dnsmsg_parse(buf, *len, d) == -1 || d->id != id || (d->flags & 0x8000) == 0) {
		snprintf(err, errlen, "malformed answer");
		return -1;
	}
	return 0;
}

int
dns01_zone(const struct dns01_conf *c, const char *name, char zone[DNS_NAME_MAX + 2],
    char *err, size_t errlen)
{
	uint8_t buf[DNS_MSG_MAX];
	struct dns_buf q;
	struct dns_msg d;
	const char *p = name;
	size_t len;

	if (c->zone[0] != '\0') {
		util_strlcpy(zone, c->zone, DNS_NAME_MAX + 2);
		return 0;
	}
	/* Walks up from the name: the first that has an SOA of its own is the zone's apex. */
	while (p != NULL && *p != '\0') {
		if (dnsmsg_query(&q, new_id(), p, DNS_T_SOA) == -1 ||
		    roundtrip(c, &q, buf, &len, &d, err, errlen) == -1)
			return -1;
		if (dnsmsg_rcode(&d) == 0 && dnsmsg_has_soa(&d, p)) {
			util_strlcpy(zone, p, DNS_NAME_MAX + 2);
			return 0;
		}
		if ((p = strchr(p, '.')) != NULL)
			p++;
	}
	snprintf(err, errlen, "no zone of %s at %s (set dns_zone)", name, c->server);
	return -1;
}

static const char *const rcodes[] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
	"YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
};

int
dns01_update(const struct dns01_conf *c, const char *zone, const char *name,
    const char *txt, int add, char *err, size_t errlen)
{
	uint8_t buf[DNS_MSG_MAX], mac[32];
	struct dns_buf q;
	struct dns_msg d;
	size_t len;
	int rc;

	if (dnsmsg_update(&q, new_id(), zone, name, txt, DNS01_TTL, add) == -1 ||
	    tsig_sign(&q, &c->key, (uint64_t)time(NULL), mac) == -1) {
		snprintf(err, errlen, "cannot build the update");
		return -1;
	}
	if (roundtrip(c, &q, buf, &len, &d, err, errlen) == -1)
		return -1;
	rc = dnsmsg_rcode(&d);
	/* A refused key comes back unsigned or with a TSIG error: say which first. */
	if (tsig_verify(buf, len, &d, &c->key, mac, (uint64_t)time(NULL), err, errlen) == -1) {
		if (rc != 0) {
			size_t k = strlen(err);
			snprintf(err + k, errlen - k, " (%s)", rc < 11 ? rcodes[rc] : "RCODE");
		}
		return -1;
	}
	if (rc != 0) {
		snprintf(err, errlen, "the server answered %s", rc < 11 ? rcodes[rc] : "an error");
		return -1;
	}
	return 0;
}
