/*
 * libFuzzer harness: what a DNS server answers the ACME child's DNS-01
 * code (acme/dnsmsg.c, acme/tsig.c, acme/dnsrdata.c): the whole-message
 * parser, the TXT and SOA lookups over its result, the NS targets and
 * A/AAAA addresses dnsauth.c reads, and the TSIG check of the answer with
 * a fixed key and request MAC, as dns01.c runs them on every answer.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "acme/dns01.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tsig_key k = { "haloyd-dns01", { 1, 2, 3, 4 }, 32 };
	static const uint8_t reqmac[32];
	static struct dns_msg d;
	static char ns[4][DNS_NAME_MAX + 2];
	struct sockaddr_storage a[4];
	char err[200];
	size_t dropped;

	if (size > DNS_MSG_MAX || dnsmsg_parse(data, size, &d) == -1)
		return 0;
	(void)dnsmsg_rcode(&d);
	(void)dnsmsg_has_txt(data, &d, "_acme-challenge.example.test", "value");
	(void)dnsmsg_has_soa(&d, "example.test");
	(void)dnsrdata_ns(data, size, &d, "example.test", ns, 4, &dropped);
	(void)dnsrdata_addrs(data, &d, "ns.example.test", 53, a, 4);
	(void)tsig_verify(data, size, &d, &k, reqmac, 1700000000, err, sizeof(err));
	return 0;
}
