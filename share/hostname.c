/* Host-name rules: lower-case, strip port and trailing dot, reject invalid names. */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>

#include "share/hostname.h"

static int
label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Lower-cases and validates len bytes of in into out; returns len or -1. */
static int
copy_labels(const char *in, size_t len, char *out)
{
	size_t i, lab = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > HOSTNAME_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.') {
			if (lab == 0 || out[i - 1] == '-')
				return -1;
			lab = 0;
		} else {
			if (!label_char(c) || (lab == 0 && c == '-'))
				return -1;
			if (++lab > HOSTNAME_LABEL_MAX)
				return -1;
		}
		out[i] = (char)c;
	}
	if (lab == 0 || out[len - 1] == '-')
		return -1;
	out[len] = '\0';
	return (int)len;
}

static int
valid_port(const char *p, size_t len)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return 0;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

static int
copy_ipv6_literal(const char *in, size_t len, char *out)
{
	const char *end = memchr(in, ']', len);
	size_t i, n;

	if (end == NULL)
		return -1;
	n = (size_t)(end - in) + 1;
	if (n < 3 || n > 47)
		return -1;
	if (n < len && (in[n] != ':' || !valid_port(in + n + 1, len - n - 1)))
		return -1;
	for (i = 0; i < n; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (i > 0 && i < n - 1 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		    c == ':' || c == '.'))
			return -1;
		out[i] = c;
	}
	out[n] = '\0';
	return (int)n;
}

int
hostname_from_header(const char *in, size_t len, char *out)
{
	const char *colon;

	if (len > 0 && in[0] == '[')
		return copy_ipv6_literal(in, len, out);
	colon = memchr(in, ':', len);
	if (colon != NULL) {
		size_t hl = (size_t)(colon - in);

		if (!valid_port(colon + 1, len - hl - 1))
			return -1;
		len = hl;
	}
	return copy_labels(in, len, out);
}

int
hostname_normalize_name(const char *in, char *out)
{
	size_t len = strlen(in);
	int n;

	if (len >= 2 && in[0] == '*' && in[1] == '.') {
		if ((n = copy_labels(in + 2, len - 2, out + 2)) < 0 || n + 2 > HOSTNAME_MAX)
			return -1;
		out[0] = '*';
		out[1] = '.';
		return n + 2;
	}
	return copy_labels(in, len, out);
}

int
hostname_is_wildcard(const char *name)
{
	return name[0] == '*' && name[1] == '.';
}

int
hostname_normalize_sni(const char *in, char *out)
{
	struct in_addr a4;
	int n;

	/* RFC 6066 3: a server name is a DNS name, never an address literal. */
	if (hostname_is_wildcard(in) || (n = copy_labels(in, strlen(in), out)) < 0 ||
	    inet_pton(AF_INET, out, &a4) == 1)
		return -1;
	return n;
}
