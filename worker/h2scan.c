/*
 * Frame boundaries in the bytes an HTTP/2 server session consumed (see
 * h2scan.h): it reads only frame headers and a HEADERS frame's pad length,
 * and steps over every payload, so it costs a few operations per frame.
 */
#include "config.h"

#include <string.h>

#include "worker/h2scan.h"

#define H2SCAN_PREFACE 24
#define H2SCAN_HEADERS 0x1
#define H2SCAN_CONTINUATION 0x9
#define H2SCAN_END_HEADERS 0x4
#define H2SCAN_PADDED 0x8

void
h2scan_init(struct h2scan *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->skip = H2SCAN_PREFACE;
}

/* A frame header is complete: where its payload, and a header block it ends, end. */
static void
h2scan_header(struct h2scan *sc)
{
	uint32_t len = (uint32_t)sc->hd[0] << 16 | (uint32_t)sc->hd[1] << 8 | sc->hd[2];
	uint8_t type = sc->hd[3], flags = sc->hd[4];

	sc->hdlen = 0;
	sc->payload_end = sc->pos + len;
	sc->block_end = 0;
	if ((type != H2SCAN_HEADERS && type != H2SCAN_CONTINUATION) ||
	    !(flags & H2SCAN_END_HEADERS))
		return;
	sc->block_end = sc->payload_end;
	/* The pad length is the payload's first byte; a frame too short for it is nghttp2's error. */
	sc->want_pad = type == H2SCAN_HEADERS && (flags & H2SCAN_PADDED) && len > 0;
}

void
h2scan_feed(struct h2scan *sc, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t k;

		if (sc->skip > 0) {
			k = n < sc->skip ? n : sc->skip;
			sc->skip -= (uint32_t)k;
		} else if (sc->want_pad) {
			sc->want_pad = 0;
			sc->block_end = *p < sc->block_end - sc->pos ? sc->block_end - *p : 0;
			k = 1;
		} else if (sc->pos < sc->payload_end) {
			k = sc->payload_end - sc->pos < n ? (size_t)(sc->payload_end - sc->pos) : n;
		} else {
			sc->hd[sc->hdlen++] = *p;
			sc->pos++;
			p++;
			n--;
			if (sc->hdlen == sizeof(sc->hd))
				h2scan_header(sc);
			continue;
		}
		sc->pos += k;
		p += k;
		n -= k;
	}
}

int
h2scan_block_done(const struct h2scan *sc)
{
	return sc->block_end != 0 && sc->pos == sc->block_end && sc->hdlen == 0;
}
