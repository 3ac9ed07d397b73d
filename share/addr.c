/* Literal socket addresses: parse "ip:port" / "[ip6]:port" and print them back. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "share/addr.h"
#include "share/util.h"

int
addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[ADDR_STR_MAX];
	const char *port;
	uint64_t p;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		hl = (size_t)(end - s - 1);
		port = end + 2;
		s++;
	} else {
		const char *colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -1;
		hl = (size_t)(colon - s);
		port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host) || util_parse_u64(port, 1, 65535, &p) == -1)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

int
addr_format_ip(const struct sockaddr *sa, char *buf, size_t size)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else
		return -1;
	return inet_ntop(sa->sa_family, a, buf, (socklen_t)size) == NULL ? -1 : 0;
}

int
addr_format(const struct sockaddr *sa, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port;

	if (addr_format_ip(sa, ip, sizeof(ip)) == -1)
		return -1;
	if (sa->sa_family == AF_INET) {
		port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
		snprintf(buf, size, "%s:%u", ip, port);
	} else {
		port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
		snprintf(buf, size, "[%s]:%u", ip, port);
	}
	return 0;
}

int
addr_parse_cidr(const char *s, struct addr_cidr *c)
{
	char ip[ADDR_STR_MAX];
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint64_t bits;

	memset(c, 0, sizeof(*c));
	if (n == 0 || n >= sizeof(ip))
		return -1;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, c->addr) == 1)
		c->family = AF_INET6;
	else
		return -1;
	bits = c->family == AF_INET ? 32 : 128;
	if (slash != NULL && util_parse_u64(slash + 1, 0, bits, &bits) == -1)
		return -1;
	c->bits = (uint8_t)bits;
	return 0;
}

int
addr_cidr_match(const struct addr_cidr *c, const struct sockaddr *sa)
{
	const uint8_t *a;
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (sa->sa_family != c->family)
		return 0;
	a = sa->sa_family == AF_INET ? (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr :
	    (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (memcmp(a, c->addr, full) != 0)
		return 0;
	return rest == 0 || ((a[full] ^ c->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}
