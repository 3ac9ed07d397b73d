/*
 * The store's certificates: certs (chain, key, dates, source) and the
 * names each covers (cert_names). Private keys live only in this table
 * (the file is 0600 in a state folder nobody else may list) and in the keyring memfd
 * built from it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "master/store.h"
#include "master/storeint.h"
#include "share/log.h"

enum certs_stmt {
	S_CERT_INS,
	S_CERT_NAME_INS,
	S_CERT_DEL_DOMAIN,
	S_CERT_DEL_DEFAULT,
	S_CERT_ONE,
	S_CERT_DEFAULT,
	S_CERT_ALL,
};

/* One row per (certificate, name), merged by id; ?1 is with_key. */
#define CERTS_SELECT \
	"SELECT c.id, c.domain, c.source, c.chain_pem, " \
	"CASE WHEN ?1 <> 0 THEN c.key_pem END, c.issuer, c.fingerprint, c.not_before, " \
	"c.not_after, c.created, n.name " \
	"FROM certs c LEFT JOIN cert_names n ON n.cert_id = c.id "

const char *const store_certs_sql[] = {
	[S_CERT_INS] = "INSERT INTO certs(domain, source, chain_pem, key_pem, not_before, "
	    "not_after, fingerprint, issuer, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[S_CERT_NAME_INS] = "INSERT INTO cert_names(cert_id, name) VALUES (?1, ?2)",
	[S_CERT_DEL_DOMAIN] = "DELETE FROM certs WHERE domain = ?1",
	[S_CERT_DEL_DEFAULT] = "DELETE FROM certs WHERE domain IS NULL AND source = ?1",
	[S_CERT_ONE] = CERTS_SELECT "WHERE c.domain = ?2 ORDER BY n.name",
	[S_CERT_DEFAULT] = CERTS_SELECT "WHERE c.domain IS NULL ORDER BY c.id, n.name",
	[S_CERT_ALL] = CERTS_SELECT "ORDER BY c.id, n.name",
	NULL
};

#define P(st, which, ...) store_prep(st, STORE_F_CERTS, which, __VA_ARGS__)

static int
cert_insert(struct store *st, const struct store_cert *c, int64_t *id)
{
	size_t i;
	int rc;

	rc = store_run(st, P(st, S_CERT_INS, "tittiitti", c->domain, (int64_t)c->source, c->chain,
	    c->key, c->not_before, c->not_after, c->fingerprint, c->issuer, (int64_t)time(NULL)));
	/* Bound without a copy: drop the statement's pointer to the caller's key. */
	db_reset(st->stmt[STORE_F_CERTS][S_CERT_INS]);
	if (rc != STORE_OK)
		return rc;
	*id = db_last_id(st->db);
	for (i = 0; i < c->nnames; i++)
		if ((rc = store_run(st, P(st, S_CERT_NAME_INS, "it", *id, c->names[i]))) != STORE_OK)
			return rc;
	return STORE_OK;
}

int
store_cert_put(struct store *st, const struct store_cert *c, int64_t *id)
{
	int64_t nid = 0;
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	/* The one it replaces goes first, its names with it (ON DELETE CASCADE). */
	if (c->domain != NULL)
		rc = store_run(st, P(st, S_CERT_DEL_DOMAIN, "t", c->domain));
	else
		rc = store_run(st, P(st, S_CERT_DEL_DEFAULT, "i", (int64_t)c->source));
	if (rc == STORE_OK)
		rc = cert_insert(st, c, &nid);
	if ((rc = store_tx_end(st, rc)) == STORE_OK && id != NULL)
		*id = nid;
	return rc;
}

int
store_cert_rm(struct store *st, const char *domain)
{
	int rc;

	if ((rc = store_tx_begin(st, 1)) != STORE_OK)
		return rc;
	rc = store_run_changed(st, P(st, S_CERT_DEL_DOMAIN, "t", domain));
	return store_tx_end(st, rc);
}

/* Frees a string that may hold key material, wiping it first. */
static void
free_secret(char *p)
{
	if (p != NULL) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

void
store_cert_free(struct store_cert *c)
{
	size_t i;

	for (i = 0; i < c->nnames; i++)
		free(c->names[i]);
	free(c->names);
	free(c->domain);
	free(c->chain);
	free_secret(c->key);
	free(c->issuer);
	free(c->fingerprint);
	memset(c, 0, sizeof(*c));
}

/* The certificate columns of the current CERTS_SELECT row into c. */
static int
cert_columns(struct db_stmt *s, struct store_cert *c)
{
	c->id = db_column_int64(s, 0);
	c->source = (int)db_column_int64(s, 2);
	c->not_before = db_column_int64(s, 7);
	c->not_after = db_column_int64(s, 8);
	c->created = db_column_int64(s, 9);
	if (store_column_dup_null(s, 1, &c->domain) == -1 || store_column_dup_null(s, 4, &c->key) == -1 ||
	    (c->chain = store_column_dup(s, 3)) == NULL || (c->issuer = store_column_dup(s, 5)) == NULL ||
	    (c->fingerprint = store_column_dup(s, 6)) == NULL)
		return -1;
	return 0;
}

/* Appends the name column of the current row, if any, to c->names. */
static int
cert_push_name(struct db_stmt *s, struct store_cert *c)
{
	char **nn;

	if (db_column_null(s, 10))
		return 0;
	if ((nn = reallocarray(c->names, c->nnames + 1, sizeof(*nn))) == NULL) {
		log_warn("store: reallocarray");
		return -1;
	}
	c->names = nn;
	if ((c->names[c->nnames] = store_column_dup(s, 10)) == NULL)
		return -1;
	c->nnames++;
	return 0;
}

/*
 * Reads the certificate at the current row of s (*rc the last step's
 * result) into c, stepping past its name rows. 1, 0 at the end, or
 * STORE_ERR.
 */
static int
cert_next(struct store *st, struct db_stmt *s, int *rc, struct store_cert *c)
{
	int64_t id;

	store_cert_free(c);
	if (*rc == DB_DONE)
		return 0;
	if (*rc != DB_ROW)
		return store_fail(st, s);
	if (cert_columns(s, c) == -1)
		return STORE_ERR;
	for (id = c->id; *rc == DB_ROW && db_column_int64(s, 0) == id;
	    *rc = db_step(s))
		if (cert_push_name(s, c) == -1)
			return STORE_ERR;
	if (*rc != DB_ROW && *rc != DB_DONE)
		return store_fail(st, s);
	return 1;
}

/* Reads the first certificate of s (from P()), then resets s. */
static int
cert_one(struct store *st, struct db_stmt *s, struct store_cert *out)
{
	int rc, step;

	if (s == NULL)
		return STORE_ERR;
	step = db_step(s);
	if ((rc = cert_next(st, s, &step, out)) == 1)
		rc = STORE_OK;
	else if (rc == 0)
		rc = STORE_ENOENT;
	db_reset(s);
	if (rc != STORE_OK)
		store_cert_free(out);
	return rc;
}

int
store_cert_get(struct store *st, const char *domain, int with_key, struct store_cert *out)
{
	memset(out, 0, sizeof(*out));
	if (domain != NULL)
		return cert_one(st, P(st, S_CERT_ONE, "it", (int64_t)with_key, domain), out);
	return cert_one(st, P(st, S_CERT_DEFAULT, "i", (int64_t)with_key), out);
}

int
store_cert_foreach(struct store *st, int with_key,
    int (*fn)(void *arg, const struct store_cert *c), void *arg)
{
	struct store_cert c;
	struct db_stmt *s;
	int rc, step;

	memset(&c, 0, sizeof(c));
	if ((rc = store_tx_begin(st, 0)) != STORE_OK)
		return rc;
	if ((s = P(st, S_CERT_ALL, "i", (int64_t)with_key)) == NULL)
		rc = STORE_ERR;
	else {
		step = db_step(s);
		while ((rc = cert_next(st, s, &step, &c)) == 1)
			if ((rc = fn(arg, &c)) != 0)
				break;
		db_reset(s);
	}
	store_cert_free(&c);
	return store_tx_end(st, rc);
}
