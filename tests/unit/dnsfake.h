/*
 * DNS answers built for the unit tests of acme/dnsrdata.c and
 * acme/dnsauth.c (tests/unit/dnsfake.c): a question echoed and RRs whose
 * owner is the question (by a pointer) or a dotted name.
 */
#ifndef HALOYD_TEST_DNSFAKE_H
#define HALOYD_TEST_DNSFAKE_H

#include "acme/dns01.h"

struct dnsfake_rr {
	const char *owner;	/* NULL: a pointer to the question's name */
	uint16_t type;
	const uint8_t *rdata;
	size_t rdlen;
};

/* An answer to (qname, qtype) with id and rcode, the RRs in its answer section. */
size_t dnsfake_answer(uint8_t *m, size_t cap, uint16_t id, int rcode, const char *qname,
    uint16_t qtype, const struct dnsfake_rr *rr, size_t n);
/* A dotted name in wire form into out; its length. */
size_t dnsfake_name(uint8_t *out, const char *name);

#endif
