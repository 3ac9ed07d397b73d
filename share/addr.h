/* Literal socket addresses: "ip:port" and "[ip6]:port", parsed and printed. */
#ifndef HALOYD_ADDR_H
#define HALOYD_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define ADDR_STR_MAX 64	/* "[ipv6]:port" with room to spare */

/* Parses a literal address with a port (no names); 0 or -1. */
int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* Prints sa as "ip:port" / "[ip6]:port" into buf (ADDR_STR_MAX). */
int addr_format(const struct sockaddr *sa, char *buf, size_t size);
/* Prints just the IP of sa (no port, no brackets). */
int addr_format_ip(const struct sockaddr *sa, char *buf, size_t size);

#endif
