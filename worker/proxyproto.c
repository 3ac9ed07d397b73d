/*
 * The PROXY protocol header (see proxyproto.h): the incremental parser of
 * versions 1 and 2, the writer, and conversions to and from socket
 * addresses.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "worker/proxyproto.h"

static const uint8_t v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
static const char v1_sig[] = "PROXY ";
#define V1_SIG_LEN 6

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_AF_UNSPEC 0x0
#define V2_AF_INET 0x1
#define V2_AF_INET6 0x2
#define V2_AF_UNIX 0x3
#define V2_TR_STREAM 0x1
#define V2_TR_DGRAM 0x2
#define V2_INET_LEN 12		/* two IPv4 addresses, two ports */
#define V2_INET6_LEN 36
#define V2_UNIX_LEN 216		/* two 108-byte paths */

/* A decimal port, "0" to "65535", without leading zeros (the specification's form). */
static int
pp_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;
	size_t i, n = strlen(s);

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* Splits line at single spaces into at most max fields; the count, or -1 on an empty field. */
static int
pp_split(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *sp = strchr(p, ' ');

		if (n == max || *p == ' ' || *p == '\0')
			return -1;
		f[n++] = p;
		if (sp == NULL)
			return n;
		*sp = '\0';
		p = sp + 1;
	}
}

/* The fields of a complete version 1 line (CRLF stripped, NUL-terminated). */
static int
pp_v1_fields(char *line, struct proxyproto_hdr *out, const char **why)
{
	char *f[6];
	int af;

	/* UNKNOWN: whatever follows is ignored, as the specification says. */
	if (strcmp(line + V1_SIG_LEN, "UNKNOWN") == 0 ||
	    strncmp(line + V1_SIG_LEN, "UNKNOWN ", 8) == 0) {
		out->local = 1;
		return 0;
	}
	if (pp_split(line, f, 6) != 6) {
		*why = "PROXY v1: not six fields";
		return -1;
	}
	if (strcmp(f[1], "TCP4") == 0) {
		af = AF_INET;
	} else if (strcmp(f[1], "TCP6") == 0) {
		af = AF_INET6;
	} else {
		*why = "PROXY v1: protocol not TCP4, TCP6 or UNKNOWN";
		return -1;
	}
	if (inet_pton(af, f[2], out->a.src) != 1 || inet_pton(af, f[3], out->a.dst) != 1) {
		*why = "PROXY v1: bad address";
		return -1;
	}
	if (pp_port(f[4], &out->a.sport) == -1 || pp_port(f[5], &out->a.dport) == -1) {
		*why = "PROXY v1: bad port";
		return -1;
	}
	out->a.family = (uint8_t)af;
	return 0;
}

static int
pp_v1(const uint8_t *p, size_t n, struct proxyproto_hdr *out, const char **why)
{
	size_t lim = n < PROXYPROTO_V1_MAX ? n : PROXYPROTO_V1_MAX, i;
	char line[PROXYPROTO_V1_MAX + 1];

	for (i = 0; i < lim; i++) {
		if (p[i] == '\n' || p[i] == '\0' || (p[i] == '\r' && i + 1 < n && p[i + 1] != '\n')) {
			*why = "PROXY v1: stray control byte";
			return -1;
		}
		if (p[i] == '\r' && i + 1 < n)
			break;
	}
	if (i == lim || i + 1 >= n || i + 2 > PROXYPROTO_V1_MAX) {	/* no CRLF yet, or too far */
		if (n >= PROXYPROTO_V1_MAX) {
			*why = "PROXY v1: no CRLF within 107 bytes";
			return -1;
		}
		return 0;
	}
	memcpy(line, p, i);
	line[i] = '\0';
	out->version = 1;
	if (pp_v1_fields(line, out, why) == -1)
		return -1;
	return (int)(i + 2);
}

/* TLVs must tile the rest exactly: one that runs past the header is malformed. */
static int
pp_v2_tlvs(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (n - i < 3 || n - i - 3 < (size_t)((p[i + 1] << 8) | p[i + 2]))
			return -1;
		i += 3 + (size_t)((p[i + 1] << 8) | p[i + 2]);
	}
	return 0;
}

/* The address block of a complete PROXY command, len bytes at p. */
static int
pp_v2_addrs(uint8_t fam, const uint8_t *p, size_t len, struct proxyproto_hdr *out,
    const char **why)
{
	unsigned af = fam >> 4, tr = fam & 0xF;
	size_t need = af == V2_AF_INET ? V2_INET_LEN : af == V2_AF_INET6 ? V2_INET6_LEN :
	    af == V2_AF_UNIX ? V2_UNIX_LEN : 0;
	size_t alen = af == V2_AF_INET ? 4 : 16;

	if (af > V2_AF_UNIX || tr > V2_TR_DGRAM) {
		*why = "PROXY v2: unknown address family or transport";
		return -1;
	}
	if (len < need || pp_v2_tlvs(p + need, len - need) == -1) {
		*why = "PROXY v2: addresses or TLVs do not fit the length";
		return -1;
	}
	/* UNSPEC, AF_UNIX or datagrams: nothing we can put in place of an IP peer. */
	if ((af != V2_AF_INET && af != V2_AF_INET6) || tr != V2_TR_STREAM) {
		out->local = 1;
		return 0;
	}
	out->a.family = af == V2_AF_INET ? AF_INET : AF_INET6;
	memcpy(out->a.src, p, alen);
	memcpy(out->a.dst, p + alen, alen);
	out->a.sport = (uint16_t)((p[2 * alen] << 8) | p[2 * alen + 1]);
	out->a.dport = (uint16_t)((p[2 * alen + 2] << 8) | p[2 * alen + 3]);
	return 0;
}

static int
pp_v2(const uint8_t *p, size_t n, struct proxyproto_hdr *out, const char **why)
{
	size_t len;

	if (n < PROXYPROTO_V2_FIXED)
		return 0;
	if ((p[12] >> 4) != 2 || ((p[12] & 0xF) != V2_CMD_LOCAL && (p[12] & 0xF) != V2_CMD_PROXY)) {
		*why = "PROXY v2: bad version or command";
		return -1;
	}
	len = (size_t)((p[14] << 8) | p[15]);
	if (PROXYPROTO_V2_FIXED + len > PROXYPROTO_V2_MAX) {
		*why = "PROXY v2: header over 536 bytes";
		return -1;
	}
	if (n < PROXYPROTO_V2_FIXED + len)
		return 0;
	out->version = 2;
	if ((p[12] & 0xF) == V2_CMD_LOCAL) {
		out->local = 1;	/* the balancer's own connection (a health check): addresses ignored */
		return (int)(PROXYPROTO_V2_FIXED + len);
	}
	if (pp_v2_addrs(p[13], p + PROXYPROTO_V2_FIXED, len, out, why) == -1)
		return -1;
	return (int)(PROXYPROTO_V2_FIXED + len);
}

int
proxyproto_parse(const uint8_t *p, size_t n, struct proxyproto_hdr *out, const char **why)
{
	size_t k;

	memset(out, 0, sizeof(*out));
	*why = "not a PROXY protocol header";
	if (n == 0)
		return 0;
	if (p[0] == v2_sig[0]) {
		k = n < sizeof(v2_sig) ? n : sizeof(v2_sig);
		if (memcmp(p, v2_sig, k) != 0)
			return -1;
		return pp_v2(p, n, out, why);
	}
	k = n < V1_SIG_LEN ? n : V1_SIG_LEN;
	if (memcmp(p, v1_sig, k) != 0)
		return -1;
	if (n < V1_SIG_LEN)
		return 0;
	return pp_v1(p, n, out, why);
}

static size_t
pp_write_v1(const struct proxyproto_addrs *a, uint8_t *out)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int n;

	if (a->family != AF_INET && a->family != AF_INET6) {
		memcpy(out, "PROXY UNKNOWN\r\n", 15);
		return 15;
	}
	if (inet_ntop(a->family, a->src, s, sizeof(s)) == NULL ||
	    inet_ntop(a->family, a->dst, d, sizeof(d)) == NULL)
		return 0;
	/* At most 104 bytes: "PROXY TCP6 " and two 39-byte addresses, two 5-digit ports, CRLF. */
	n = snprintf((char *)out, PROXYPROTO_OUT_MAX, "PROXY %s %s %s %u %u\r\n",
	    a->family == AF_INET ? "TCP4" : "TCP6", s, d, a->sport, a->dport);
	return n > 0 && n < PROXYPROTO_OUT_MAX ? (size_t)n : 0;
}

static size_t
pp_write_v2(const struct proxyproto_addrs *a, uint8_t *out)
{
	size_t alen = a->family == AF_INET ? 4 : 16, len;

	memcpy(out, v2_sig, sizeof(v2_sig));
	if (a->family != AF_INET && a->family != AF_INET6) {
		out[12] = 0x20 | V2_CMD_LOCAL;
		out[13] = 0;
		out[14] = out[15] = 0;
		return PROXYPROTO_V2_FIXED;
	}
	len = a->family == AF_INET ? V2_INET_LEN : V2_INET6_LEN;
	out[12] = 0x20 | V2_CMD_PROXY;
	out[13] = (uint8_t)(((a->family == AF_INET ? V2_AF_INET : V2_AF_INET6) << 4) | V2_TR_STREAM);
	out[14] = 0;
	out[15] = (uint8_t)len;
	memcpy(out + 16, a->src, alen);
	memcpy(out + 16 + alen, a->dst, alen);
	out[16 + 2 * alen] = (uint8_t)(a->sport >> 8);
	out[17 + 2 * alen] = (uint8_t)a->sport;
	out[18 + 2 * alen] = (uint8_t)(a->dport >> 8);
	out[19 + 2 * alen] = (uint8_t)a->dport;
	return PROXYPROTO_V2_FIXED + len;
}

size_t
proxyproto_write(int v, const struct proxyproto_addrs *a, uint8_t *out)
{
	if (v == PROXYPROTO_V1)
		return pp_write_v1(a, out);
	if (v == PROXYPROTO_V2)
		return pp_write_v2(a, out);
	return 0;
}

/* One end; 0, or -1 when sa is not an IP address of family af. */
static int
pp_end(const struct sockaddr *sa, int af, uint8_t *addr, uint16_t *port)
{
	if (sa == NULL || sa->sa_family != af)
		return -1;
	if (af == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		memcpy(addr, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		memcpy(addr, &s6->sin6_addr, 16);
		*port = ntohs(s6->sin6_port);
	}
	return 0;
}

void
proxyproto_addrs_set(struct proxyproto_addrs *a, const struct sockaddr *src,
    const struct sockaddr *dst)
{
	int af = src != NULL ? src->sa_family : AF_UNSPEC;

	memset(a, 0, sizeof(*a));
	if ((af != AF_INET && af != AF_INET6) || pp_end(src, af, a->src, &a->sport) == -1 ||
	    pp_end(dst, af, a->dst, &a->dport) == -1) {
		memset(a, 0, sizeof(*a));
		return;
	}
	a->family = (uint8_t)af;
}

int
proxyproto_src_sockaddr(const struct proxyproto_addrs *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a->src, 4);
		s4->sin_port = htons(a->sport);
		return 0;
	}
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a->src, 16);
		s6->sin6_port = htons(a->sport);
		return 0;
	}
	return -1;
}
