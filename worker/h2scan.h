/*
 * Frame boundaries in the bytes an HTTP/2 server session consumed. nghttp2
 * does not tell its callbacks where a header block ends; the HTTP/2 session
 * needs to know it after a pause (h2server.c: a request without :authority
 * or Host is answered 400 before nghttp2's own check resets it).
 */
#ifndef HALOYD_WORKER_H2SCAN_H
#define HALOYD_WORKER_H2SCAN_H

#include <stddef.h>
#include <stdint.h>

struct h2scan {
	uint64_t pos;		/* bytes scanned */
	uint64_t payload_end;	/* where the current frame's payload ends */
	uint64_t block_end;	/* where the current header block ends; 0: not in one */
	uint32_t skip;		/* preface bytes still to skip */
	uint8_t hd[9];		/* a frame header being gathered */
	uint8_t hdlen;
	uint8_t want_pad;	/* the next byte is a HEADERS frame's pad length */
};

/* A scanner for a server session: the client's 24-byte preface comes first. */
void h2scan_init(struct h2scan *sc);
/* The next n bytes nghttp2 consumed. */
void h2scan_feed(struct h2scan *sc, const uint8_t *p, size_t n);
/* 1 when the bytes scanned end a header block (its last field was the last byte before padding). */
int h2scan_block_done(const struct h2scan *sc);

#endif
