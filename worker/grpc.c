/*
 * gRPC rules (see grpc.h): call detection, the HTTP-to-gRPC status table for
 * our own answers, grpc-message encoding, grpc-timeout parsing, and the
 * trailers-only answer head.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "worker/grpc.h"
#include "worker/message.h"

#define GRPC_CT "application/grpc"

int
grpc_is_call(const struct msg_head *h)
{
	const struct msg_field *f = h != NULL ? msg_find(h, "content-type") : NULL;
	size_t n = strlen(GRPC_CT);
	const char *v;

	if (f == NULL || f->value.len < n)
		return 0;
	v = msg_value(h, f);
	if (strncasecmp(v, GRPC_CT, n) != 0)
		return 0;
	/* "application/grpc", "+proto", "+json", "-web", "-web+proto"...; not "application/grpcx". */
	return v[n] == '\0' || v[n] == '+' || v[n] == '-' || v[n] == ';';
}

int
grpc_local_status(const struct msg_head *req, unsigned http_status)
{
	if (http_status < 400 || req == NULL || req->major < 2 || !grpc_is_call(req))
		return -1;
	return (int)grpc_status_of(http_status);
}

/*
 * The gRPC spec's "HTTP to gRPC status" table (doc/http-grpc-status-mapping.md),
 * which Envoy uses for its local replies, except where haloyd knows better
 * what went wrong: 504 is our timeout (DEADLINE_EXCEEDED, as the client's own
 * deadline would be), 413/414/431/429 are limits (RESOURCE_EXHAUSTED, what
 * gRPC itself says for an oversized message or metadata), 500/501 are ours.
 */
static const struct {
	unsigned http, code;
	const char *message;
} grpc_table[] = {
	{ 400, GRPC_INTERNAL, "haloyd: malformed request" },
	{ 401, GRPC_UNAUTHENTICATED, "haloyd: unauthenticated" },
	{ 403, GRPC_PERMISSION_DENIED, "haloyd: permission denied" },
	{ 404, GRPC_UNIMPLEMENTED, "haloyd: no route for this host" },
	{ 408, GRPC_UNKNOWN, "haloyd: request timed out" },
	{ 413, GRPC_RESOURCE_EXHAUSTED, "haloyd: request body too large" },
	{ 414, GRPC_RESOURCE_EXHAUSTED, "haloyd: request path too long" },
	{ 429, GRPC_RESOURCE_EXHAUSTED, "haloyd: too many requests" },
	{ 431, GRPC_RESOURCE_EXHAUSTED, "haloyd: request metadata too large" },
	{ 500, GRPC_INTERNAL, "haloyd: internal error" },
	{ 501, GRPC_UNIMPLEMENTED, "haloyd: not implemented" },
	{ 502, GRPC_UNAVAILABLE, "haloyd: no backend available" },
	{ 503, GRPC_UNAVAILABLE, "haloyd: service unavailable" },
	{ 504, GRPC_DEADLINE_EXCEEDED, "haloyd: deadline exceeded" },
};

unsigned
grpc_status_of(unsigned http_status)
{
	size_t i;

	for (i = 0; i < sizeof(grpc_table) / sizeof(grpc_table[0]); i++)
		if (grpc_table[i].http == http_status)
			return grpc_table[i].code;
	return GRPC_UNKNOWN;
}

const char *
grpc_message_of(unsigned http_status)
{
	size_t i;

	for (i = 0; i < sizeof(grpc_table) / sizeof(grpc_table[0]); i++)
		if (grpc_table[i].http == http_status)
			return grpc_table[i].message;
	return "haloyd: request failed";
}

int
grpc_percent_encode(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c <= 0x7e && c != '%') {
			if (n + 1 >= outlen)
				return -1;
			out[n++] = (char)c;
			continue;
		}
		if (n + 3 >= outlen)
			return -1;
		out[n++] = '%';
		out[n++] = hex[c >> 4];
		out[n++] = hex[c & 15];
	}
	if (n >= outlen)
		return -1;
	out[n] = '\0';
	return 0;
}

int
grpc_timeout_parse(const char *v, size_t len, uint64_t *ms)
{
	uint64_t x = 0;
	size_t i;

	if (len < 2 || len > GRPC_TIMEOUT_DIGITS + 1)
		return -1;
	for (i = 0; i < len - 1; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	/* At most 99999999 hours: no product below overflows 64 bits. */
	switch (v[len - 1]) {
	case 'H': *ms = x * 3600000; break;
	case 'M': *ms = x * 60000; break;
	case 'S': *ms = x * 1000; break;
	case 'm': *ms = x; break;
	case 'u': *ms = (x + 999) / 1000; break;
	case 'n': *ms = (x + 999999) / 1000000; break;
	default: return -1;
	}
	return 0;
}

int
grpc_timeout_of(const struct msg_head *req, uint64_t *ms)
{
	const struct msg_field *f = msg_find(req, "grpc-timeout");

	if (f == NULL)
		return -1;
	return grpc_timeout_parse(msg_value(req, f), f->value.len, ms);
}

int
grpc_answer(struct msg_head *h, unsigned code, const char *message)
{
	char st[12], enc[GRPC_MESSAGE_MAX];

	msg_reset(h);
	h->status = 200;
	h->major = 2;
	h->minor = 0;
	snprintf(st, sizeof(st), "%u", code);
	if (grpc_percent_encode(message, enc, sizeof(enc)) == -1 ||
	    msg_str(h, "OK", 2, &h->reason) == -1 ||
	    msg_add(h, "content-type", GRPC_CT) == -1 ||
	    msg_add(h, "grpc-status", st) == -1 ||
	    msg_add(h, "grpc-message", enc) == -1)
		return -1;
	return 0;
}
