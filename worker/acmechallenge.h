/*
 * ACME HTTP-01 answers (RFC 8555 section 8.3): GET
 * /.well-known/acme-challenge/TOKEN is answered from the snapshot's
 * challenge table before any routing, for every Host, so a CA can validate
 * a name whose route has no backend up yet.
 */
#ifndef HALOYD_WORKER_ACMECHALLENGE_H
#define HALOYD_WORKER_ACMECHALLENGE_H

#define ACMECHAL_PREFIX "/.well-known/acme-challenge/"

struct snap;
struct msg_head;

/* 1 when h asks for a challenge answer (GET or HEAD under the prefix). */
int acmechal_wanted(const struct msg_head *h);
/* The key authorisation s publishes for h's token, or NULL (answer 404). */
const char *acmechal_lookup(const struct snap *s, const struct msg_head *h);

#endif
