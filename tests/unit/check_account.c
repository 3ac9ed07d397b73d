/*
 * Unit tests for acme/account.c: a shared store's account key replaces the
 * folder's (written 0600, the old key's account URL dropped), the same key
 * again keeps the URL, and a PEM that is not an EC private key is refused.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "acme/acmechild.h"
#include "tests/unit/suites.h"

static char *
pem_of(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static void
put(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

START_TEST(shared_key_replaces_the_folders)
{
	char dir[] = "/tmp/check_account_XXXXXX", *pem, *pem2, path[64];
	EVP_PKEY *k = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
	struct acme_client c;
	struct stat st;
	char *tp1;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(&c, 0, sizeof(c));
	ck_assert_int_ge(c.dirfd = open(dir, O_DIRECTORY | O_RDONLY), 0);
	pem = pem_of(k);
	pem2 = pem_of(k2);
	/* The folder had its own key and that key's account. */
	put(c.dirfd, ACCOUNT_KEY, pem2);
	put(c.dirfd, ACCOUNT_URL, "https://ca/dir\nhttps://ca/acct/1\n");
	c.kid = strdup("https://ca/acct/1");
	ck_assert_int_eq(acme_client_set_key(&c, pem), 0);
	ck_assert_ptr_null(c.kid);
	ck_assert_int_eq(faccessat(c.dirfd, ACCOUNT_URL, F_OK, 0), -1);
	ck_assert_int_eq(fstatat(c.dirfd, ACCOUNT_KEY, &st, 0), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_ptr_nonnull(c.thumbprint);
	tp1 = strdup(c.thumbprint);
	/* The same key again (a restart): the account URL is kept. */
	put(c.dirfd, ACCOUNT_URL, "https://ca/dir\nhttps://ca/acct/2\n");
	c.kid = strdup("https://ca/acct/2");
	ck_assert_int_eq(acme_client_set_key(&c, pem), 0);
	ck_assert_str_eq(c.kid, "https://ca/acct/2");
	ck_assert_str_eq(c.thumbprint, tp1);
	ck_assert_int_eq(faccessat(c.dirfd, ACCOUNT_URL, F_OK, 0), 0);
	/* Not a key: refused, the current one kept. */
	ck_assert_int_eq(acme_client_set_key(&c, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
	    "-----END PRIVATE KEY-----\n"), -1);
	ck_assert_str_eq(c.thumbprint, tp1);
	EVP_PKEY_free(c.key);
	free(c.thumbprint);
	free(c.kid);
	free(tp1);
	free(pem);
	free(pem2);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	unlinkat(c.dirfd, ACCOUNT_KEY, 0);
	unlinkat(c.dirfd, ACCOUNT_URL, 0);
	close(c.dirfd);
	snprintf(path, sizeof(path), "%s", dir);
	ck_assert_int_eq(rmdir(path), 0);
}
END_TEST

Suite *
suite_account(void)
{
	Suite *s = suite_create("account");
	TCase *tc = tcase_create("account");

	tcase_add_test(tc, shared_key_replaces_the_folders);
	suite_add_tcase(s, tc);
	return s;
}
