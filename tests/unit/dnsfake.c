/* DNS answers built for the unit tests of DNS-01's NS wait (see dnsfake.h). */
#include "config.h"

#include <check.h>
#include <string.h>

#include "tests/unit/dnsfake.h"

size_t
dnsfake_name(uint8_t *out, const char *name)
{
	struct dns_buf w;

	memset(&w, 0, sizeof(w));
	dnsmsg_name(&w, name);
	ck_assert_int_eq(w.bad, 0);
	memcpy(out, w.b, w.len);
	return w.len;
}

size_t
dnsfake_answer(uint8_t *m, size_t cap, uint16_t id, int rcode, const char *qname,
    uint16_t qtype, const struct dnsfake_rr *rr, size_t n)
{
	static const uint8_t ptr[2] = { 0xc0, 12 };
	struct dns_buf w;
	size_t i;

	dnsmsg_init(&w, id, (uint16_t)(0x8400 | rcode));
	dnsmsg_count(&w, 0, 1);
	dnsmsg_count(&w, 1, (uint16_t)n);
	dnsmsg_name(&w, qname);
	dnsmsg_u16(&w, qtype);
	dnsmsg_u16(&w, DNS_C_IN);
	for (i = 0; i < n; i++) {
		if (rr[i].owner == NULL)
			dnsmsg_bytes(&w, ptr, 2);
		else
			dnsmsg_name(&w, rr[i].owner);
		dnsmsg_u16(&w, rr[i].type);
		dnsmsg_u16(&w, DNS_C_IN);
		dnsmsg_u32(&w, 60);
		dnsmsg_u16(&w, (uint16_t)rr[i].rdlen);
		dnsmsg_bytes(&w, rr[i].rdata, rr[i].rdlen);
	}
	ck_assert_int_eq(w.bad, 0);
	ck_assert_uint_le(w.len, cap);
	memcpy(m, w.b, w.len);
	return w.len;
}
