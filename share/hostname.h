/*
 * Host-name rules shared by master, workers and haloyd-ctl, so routing,
 * storage and certificates agree on what a name is.
 */
#ifndef HALOYD_HOSTNAME_H
#define HALOYD_HOSTNAME_H

#include <stddef.h>

#define HOSTNAME_MAX 253
#define HOSTNAME_LABEL_MAX 63

/*
 * Normalises a Host header value: lower-cases ASCII, strips a ":port"
 * (digits only, 1..65535) and one trailing dot, and checks the rest is a
 * valid name: labels of letters, digits, '-' and '_' (not starting or
 * ending with '-'), 1..63 bytes each, 253 bytes at most. A bracketed IPv6
 * literal is kept as it is (lower-cased). out has room for HOSTNAME_MAX + 1.
 * Returns the length, or -1 when the value is not a valid host.
 */
int hostname_from_header(const char *in, size_t len, char *out);

/*
 * Normalises a configured route or alias name: as above but with no port,
 * no IP-literal brackets, and a leading "*." allowed (one-label wildcard).
 * Returns the length or -1.
 */
int hostname_normalize_name(const char *in, char *out);

/* 1 when name (already normalised) is a "*.suffix" wildcard. */
int hostname_is_wildcard(const char *name);

/*
 * Normalises a TLS server name (route set --backend-sni): a host name as
 * hostname_normalize_name gives it, but no wildcard and no IPv4 literal
 * (an IPv6 one never passes). Returns the length or -1.
 */
int hostname_normalize_sni(const char *in, char *out);

#endif
