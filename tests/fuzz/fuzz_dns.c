/*
 * libFuzzer harness: what a DNS server answers the ACME child's DNS-01
 * code (acme/dnsmsg.c, acme/tsig.c): the whole-message parser, the TXT
 * and SOA lookups over its result, and the TSIG check of the answer with
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
	char err[200];

	if (size > DNS_MSG_MAX || dnsmsg_parse(data, size, &d) == -1)
		return 0;
	(void)dnsmsg_rcode(&d);
	(void)dnsmsg_has_txt(data, &d, "_acme-challenge.example.test", "value");
	(void)dnsmsg_has_soa(&d, "example.test");
	(void)tsig_verify(data, size, &d, &k, reqmac, 1700000000, err, sizeof(err));
	return 0;
}
