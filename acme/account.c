/*
 * The shared account key of a PostgreSQL store (issue 20): the child reads
 * it through its own role (acme_store; the master's role cannot), or makes
 * and adds the first one, and uses it instead of its folder's, so every
 * node orders as the same account. The key is written where the folder's
 * was (0600, this child's user); the folder's is never used while the
 * store's cannot be read, since another key would be another account.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "acme/acmechild.h"
#include "share/log.h"
#include "share/msg.h"

/* 1 when the folder's account.key holds exactly pem. */
static int
file_is(int dirfd, const char *pem)
{
	char buf[MSG_A_ACCOUNT_KEY_MAX + 2];
	ssize_t n;
	int fd, same;

	if ((fd = openat(dirfd, ACCOUNT_KEY, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	same = n >= 0 && (size_t)n == strlen(pem) && memcmp(buf, pem, (size_t)n) == 0;
	OPENSSL_cleanse(buf, sizeof(buf));
	return same;
}

static int
file_write(int dirfd, const char *pem)
{
	size_t len = strlen(pem);
	int fd;

	if ((fd = openat(dirfd, ACCOUNT_KEY ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		log_warn("saving the shared %s", ACCOUNT_KEY);
		return -1;
	}
	if (write(fd, pem, len) != (ssize_t)len || fsync(fd) == -1) {
		log_warn("saving the shared %s", ACCOUNT_KEY);
		close(fd);
		unlinkat(dirfd, ACCOUNT_KEY ".tmp", 0);
		return -1;
	}
	close(fd);
	if (renameat(dirfd, ACCOUNT_KEY ".tmp", dirfd, ACCOUNT_KEY) == -1) {
		log_warn("saving the shared %s", ACCOUNT_KEY);
		return -1;
	}
	return 0;
}

int
acme_client_set_key(struct acme_client *c, const char *pem)
{
	EVP_PKEY *k;
	char *tp = NULL;
	BIO *b;

	if ((b = BIO_new_mem_buf(pem, -1)) == NULL)
		return -1;
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (k == NULL || !EVP_PKEY_is_a(k, "EC") || (tp = jws_thumbprint(k)) == NULL) {
		log_warnx("the shared account key from the store is not a usable EC key");
		EVP_PKEY_free(k);
		return -1;
	}
	if (!file_is(c->dirfd, pem)) {
		/* Another key's account URL would sign as the wrong account. */
		unlinkat(c->dirfd, ACCOUNT_URL, 0);
		free(c->kid);
		c->kid = NULL;
		if (file_write(c->dirfd, pem) == 0)
			log_info("using the shared account key (thumbprint %s)", tp);
	}
	EVP_PKEY_free(c->key);
	free(c->thumbprint);
	c->key = k;
	c->thumbprint = tp;
	return 0;
}

/* A new P-256 key as PKCS#8 PEM (the folder's format), or NULL. */
static char *
key_new_pem(void)
{
	EVP_PKEY *k;
	BIO *b = NULL;
	char *data, *pem = NULL;
	long n;

	if ((k = jws_key_new()) != NULL && (b = BIO_new(BIO_s_secmem())) != NULL &&
	    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(b, &data)) > 0 && n <= MSG_A_ACCOUNT_KEY_MAX)
		pem = strndup(data, (size_t)n);
	BIO_free(b);
	EVP_PKEY_free(k);
	return pem;
}

/* The store's key into *pem, the first one made and added when there is none: 0 or -1. */
static int
store_key(const struct acct_store_ops *ops, void *h, char **pem, char *err, size_t errlen)
{
	char *made;
	int rc;

	if ((rc = ops->get(h, pem, err, errlen)) != 0)
		return rc == 1 ? 0 : -1;
	if ((made = key_new_pem()) == NULL) {
		snprintf(err, errlen, "cannot make a key");
		return -1;
	}
	if (ops->add(h, made, err, errlen) == 0 && (rc = ops->get(h, pem, err, errlen)) == 0)
		snprintf(err, errlen, "no key in acme_account after adding one");
	if (rc == 1 && strcmp(*pem, made) == 0)
		log_info("added the account key every node shares to the store");
	OPENSSL_clear_free(made, strlen(made));
	return rc == 1 ? 0 : -1;
}

int
acme_account_from_store(struct acme_client *c, struct acme_error *e)
{
	char err[400] = "", *pem = NULL;
	void *h;
	int rc = -1;

	if ((h = c->store->open(c->account_store, err, sizeof(err))) == NULL)
		goto out;
	rc = store_key(c->store, h, &pem, err, sizeof(err));
	c->store->close(h);
	if (rc == 0 && (rc = acme_client_set_key(c, pem)) == -1)
		snprintf(err, sizeof(err), "the stored key is not a usable EC key");
out:
	if (pem != NULL)
		OPENSSL_clear_free(pem, strlen(pem));
	if (rc == -1)
		acme_error_set(e, "internal", "no account key from acme_store (%s); orders wait and "
		    "are retried", err);
	return rc;
}
