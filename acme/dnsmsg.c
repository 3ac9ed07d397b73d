/*
 * The DNS wire format the DNS-01 challenge needs (RFC 1035, RFC 2136):
 * queries and UPDATE messages built with uncompressed names, and a parser
 * for answers in which every count, length and compression pointer read
 * from the network is checked against the message's end.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "acme/dns01.h"

void
dnsmsg_u16(struct dns_buf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	dnsmsg_bytes(w, b, 2);
}

void
dnsmsg_u32(struct dns_buf *w, uint32_t v)
{
	dnsmsg_u16(w, (uint16_t)(v >> 16));
	dnsmsg_u16(w, (uint16_t)v);
}

void
dnsmsg_bytes(struct dns_buf *w, const void *p, size_t n)
{
	if (w->bad || n > sizeof(w->b) - w->len) {
		w->bad = 1;
		return;
	}
	memcpy(w->b + w->len, p, n);
	w->len += n;
}

void
dnsmsg_init(struct dns_buf *w, uint16_t id, uint16_t flags)
{
	memset(w, 0, sizeof(*w));
	dnsmsg_u16(w, id);
	dnsmsg_u16(w, flags);
	dnsmsg_u32(w, 0);
	dnsmsg_u32(w, 0);
}

void
dnsmsg_count(struct dns_buf *w, int i, uint16_t v)
{
	w->b[4 + 2 * i] = (uint8_t)(v >> 8);
	w->b[5 + 2 * i] = (uint8_t)v;
}

void
dnsmsg_name(struct dns_buf *w, const char *name)
{
	size_t start = w->len, n;
	const char *dot;
	uint8_t lab[64];

	while (*name != '\0') {
		dot = strchr(name, '.');
		n = dot != NULL ? (size_t)(dot - name) : strlen(name);
		if (n == 0 || n > 63) {
			w->bad = 1;
			return;
		}
		lab[0] = (uint8_t)n;
		for (size_t i = 0; i < n; i++)
			lab[i + 1] = (uint8_t)tolower((unsigned char)name[i]);
		dnsmsg_bytes(w, lab, n + 1);
		name += n + (dot != NULL);
	}
	dnsmsg_bytes(w, "", 1);
	if (!w->bad && w->len - start > DNS_NAME_MAX)
		w->bad = 1;
}

int
dnsmsg_query(struct dns_buf *w, uint16_t id, const char *name, uint16_t type)
{
	dnsmsg_init(w, id, 0);
	dnsmsg_count(w, 0, 1);
	dnsmsg_name(w, name);
	dnsmsg_u16(w, type);
	dnsmsg_u16(w, DNS_C_IN);
	return w->bad ? -1 : 0;
}

int
dnsmsg_update(struct dns_buf *w, uint16_t id, const char *zone, const char *name,
    const char *txt, uint32_t ttl, int add)
{
	size_t n = strlen(txt);

	if (n > 255)
		return -1;
	dnsmsg_init(w, id, DNS_OP_UPDATE << 11);
	dnsmsg_count(w, 0, 1);
	dnsmsg_count(w, 2, 1);
	dnsmsg_name(w, zone);		/* zone section: (zone, SOA, IN) */
	dnsmsg_u16(w, DNS_T_SOA);
	dnsmsg_u16(w, DNS_C_IN);
	dnsmsg_name(w, name);		/* update section: one TXT RR */
	dnsmsg_u16(w, DNS_T_TXT);
	dnsmsg_u16(w, add ? DNS_C_IN : DNS_C_NONE);
	dnsmsg_u32(w, add ? ttl : 0);	/* RFC 2136 section 2.5.4: TTL 0 on a delete */
	dnsmsg_u16(w, (uint16_t)(n + 1));
	dnsmsg_bytes(w, (uint8_t[]){ (uint8_t)n }, 1);
	dnsmsg_bytes(w, txt, n);
	return w->bad ? -1 : 0;
}

/* --- parsing */

static int
rd16(const uint8_t *m, size_t len, size_t off, uint16_t *v)
{
	if (off > len || len - off < 2)
		return -1;
	*v = (uint16_t)(m[off] << 8 | m[off + 1]);
	return 0;
}

/*
 * Pointers must point backwards (before the label that holds them) and
 * at most DNS_PTR_MAX are followed, so a loop cannot keep the parser.
 */
int
dnsmsg_read_name(const uint8_t *m, size_t len, size_t *off, char out[DNS_NAME_MAX + 2])
{
	size_t p = *off, o = 0, wire = 0, after = 0;
	int jumps = 0;

	for (;;) {
		if (p >= len)
			return -1;
		if ((m[p] & 0xc0) == 0xc0) {
			size_t to;
			if (p + 1 >= len || ++jumps > DNS_PTR_MAX)
				return -1;
			to = (size_t)(m[p] & 0x3f) << 8 | m[p + 1];
			if (after == 0)
				after = p + 2;
			if (to >= p)
				return -1;
			p = to;
			continue;
		}
		if ((m[p] & 0xc0) != 0)
			return -1;	/* the 0x40 and 0x80 label types are obsolete */
		size_t n = m[p];
		if ((wire += n + 1) > DNS_NAME_MAX || p + 1 + n > len)
			return -1;
		if (n == 0)
			break;
		if (o > 0)
			out[o++] = '.';
		for (size_t i = 0; i < n; i++)
			out[o++] = (char)tolower(m[p + 1 + i]);
		p += n + 1;
	}
	out[o] = '\0';
	*off = after != 0 ? after : p + 1;
	return 0;
}

static int
parse_rr(const uint8_t *m, size_t len, size_t *off, struct dns_rr *rr)
{
	uint16_t hi, lo, rdlen;

	rr->off = *off;
	if (dnsmsg_read_name(m, len, off, rr->name) == -1 || rd16(m, len, *off, &rr->type) == -1 ||
	    rd16(m, len, *off + 2, &rr->class) == -1 || rd16(m, len, *off + 4, &hi) == -1 ||
	    rd16(m, len, *off + 6, &lo) == -1 || rd16(m, len, *off + 8, &rdlen) == -1)
		return -1;
	rr->ttl = (uint32_t)hi << 16 | lo;
	rr->rdoff = *off + 10;
	rr->rdlen = rdlen;
	if (rr->rdoff > len || len - rr->rdoff < rdlen)
		return -1;
	*off = rr->rdoff + rdlen;
	return 0;
}

int
dnsmsg_parse(const uint8_t *m, size_t len, struct dns_msg *d)
{
	char name[DNS_NAME_MAX + 2];
	size_t off = 12, total;
	int i;

	memset(d, 0, sizeof(*d));
	if (len < 12)
		return -1;
	rd16(m, len, 0, &d->id);
	rd16(m, len, 2, &d->flags);
	for (i = 0; i < 4; i++)
		rd16(m, len, 4 + 2 * (size_t)i, &d->count[i]);
	for (i = 0; i < d->count[0]; i++)
		if (dnsmsg_read_name(m, len, &off, name) == -1 || off > len || len - off < 4)
			return -1;
		else
			off += 4;
	total = (size_t)d->count[1] + d->count[2] + d->count[3];
	if (total > DNS_RR_MAX)
		return -1;
	for (d->nrr = 0; d->nrr < total; d->nrr++)
		if (parse_rr(m, len, &off, &d->rr[d->nrr]) == -1)
			return -1;
	d->nan = d->count[1];
	return off == len ? 0 : -1;
}

int
dnsmsg_rcode(const struct dns_msg *d)
{
	return d->flags & 0x0f;
}

int
dnsmsg_same_name(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (n > 0 && b[n - 1] == '.')
		n--;
	return strncasecmp(a, b, n) == 0 && a[n] == '\0';
}

int
dnsmsg_has_txt(const uint8_t *m, const struct dns_msg *d, const char *name, const char *txt)
{
	size_t i, n = strlen(txt);

	for (i = 0; i < d->nan; i++) {
		const struct dns_rr *rr = &d->rr[i];
		if (rr->type != DNS_T_TXT || rr->class != DNS_C_IN ||
		    !dnsmsg_same_name(rr->name, name))
			continue;
		/* One character-string whose length byte covers the rest of RDATA. */
		if (rr->rdlen == n + 1 && m[rr->rdoff] == n && memcmp(m + rr->rdoff + 1, txt, n) == 0)
			return 1;
	}
	return 0;
}

int
dnsmsg_has_soa(const struct dns_msg *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->nan; i++)
		if (d->rr[i].type == DNS_T_SOA && dnsmsg_same_name(d->rr[i].name, name))
			return 1;
	return 0;
}
