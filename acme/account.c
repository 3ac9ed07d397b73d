/*
 * The ACME child's side of a shared account key (issue 20): the master of
 * a node on a PostgreSQL store sends the store's account key, which
 * replaces the one in this child's folder, so every node orders as the
 * same account. The key is written where the folder's was (0600, this
 * child's user), so a restart before the next message still has it.
 */
#include "config.h"

#include <fcntl.h>
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
