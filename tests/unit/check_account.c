/*
 * Unit tests for acme/account.c: a shared store's account key replaces the
 * folder's (written 0600, the old key's account URL dropped), the same key
 * again keeps the URL, and a PEM that is not an EC private key is refused.
 * The child's store path through a fake acme_account: the first key made
 * and added, another node's winner read back, a store that is down or
 * refuses (no key, none made in the folder), a bad stored key; every
 * connection closed.
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

/* --- the child's store path, through a fake acme_account */

static struct {
	char *row;		/* the stored key, or NULL */
	char *racer;		/* another node's key, stored just before our add */
	int down;		/* open fails */
	int refuse;		/* get fails (the role has no grant) */
	int opens, closes, adds;
} fake;

static void *
fake_open(const char *conninfo, char *err, size_t errlen)
{
	ck_assert_str_eq(conninfo, "postgresql:///h?user=haloyd_acme");
	if (fake.down) {
		snprintf(err, errlen, "cannot connect: connection refused");
		return NULL;
	}
	fake.opens++;
	return &fake;
}

static int
fake_get(void *h, char **pem, char *err, size_t errlen)
{
	ck_assert_ptr_eq(h, &fake);
	*pem = NULL;
	if (fake.refuse) {
		snprintf(err, errlen, "cannot read acme_account: permission denied");
		return -1;
	}
	if (fake.row == NULL)
		return 0;
	*pem = strdup(fake.row);
	return 1;
}

static int
fake_add(void *h, const char *pem, char *err, size_t errlen)
{
	(void)h;
	(void)err;
	(void)errlen;
	fake.adds++;
	if (fake.racer != NULL && fake.row == NULL)
		fake.row = strdup(fake.racer);
	if (fake.row == NULL)	/* ON CONFLICT DO NOTHING */
		fake.row = strdup(pem);
	return 0;
}

static void
fake_close(void *h)
{
	ck_assert_ptr_eq(h, &fake);
	fake.closes++;
}

static const struct acct_store_ops fake_ops = {
	.open = fake_open, .get = fake_get, .add = fake_add, .close = fake_close,
};

static char store_dir[] = "/tmp/check_account_store_XXXXXX";

static void
client_init(struct acme_client *c)
{
	memset(&fake, 0, sizeof(fake));
	memset(c, 0, sizeof(*c));
	ck_assert_ptr_nonnull(mkdtemp(store_dir));
	ck_assert_int_ge(c->dirfd = open(store_dir, O_DIRECTORY | O_RDONLY), 0);
	c->account_store = strdup("postgresql:///h?user=haloyd_acme");
	c->store = &fake_ops;
}

static void
client_free(struct acme_client *c)
{
	EVP_PKEY_free(c->key);
	free(c->thumbprint);
	free(c->kid);
	free(c->account_store);
	unlinkat(c->dirfd, ACCOUNT_KEY, 0);
	unlinkat(c->dirfd, ACCOUNT_URL, 0);
	close(c->dirfd);
	ck_assert_int_eq(rmdir(store_dir), 0);
	memcpy(store_dir + strlen(store_dir) - 6, "XXXXXX", 6);
	free(fake.row);
	free(fake.racer);
	ck_assert_int_eq(fake.opens, fake.closes);
}

/* The folder's account.key holds exactly pem. */
static void
assert_folder_key(int dirfd, const char *pem)
{
	char buf[8192];
	ssize_t n;
	int fd = openat(dirfd, ACCOUNT_KEY, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, pem);
}

START_TEST(store_empty_gets_the_first_key)
{
	struct acme_client c;
	struct acme_error e;
	char *tp;

	client_init(&c);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(acme_account_from_store(&c, &e), 0);
	ck_assert_int_eq(fake.adds, 1);
	ck_assert_ptr_nonnull(fake.row);
	ck_assert_ptr_nonnull(strstr(fake.row, "PRIVATE KEY"));
	ck_assert_ptr_nonnull(c.key);
	assert_folder_key(c.dirfd, fake.row);
	tp = strdup(c.thumbprint);
	/* Another child (a restart, another node) reads the same key, adds nothing. */
	EVP_PKEY_free(c.key);
	c.key = NULL;
	ck_assert_int_eq(acme_account_from_store(&c, &e), 0);
	ck_assert_int_eq(fake.adds, 1);
	ck_assert_str_eq(c.thumbprint, tp);
	ck_assert_int_eq(fake.opens, 2);
	free(tp);
	client_free(&c);
}
END_TEST

START_TEST(store_race_keeps_the_other_nodes_key)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	struct acme_client c;
	struct acme_error e;

	client_init(&c);
	fake.racer = pem_of(k);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(acme_account_from_store(&c, &e), 0);
	ck_assert_str_eq(fake.row, fake.racer);
	assert_folder_key(c.dirfd, fake.racer);
	EVP_PKEY_free(k);
	client_free(&c);
}
END_TEST

START_TEST(store_down_or_refused_means_no_key)
{
	struct acme_client c;
	struct acme_error e;

	client_init(&c);
	fake.down = 1;
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(acme_account_from_store(&c, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.detail, "connection refused"));
	ck_assert_ptr_nonnull(strstr(e.detail, "orders wait"));
	/* The order path: no key from the store, and none made in the folder either. */
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(acme_client_ready(&c, &e), -1);
	ck_assert_ptr_null(c.key);
	ck_assert_int_eq(faccessat(c.dirfd, ACCOUNT_KEY, F_OK, 0), -1);
	fake.down = 0;
	fake.refuse = 1;
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(acme_account_from_store(&c, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.detail, "permission denied"));
	ck_assert_int_eq(fake.adds, 0);
	ck_assert_ptr_null(c.key);
	/* Back: the next try gets it. */
	fake.refuse = 0;
	ck_assert_int_eq(acme_account_from_store(&c, &e), 0);
	ck_assert_ptr_nonnull(c.key);
	client_free(&c);
}
END_TEST

START_TEST(store_bad_key_refused)
{
	struct acme_client c;
	struct acme_error e;

	client_init(&c);
	fake.row = strdup("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(acme_account_from_store(&c, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.detail, "not a usable EC key"));
	ck_assert_ptr_null(c.key);
	ck_assert_int_eq(faccessat(c.dirfd, ACCOUNT_KEY, F_OK, 0), -1);
	client_free(&c);
}
END_TEST

Suite *
suite_account(void)
{
	Suite *s = suite_create("account");
	TCase *tc = tcase_create("account");

	tcase_add_test(tc, shared_key_replaces_the_folders);
	tcase_add_test(tc, store_empty_gets_the_first_key);
	tcase_add_test(tc, store_race_keeps_the_other_nodes_key);
	tcase_add_test(tc, store_down_or_refused_means_no_key);
	tcase_add_test(tc, store_bad_key_refused);
	suite_add_tcase(s, tc);
	return s;
}
