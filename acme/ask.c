/*
 * On-demand TLS in the ACME child: the GET of haloyd.conf's acme_ask URL
 * with ?domain=NAME (as Caddy's `ask`), which says whether a name a TLS
 * handshake carried may have a certificate. 200 is yes; any other status,
 * a transport error or the time bound is no. The master rate-limits the
 * asks; this bounds each one in time and reads no more than a little body.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "acme/acmechild.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"

#define ASK_CONNECT_TIMEOUT_MS 2000L
#define ASK_TIMEOUT_MS 5000L	/* the first client waits at most 30 s for ask and order */
#define ASK_BODY_MAX 4096	/* the body says nothing: only the status counts */

static size_t
ask_on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	size_t *seen = arg;

	(void)p;
	*seen += size * nmemb;
	return *seen > ASK_BODY_MAX ? 0 : size * nmemb;	/* 0 ends a chatty answer */
}

/* 1 when url?domain=name answered 200, else 0. */
static int
ask_get(const char *url, const char *name)
{
	char full[MSG_A_ASK_URL_MAX + HOSTNAME_MAX + 16];
	CURL *c = curl_easy_init();
	size_t seen = 0;
	long status = 0;
	CURLcode cc;

	if (c == NULL)
		return 0;
	/* name passed the master's host-name rules: letters, digits, '-' and '.' need no escaping. */
	snprintf(full, sizeof(full), "%s%cdomain=%s", url, strchr(url, '?') != NULL ? '&' : '?', name);
	curl_easy_setopt(c, CURLOPT_URL, full);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ASK_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ASK_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "haloyd/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ask_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &seen);
	if ((cc = curl_easy_perform(c)) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		log_warnx("acme_ask %s: %s", full, curl_easy_strerror(cc));
	curl_easy_cleanup(c);
	log_debug("acme_ask %s: %ld", full, status);
	return status == 200;
}

int
ask_on_msg(void *arg, struct ipc_msg *m)
{
	struct acme *a = arg;
	char url[MSG_A_ASK_URL_MAX + 1], name[HOSTNAME_MAX + 1], check[HOSTNAME_MAX + 1];
	uint8_t out[9];
	struct wbuf b;
	uint64_t id;
	struct cur c;

	cur_init(&c, m->data, m->h.len);
	id = cur_u64(&c);
	if (cur_str(&c, url, sizeof(url)) == -1 || cur_str(&c, name, sizeof(name)) == -1 ||
	    cur_end(&c) == -1 || !a->configured)
		return -1;
	/* The master checked it; a name that is not one would make another URL. */
	if (hostname_normalize_name(name, check) <= 0 || strcmp(check, name) != 0 || name[0] == '*')
		return -1;
	wb_init(&b, out, sizeof(out));
	wb_u64(&b, id);
	wb_u8(&b, (uint8_t)ask_get(url, name));
	return acme_send(a, MSG_A_ASK_RESULT, out, b.len);
}
