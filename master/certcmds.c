/*
 * Certificate commands. An import is checked in full (master/certs.c)
 * before the store sees it; the key is wiped from every buffer the master
 * used; the change reaches workers in a new keyring + snapshot generation
 * and the reply waits until every worker serves it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "master/certcmds.h"
#include "master/cmdtable.h"
#include "master/certs.h"
#include "master/control.h"
#include "master/keyringbuild.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/store.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/keyring.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

#define CERT_ROW_BUF 16384

/* Reads and normalises the domain argument; on failure answers the client. -2 = malformed. */
static int
arg_domain(struct cur *c, struct cclient *cl, char *out)
{
	char raw[MSG_STR_MAX];

	if (cur_str(c, raw, sizeof(raw)) == -1)
		return -2;
	if (hostname_normalize_name(raw, out) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "invalid host name '%.253s'", raw);
		return -1;
	}
	return 0;
}

static const char *
source_name(int source)
{
	switch (source) {
	case KEYRING_SRC_IMPORTED:
		return "imported";
	case KEYRING_SRC_ACME:
		return "acme";
	case KEYRING_SRC_DEFAULT:
		return "default";
	}
	return "unknown";
}

static const char *
state_name(const struct store_cert *c, time_t now)
{
	if (c->not_after < (int64_t)now)
		return "expired";
	if (c->not_before > (int64_t)now)
		return "not yet valid";
	return "valid";
}

/* --- import */

/* The store row of a checked import; strings borrowed from ci. */
static void
import_row(struct store_cert *sc, const char *domain, const struct certs_info *ci)
{
	memset(sc, 0, sizeof(*sc));
	sc->domain = (char *)(uintptr_t)domain;
	sc->source = KEYRING_SRC_IMPORTED;
	sc->names = ci->names;
	sc->nnames = ci->nnames;
	sc->chain = ci->chain;
	sc->key = ci->key;
	sc->issuer = (char *)(uintptr_t)ci->issuer;
	sc->fingerprint = (char *)(uintptr_t)ci->fingerprint_hex;
	sc->not_before = ci->not_before;
	sc->not_after = ci->not_after;
}

/* Checks and stores; answers the client either way. */
static void
import_commit(struct master *m, struct cclient *cl, const char *domain, const char *chain,
    const char *key, int force)
{
	struct certs_info ci;
	struct store_cert sc;
	int rc;
	char err[600], when[64], done[400];

	if (certs_check(domain, chain, strlen(chain), key, strlen(key), force, time(NULL), &ci,
	    err, sizeof(err)) == -1) {
		log_info("cert import %s refused: %s", domain, err);
		control_reply_fail(cl, CTL_EINVAL, "%s", err);
		return;
	}
	import_row(&sc, domain, &ci);
	if ((rc = store_cert_put(m->store, &sc, NULL)) != STORE_OK) {
		control_reply_fail(cl, CTL_EFAIL, rc == STORE_EFULL ?
		    "not saved: the store's disk is full" :
		    "cannot store the certificate (see the log)");
		goto out;
	}
	if (mkeyring_reload(m) == -1) {
		control_reply_fail(cl, CTL_EFAIL, "stored, but cannot reload the certificates");
		goto out;
	}
	certs_format_time(ci.not_after, when, sizeof(when));
	snprintf(done, sizeof(done), "certificate for %s imported (%s, %zu name%s, expires %s)",
	    domain, ci.key_type, ci.nnames, ci.nnames == 1 ? "" : "s", when);
	log_info("%s, fingerprint %s", done, ci.fingerprint_hex);
	control_reply_when_served(cl, publish_changed(m), done);
out:
	certs_info_free(&ci);
}

int
certcmds_import(struct master *m, struct cclient *cl, struct cur *c)
{
	char domain[HOSTNAME_MAX + 1];
	char *chain = malloc(MSG_PEM_CHAIN_MAX + 1), *key = malloc(MSG_PEM_KEY_MAX + 1);
	int rc = -1, force;

	if (chain == NULL || key == NULL) {
		control_reply_fail(cl, CTL_EFAIL, "out of memory");
		rc = 0;
		goto out;
	}
	key[0] = '\0';
	if ((rc = arg_domain(c, cl, domain)) != 0) {
		rc = rc == -2 ? -1 : 0;
		goto out;
	}
	rc = -1;
	if (cur_str(c, chain, MSG_PEM_CHAIN_MAX + 1) == -1 ||
	    cur_str(c, key, MSG_PEM_KEY_MAX + 1) == -1)
		goto out;
	force = cur_u8(c);
	if (cur_end(c) == -1 || force > 1)
		goto out;
	import_commit(m, cl, domain, chain, key, force);
	rc = 0;
out:
	if (key != NULL)
		OPENSSL_cleanse(key, MSG_PEM_KEY_MAX + 1);
	free(key);
	free(chain);
	return rc;
}

/* --- list, show, rm */

static void
row_time(struct wbuf *w, const char *key, int64_t t)
{
	char buf[64];

	certs_format_time(t, buf, sizeof(buf));
	control_row_str(w, key, buf);
}

/* One certificate; detail adds the fields of `cert show`. */
static void
cert_row(struct cclient *cl, const struct store_cert *c, int detail)
{
	uint8_t buf[CERT_ROW_BUF];
	struct wbuf w;
	time_t now = time(NULL);

	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, detail ? 11 : 7);
	control_row_str(&w, "domain", c->domain != NULL ? c->domain : "(default)");
	control_row_list(&w, "names", c->names, c->nnames);
	control_row_str(&w, "issuer", c->issuer);
	row_time(&w, "not_after", c->not_after);
	control_row_str(&w, "source", source_name(c->source));
	control_row_str(&w, "state", state_name(c, now));
	control_row_int(&w, "id", c->id);
	if (detail) {
		row_time(&w, "not_before", c->not_before);
		control_row_str(&w, "fingerprint", c->fingerprint);
		row_time(&w, "created", c->created);
		control_row_int(&w, "days_left", (c->not_after - (int64_t)now) / 86400);
	}
	if (w.bad) {
		log_warnx("certificate %lld does not fit one row", (long long)c->id);
		return;
	}
	control_reply_row(cl, &w);
}

static int
list_row(void *arg, const struct store_cert *c)
{
	cert_row(arg, c, 0);
	return 0;
}

int
certcmds_list(struct master *m, struct cclient *cl, struct cur *c)
{
	if (cur_end(c) == -1)
		return -1;
	if (store_cert_foreach(m->store, 0, list_row, cl) != 0) {
		control_reply_fail(cl, CTL_EFAIL, "cannot read the certificates (see the log)");
		return 0;
	}
	control_reply_end(cl);
	return 0;
}

int
certcmds_show(struct master *m, struct cclient *cl, struct cur *c)
{
	char domain[HOSTNAME_MAX + 1];
	struct store_cert sc;
	int rc;

	if ((rc = arg_domain(c, cl, domain)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	if ((rc = store_cert_get(m->store, domain, 0, &sc)) != STORE_OK) {
		if (rc == STORE_ENOENT)
			control_reply_fail(cl, CTL_ENOENT, "certificate for %s: not found", domain);
		else
			control_reply_fail(cl, CTL_EFAIL, "cannot read the certificate (see the log)");
		return 0;
	}
	cert_row(cl, &sc, 1);
	store_cert_free(&sc);
	control_reply_end(cl);
	return 0;
}

int
certcmds_rm(struct master *m, struct cclient *cl, struct cur *c)
{
	char domain[HOSTNAME_MAX + 1], done[HOSTNAME_MAX + 64];
	int rc, od;

	if ((rc = arg_domain(c, cl, domain)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	rc = store_cert_rm(m->store, domain);
	/* An on-demand name goes too: kept, the schedule would order it again at once. */
	od = store_ondemand_rm(m->store, domain);
	if (rc == STORE_ENOENT && od == STORE_ENOENT) {
		control_reply_fail(cl, CTL_ENOENT, "certificate for %s: not found", domain);
		return 0;
	}
	if ((rc != STORE_OK && rc != STORE_ENOENT) || (od != STORE_OK && od != STORE_ENOENT) ||
	    mkeyring_reload(m) == -1) {
		control_reply_fail(cl, CTL_EFAIL, "cannot remove the certificate (see the log)");
		return 0;
	}
	snprintf(done, sizeof(done), "certificate for %s removed%s", domain,
	    od == STORE_OK ? ", and the on-demand name" : "");
	log_info("%s", done);
	control_reply_when_served(cl, publish_changed(m), done);
	return 0;
}
