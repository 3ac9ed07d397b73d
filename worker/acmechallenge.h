/*
 * ACME HTTP-01 answers (RFC 8555 section 8.3): GET
 * /.well-known/acme-challenge/TOKEN is answered from the snapshot's
 * challenge table before any routing, for every Host, so a CA can validate
 * a name whose route has no backend up yet.
 */
#ifndef HALOYD_WORKER_ACMECHALLENGE_H
#define HALOYD_WORKER_ACMECHALLENGE_H

#include <stdint.h>

struct worker;
struct http_head;
struct buf;

/*
 * When h asks for a challenge answer, writes the whole response into out
 * (200 text/plain with the key authorisation, or 404) and returns its
 * status; 0 when h is not such a request (route it), -1 when out is full.
 */
int acmechal_answer(struct worker *w, const struct http_head *h, struct buf *out, int keepalive);

#endif
