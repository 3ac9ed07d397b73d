/*
 * The agent's conversions between HTTP/2 fields (the tunnel) and the neutral
 * head written or parsed as HTTP/1.1 (the app): the request's pseudo-fields,
 * its host and framing, the end of a chunked body with trailers, and a
 * response's fields as nghttp2 name/value pairs. No I/O here.
 */
#ifndef HALOYD_AGENT_H2H1_H
#define HALOYD_AGENT_H2H1_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "agent/bytequeue.h"
#include "worker/message.h"

/* A request pseudo-field (:method, :path, :authority; :scheme ignored). 0 or -1. */
int h2h1_pseudo(struct msg_head *r, const char *name, size_t nlen, const char *v, size_t vlen);
/*
 * Readies a request head for h1_write_request: the host from :authority,
 * else the host field; hop-by-hop fields and host out; Content-Length into
 * the framing, else chunked when more follows (end: END_STREAM came with
 * the head). -1 for what HTTP/1.1 cannot carry (no host or path, CONNECT)
 * or a bad content-length.
 */
int h2h1_prepare(struct msg_head *r, int end);
/* The last chunk, r's trailers (hop-by-hop ones and content-length out), the end. 0 or -1. */
int h2h1_last_chunk(const struct msg_head *r, struct bytequeue *q, size_t max);
/*
 * nv[at...] for fields [from, to) of h without the hop-by-hop ones, names
 * lower-cased in h's storage (HTTP/2 wants them so); the new count.
 */
size_t h2h1_nv(struct msg_head *h, uint32_t from, uint32_t to, nghttp2_nv *nv, size_t at);

#endif
