/*
 * TSIG (RFC 8945) with HMAC-SHA256: signing the child's requests and
 * checking the server's signed answers (the request's MAC chained in, as
 * section 4.3.1 says). The only algorithm: BIND's default for new keys,
 * and what `tsig-keygen` writes.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "acme/dns01.h"

#define TSIG_ALG "hmac-sha256"
#define TSIG_MAC_LEN 32

static const char *const tsig_errors[] = {
	[16] = "BADSIG", [17] = "BADKEY", [18] = "BADTIME", [22] = "BADTRUNC",
};

/* The TSIG variables (section 4.3.3) after what the MAC already covers. */
static void
tsig_vars(struct dns_buf *v, const struct tsig_key *k, uint64_t t, uint16_t fudge, uint16_t error)
{
	dnsmsg_name(v, k->name);
	dnsmsg_u16(v, DNS_C_ANY);
	dnsmsg_u32(v, 0);
	dnsmsg_name(v, TSIG_ALG);
	dnsmsg_u16(v, (uint16_t)(t >> 32));
	dnsmsg_u32(v, (uint32_t)t);
	dnsmsg_u16(v, fudge);
	dnsmsg_u16(v, error);
	dnsmsg_u16(v, 0);	/* other data: none (only BADTIME answers carry it) */
}

/* HMAC-SHA256 over the parts, in order. */
static int
tsig_hmac(const struct tsig_key *k, const void *const *p, const size_t *n, int parts,
    uint8_t out[TSIG_MAC_LEN])
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	size_t outl = 0;
	int i, rc = -1;

	if (ctx == NULL || EVP_MAC_init(ctx, k->secret, k->len, params) != 1)
		goto out;
	for (i = 0; i < parts; i++)
		if (n[i] > 0 && EVP_MAC_update(ctx, p[i], n[i]) != 1)
			goto out;
	if (EVP_MAC_final(ctx, out, &outl, TSIG_MAC_LEN) == 1 && outl == TSIG_MAC_LEN)
		rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

/* Appends the TSIG RR (section 4.2) carrying mac; its RDLENGTH is patched in after. */
static void
tsig_rr(struct dns_buf *w, const struct tsig_key *k, uint64_t now, const uint8_t *mac,
    uint16_t id)
{
	size_t rdlen_at, start;

	dnsmsg_name(w, k->name);
	dnsmsg_u16(w, DNS_T_TSIG);
	dnsmsg_u16(w, DNS_C_ANY);
	dnsmsg_u32(w, 0);
	rdlen_at = w->len;
	dnsmsg_u16(w, 0);
	start = w->len;
	dnsmsg_name(w, TSIG_ALG);
	dnsmsg_u16(w, (uint16_t)(now >> 32));
	dnsmsg_u32(w, (uint32_t)now);
	dnsmsg_u16(w, DNS_TSIG_FUDGE);
	dnsmsg_u16(w, TSIG_MAC_LEN);
	dnsmsg_bytes(w, mac, TSIG_MAC_LEN);
	dnsmsg_u16(w, id);	/* original id: the header's */
	dnsmsg_u16(w, 0);	/* error */
	dnsmsg_u16(w, 0);	/* other len */
	if (w->bad)
		return;
	w->b[rdlen_at] = (uint8_t)((w->len - start) >> 8);
	w->b[rdlen_at + 1] = (uint8_t)(w->len - start);
}

int
tsig_sign(struct dns_buf *w, const struct tsig_key *k, uint64_t now, uint8_t mac[TSIG_MAC_LEN])
{
	struct dns_buf v;
	const void *p[2];
	size_t n[2];
	uint16_t ar;

	if (w->bad || w->len < 12)
		return -1;
	memset(&v, 0, sizeof(v));
	tsig_vars(&v, k, now, DNS_TSIG_FUDGE, 0);
	p[0] = w->b;
	n[0] = w->len;
	p[1] = v.b;
	n[1] = v.len;
	if (v.bad || tsig_hmac(k, p, n, 2, mac) == -1)
		return -1;
	ar = (uint16_t)(w->b[10] << 8 | w->b[11]);
	tsig_rr(w, k, now, mac, (uint16_t)(w->b[0] << 8 | w->b[1]));
	if (w->bad)
		return -1;
	dnsmsg_count(w, 3, (uint16_t)(ar + 1));
	return 0;
}

/* The TSIG RR's RDATA fields; -1 when they do not fit its RDLENGTH. */
struct tsig_rd {
	char alg[DNS_NAME_MAX + 2];
	uint64_t time;
	uint16_t fudge, maclen, orig_id, error;
	const uint8_t *mac;
};

static int
tsig_read(const uint8_t *m, const struct dns_rr *rr, struct tsig_rd *t)
{
	size_t off = rr->rdoff, end = rr->rdoff + rr->rdlen;
	const uint8_t *p;

	if (dnsmsg_read_name(m, end, &off, t->alg) == -1 || end - off < 10)
		return -1;
	p = m + off;
	t->time = (uint64_t)(p[0] << 8 | p[1]) << 32 | (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 |
	    (uint32_t)p[4] << 8 | p[5];
	t->fudge = (uint16_t)(p[6] << 8 | p[7]);
	t->maclen = (uint16_t)(p[8] << 8 | p[9]);
	off += 10;
	if (end - off < (size_t)t->maclen + 6)
		return -1;
	t->mac = m + off;
	off += t->maclen;
	t->orig_id = (uint16_t)(m[off] << 8 | m[off + 1]);
	t->error = (uint16_t)(m[off + 2] << 8 | m[off + 3]);
	return 0;
}

int
tsig_verify(const uint8_t *m, size_t len, const struct dns_msg *d, const struct tsig_key *k,
    const uint8_t reqmac[TSIG_MAC_LEN], uint64_t now, char *err, size_t errlen)
{
	uint8_t head[12], calc[TSIG_MAC_LEN], ml[2] = { 0, TSIG_MAC_LEN };
	const struct dns_rr *rr;
	struct dns_buf v;
	struct tsig_rd t;
	const void *p[5];
	size_t n[5];

	if (d->count[3] == 0 || d->nrr == 0 || (rr = &d->rr[d->nrr - 1])->type != DNS_T_TSIG) {
		snprintf(err, errlen, "the answer is not signed");
		return -1;
	}
	/* d comes from dnsmsg_parse over these len bytes: the RR lies inside them. */
	if (rr->off < 12 || rr->off > len || tsig_read(m, rr, &t) == -1 || strcmp(t.alg, TSIG_ALG) != 0 ||
	    strcasecmp(rr->name, k->name) != 0) {
		snprintf(err, errlen, "the answer's TSIG is malformed or for another key");
		return -1;
	}
	if (t.error != 0) {
		snprintf(err, errlen, "the server refused our TSIG: %s", t.error < 23 &&
		    tsig_errors[t.error] != NULL ? tsig_errors[t.error] : "error");
		return -1;
	}
	if ((now > t.time ? now - t.time : t.time - now) > t.fudge || t.maclen != TSIG_MAC_LEN) {
		snprintf(err, errlen, "the answer's TSIG time or MAC size is wrong");
		return -1;
	}
	/* The header as it was before the TSIG was added: ARCOUNT - 1, the original id. */
	memcpy(head, m, 12);
	head[0] = (uint8_t)(t.orig_id >> 8);
	head[1] = (uint8_t)t.orig_id;
	head[10] = (uint8_t)((d->count[3] - 1) >> 8);
	head[11] = (uint8_t)(d->count[3] - 1);
	memset(&v, 0, sizeof(v));
	tsig_vars(&v, k, t.time, t.fudge, t.error);
	p[0] = ml; n[0] = 2;
	p[1] = reqmac; n[1] = TSIG_MAC_LEN;
	p[2] = head; n[2] = 12;
	p[3] = m + 12; n[3] = rr->off - 12;
	p[4] = v.b; n[4] = v.len;
	if (v.bad || tsig_hmac(k, p, n, 5, calc) == -1 ||
	    CRYPTO_memcmp(calc, t.mac, TSIG_MAC_LEN) != 0) {
		snprintf(err, errlen, "the answer's TSIG MAC does not match");
		return -1;
	}
	return 0;
}
