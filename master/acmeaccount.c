/*
 * The ACME account key of a shared PostgreSQL store (issue 20): the nodes
 * order as one account. The first node that starts its ACME child makes a
 * P-256 key and adds it to the store (a concurrent node's may win: the
 * stored one is read back), and each node sends the stored key to its
 * child (MSG_A_ACCOUNT_KEY), which uses it instead of its folder's. With
 * SQLite nothing changes: the child makes and keeps its own key.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "master/acmeint.h"
#include "master/master.h"
#include "master/store.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/cursor.h"

/* A new P-256 key as PKCS#8 PEM (the child's own format), or NULL (logged). */
static char *
key_new_pem(void)
{
	EVP_PKEY *k;
	BIO *b = NULL;
	char *data, *pem = NULL;
	long n;

	if ((k = EVP_EC_gen("P-256")) == NULL || (b = BIO_new(BIO_s_secmem())) == NULL ||
	    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (n = BIO_get_mem_data(b, &data)) <= 0 || n > STORE_ACCOUNT_KEY_MAX ||
	    (pem = strndup(data, (size_t)n)) == NULL)
		log_warnx("acme: cannot make the shared account key");
	BIO_free(b);
	EVP_PKEY_free(k);
	return pem;
}

/* The store's key, made and added first when it has none; NULL (logged) on failure. */
static char *
key_get(struct master *m)
{
	char *pem = NULL, *made;
	int rc;

	if ((rc = store_account_key_get(m->store, &pem)) != STORE_ENOENT)
		goto out;
	if ((made = key_new_pem()) == NULL)
		return NULL;
	rc = store_account_key_add(m->store, made);
	OPENSSL_clear_free(made, strlen(made));
	if (rc == STORE_OK)
		rc = store_account_key_get(m->store, &pem);
	if (rc == STORE_OK)
		log_info("acme: using the store's account key (shared by every node)");
out:
	if (rc != STORE_OK) {
		log_warnx("acme: cannot read the shared account key from the store");
		return NULL;
	}
	return pem;
}

int
acmeaccount_send(struct acme_peer *a)
{
	uint8_t buf[2 + MSG_A_ACCOUNT_KEY_MAX];
	struct wbuf b;
	char *pem;
	int rc;

	if (!store_shared(a->m->store))
		return 0;
	if ((pem = key_get(a->m)) == NULL)
		return -1;
	wb_init(&b, buf, sizeof(buf));
	wb_str(&b, pem);
	rc = b.bad ? -1 : proc_send(&a->proc, MSG_A_ACCOUNT_KEY, 0, 0, buf, b.len, -1);
	OPENSSL_clear_free(pem, strlen(pem));
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}
