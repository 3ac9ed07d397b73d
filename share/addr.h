/* Literal socket addresses: "ip:port" and "[ip6]:port", parsed and printed. */
#ifndef HALOYD_ADDR_H
#define HALOYD_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_STR_MAX 64	/* "[ipv6]:port" with room to spare */

/* Parses a literal address with a port (no names); 0 or -1. */
int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* An address block: "192.0.2.0/24", "2001:db8::/32", or one address. */
struct addr_cidr {
	uint8_t family;		/* AF_INET / AF_INET6 */
	uint8_t bits;
	uint8_t pad[2];
	uint8_t addr[16];
};

int addr_parse_cidr(const char *s, struct addr_cidr *c);
/* 1 when sa's IP lies in c. */
int addr_cidr_match(const struct addr_cidr *c, const struct sockaddr *sa);

/* Prints sa as "ip:port" / "[ip6]:port" into buf (ADDR_STR_MAX). */
int addr_format(const struct sockaddr *sa, char *buf, size_t size);
/* Prints just the IP of sa (no port, no brackets). */
int addr_format_ip(const struct sockaddr *sa, char *buf, size_t size);

#endif
