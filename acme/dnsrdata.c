/*
 * The RDATA DNS-01's wait for the authoritative servers reads: NS targets
 * (a name, compressed or not, that must fill its RDATA exactly) and A/AAAA
 * addresses (exactly 4 or 16 bytes). dnsmsg_parse has already checked every
 * RR lies inside the message; these check each RDATA against its length.
 */
#include "config.h"

#include <netinet/in.h>
#include <string.h>

#include "acme/dns01.h"

int
dnsrdata_ns(const uint8_t *m, size_t len, const struct dns_msg *d, const char *owner,
    char (*out)[DNS_NAME_MAX + 2], size_t max, size_t *dropped)
{
	char name[DNS_NAME_MAX + 2];
	size_t i, n = 0, off, end;

	*dropped = 0;
	for (i = 0; i < d->nan; i++) {
		const struct dns_rr *rr = &d->rr[i];
		if (rr->type != DNS_T_NS || rr->class != DNS_C_IN ||
		    !dnsmsg_same_name(rr->name, owner))
			continue;
		/*
		 * The name must end exactly at the RDATA's end (its labels read
		 * no further; a pointer only leads backwards), and not be the root.
		 */
		off = rr->rdoff;
		end = rr->rdoff + rr->rdlen;
		if (end > len || dnsmsg_read_name(m, end, &off, name) == -1 || off != end ||
		    name[0] == '\0')
			return -1;
		if (n < max)
			memcpy(out[n++], name, sizeof(name));
		else
			(*dropped)++;
	}
	return (int)n;
}

int
dnsrdata_addrs(const uint8_t *m, const struct dns_msg *d, const char *name, uint16_t port,
    struct sockaddr_storage *out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < d->nan && n < max; i++) {
		const struct dns_rr *rr = &d->rr[i];
		if ((rr->type != DNS_T_A && rr->type != DNS_T_AAAA) || rr->class != DNS_C_IN ||
		    !dnsmsg_same_name(rr->name, name))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		if (rr->type == DNS_T_A) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&out[n];
			if (rr->rdlen != 4)
				return -1;
			s4->sin_family = AF_INET;
			s4->sin_port = htons(port);
			memcpy(&s4->sin_addr, m + rr->rdoff, 4);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&out[n];
			if (rr->rdlen != 16)
				return -1;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(port);
			memcpy(&s6->sin6_addr, m + rr->rdoff, 16);
		}
		n++;
	}
	return (int)n;
}
