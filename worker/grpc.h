/*
 * What haloyd knows of gRPC (which rides on HTTP/2): which requests are
 * gRPC calls, the gRPC status an answer of our own becomes (a gRPC client
 * reads grpc-status, not the HTTP status), and the grpc-timeout deadline a
 * call carries. The sessions encode what this decides; the exchange runs the
 * deadline on its one timer.
 */
#ifndef HALOYD_WORKER_GRPC_H
#define HALOYD_WORKER_GRPC_H

#include <stddef.h>
#include <stdint.h>

struct msg_head;

/* gRPC status codes we answer with (grpc/doc/statuscodes.md). */
#define GRPC_UNKNOWN 2
#define GRPC_DEADLINE_EXCEEDED 4
#define GRPC_PERMISSION_DENIED 7
#define GRPC_RESOURCE_EXHAUSTED 8
#define GRPC_UNIMPLEMENTED 12
#define GRPC_INTERNAL 13
#define GRPC_UNAVAILABLE 14
#define GRPC_UNAUTHENTICATED 16

/* "99999999H": the spec bounds TimeoutValue to 8 digits. */
#define GRPC_TIMEOUT_DIGITS 8
/* grpc-message of ours, percent-encoded: every message of the table fits. */
#define GRPC_MESSAGE_MAX 256

/* 1 when h's content-type is application/grpc, application/grpc+x or application/grpc-x. */
int grpc_is_call(const struct msg_head *h);
/*
 * The gRPC status an error answer (HTTP status >= 400) of ours to req
 * becomes, or -1 when it stays an HTTP answer: req is no gRPC call, or it
 * came over HTTP/1.1, where a gRPC client cannot be (gRPC needs HTTP/2).
 */
int grpc_local_status(const struct msg_head *req, unsigned http_status);
/* The status for an HTTP status (the table in ARCHITECTURE.md). */
unsigned grpc_status_of(unsigned http_status);
/* A fixed, unencoded grpc-message for an HTTP status (nothing from the request). */
const char *grpc_message_of(unsigned http_status);
/* Percent-encodes s as grpc-message wants (bytes outside 0x20-0x7e, and '%'). 0 or -1 (too long). */
int grpc_percent_encode(const char *s, char *out, size_t outlen);
/*
 * A grpc-timeout value ("5S", "200m", "100u": 1-8 digits and one of H M S m
 * u n, nothing else) in milliseconds, rounded up so a deadline never comes
 * early. 0, or -1 when invalid (then ignored: the call has no deadline).
 */
int grpc_timeout_parse(const char *v, size_t len, uint64_t *ms);
/* The request's valid grpc-timeout: 0 with *ms, -1 when absent or invalid. */
int grpc_timeout_of(const struct msg_head *req, uint64_t *ms);
/*
 * Makes h (emptied first) the trailers-only answer for gRPC status code:
 * 200, content-type application/grpc, grpc-status, grpc-message; no body and
 * no length (HTTP/2 then ends the stream on that one HEADERS frame). 0 or -1.
 */
int grpc_answer(struct msg_head *h, unsigned code, const char *message);

#endif
