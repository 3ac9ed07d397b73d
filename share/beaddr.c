/* Backend addresses of every kind: parse, check and print (see beaddr.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "share/addr.h"
#include "share/beaddr.h"
#include "share/util.h"

#define BEADDR_USE "use IP:PORT, [IPv6]:PORT, HOST:PORT, unix:/PATH or tunnel:NAME"

int
beaddr_tunnel_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len < 1 || len > BEADDR_TUNNEL_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (i > 0 && (c == '.' || c == '-'))))
			return 0;
	}
	return 1;
}

int
beaddr_unix_path_ok(const char *s, size_t len)
{
	size_t i;

	if (len < 2 || len > BEADDR_UNIX_PATH_MAX || s[0] != '/')
		return 0;
	/* The path is printed in logs and listings: no control bytes, no NUL. */
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

int
beaddr_dns_name_ok(const char *s, size_t len)
{
	char norm[HOSTNAME_MAX + 1], copy[HOSTNAME_MAX + 1];
	const char *last;

	if (len < 1 || len > HOSTNAME_MAX || memchr(s, '\0', len) != NULL)
		return 0;
	memcpy(copy, s, len);
	copy[len] = '\0';
	if (hostname_normalize_sni(copy, norm) != (int)len || strcmp(norm, copy) != 0)
		return 0;
	last = strrchr(copy, '.');
	last = last != NULL ? last + 1 : copy;
	return strspn(last, "0123456789") != strlen(last);
}

/* "HOST:PORT" with a DNS name: stored lower-cased, the port as digits 1..65535. */
static int
beaddr_parse_name(const char *s, struct beaddr *b)
{
	char host[HOSTNAME_MAX + 2], norm[HOSTNAME_MAX + 1], *end;
	const char *colon = strrchr(s, ':');
	unsigned long port;
	size_t hlen;

	if (colon == NULL || colon == s || (hlen = (size_t)(colon - s)) > HOSTNAME_MAX ||
	    colon[1] < '0' || colon[1] > '9' || strlen(colon + 1) > 5)
		return -1;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (hostname_normalize_sni(host, norm) < 0 || !beaddr_dns_name_ok(norm, strlen(norm)))
		return -1;
	b->kind = BEADDR_NAME;
	b->port = (uint16_t)port;
	memcpy(b->name, norm, strlen(norm) + 1);
	return 0;
}

/* "unix:PATH": the reason names which rule PATH broke. */
static int
beaddr_parse_unix(const char *raw, const char *path, struct beaddr *b, char *err, size_t errlen)
{
	size_t len = strlen(path);

	if (path[0] != '/')
		return util_errf(err, errlen, "invalid backend '%.100s': the unix socket path "
		    "must be absolute (unix:/run/app.sock)", raw);
	if (len > BEADDR_UNIX_PATH_MAX)
		return util_errf(err, errlen, "invalid backend '%.100s': the unix socket path is "
		    "%zu bytes, at most %d", raw, len, BEADDR_UNIX_PATH_MAX);
	if (!beaddr_unix_path_ok(path, len))
		return util_errf(err, errlen, "invalid backend '%.100s': the unix socket path "
		    "must name a file and hold no control characters", raw);
	b->kind = BEADDR_UNIX;
	memcpy(b->name, path, len + 1);
	return 0;
}

int
beaddr_parse(const char *s, struct beaddr *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	if (strncmp(s, "unix:", 5) == 0)
		return beaddr_parse_unix(s, s + 5, b, err, errlen);
	if (strncmp(s, "tunnel:", 7) == 0) {
		if (!beaddr_tunnel_name_ok(s + 7, strlen(s + 7)))
			return util_errf(err, errlen, "invalid backend '%.100s': a tunnel name is "
			    "1 to 63 characters of a-z, 0-9, '.' and '-', starting with a letter "
			    "or digit", s);
		b->kind = BEADDR_TUNNEL;
		memcpy(b->name, s + 7, strlen(s + 7) + 1);
		return 0;
	}
	if (strlen(s) < ADDR_STR_MAX && addr_parse(s, &b->ss, &b->sslen) == 0) {
		b->kind = BEADDR_IP;
		return 0;
	}
	if (beaddr_parse_name(s, b) == 0)
		return 0;
	memset(b, 0, sizeof(*b));
	return util_errf(err, errlen, "invalid backend '%.100s': " BEADDR_USE, s);
}

int
beaddr_format(const struct beaddr *b, char *buf, size_t size)
{
	int n;

	switch (b->kind) {
	case BEADDR_IP:
		return addr_format((const struct sockaddr *)&b->ss, buf, size);
	case BEADDR_UNIX:
		n = snprintf(buf, size, "unix:%s", b->name);
		break;
	case BEADDR_TUNNEL:
		n = snprintf(buf, size, "tunnel:%s", b->name);
		break;
	case BEADDR_NAME:
		/*
		 * A host called unix or tunnel keeps its root dot: "unix:80" would read
		 * back as a socket path and "tunnel:80" as the tunnel named 80.
		 */
		n = snprintf(buf, size, "%s%s:%u", b->name, strcmp(b->name, "unix") == 0 ||
		    strcmp(b->name, "tunnel") == 0 ? "." : "", b->port);
		break;
	default:
		return -1;
	}
	return n < 0 || (size_t)n >= size ? -1 : 0;
}
