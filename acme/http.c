/*
 * One HTTPS exchange with the CA through libcurl: GET, HEAD or POST of
 * application/jose+json, the body bounded, the headers ACME needs kept
 * (Replay-Nonce, Location, Content-Type, Retry-After). The system's CAs are
 * trusted plus, when configured, an extra bundle (a private CA, pebble).
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "acme/acmechild.h"
#include "share/log.h"
#include "share/util.h"

#define HTTP_CONNECT_TIMEOUT_S 10L
#define HTTP_TIMEOUT_S 30L
#define RETRY_AFTER_MAX_S 86400u

int
acme_http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("libcurl initialisation failed");
		return -1;
	}
	return 0;
}

void
acme_http_cleanup(void)
{
	curl_global_cleanup();
}

void *
acme_http_new(void)
{
	return curl_easy_init();
}

void
acme_http_free(void *h)
{
	if (h != NULL)
		curl_easy_cleanup(h);
}

void
acme_resp_free(struct acme_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct acme_resp *r = arg;
	size_t n = size * nmemb;
	char *nb;

	if (n > ACME_HTTP_MAX_BODY - r->len)
		return 0;	/* libcurl fails the transfer */
	if ((nb = realloc(r->body, r->len + n + 1)) == NULL)
		return 0;
	memcpy(nb + r->len, p, n);
	r->body = nb;
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

uint64_t
acme_retry_after(const char *v, time_t now)
{
	struct tm tm;
	uint64_t s;
	time_t t;

	if (util_parse_u64(v, 0, UINT64_MAX, &s) == 0)
		return s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s;
	memset(&tm, 0, sizeof(tm));
	if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm) == NULL || (t = timegm(&tm)) <= now)
		return 0;
	return (uint64_t)(t - now) > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (uint64_t)(t - now);
}

static void
header_copy(char *dst, size_t size, const char *v, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t
on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct acme_resp *r = arg;
	size_t n = size * nmemb, klen, vlen;
	const char *colon, *v;
	char tmp[64];

	if ((colon = memchr(p, ':', n)) == NULL)
		return n;
	klen = (size_t)(colon - p);
	for (v = colon + 1; v < p + n && (*v == ' ' || *v == '\t'); v++)
		;
	for (vlen = (size_t)(p + n - v); vlen > 0 && isspace((unsigned char)v[vlen - 1]); vlen--)
		;
	if (klen == 12 && strncasecmp(p, "Replay-Nonce", klen) == 0)
		header_copy(r->nonce, sizeof(r->nonce), v, vlen);
	else if (klen == 8 && strncasecmp(p, "Location", klen) == 0)
		header_copy(r->location, sizeof(r->location), v, vlen);
	else if (klen == 12 && strncasecmp(p, "Content-Type", klen) == 0)
		header_copy(r->ctype, sizeof(r->ctype), v, vlen);
	else if (klen == 11 && strncasecmp(p, "Retry-After", klen) == 0) {
		header_copy(tmp, sizeof(tmp), v, vlen);
		r->retry_after_s = acme_retry_after(tmp, time(NULL));
	}
	return n;
}

/* Adds ca_file to the trust store libcurl loaded from the system. */
static CURLcode
on_ssl_ctx(CURL *curl, void *sslctx, void *arg)
{
	const char *ca_file = arg;

	(void)curl;
	if (X509_STORE_load_file(SSL_CTX_get_cert_store(sslctx), ca_file) != 1) {
		log_warnx("cannot load the CA bundle %s", ca_file);
		return CURLE_SSL_CACERT_BADFILE;
	}
	return CURLE_OK;
}

static int
http_setup(CURL *c, const char *url, const char *body, int head, const char *ca_file,
    struct acme_resp *r, struct curl_slist **hdrs)
{
	if ((*hdrs = curl_slist_append(NULL, "Content-Type: application/jose+json")) == NULL)
		return -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, HTTP_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "haloyd/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (ca_file != NULL && ca_file[0] != '\0') {
		curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, (void *)(uintptr_t)ca_file);
	}
	if (head)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	return 0;
}

int
acme_http(void *h, const char *url, const char *body, int head, const char *ca_file,
    struct acme_resp *r, char *err, size_t errlen)
{
	struct curl_slist *hdrs = NULL;
	CURLcode cc;
	CURL *c = h;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	/* The options go; the open connection and TLS session stay for the next request. */
	curl_easy_reset(c);
	if (http_setup(c, url, body, head, ca_file, r, &hdrs) == -1) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", url, curl_easy_strerror(cc));
		log_warnx("%s", err);
		acme_resp_free(r);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->body == NULL && (r->body = calloc(1, 1)) == NULL)
		goto out;
	log_debug("%s %s: %ld", head ? "HEAD" : body ? "POST" : "GET", url, r->status);
	rc = 0;
out:
	curl_slist_free_all(hdrs);
	return rc;
}
