/*
 * The ACME protocol layer (RFC 8555 sections 7.1-7.3): the directory, the
 * nonce kept from the last answer (a fresh one from newNonce otherwise, and
 * one retry on badNonce), signed POSTs, problem documents, and the account:
 * registered once, its URL kept in account.url next to the key.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "acme/acmechild.h"
#include "share/log.h"
#include "share/util.h"

#define ACME_ERR_PREFIX "urn:ietf:params:acme:error:"

void
acme_client_reset(struct acme_client *c)
{
	free(c->dir.new_nonce);
	free(c->dir.new_account);
	free(c->dir.new_order);
	free(c->dir.renewal_info);
	while (c->dir.nprofiles > 0)
		free(c->dir.profiles[--c->dir.nprofiles]);
	memset(&c->dir, 0, sizeof(c->dir));
	c->nonce[0] = '\0';
}

static char *
json_strdup(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? strdup(s) : NULL;
}

int
acme_dir_has_profile(const struct acme_dir *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->nprofiles; i++)
		if (strcmp(d->profiles[i], name) == 0)
			return 1;
	return 0;
}

/* The optional parts: ARI's renewalInfo and meta.profiles (draft-ietf-acme-profiles). */
static void
client_directory_extras(struct acme_client *c, json_t *j)
{
	json_t *profiles = json_object_get(json_object_get(j, "meta"), "profiles");
	const char *k;
	json_t *v;

	c->dir.renewal_info = json_strdup(j, "renewalInfo");
	json_object_foreach(profiles, k, v) {
		if (c->dir.nprofiles == ACME_DIR_PROFILES_MAX || strlen(k) > MSG_A_PROFILE_MAX)
			break;
		if ((c->dir.profiles[c->dir.nprofiles] = strdup(k)) == NULL)
			break;
		c->dir.nprofiles++;
	}
	if (c->dir.renewal_info != NULL || c->dir.nprofiles > 0)
		log_info("directory: %s, %zu profile(s)", c->dir.renewal_info != NULL ?
		    "renewal information (ARI)" : "no ARI", c->dir.nprofiles);
}

static int
client_directory(struct acme_client *c, struct acme_error *e)
{
	struct acme_resp r;
	json_t *j = NULL;
	int rc = -1;

	if (c->dir.new_order != NULL)
		return 0;
	if (acme_http(c->http, c->directory_url, NULL, 0, c->ca_file, &r, e->detail, sizeof(e->detail)) == -1) {
		util_strlcpy(e->type, "connection", sizeof(e->type));
		return -1;
	}
	if (r.status != 200 || (j = json_loads(r.body, 0, NULL)) == NULL) {
		acme_error_set(e, "directory", "%s answered %ld, not a directory", c->directory_url,
		    r.status);
		goto out;
	}
	c->dir.new_nonce = json_strdup(j, "newNonce");
	c->dir.new_account = json_strdup(j, "newAccount");
	c->dir.new_order = json_strdup(j, "newOrder");
	if (c->dir.new_nonce == NULL || c->dir.new_account == NULL || c->dir.new_order == NULL) {
		acme_error_set(e, "directory", "the directory lacks newNonce/newAccount/newOrder");
		acme_client_reset(c);
		goto out;
	}
	client_directory_extras(c, j);
	rc = 0;
out:
	json_decref(j);
	acme_resp_free(&r);
	return rc;
}

static int
client_nonce(struct acme_client *c, struct acme_error *e)
{
	struct acme_resp r;

	if (c->nonce[0] != '\0')
		return 0;
	if (acme_http(c->http, c->dir.new_nonce, NULL, 1, c->ca_file, &r, e->detail, sizeof(e->detail)) == -1) {
		util_strlcpy(e->type, "connection", sizeof(e->type));
		return -1;
	}
	util_strlcpy(c->nonce, r.nonce, sizeof(c->nonce));
	acme_resp_free(&r);
	if (c->nonce[0] == '\0') {
		acme_error_set(e, "badNonce", "newNonce gave no Replay-Nonce");
		return -1;
	}
	return 0;
}

/* Fills e from a problem document (RFC 7807) or the bare status. */
static void
client_problem(const struct acme_resp *r, struct acme_error *e)
{
	const char *type = NULL, *detail = NULL;
	json_t *j = json_loads(r->body, 0, NULL);

	if (j != NULL) {
		type = json_string_value(json_object_get(j, "type"));
		detail = json_string_value(json_object_get(j, "detail"));
	}
	if (type != NULL && strncmp(type, ACME_ERR_PREFIX, strlen(ACME_ERR_PREFIX)) == 0)
		type += strlen(ACME_ERR_PREFIX);
	acme_error_set(e, type != NULL ? type : "http", "HTTP %ld: %s", r->status,
	    detail != NULL ? detail : "no detail");
	e->retry_after_s = r->retry_after_s;
	json_decref(j);
}

static int
post_once(struct acme_client *c, const char *url, const char *payload, struct acme_resp *r,
    struct acme_error *e)
{
	char *jws;
	int rc;

	if (client_nonce(c, e) == -1)
		return -1;
	jws = jws_sign(c->key, c->kid, c->nonce, url, payload != NULL ? payload : "");
	c->nonce[0] = '\0';	/* used, whatever happens */
	if (jws == NULL) {
		acme_error_set(e, "internal", "cannot sign the request");
		return -1;
	}
	rc = acme_http(c->http, url, jws, 0, c->ca_file, r, e->detail, sizeof(e->detail));
	free(jws);
	if (rc == -1) {
		util_strlcpy(e->type, "connection", sizeof(e->type));
		return -1;
	}
	util_strlcpy(c->nonce, r->nonce, sizeof(c->nonce));
	if (r->status >= 200 && r->status < 300)
		return 0;
	client_problem(r, e);
	acme_resp_free(r);
	return -1;
}

static int account_register(struct acme_client *c, struct acme_error *e);

int
acme_post(struct acme_client *c, const char *url, const char *payload,
    struct acme_resp *r, struct acme_error *e)
{
	int tries;

	for (tries = 0; tries < 3; tries++) {
		if (post_once(c, url, payload, r, e) == 0) {
			memset(e, 0, sizeof(*e));	/* a retried badNonce is no error */
			return 0;
		}
		if (strcmp(e->type, "badNonce") == 0) {
			log_info("badNonce from the CA; retrying with a fresh nonce");
			continue;
		}
		/* A CA that lost its state (a test CA restarted) forgot us: register again. */
		if (strcmp(e->type, "accountDoesNotExist") == 0 && c->kid != NULL) {
			log_notice("the CA no longer knows account %s; registering again", c->kid);
			free(c->kid);
			c->kid = NULL;
			unlinkat(c->dirfd, ACCOUNT_URL, 0);
			if (account_register(c, e) == -1)
				return -1;
			continue;
		}
		return -1;
	}
	return -1;
}

/* account.url holds "directory URL\naccount URL\n": valid for that directory only. */
static void
account_url_load(struct acme_client *c)
{
	char buf[4096], *nl;
	ssize_t n;
	int fd;

	if ((fd = openat(c->dirfd, ACCOUNT_URL, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if ((nl = strchr(buf, '\n')) == NULL)
		return;
	*nl++ = '\0';
	nl[strcspn(nl, "\n")] = '\0';
	if (strcmp(buf, c->directory_url) == 0 && *nl != '\0')
		c->kid = strdup(nl);
}

static void
account_url_save(struct acme_client *c)
{
	FILE *f;
	int fd;

	if ((fd = openat(c->dirfd, ACCOUNT_URL ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		log_warn("saving %s", ACCOUNT_URL);
		if (fd >= 0)
			close(fd);
		return;
	}
	fprintf(f, "%s\n%s\n", c->directory_url, c->kid);
	if (fclose(f) != 0 || renameat(c->dirfd, ACCOUNT_URL ".tmp", c->dirfd, ACCOUNT_URL) == -1)
		log_warn("saving %s", ACCOUNT_URL);
}

static int
account_register(struct acme_client *c, struct acme_error *e)
{
	struct acme_resp r;
	char *payload;
	json_t *j;

	if (c->email != NULL && c->email[0] != '\0')
		j = json_pack("{s:b, s:[s+]}", "termsOfServiceAgreed", 1, "contact", "mailto:",
		    c->email);
	else
		j = json_pack("{s:b}", "termsOfServiceAgreed", 1);
	if (j == NULL || (payload = json_dumps(j, JSON_COMPACT)) == NULL) {
		json_decref(j);
		acme_error_set(e, "internal", "out of memory");
		return -1;
	}
	json_decref(j);
	if (acme_post(c, c->dir.new_account, payload, &r, e) == -1) {
		free(payload);
		return -1;
	}
	free(payload);
	if (r.location[0] == '\0' || (c->kid = strdup(r.location)) == NULL) {
		acme_error_set(e, "malformed", "newAccount answered without a Location");
		acme_resp_free(&r);
		return -1;
	}
	acme_resp_free(&r);
	log_info("ACME account %s registered", c->kid);
	account_url_save(c);
	return 0;
}

int
acme_client_ready(struct acme_client *c, struct acme_error *e)
{
	/* A shared store's key, not the folder's: another key is another account. */
	if (c->key == NULL && c->account_store != NULL && acme_account_from_store(c, e) == -1)
		return -1;
	if (c->key == NULL) {
		if ((c->key = jws_key_load(c->dirfd, ACCOUNT_KEY)) == NULL ||
		    (c->thumbprint = jws_thumbprint(c->key)) == NULL) {
			acme_error_set(e, "internal", "no usable account key (see the log)");
			return -1;
		}
	}
	if (client_directory(c, e) == -1)
		return -1;
	if (c->kid == NULL)
		account_url_load(c);
	if (c->kid == NULL && account_register(c, e) == -1)
		return -1;
	return 0;
}
