/*
 * One certificate order (RFC 8555 section 7.4) as a state machine driven by
 * the child's loop: newOrder (with ARI's `replaces` and a profile when the
 * master asks and the directory offers them), then for each authorisation
 * the HTTP-01 or TLS-ALPN-01 challenge (token and key authorisation, or
 * the challenge certificate, to the master, wait for its CHAL_READY, then
 * ask the CA and poll with Retry-After; DNS-01: the TXT record through a
 * TSIG-signed UPDATE, wait until every server of the zone's NS set serves
 * it (acme/dnsauth.c), ask the CA, and
 * delete the record when the order ends, whatever the outcome), then a fresh P-256
 * key and CSR, finalize, poll, download, and chain + key to the master.
 * Every step is logged with HALOYD_DOMAIN so journalctl can follow a name.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "acme/acmechild.h"
#include "acme/dns01.h"
#include "acme/dnsauth.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/util.h"

#define POLL_DEFAULT_S 1	/* when the CA gives no Retry-After */
#define POLL_MAX_S 60
#define POLL_MAX_TRIES 300	/* at a second each, after the first quick ones */
#define ORDER_MAX_AUTHZ 100

enum order_state {
	ORD_AUTHZ,		/* working through the authorisations */
	ORD_WAIT_PUBLISH,	/* CHAL_ADD sent; waiting for the master's CHAL_READY */
	ORD_POLL_AUTHZ,		/* the CA validates */
	ORD_POLL_ORDER,		/* finalized; the CA issues */
	ORD_WAIT_DNS,		/* DNS-01: the TXT record is added; waiting until it is served */
};

struct acme_order {
	struct acme *a;
	uint64_t id;
	char **names;
	size_t nnames;
	enum order_state state;
	char *url;		/* the order's Location */
	char *finalize;
	char **authz;
	size_t nauthz, cur;
	char *chal_url, *token;
	EVP_PKEY *key;		/* the certificate key, made before finalize */
	struct order_opts op;	/* challenge type, replaces, profile */
	char profile[MSG_A_PROFILE_MAX + 1];	/* the profile newOrder carried, or "" */
	struct ev_timer timer;
	int polls;
	uint64_t started_ms;
	struct dns01_rec *dns;	/* DNS-01 records added, deleted when the order ends */
	size_t ndns;
	uint64_t dns_since_ms;
	struct dnsauth_set *auth;	/* the servers the last record is waited for at */
};

static void order_next_authz(struct acme_order *o);
static void order_finalize(struct acme_order *o);
static void order_on_timer(struct ev_loop *l, struct ev_timer *t);
static void order_dns_cleanup(struct acme_order *o);
static int order_dns_add(struct acme_order *o, const char *host, struct acme_error *e);
static int order_dns_servers(struct acme_order *o, const struct dns01_rec *rec,
    struct acme_error *e);

static void
order_log(struct acme_order *o, int prio, const char *fmt, ...)
{
	char dom[300], msg[1024];
	const char *fields[2] = { dom, NULL };
	va_list ap;

	snprintf(dom, sizeof(dom), "HALOYD_DOMAIN=%s", o->names[0]);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fields(prio, fields, "acme %s: %s", o->names[0], msg);
}

void
order_free(struct acme_order *o)
{
	size_t i;

	if (o == NULL)
		return;
	ev_timer_stop(o->a->loop, &o->timer);
	order_dns_cleanup(o);
	for (i = 0; i < o->nnames; i++)
		free(o->names[i]);
	for (i = 0; i < o->nauthz; i++)
		free(o->authz[i]);
	free(o->names);
	free(o->authz);
	free(o->url);
	free(o->finalize);
	free(o->chal_url);
	free(o->token);
	EVP_PKEY_free(o->key);
	free(o);
}

static void
order_end(struct acme_order *o)
{
	o->a->order = NULL;
	order_free(o);
}

static void
order_fail(struct acme_order *o, const struct acme_error *e)
{
	uint8_t buf[1024];
	struct wbuf b;

	order_log(o, LOG_WARNING, "order failed: %s: %s", e->type, e->detail);
	wb_init(&b, buf, sizeof(buf));
	wb_u64(&b, o->id);
	wb_str(&b, e->type);
	wb_str(&b, e->detail);
	wb_u32(&b, (uint32_t)e->retry_after_s);
	acme_send(o->a, MSG_A_FAIL, buf, b.len);
	/* A connection failure may mean a restarted CA: fetch the directory again. */
	if (strcmp(e->type, "connection") == 0)
		acme_client_reset(&o->a->cl);
	order_end(o);
}

/* POST-as-GET url and parse the JSON answer; NULL with e filled. */
static json_t *
order_get_json(struct acme_order *o, const char *url, struct acme_resp *r, struct acme_error *e)
{
	json_t *j;

	if (acme_post(&o->a->cl, url, NULL, r, e) == -1)
		return NULL;
	if ((j = json_loads(r->body, 0, NULL)) == NULL || !json_is_object(j)) {
		json_decref(j);
		acme_error_set(e, "malformed", "%s: the answer is not a JSON object", url);
		acme_resp_free(r);
		return NULL;
	}
	return j;
}

/*
 * The wait before the next poll: the CA's Retry-After, else 125 ms doubling
 * to POLL_DEFAULT_S, so a quick validation is seen at once and a slow one
 * costs a request a second at most.
 */
static uint64_t
poll_delay_ms(const struct acme_resp *r, int polls)
{
	uint64_t ms;

	if (r->retry_after_s > 0)
		return (r->retry_after_s > POLL_MAX_S ? POLL_MAX_S : r->retry_after_s) * 1000;
	ms = polls < 4 ? 125u << polls : POLL_DEFAULT_S * 1000;
	return ms > POLL_DEFAULT_S * 1000 ? POLL_DEFAULT_S * 1000 : ms;
}

static int
order_parse(struct acme_order *o, json_t *j)
{
	json_t *az = json_object_get(j, "authorizations"), *v;
	const char *fin = json_string_value(json_object_get(j, "finalize"));
	size_t i;

	if (fin == NULL || !json_is_array(az) || json_array_size(az) == 0 ||
	    json_array_size(az) > ORDER_MAX_AUTHZ)
		return -1;
	if ((o->finalize = strdup(fin)) == NULL ||
	    (o->authz = calloc(json_array_size(az), sizeof(char *))) == NULL)
		return -1;
	json_array_foreach(az, i, v) {
		if (!json_is_string(v) || (o->authz[i] = strdup(json_string_value(v))) == NULL)
			return -1;
		o->nauthz = i + 1;
	}
	return 0;
}

/* newOrder's optional members: the certificate it replaces (RFC 9773 section 5), the profile. */
static int
order_new_extras(struct acme_order *o, json_t *j)
{
	const struct acme_dir *d = &o->a->cl.dir;

	if (o->op.replaces[0] != '\0' && d->renewal_info != NULL &&
	    json_object_set_new(j, "replaces", json_string(o->op.replaces)) == -1)
		return -1;
	if (o->op.profile[0] == '\0')
		return 0;
	if (!acme_dir_has_profile(d, o->op.profile)) {
		order_log(o, LOG_WARNING, "the CA does not offer profile %s; ordering without one",
		    o->op.profile);
		return 0;
	}
	util_strlcpy(o->profile, o->op.profile, sizeof(o->profile));
	return json_object_set_new(j, "profile", json_string(o->op.profile));
}

static int
order_new(struct acme_order *o, struct acme_error *e)
{
	struct acme_resp r;
	json_t *ids, *j = NULL;
	char *payload = NULL;
	size_t i;
	int rc = -1;

	if ((ids = json_array()) == NULL)
		goto oom;
	for (i = 0; i < o->nnames; i++)
		json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns", "value", o->names[i]));
	if ((j = json_pack("{s:o}", "identifiers", ids)) == NULL || order_new_extras(o, j) == -1 ||
	    (payload = json_dumps(j, JSON_COMPACT)) == NULL)
		goto oom;
	json_decref(j);
	j = NULL;
	if (acme_post(&o->a->cl, o->a->cl.dir.new_order, payload, &r, e) == -1)
		goto out;
	if ((j = json_loads(r.body, 0, NULL)) == NULL || r.location[0] == '\0' ||
	    (o->url = strdup(r.location)) == NULL || order_parse(o, j) == -1)
		acme_error_set(e, "malformed", "newOrder: unusable answer");
	else
		rc = 0;
	acme_resp_free(&r);
	goto out;
oom:
	acme_error_set(e, "internal", "out of memory");
out:
	json_decref(j);
	free(payload);
	return rc;
}

/*
 * newOrder; a CA that refuses `replaces` (RFC 9773 section 5: alreadyReplaced, the old
 * certificate was replaced meanwhile) gets the order once more without it, so the refusal
 * cannot block the renewal for good.
 */
static int
order_new_once(struct acme_order *o, struct acme_error *e)
{
	if (order_new(o, e) == 0)
		return 0;
	if (o->op.replaces[0] == '\0' || strcmp(e->type, "alreadyReplaced") != 0)
		return -1;
	order_log(o, LOG_NOTICE, "the CA refused replaces %s (%s); ordering without it",
	    o->op.replaces, e->detail);
	o->op.replaces[0] = '\0';
	memset(e, 0, sizeof(*e));
	return order_new(o, e);
}

/* The account's thumbprint to the master, once: it publishes only answers that end with it. */
static int
order_account(struct acme *a, struct acme_error *e)
{
	uint8_t buf[2 + MSG_A_THUMBPRINT_LEN];
	struct wbuf b;

	if (a->account_sent)
		return 0;
	wb_init(&b, buf, sizeof(buf));
	wb_str(&b, a->cl.thumbprint);
	if (b.bad || acme_send(a, MSG_A_ACCOUNT, buf, b.len) == -1) {
		acme_error_set(e, "internal", "cannot tell the master the account's thumbprint");
		return -1;
	}
	a->account_sent = 1;
	return 0;
}

int
order_start(struct acme *a, uint64_t id, char **names, size_t n, const struct order_opts *op)
{
	struct acme_order *o;
	struct acme_error e;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	o->a = a;
	o->id = id;
	o->names = names;
	o->nnames = n;
	o->op = *op;
	o->started_ms = util_now_ms();
	ev_timer_init(&o->timer, order_on_timer, o);
	a->order = o;
	memset(&e, 0, sizeof(e));
	order_log(o, LOG_INFO, "order %llu for %zu name(s)", (unsigned long long)id, n);
	if (acme_client_ready(&a->cl, &e) == -1 || order_account(a, &e) == -1 ||
	    order_new_once(o, &e) == -1) {
		order_fail(o, &e);
		return 0;
	}
	order_log(o, LOG_INFO, "order created at %s with %zu authorisation(s)", o->url, o->nauthz);
	o->state = ORD_AUTHZ;
	order_next_authz(o);
	return 0;
}

static const char *
order_chal_name(const struct acme_order *o)
{
	if (o->op.chal == MSG_A_CHAL_DNS01)
		return "dns-01";
	return o->op.chal == MSG_A_CHAL_TLSALPN01 ? "tls-alpn-01" : "http-01";
}

/* Picks the challenge of the order's type in an authorisation object. */
static int
authz_challenge(struct acme_order *o, json_t *j, const char **host)
{
	json_t *chs = json_object_get(j, "challenges"), *ch;
	const char *type, *url, *token;
	size_t i;

	*host = json_string_value(json_object_get(json_object_get(j, "identifier"), "value"));
	json_array_foreach(chs, i, ch) {
		type = json_string_value(json_object_get(ch, "type"));
		url = json_string_value(json_object_get(ch, "url"));
		token = json_string_value(json_object_get(ch, "token"));
		if (type == NULL || strcmp(type, order_chal_name(o)) != 0 || url == NULL ||
		    token == NULL)
			continue;
		free(o->chal_url);
		free(o->token);
		o->chal_url = strdup(url);
		o->token = strdup(token);
		return o->chal_url != NULL && o->token != NULL && *host != NULL ? 0 : -1;
	}
	return -1;
}

/*
 * HTTP-01: token and key authorisation; TLS-ALPN-01: those and the
 * challenge certificate with its throwaway key, wiped once sent.
 */
static int
send_chal_add(struct acme_order *o, const char *host)
{
	uint8_t buf[2 * MSG_A_ALPN_CERT_MAX + 2048];
	char *keyauth, *cert = NULL, *key = NULL;
	struct wbuf b;
	int rc = -1;

	if (strlen(o->token) > MSG_A_TOKEN_MAX || strlen(host) > MSG_NAME_MAX ||
	    asprintf(&keyauth, "%s.%s", o->token, o->a->cl.thumbprint) == -1)
		return -1;
	wb_init(&b, buf, sizeof(buf));
	wb_u64(&b, o->id);
	wb_str(&b, host);
	wb_str(&b, o->token);
	wb_str(&b, keyauth);
	if (o->op.chal == MSG_A_CHAL_TLSALPN01) {
		if (alpncert_make(host, keyauth, &cert, &key) == -1 ||
		    strlen(cert) > MSG_A_ALPN_CERT_MAX || strlen(key) > MSG_A_ALPN_CERT_MAX)
			goto out;
		wb_str(&b, cert);
		wb_str(&b, key);
	}
	if (!b.bad)
		rc = acme_send(o->a, o->op.chal == MSG_A_CHAL_TLSALPN01 ? MSG_A_CHAL_ALPN :
		    MSG_A_CHAL_ADD, buf, b.len);
out:
	explicit_bzero(buf, sizeof(buf));
	if (key != NULL)
		explicit_bzero(key, strlen(key));
	free(key);
	free(cert);
	free(keyauth);
	return rc;
}

/* One authorisation: skip it when valid, else publish its HTTP-01 answer. */
static int
authz_step(struct acme_order *o, struct acme_error *e)
{
	struct acme_resp r;
	const char *status, *host;
	json_t *j;
	int rc = -1;

	if ((j = order_get_json(o, o->authz[o->cur], &r, e)) == NULL)
		return -1;
	status = json_string_value(json_object_get(j, "status"));
	if (status != NULL && strcmp(status, "valid") == 0) {
		o->cur++;
		rc = 1;
	} else if (status == NULL || strcmp(status, "pending") != 0)
		acme_error_set(e, "unauthorized", "authorisation %s is %s", o->authz[o->cur],
		    status ? status : "without a status");
	else if (authz_challenge(o, j, &host) == -1)
		acme_error_set(e, "unsupported", "the CA offers no %s challenge", order_chal_name(o));
	else if (o->op.chal == MSG_A_CHAL_DNS01)
		rc = order_dns_add(o, host, e);
	else if (send_chal_add(o, host) == -1)
		acme_error_set(e, "internal", "cannot send the challenge to the master");
	else {
		order_log(o, LOG_INFO, "publishing the %s answer for %s", order_chal_name(o), host);
		o->state = ORD_WAIT_PUBLISH;
		rc = 0;
	}
	json_decref(j);
	acme_resp_free(&r);
	return rc;
}

static void
order_next_authz(struct acme_order *o)
{
	struct acme_error e;
	int rc;

	memset(&e, 0, sizeof(e));
	while (o->cur < o->nauthz) {
		if ((rc = authz_step(o, &e)) == -1) {
			order_fail(o, &e);
			return;
		}
		if (rc == 0)
			return;	/* waiting for the master */
	}
	order_finalize(o);
}

/* The reason of a failed challenge, from the authorisation object. */
static void
authz_error(json_t *j, struct acme_error *e)
{
	json_t *chs = json_object_get(j, "challenges"), *ch, *err;
	const char *type, *detail;
	size_t i;

	acme_error_set(e, "unauthorized", "the authorisation is invalid");
	json_array_foreach(chs, i, ch) {
		if ((err = json_object_get(ch, "error")) == NULL)
			continue;
		type = json_string_value(json_object_get(err, "type"));
		detail = json_string_value(json_object_get(err, "detail"));
		if (type != NULL && strncmp(type, "urn:ietf:params:acme:error:", 27) == 0)
			type += 27;
		acme_error_set(e, type ? type : "unauthorized", "%s", detail ? detail : "no detail");
		return;
	}
}

static void
poll_authz(struct acme_order *o)
{
	struct acme_error e;
	struct acme_resp r;
	const char *status;
	json_t *j;

	memset(&e, 0, sizeof(e));
	if ((j = order_get_json(o, o->authz[o->cur], &r, &e)) == NULL) {
		order_fail(o, &e);
		return;
	}
	status = json_string_value(json_object_get(j, "status"));
	if (status != NULL && strcmp(status, "valid") == 0) {
		order_log(o, LOG_INFO, "authorisation %zu of %zu valid", o->cur + 1, o->nauthz);
		o->cur++;
		o->state = ORD_AUTHZ;
		o->polls = 0;
		json_decref(j);
		acme_resp_free(&r);
		order_next_authz(o);
		return;
	}
	if (status == NULL || (strcmp(status, "pending") != 0 && strcmp(status, "processing") != 0))
		authz_error(j, &e);
	else if (++o->polls > POLL_MAX_TRIES)
		acme_error_set(&e, "timeout", "the CA did not validate in time");
	else
		ev_timer_start(o->a->loop, &o->timer, poll_delay_ms(&r, o->polls));
	json_decref(j);
	acme_resp_free(&r);
	if (e.type[0] != '\0')
		order_fail(o, &e);
}

/* The answer is in place: the CA may look. */
static void
order_validate(struct acme_order *o)
{
	struct acme *a = o->a;
	struct acme_error e;
	struct acme_resp r;

	memset(&e, 0, sizeof(e));
	if (acme_post(&a->cl, o->chal_url, "{}", &r, &e) == -1) {
		order_fail(o, &e);
		return;
	}
	acme_resp_free(&r);
	o->state = ORD_POLL_AUTHZ;
	o->polls = 0;
	ev_timer_start(a->loop, &o->timer, 0);
}

void
order_chal_ready(struct acme *a, const char *token)
{
	struct acme_order *o = a->order;

	if (o == NULL || o->state != ORD_WAIT_PUBLISH || strcmp(token, o->token) != 0) {
		log_warnx("CHAL_READY for a challenge no order waits for");
		return;
	}
	order_log(o, LOG_INFO, "every worker serves the challenge; asking the CA to validate");
	order_validate(o);
}

/* --- DNS-01 */

/*
 * Adds _acme-challenge.HOST TXT (a wildcard's authorisation names the base
 * domain, so "*.example.com" and "example.com" share the name with two
 * values) and waits for every server of the zone to serve it. 0 (waiting) or -1.
 */
static int
order_dns_add(struct acme_order *o, const char *host, struct acme_error *e)
{
	struct dns01_rec *rec, *nv;
	char *keyauth, err[300];

	if (!o->a->dns.on) {
		acme_error_set(e, "internal", "dns-01 without dns_update_server");
		return -1;
	}
	if ((nv = realloc(o->dns, (o->ndns + 1) * sizeof(*nv))) == NULL)
		goto oom;
	o->dns = nv;
	rec = &o->dns[o->ndns];
	memset(rec, 0, sizeof(*rec));
	if (asprintf(&keyauth, "%s.%s", o->token, o->a->cl.thumbprint) == -1)
		goto oom;
	if (dns01_txt_value(keyauth, rec->txt) == -1 ||
	    (size_t)snprintf(rec->name, sizeof(rec->name), "_acme-challenge.%s", host) >=
	    sizeof(rec->name)) {
		free(keyauth);
		acme_error_set(e, "internal", "%s: no TXT value", host);
		return -1;
	}
	free(keyauth);
	if (dns01_zone(&o->a->dns, rec->name, rec->zone, err, sizeof(err)) == -1 ||
	    dns01_update(&o->a->dns, rec->zone, rec->name, rec->txt, 1, err, sizeof(err)) == -1) {
		acme_error_set(e, "dns", "adding TXT %s at %s: %s", rec->name, o->a->dns.server, err);
		return -1;
	}
	o->ndns++;
	if (order_dns_servers(o, rec, e) == -1)
		return -1;
	o->state = ORD_WAIT_DNS;
	o->polls = 0;
	o->dns_since_ms = util_now_ms();
	ev_timer_start(o->a->loop, &o->timer, 0);
	return 0;
oom:
	acme_error_set(e, "internal", "out of memory");
	return -1;
}

/*
 * The servers the record just added must serve before the CA is asked:
 * the update server and the zone's NS set (dnsauth.c).
 */
static int
order_dns_servers(struct acme_order *o, const struct dns01_rec *rec, struct acme_error *e)
{
	char err[400], list[1024];

	if (o->auth == NULL && (o->auth = malloc(sizeof(*o->auth))) == NULL) {
		acme_error_set(e, "internal", "out of memory");
		return -1;
	}
	if (dnsauth_find(&o->a->dns, &dnsauth_net, rec->zone, o->auth, err, sizeof(err)) == -1) {
		acme_error_set(e, "dns", "%s", err);
		return -1;
	}
	dnsauth_list(o->auth, 0, list, sizeof(list));
	order_log(o, LOG_INFO, "added TXT %s in zone %s at %s; waiting until it is served by %zu "
	    "server%s: %s", rec->name, rec->zone, o->a->dns.server, o->auth->n,
	    o->auth->n == 1 ? "" : "s", list);
	return 0;
}

/* The last record added is served everywhere (or not yet: each server has its back-off). */
static void
poll_dns(struct acme_order *o)
{
	const struct dns01_rec *rec = &o->dns[o->ndns - 1];
	struct acme_error e;
	char list[1024];
	uint64_t now = util_now_ms(), due;

	if (dnsauth_poll(&dnsauth_net, o->auth, rec->name, rec->txt, now) == 1) {
		order_log(o, LOG_INFO, "%s is served by every server; asking the CA to validate",
		    rec->name);
		order_validate(o);
		return;
	}
	now = util_now_ms();	/* the polls took time */
	if (now - o->dns_since_ms > o->a->dns.wait_ms) {
		dnsauth_list(o->auth, 1, list, sizeof(list));
		memset(&e, 0, sizeof(e));
		acme_error_set(&e, "dns", "TXT %s not served after %u s by %s", rec->name,
		    o->a->dns.wait_ms / 1000, list);
		order_fail(o, &e);
		return;
	}
	due = dnsauth_next_due(o->auth);
	ev_timer_start(o->a->loop, &o->timer, due > now ? due - now : 0);
}

/* Every record the order added goes, whether it was issued or failed. */
static void
order_dns_cleanup(struct acme_order *o)
{
	char err[300];
	size_t i;

	for (i = 0; i < o->ndns; i++) {
		if (dns01_update(&o->a->dns, o->dns[i].zone, o->dns[i].name, o->dns[i].txt, 0,
		    err, sizeof(err)) == -1)
			order_log(o, LOG_WARNING, "cannot delete TXT %s at %s: %s", o->dns[i].name,
			    o->a->dns.server, err);
		else
			order_log(o, LOG_INFO, "deleted TXT %s", o->dns[i].name);
	}
	free(o->dns);
	o->dns = NULL;
	o->ndns = 0;
	free(o->auth);
	o->auth = NULL;
}

static int
send_cert(struct acme_order *o, const char *chain)
{
	uint8_t *buf;
	char *key = NULL;
	BIO *bio;
	struct wbuf b;
	long n;
	int rc = -1;

	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PrivateKey(bio, o->key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (n = BIO_get_mem_data(bio, &key)) <= 0 || strlen(chain) > MSG_A_CHAIN_MAX || n > MSG_A_KEY_MAX ||
	    (buf = malloc(IPC_MAX_PAYLOAD)) == NULL) {
		BIO_free(bio);
		return -1;
	}
	key[n - 1] = '\0';	/* the PEM's last newline: the buffer is ours to end */
	wb_init(&b, buf, IPC_MAX_PAYLOAD);
	wb_u64(&b, o->id);
	wb_str(&b, chain);
	wb_str(&b, key);
	wb_str(&b, o->profile);
	if (!b.bad)
		rc = acme_send(o->a, MSG_A_CERT, buf, b.len);
	explicit_bzero(buf, b.len);
	free(buf);
	BIO_free(bio);
	return rc;
}

static void
order_download(struct acme_order *o, const char *url)
{
	struct acme_error e;
	struct acme_resp r;

	memset(&e, 0, sizeof(e));
	if (acme_post(&o->a->cl, url, NULL, &r, &e) == -1) {
		order_fail(o, &e);
		return;
	}
	if (strstr(r.body, "-----BEGIN CERTIFICATE-----") == NULL)
		acme_error_set(&e, "malformed", "the certificate is not PEM");
	else if (send_cert(o, r.body) == -1)
		acme_error_set(&e, "internal", "cannot send the certificate to the master");
	acme_resp_free(&r);
	if (e.type[0] != '\0') {
		order_fail(o, &e);
		return;
	}
	order_log(o, LOG_NOTICE, "certificate issued in %llu ms",
	    (unsigned long long)(util_now_ms() - o->started_ms));
	order_end(o);
}

static void
poll_order(struct acme_order *o)
{
	struct acme_error e;
	struct acme_resp r;
	const char *status, *cert;
	char *url = NULL;
	json_t *j;

	memset(&e, 0, sizeof(e));
	if ((j = order_get_json(o, o->url, &r, &e)) == NULL) {
		order_fail(o, &e);
		return;
	}
	status = json_string_value(json_object_get(j, "status"));
	cert = json_string_value(json_object_get(j, "certificate"));
	if (status != NULL && strcmp(status, "valid") == 0 && cert != NULL)
		url = strdup(cert);
	else if (status == NULL || strcmp(status, "processing") != 0)
		acme_error_set(&e, "orderNotReady", "the order is %s", status ? status : "broken");
	else if (++o->polls > POLL_MAX_TRIES)
		acme_error_set(&e, "timeout", "the CA did not issue in time");
	else
		ev_timer_start(o->a->loop, &o->timer, poll_delay_ms(&r, o->polls));
	json_decref(j);
	acme_resp_free(&r);
	if (e.type[0] != '\0')
		order_fail(o, &e);
	else if (url != NULL)
		order_download(o, url);
	free(url);
}

static void
order_finalize(struct acme_order *o)
{
	struct acme_error e;
	struct acme_resp r;
	char *csr = NULL, *payload = NULL;

	memset(&e, 0, sizeof(e));
	if ((o->key = jws_key_new()) == NULL || (csr = jws_csr(o->key, o->names, o->nnames)) == NULL ||
	    asprintf(&payload, "{\"csr\":\"%s\"}", csr) == -1) {
		payload = NULL;
		acme_error_set(&e, "internal", "cannot make the key and CSR");
		goto out;
	}
	order_log(o, LOG_INFO, "every name is authorised; finalizing");
	if (acme_post(&o->a->cl, o->finalize, payload, &r, &e) == 0)
		acme_resp_free(&r);
out:
	free(csr);
	free(payload);
	if (e.type[0] != '\0') {
		order_fail(o, &e);
		return;
	}
	o->state = ORD_POLL_ORDER;
	o->polls = 0;
	poll_order(o);	/* may end the order: o is not used after it */
}

/* The order's timer: the next poll of whatever the CA is working on. */
static void
order_on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct acme_order *o = t->arg;

	(void)l;
	if (o->state == ORD_POLL_AUTHZ)
		poll_authz(o);
	else if (o->state == ORD_POLL_ORDER)
		poll_order(o);
	else if (o->state == ORD_WAIT_DNS)
		poll_dns(o);
}
