/*
 * ACME Renewal Information (RFC 9773) in the child: a certificate's ARI
 * id, the GET of its renewal window from the directory's renewalInfo, and
 * the answer to the master (window, Retry-After). The master draws the
 * renewal time inside the window and keeps it in the store.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acme/acmechild.h"
#include "share/cursor.h"
#include "share/log.h"
#include "share/util.h"

#define ARI_RETRY_DEFAULT_S (6 * 3600)	/* RFC 9773 section 4.3.3: no Retry-After */
#define ARI_RETRY_FAILED_S 3600
#define ARI_SERIAL_MAX 64

char *
ari_cert_id(const char *leaf_pem)
{
	BIO *bio = BIO_new_mem_buf(leaf_pem, -1);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	const ASN1_OCTET_STRING *kid;
	const ASN1_INTEGER *sn;
	unsigned char der[ARI_SERIAL_MAX + 8], *p = der;
	char *a = NULL, *b = NULL, *out = NULL;
	int n, hl;

	if (x == NULL || (kid = X509_get0_authority_key_id(x)) == NULL ||
	    (sn = X509_get0_serialNumber(x)) == NULL || ASN1_STRING_length(sn) > ARI_SERIAL_MAX ||
	    (n = i2d_ASN1_INTEGER(sn, NULL)) <= 0 || n > (int)sizeof(der))
		goto out;
	/* The DER INTEGER's content octets: skip the tag and the (short) length. */
	n = i2d_ASN1_INTEGER(sn, &p);
	hl = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
	if (n <= hl || (a = jws_b64u(ASN1_STRING_get0_data(kid), (size_t)ASN1_STRING_length(kid))) ==
	    NULL || (b = jws_b64u(der + hl, (size_t)(n - hl))) == NULL ||
	    asprintf(&out, "%s.%s", a, b) == -1)
		out = NULL;
out:
	ERR_clear_error();
	free(a);
	free(b);
	X509_free(x);
	BIO_free(bio);
	return out;
}

/* An RFC 3339 time ("2025-01-02T04:00:00Z", fractions and offsets allowed) as unix seconds. */
static int
ari_time(const char *s, int64_t *out)
{
	struct tm tm;
	const char *p;
	int oh = 0, om = 0, sign = 0;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || (p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.')
		p += 1 + strspn(p + 1, "0123456789");
	if (*p == 'Z' || *p == 'z')
		p++;
	else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
		sign = *p == '+' ? 1 : -1;
		p += 6;
	} else
		return -1;
	if (*p != '\0')
		return -1;
	*out = (int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60);
	return 0;
}

int
ari_parse(const char *body, int64_t *start, int64_t *end, char **url)
{
	json_t *j = json_loads(body, 0, NULL), *w;
	const char *u;
	int rc = -1;

	*url = NULL;
	w = json_object_get(j, "suggestedWindow");
	if (ari_time(json_string_value(json_object_get(w, "start")), start) == 0 &&
	    ari_time(json_string_value(json_object_get(w, "end")), end) == 0 && *end >= *start) {
		if ((u = json_string_value(json_object_get(j, "explanationURL"))) != NULL)
			*url = strdup(u);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

static void
ari_send(struct acme *a, uint64_t route_id, int status, const char *id, int64_t start, int64_t end,
    uint64_t retry)
{
	uint8_t buf[64 + MSG_A_ARI_ID_MAX];
	struct wbuf b;

	wb_init(&b, buf, sizeof(buf));
	wb_u64(&b, route_id);
	wb_u8(&b, (uint8_t)status);
	wb_str(&b, id);
	wb_u64(&b, (uint64_t)start);
	wb_u64(&b, (uint64_t)end);
	wb_u32(&b, (uint32_t)retry);
	if (!b.bad)
		(void)acme_send(a, MSG_A_ARI, buf, b.len);
}

/* GETs url/id: 0 with the window, or -1 (logged) with *retry set. */
static int
ari_fetch(struct acme *a, const char *id, int64_t *start, int64_t *end, uint64_t *retry)
{
	char *url = NULL, *expl = NULL, err[256];
	struct acme_resp r;
	int rc = -1;

	*retry = ARI_RETRY_FAILED_S;
	if (asprintf(&url, "%s/%s", a->cl.dir.renewal_info, id) == -1)
		return -1;
	if (acme_http(a->cl.http, url, NULL, 0, a->cl.ca_file, &r, err, sizeof(err)) == -1) {
		log_warnx("ARI %s: %s", id, err);
		free(url);
		return -1;
	}
	if (r.retry_after_s > 0)
		*retry = r.retry_after_s;
	if (r.status != 200 || ari_parse(r.body, start, end, &expl) == -1)
		log_warnx("ARI %s: %s answered %ld without a usable suggestedWindow", id, url, r.status);
	else {
		if (r.retry_after_s == 0)
			*retry = ARI_RETRY_DEFAULT_S;
		log_info("ARI %s: window %lld..%lld, next poll in %llu s%s%s", id, (long long)*start,
		    (long long)*end, (unsigned long long)*retry, expl != NULL ? "; explanation: " : "",
		    expl != NULL ? expl : "");
		rc = 0;
	}
	free(expl);
	acme_resp_free(&r);
	free(url);
	return rc;
}

void
ari_request(struct acme *a, uint64_t route_id, const char *leaf_pem)
{
	struct acme_error e;
	int64_t start = 0, end = 0;
	uint64_t retry = ARI_RETRY_FAILED_S;
	char *id = NULL;
	int st = MSG_A_ARI_FAILED;

	memset(&e, 0, sizeof(e));
	if (acme_client_ready(&a->cl, &e) == -1)
		log_warnx("ARI: %s: %s", e.type, e.detail);
	else if (a->cl.dir.renewal_info == NULL)
		st = MSG_A_ARI_NONE;
	else if ((id = ari_cert_id(leaf_pem)) == NULL || strlen(id) > MSG_A_ARI_ID_MAX)
		log_warnx("ARI: the certificate has no usable Authority Key Identifier or serial");
	else if (ari_fetch(a, id, &start, &end, &retry) == 0)
		st = MSG_A_ARI_WINDOW;
	ari_send(a, route_id, st, id != NULL && strlen(id) <= MSG_A_ARI_ID_MAX ? id : "", start, end,
	    retry);
	free(id);
}
